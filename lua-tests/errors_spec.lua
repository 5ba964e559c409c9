-- Errors and object life (docs/api.md, "Errors" and "Objects"): every kind of error a script can meet is a plain string
-- "<kind>: ..."; objects have __tostring, __close (Lua 5.4), __gc; closing twice is harmless;
-- every method but close raises closed: on a closed object.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local T = 3000
local scope = helper.scope(T)
after_each(scope.cleanup)
local go, track, tmp_path, listen, connect = scope.go, scope.track, scope.tmp_path, scope.listen, scope.connect
local err_of = helper.err_of
local port_just_closed = helper.free_port -- a port on 127.0.0.1 that nothing listens on any more

-- A connected pair: client c (main thread) and server side s (accepted by a task).
local function pair()
  local l = listen()
  local t = go(function() return l:accept() end)
  local c = connect(l.port)
  local s = track(t:join())
  s:set_timeout(T)
  return c, s, l
end

-- A well-formed error message: a plain one-line string, kind word first, no Rust/Lua noise.
local function assert_clean(kind, e)
  assert.is_string(e)
  assert.matches("^" .. kind .. ": ", e)
  assert.is_nil(e:find("\n", 1, true), "multi-line error: " .. e)
  for _, noise in ipairs({ "os error", "runtime error", "stack traceback", "Os {", "Error {", "panicked", "Kind(" }) do
    assert.is_nil(e:find(noise, 1, true), "noise '" .. noise .. "' in: " .. e)
  end
end

describe("error kinds reachable from Lua", function()
  it("timeout", function()
    local l = listen()
    l:set_timeout(50)
    assert_clean("timeout", err_of(l.accept, l))
  end)

  it("refused", function()
    assert_clean("refused", err_of(net.tcp.connect, "127.0.0.1", port_just_closed(), { timeout = T }))
  end)

  it("reset (write to a peer that went away)", function()
    local c, s = pair()
    s:close()
    local e
    for _ = 1, 200 do
      local ok, err = pcall(c.write, c, string.rep("r", 65536))
      if not ok then e = err break end
      net.sleep(0.005)
    end
    assert_clean("reset", e)
  end)

  it("closed (read_exact meeting EOF, use after close)", function()
    local c, s = pair()
    s:write("ab")
    s:close()
    assert_clean("closed", err_of(c.read_exact, c, 3))
    c:close()
    assert_clean("closed", err_of(c.write, c, "x"))
  end)

  it("dns", function()
    assert_clean("dns", err_of(net.resolve, "no-such-host.invalid"))
  end)

  it("tls (a peer that does not speak TLS)", function()
    local l = listen()
    go(function() local c = track(l:accept()); c:write("not tls\r\n\r\n"); c:close() end)
    assert_clean("tls", err_of(net.tcp.connect, "127.0.0.1", l.port, { tls = true, timeout = T }))
  end)

  it("addrinuse", function()
    local l = listen()
    assert_clean("addrinuse", err_of(net.tcp.listen, "127.0.0.1", l.port, { reuseaddr = false }))
    local u = track(net.udp.bind("127.0.0.1", 0))
    assert_clean("addrinuse", err_of(net.udp.bind, "127.0.0.1", u.port))
  end)

  it("protocol", function()
    assert_clean("protocol", err_of(net.json.decode, "{"))
    assert_clean("protocol", err_of(net.url.parse, "no scheme"))
  end)

  it("limit", function()
    local c, s = pair()
    s:write(string.rep("L", 1024 * 1024 + 1))
    assert_clean("limit", err_of(c.read_line, c))
  end)

  it("io (Unix socket path missing, TCP option on a Unix stream)", function()
    assert_clean("io", err_of(net.unix.connect, tmp_path()))
  end)

  it("cancelled (joining a cancelled task)", function()
    local t = go(function() net.sleep(5) end)
    net.sleep(0.01)
    assert.is_true(t:cancel())
    assert_clean("cancelled", err_of(t.join, t))
  end)

  it("a network error raised in a task reaches join unchanged", function()
    local port = port_just_closed()
    local t = go(function() return net.tcp.connect("127.0.0.1", port, { timeout = T }) end)
    local e = err_of(t.join, t)
    assert.equal("refused: connect to 127.0.0.1:" .. port .. " (connection refused)", e)
  end)

  it("bad arguments have no kind word and read like Lua's", function()
    local e = err_of(net.tcp.connect, "127.0.0.1", "x")
    assert.equal("bad argument #2 to 'net.tcp.connect' (integer expected, got string)", e)
  end)
end)

describe("object __tostring", function()
  it("stream, listener, udp socket: open and closed", function()
    local c, s, l = pair()
    assert.equal("tcp{" .. c:local_addr() .. " -> " .. c:peer_addr() .. "}", tostring(c))
    assert.equal("tcp{" .. s:local_addr() .. " -> " .. s:peer_addr() .. "}", tostring(s))
    assert.equal("listener{127.0.0.1:" .. l.port .. "}", tostring(l))
    c:close()
    l:close()
    assert.equal("tcp{closed}", tostring(c))
    assert.equal("listener{127.0.0.1:" .. l.port .. ", closed}", tostring(l))
    local u = track(net.udp.bind("127.0.0.1", 0))
    assert.equal("udp{127.0.0.1:" .. u.port .. "}", tostring(u))
    u:close()
    assert.equal("udp{127.0.0.1:" .. u.port .. ", closed}", tostring(u))
  end)
end)

