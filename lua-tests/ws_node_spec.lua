-- WebSocket interop with node's `ws` package (lua-tests/node/ws_peer.js): a node server against
-- net.ws.connect, and net.ws.listen against a node client, on 127.0.0.1. Each test starts its own
-- node peer (killed after it) and runs bounded in time; every socket has a timeout.
-- node and `ws` come from ci/setup.sh (npm ci --prefix lua-tests/node). Without them the file
-- is skipped, except under CI (CI=true), where their absence is a failure.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local T = 5000   -- ms: socket timeouts
local BOUND = 20 -- s: a whole test

local HERE = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "lua-tests")
local NODE_DIR = HERE .. "/node"
local PEER = NODE_DIR .. "/ws_peer.js"

-- The node binary, if it can load `ws` from lua-tests/node (or NODE_PATH); else nil, why.
local function find_node()
  for _, name in ipairs({ "node", "nodejs" }) do
    local p = io.popen("command -v " .. name .. " 2>/dev/null")
    local bin = p:read("*l")
    p:close()
    if bin and bin ~= "" then
      local ok = os.execute(("cd '%s' && '%s' -e 'require(\"ws\")' >/dev/null 2>&1"):format(NODE_DIR, bin))
      if ok == true or ok == 0 then return bin end
      return nil, "node's `ws` package is not installed (run ci/setup.sh, or npm ci --prefix " .. NODE_DIR .. ")"
    end
  end
  return nil, "node is not installed (run ci/setup.sh: apt-get install nodejs npm)"
end
local NODE, MISSING = find_node()

if not NODE then
  if os.getenv("CI") then
    describe("ws interop with node", function()
      it("has node and its ws package (CI must)", function() error(MISSING) end)
    end)
  else
    pending("ws interop with node skipped: " .. MISSING)
  end
  return
end

local s = helper.scope(T)
local peers = {}                              -- node peers of the current test
local sockets = setmetatable({}, { __mode = "k" }) -- net websockets, weakly: a test may drop one
after_each(function()
  s.cleanup()
  for ws in pairs(sockets) do pcall(ws.close, ws); sockets[ws] = nil end
  for i = #peers, 1, -1 do peers[i]:kill(); peers[i] = nil end
end)

