-- The upgrade request a server-side WebSocket keeps (ws.path, ws.query, ws.headers), with net's own
-- client and Python's `websockets` client, and the max_connections bound of net.ws.listen /
-- net.tcp.listen (connections in a handshake or waiting for accept).
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local s = helper.scope(3000)
after_each(s.cleanup)

-- A server that hands its first connection's request fields to the test.
local function one_request()
  local server = s.track(net.ws.listen("127.0.0.1", 0))
  server:set_timeout(3000)
  local t = s.go(function()
    local conn = s.track(server:accept())
    local h = conn.headers
    conn:send("ok")
    return conn.path, conn.query, h
  end)
  return server, t
end

describe("ws.path, ws.query, ws.headers", function()
  it("come from net's own client, with its extra headers", function()
    local server, t = one_request()
    local ws = s.track(net.ws.connect("ws://127.0.0.1:" .. server.port .. "/chat/room%201?user=ann&x=1&x=2",
      { timeout = 3000, headers = { ["X-Token"] = "secret", ["X-Empty"] = "" } }))
    ws:set_timeout(3000)
    assert.equal("ok", ws:next())
    local path, query, h = t:join()
    assert.equal("/chat/room%201", path)
    assert.equal("user=ann&x=1&x=2", query)
    assert.same({ user = "ann", x = { "1", "2" } }, net.url.query(query))
    assert.equal("secret", h["x-token"])
    assert.equal("", h["x-empty"])
    assert.equal("websocket", h.upgrade)
    assert.equal("13", h["sec-websocket-version"])
    assert.equal("127.0.0.1:" .. server.port, h.host)
    assert.is_nil(h["X-Token"]) -- names are lower case
    -- A client-side connection has no request of its own.
    assert.is_nil(ws.path)
    assert.is_nil(ws.query)
    assert.is_nil(ws.headers)
  end)

  it("query is nil without '?', and the path is / for a bare host", function()
    local server, t = one_request()
    local ws = s.track(net.ws.connect("ws://127.0.0.1:" .. server.port, { timeout = 3000 }))
    ws:set_timeout(3000)
    assert.equal("ok", ws:next())
    local path, query = t:join()
    assert.equal("/", path)
    assert.is_nil(query)
  end)

  it("come from a Python websockets client; a repeated header is joined with ', '", function()
    local server, t = one_request()
    local p = helper.python([[
import asyncio, sys, websockets
async def main():
    hdrs = [("X-Dup", "a"), ("X-Dup", "b"), ("X-Caps", "Mixed Case")]
    try:
        c = websockets.connect("ws://127.0.0.1:%s/py/path?q=%%C3%%A9&flag" % sys.argv[1], additional_headers=hdrs)
    except TypeError:
        c = websockets.connect("ws://127.0.0.1:%s/py/path?q=%%C3%%A9&flag" % sys.argv[1], extra_headers=hdrs)
    async with c as ws:
        print(await ws.recv(), flush=True)
asyncio.run(main())
]], tostring(server.port))
    finally(function() p:kill() end)
    assert.equal("ok", p:wait_line())
    local path, query, h = t:join()
    assert.equal("/py/path", path)
    assert.equal("q=%C3%A9&flag", query)
    assert.same({ q = "é", flag = "" }, net.url.query(query))
    assert.equal("a, b", h["x-dup"])
    assert.equal("Mixed Case", h["x-caps"])
  end)
end)

describe("upgrade refusals", function()
  -- The answer net.ws.listen gives a raw request (read up to the end of its head).
  local function answer(request)
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    s.go(function() pcall(server.accept, server) end)
    local c = s.connect(server.port)
    c:write(request)
    local lines = {}
    repeat
      local line = c:read_line()
      lines[#lines + 1] = line
    until line == nil or line == ""
    return table.concat(lines, "\n")
  end
  local function request(version, key)
    return "GET / " .. version .. "\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      .. "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " .. key .. "\r\n\r\n"
  end

  it("answers 101 to a valid request", function()
    assert.matches("^HTTP/1%.1 101 ", answer(request("HTTP/1.1", "dGhlIHNhbXBsZSBub25jZQ==")))
  end)

  it("refuses a key that is not 16 bytes in base64, and HTTP/1.0, with 400", function()
    assert.matches("^HTTP/1%.1 400 ", answer(request("HTTP/1.1", "not-a-key")))
    assert.matches("^HTTP/1%.1 400 ", answer(request("HTTP/1.1", "dGhlIHNhbXBsZSBub25jZQ")))
    assert.matches("^HTTP/1%.1 400 ", answer(request("HTTP/1.0", "dGhlIHNhbXBsZSBub25jZQ==")))
  end)
end)

describe("max_connections", function()
  it("stops taking connections while that many are in a handshake, until one ends", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { max_connections = 1 }))
    s.go(function()
      while true do
        local ok, conn = pcall(server.accept, server)
        if not ok then return end
        s.track(conn)
        conn:send("hi")
      end
    end)
    -- A client that connects and never sends its upgrade request holds the one place.
    local stalled = s.connect(server.port)
    helper.wait_until(0.2, function() return false end)
    helper.raises("^timeout: ", net.ws.connect, "ws://127.0.0.1:" .. server.port .. "/", { timeout = 300 })
    stalled:close()
    local ws = s.track(net.ws.connect("ws://127.0.0.1:" .. server.port .. "/", { timeout = 3000 }))
    ws:set_timeout(3000)
    assert.equal("hi", ws:next())
  end)

  it("bounds TLS handshakes of net.tcp.listen the same way", function()
    local pem = helper.pki() -- the test PKI, made once per run
    local l = s.listen("127.0.0.1", 0, { max_connections = 1,
      tls = { cert = pem("server.pem"), key = pem("server.key") } })
    s.go(function()
      while true do
        local ok, c = pcall(l.accept, l)
        if not ok then return end
        s.track(c)
        c:write("hi\n")
      end
    end)
    local tls = { ca_file = pem("ca.pem") }
    local stalled = s.connect(l.port) -- plain TCP: never starts its TLS handshake
    helper.wait_until(0.2, function() return false end)
    helper.raises("^timeout: ", net.tcp.connect, "localhost", l.port, { tls = tls, timeout = 300 })
    stalled:close()
    local c = s.connect(l.port, "localhost", { tls = tls, timeout = 3000 })
    assert.equal("hi", c:read_line())
  end)

  it("is checked", function()
    helper.bad_argument(3, "listen", "max_connections", net.ws.listen, "127.0.0.1", 0, { max_connections = 0 })
    helper.bad_argument(3, "listen", "max_connections", net.tcp.listen, "127.0.0.1", 0, { max_connections = "x" })
  end)
end)