describe("closing", function()
  it("closing twice is harmless for every object", function()
    local c, s, l = pair()
    local u = track(net.udp.bind("127.0.0.1", 0))
    local path = tmp_path()
    local ul = track(net.unix.listen(path))
    for _, o in ipairs({ c, s, l, u, ul }) do
      o:close()
      o:close()
    end
  end)

  it("closing one side gives the other EOF", function()
    local c, s = pair()
    c:write("last words")
    c:close()
    assert.equal("last words", s:read_all())
    assert.is_nil(s:read())
  end)

  it("every stream method but close raises closed: after close", function()
    local c = pair()
    c:close()
    local calls = {
      read = {}, read_line = {}, read_all = {}, read_exact = { 1 }, read_u32 = {},
      write = { "x" }, write_all = { "x" }, write_u32 = { 1 }, flush = {}, shutdown = {},
      set_nodelay = { true }, set_keepalive = { true }, set_ttl = { 5 },
      set_recvbuf = { 4096 }, set_sendbuf = { 4096 }, set_linger = { 0 }, socket_options = {},
      set_timeout = { 5 }, peer_addr = {}, local_addr = {},
    }
    local wrong = {}
    for name, args in pairs(calls) do
      local ok, e = pcall(c[name], c, (table.unpack or unpack)(args))
      if ok or not tostring(e):match("^closed: ") then wrong[#wrong + 1] = name .. " -> " .. tostring(e) end
    end
    table.sort(wrong)
    assert.same({}, wrong)
  end)

  it("reads after close raise closed: even when the stream had reached EOF", function()
    local c, s = pair()
    s:close()
    assert.is_nil(c:read())
    c:close()
    assert.matches("^closed: ", err_of(c.read, c))
    assert.matches("^closed: ", err_of(c.read_line, c))
  end)

  it("every listener method but close raises closed: after close", function()
    local l = listen()
    l:close()
    assert.matches("^closed: accept on a closed listener", err_of(l.accept, l))
    assert.matches("^closed: ", err_of(l.local_addr, l))
    assert.matches("^closed: ", err_of(l.set_timeout, l, 5))
  end)

  it("every udp method but close raises closed: after close", function()
    local u = track(net.udp.bind("127.0.0.1", 0))
    u:close()
    local calls = {
      send = { "x", "127.0.0.1", 9 }, recv = {}, send_connected = { "x" }, recv_connected = {},
      connect = { "127.0.0.1", 9 }, set_broadcast = { true }, set_ttl = { 3 },
      join_multicast = { "239.1.1.1" }, leave_multicast = { "239.1.1.1" },
      set_timeout = { 5 }, local_addr = {},
    }
    local wrong = {}
    for name, args in pairs(calls) do
      local ok, e = pcall(u[name], u, (table.unpack or unpack)(args))
      if ok or not tostring(e):match("^closed: ") then wrong[#wrong + 1] = name .. " -> " .. tostring(e) end
    end
    table.sort(wrong)
    assert.same({}, wrong)
  end)

  it("a stream that is garbage collected is closed (the peer sees EOF)", function()
    local l = listen()
    local t = go(function() local s = l:accept(); s:set_timeout(T); return s:read_all() end)
    do
      local c = net.tcp.connect("127.0.0.1", l.port, { timeout = T })
      c:write("bye")
    end
    collectgarbage()
    collectgarbage()
    assert.equal("bye", t:join())
  end)
end)

;(_VERSION == "Lua 5.4" and describe or pending)("__close (Lua 5.4 to-be-closed variables)", function()
  -- the <close> syntax is loaded at run time so LuaJIT can still parse this file
  local scoped = assert(load([[
    local make, fail = ...
    local keep
    local ok, err = pcall(function()
      local o <close> = make()
      keep = o
      if fail then error("boom", 0) end
    end)
    return keep, ok, err
  ]], "=scoped"))

  it("closes a stream, a listener and a udp socket at the end of the scope", function()
    local l = listen()
    local c = scoped(function() return net.tcp.connect("127.0.0.1", l.port, { timeout = T }) end)
    assert.equal("tcp{closed}", tostring(c))
    local l2 = scoped(function() return net.tcp.listen("127.0.0.1", 0) end)
    assert.matches(", closed}$", tostring(l2))
    local u = scoped(function() return net.udp.bind("127.0.0.1", 0) end)
    assert.matches(", closed}$", tostring(u))
  end)

  it("closes on an error too, and the error goes on", function()
    local l = listen()
    local c, ok, err = scoped(function() return net.tcp.connect("127.0.0.1", l.port, { timeout = T }) end, true)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.equal("tcp{closed}", tostring(c))
  end)

  it("a unix listener closed by <close> removes its file", function()
    local path = tmp_path()
    local l = scoped(function() return net.unix.listen(path) end)
    assert.matches(", closed}$", tostring(l))
    local f = io.open(path)
    if f then f:close() end
    assert.is_nil(f)
    local r = os.execute("test -e '" .. path .. "'")
    assert.is_false(r == true or r == 0)
  end)
end)