-- Start a node peer: node ws_peer.js ARGS...; killed when the test ends.
local function node(...)
  local p = helper.spawn({ NODE, PEER, ... }, { max_life = 60 })
  peers[#peers + 1] = p
  return p
end

-- A node `ws` server in MODE (see ws_peer.js); returns the peer and its ws:// URL.
local function node_server(mode, ...)
  local p = node("server", mode, ...)
  local port = tonumber(p:wait_line())
  assert(port, "the node server printed no port")
  return p, "ws://127.0.0.1:" .. port .. "/"
end

-- The JSON events the peer printed so far (the server's port line is not an event).
local function events(p)
  local t = {}
  for _, l in ipairs(p:lines()) do
    local ok, e = pcall(net.json.decode, l)
    if ok and type(e) == "table" then t[#t + 1] = e end
  end
  return t
end

-- The first event `ev` the peer prints within `timeout` seconds (running net tasks), or nil.
local function find_event(p, ev, timeout)
  local found
  helper.wait_until(timeout, function()
    for _, e in ipairs(events(p)) do
      if e.ev == ev then found = e; return true end
    end
  end, 0.02)
  return found
end

-- The same, but an error (with what node printed) if it does not come.
local function wait_event(p, ev, timeout)
  local e = find_event(p, ev, timeout or 10)
  if e then return e end
  error(("node printed no %q event; stdout:\n%s\nstderr:\n%s"):format(ev, table.concat(p:lines(), "\n"), p:stderr()), 2)
end

-- node's `close` event, which ws emits once the TCP connection is closed: net ends the TCP
-- connection itself after the close handshake (RFC 6455 7.1.1), so it comes without any help.
local function node_close(p)
  return wait_event(p, "close", 5)
end

local function connect(url, opts)
  opts = opts or {}
  opts.timeout = opts.timeout or T
  local ws = net.ws.connect(url, opts)
  sockets[ws] = true
  ws:set_timeout(T)
  return ws
end

-- A net server and the node client connected to it: returns conn (net side) and the node peer.
local function net_server_with_node_client(opts, mode, ...)
  local server = s.track(net.ws.listen("127.0.0.1", 0, opts))
  server:set_timeout(T)
  local p = node("client", "ws://127.0.0.1:" .. server.port .. "/", mode, ...)
  local conn = server:accept()
  sockets[conn] = true
  conn:set_timeout(T)
  return conn, p
end

-- The test body as a task bounded by BOUND seconds.
local function bounded(fn)
  return function() helper.bounded(BOUND, fn) end
end

-- 1 MiB of binary (every byte value, pseudo-random order) and 1 MiB of multi-byte UTF-8 text.
local MIB = 1024 * 1024
local BIG_BINARY, BIG_TEXT
do
  local t, x = {}, 12345
  for i = 1, MIB do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  BIG_BINARY = table.concat(t)
  local unit = "héllo wörld ✓ "
  BIG_TEXT = string.rep(unit, math.floor(MIB / #unit)) .. string.rep("x", MIB % #unit)
  assert(#BIG_BINARY == MIB and #BIG_TEXT == MIB)
end

-- Send each message and expect it back unchanged (the node peer echoes); node saw each one.
local function echo_round(ws, p)
  local cases = {
    { "héllo from net", "text" },
    { helper.ALL_BYTES, "binary" },
    { "", "text" },
    { "", "binary" },
    { BIG_TEXT, "text" },
    { BIG_BINARY, "binary" },
  }
  local expected = {}
  for i, c in ipairs(cases) do
    ws:send(c[1], c[2])
    local m = ws:recv()
    assert.equal(c[2], m.type)
    assert.is_true(m.data == c[1], ("%s of %d bytes came back changed (%d bytes)"):format(c[2], #c[1], #m.data))
    expected[i] = c[2] .. ":" .. #c[1]
  end
  local seen = {}
  for _, e in ipairs(events(p)) do
    if e.ev == "message" then seen[#seen + 1] = (e.binary and "binary:" or "text:") .. e.len end
  end
  assert.same(expected, seen)
end

describe("net.ws.connect against a node ws server", function()
  it("echoes text and binary: all 256 byte values, empty, 1 MiB", bounded(function()
    local p, url = node_server("echo")
    local ws = connect(url)
    echo_round(ws, p)
    ws:close()
    assert.equal("close", ws:recv().type)
    assert.is_nil(ws:recv())
    assert.equal(1000, ws.closeCode)
    assert.equal(1000, node_close(p).code)
  end))

  it("compresses with node's permessage-deflate", bounded(function()
    local p, url = node_server("echo", "deflate=1")
    local ws = connect(url)
    assert.matches("^permessage%-deflate", ws.extensions)
    assert.matches("permessage%-deflate", wait_event(p, "open").extensions)
    for _, m in ipairs({ BIG_TEXT, string.rep("tick ", 40), "x" }) do
      ws:send(m)
      assert.equal(m, ws:next())
    end
    ws:send(BIG_BINARY, "binary")
    assert.equal(BIG_BINARY, ws:next())
  end))

  it("gets node's ping answered, and node answers net's ping", bounded(function()
    local p, url = node_server("ping", "data=from node")
    local ws = connect(url)
    assert.same({ type = "ping", data = "from node" }, ws:recv())
    ws:ping("from net")
    assert.same({ type = "pong", data = "from net" }, ws:recv())
    assert.equal("from net", wait_event(p, "ping").data)
    assert.equal("from node", wait_event(p, "pong").data) -- net answered by itself
  end))

  it("closes with its own code and reason: closeCode, node's view", bounded(function()
    local p, url = node_server("echo")
    local ws = connect(url)
    ws:close(4001, "net says bye")
    assert.equal(4001, ws.closeCode)
    assert.same({ type = "close", code = 4001, reason = "net says bye", data = "net says bye" }, ws:recv()) -- node echoes
    assert.is_nil(ws:recv())
    assert.equal(4001, ws.closeCode)
    local e = node_close(p)
    assert.same({ 4001, "net says bye" }, { e.code, e.reason })
  end))

  it("reports node's close code and reason", bounded(function()
    local p, url = node_server("close", "code=4002", "reason=node says bye")
    local ws = connect(url)
    assert.same({ type = "close", code = 4002, reason = "node says bye", data = "node says bye" }, ws:recv())
    assert.is_nil(ws:recv())
    assert.equal(4002, ws.closeCode)
    assert.equal(4002, node_close(p).code) -- net echoed the code
  end))

  it("reports 1005 for node's close without a code", bounded(function()
    local p, url = node_server("close")
    local ws = connect(url)
    assert.equal("close", ws:recv().type)
    assert.is_nil(ws:recv())
    assert.equal(1005, ws.closeCode)
    assert.equal(1005, node_close(p).code) -- net's reply had no code either
  end))

  it("reports 1006 when node terminates the connection", bounded(function()
    local p, url = node_server("terminate")
    local ws = connect(url)
    ws:send("now")
    -- the connection ends without a close frame: recv returns nil and closeCode is 1006
    local ok, m = pcall(ws.recv, ws)
    assert.is_true(ok, m)
    assert.is_nil(m)
    assert.equal(1006, ws.closeCode)
    assert.equal(1006, wait_event(p, "close").code)
  end))

  it("negotiates a subprotocol offered by net and chosen by node", bounded(function()
    local p, url = node_server("echo", "protocols=chat,json")
    local ws = connect(url, { protocols = { "x", "json" } })
    assert.equal("json", ws.subprotocol)
    assert.equal("json", wait_event(p, "open").protocol)
    assert.is_nil(connect(url).subprotocol)
  end))

  it("closes with 1009 when node's message exceeds max_message_size", bounded(function()
    local p, url = node_server("send", "size=2000", "binary=1")
    local ws = connect(url, { max_message_size = 1000 })
    local ok, e = pcall(ws.recv, ws)
    assert.is_false(ok)
    assert.matches("^limit: ", e)
    assert.equal(1009, ws.closeCode)
    assert.equal(1009, node_close(p).code)
  end))

  it("closes with 1007 when node sends text that is not UTF-8", bounded(function()
    local p, url = node_server("badutf8")
    local ws = connect(url)
    local ok, e = pcall(ws.recv, ws)
    assert.is_false(ok)
    assert.matches("^protocol: .*UTF%-8", e)
    assert.equal(1007, ws.closeCode)
    assert.equal(1007, node_close(p).code)
  end))
end)

describe("net.ws.listen serving a node ws client", function()
  it("echoes text and binary: all 256 byte values, empty, 1 MiB", bounded(function()
    local conn, p = net_server_with_node_client(nil, "echo")
    echo_round(conn, p)
    conn:close()
    assert.equal("close", conn:recv().type)
    assert.is_nil(conn:recv())
    assert.equal(1000, node_close(p).code)
    assert.equal(0, p:wait(5)) -- the node client saw the end and exited
  end))

  it("accepts the permessage-deflate that node's client offers", bounded(function()
    local conn, p = net_server_with_node_client(nil, "send", "size=100000")
    assert.equal("permessage-deflate; server_no_context_takeover", conn.extensions)
    assert.matches("^permessage%-deflate", wait_event(p, "open").extensions)
    local m = conn:recv()
    assert.equal(100000, #m.data)
    conn:send(m.data, m.type)
    assert.equal(100000, wait_event(p, "message").len)
  end))

  it("gets node's ping answered, and node answers net's ping", bounded(function()
    local conn, p = net_server_with_node_client(nil, "ping", "data=from node")
    assert.same({ type = "ping", data = "from node" }, conn:recv())
    conn:ping("from net")
    assert.same({ type = "pong", data = "from net" }, conn:recv())
    assert.equal("from net", wait_event(p, "ping").data)
    assert.equal("from node", wait_event(p, "pong").data)
  end))

  it("closes with its own code and reason: closeCode, node's view", bounded(function()
    local conn, p = net_server_with_node_client(nil, "echo")
    conn:close(4003, "server says bye")
    assert.equal(4003, conn.closeCode)
    assert.same({ type = "close", code = 4003, reason = "server says bye", data = "server says bye" }, conn:recv())
    assert.is_nil(conn:recv())
    local e = node_close(p)
    assert.same({ 4003, "server says bye" }, { e.code, e.reason })
  end))

  it("reports node's close code and reason", bounded(function()
    local conn, p = net_server_with_node_client(nil, "close", "code=4004", "reason=client says bye")
    assert.same({ type = "close", code = 4004, reason = "client says bye", data = "client says bye" }, conn:recv())
    assert.is_nil(conn:recv())
    assert.equal(4004, conn.closeCode)
    assert.equal(4004, node_close(p).code)
  end))

  it("reports 1005 for node's close without a code", bounded(function()
    local conn, p = net_server_with_node_client(nil, "close")
    assert.equal("close", conn:recv().type)
    assert.is_nil(conn:recv())
    assert.equal(1005, conn.closeCode)
    assert.equal(1005, node_close(p).code)
  end))

  it("reports 1006 when node terminates the connection", bounded(function()
    local conn, p = net_server_with_node_client(nil, "terminate")
    conn:send("now")
    local ok, m = pcall(conn.recv, conn)
    if ok then assert.is_nil(m) else assert.is_string(m) end
    assert.equal(1006, conn.closeCode)
    assert.equal(1006, wait_event(p, "close").code)
  end))

  it("negotiates a subprotocol offered by node and chosen by net", bounded(function()
    local conn, p = net_server_with_node_client({ protocols = { "chat", "json" } }, "echo", "protocols=x,json")
    assert.equal("json", conn.subprotocol)
    assert.equal("json", wait_event(p, "open").protocol)
    local plain, p2 = net_server_with_node_client({ protocols = { "chat", "json" } }, "echo")
    assert.is_nil(plain.subprotocol)
    assert.equal("", wait_event(p2, "open").protocol)
  end))

  it("closes with 1009 when node's message exceeds max_message_size", bounded(function()
    local conn, p = net_server_with_node_client({ max_message_size = 1000 }, "send", "size=2000")
    local ok, e = pcall(conn.recv, conn)
    assert.is_false(ok)
    assert.matches("^limit: ", e)
    assert.equal(1009, conn.closeCode)
    assert.equal(1009, node_close(p).code)
  end))

  it("closes with 1007 when node sends text that is not UTF-8", bounded(function()
    local conn, p = net_server_with_node_client(nil, "badutf8")
    local ok, e = pcall(conn.recv, conn)
    assert.is_false(ok)
    assert.matches("^protocol: .*UTF%-8", e)
    assert.equal(1007, conn.closeCode)
    assert.equal(1007, node_close(p).code)
  end))
end)

-- What RFC 6455 asks and node's ws waits for: the TCP connection ends after the close
-- handshake, pongs go out at once, a dropped connection is the end of recv, not an error.
describe("closing and pings with node ws", function()
  it("net (client) closes the TCP connection once the close handshake is over", bounded(function()
    local p, url = node_server("echo")
    local ws = connect(url)
    ws:close(4001, "bye")
    assert.equal("close", ws:recv().type)
    assert.is_nil(ws:recv())
    -- RFC 6455 5.5.1 / 7.1.1: after sending and receiving a close frame the endpoint MUST close
    -- the TCP connection; ws (the server here) waits for it up to 30 s before its `close` event
    assert(find_event(p, "close", 2), "node saw no close within 2 s: net (client) kept the TCP connection open after the close handshake")
  end))

  it("net (server) closes the TCP connection once the close handshake is over", bounded(function()
    local conn, p = net_server_with_node_client(nil, "close", "code=4004", "reason=bye")
    assert.equal("close", conn:recv().type)
    assert.is_nil(conn:recv())
    -- RFC 6455 7.1.1: the server closes the TCP connection first; the ws client waits for it
    local ok = pcall(p.wait, p, 2)
    assert(ok, "node's client did not exit within 2 s: net (server) kept the TCP connection open after the close handshake")
  end))

  it("net answers node's ping without waiting for the next call", bounded(function()
    local p, url = node_server("ping", "data=hb")
    local ws = connect(url)
    assert.same({ type = "ping", data = "hb" }, ws:recv())
    -- RFC 6455 5.5.2: the pong goes out "as soon as is practical"; a program that received the
    -- ping and now only waits (or only computes) must not hold it back
    assert(find_event(p, "pong", 2), "node got no pong within 2 s: the automatic pong was held back")
  end))

  it("recv returns nil, as documented, when node drops the connection without a close frame", bounded(function()
    local p, url = node_server("terminate")
    local ws = connect(url)
    ws:send("now")
    local ok, m = pcall(ws.recv, ws)
    assert.equal(1006, ws.closeCode)
    assert(ok and m == nil, "recv raised " .. tostring(m) .. " instead of returning nil")
  end))
end)
