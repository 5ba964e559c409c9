-- WebSocket core: net.ws.connect / net.socket and net.ws.listen, against net itself and Python's
-- `websockets` (server and client) on 127.0.0.1.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local s = helper.scope(3000)
after_each(s.cleanup)

local echo_server, client = s.ws_echo, s.ws_connect

describe("net.ws with net on both ends", function()
  it("echoes text and binary (all 256 byte values) and reports types", function()
    local server = echo_server()
    local ws = client(server.port)
    assert.matches("^ws{127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:%d+}$", tostring(ws))
    ws:send("héllo")
    local m = ws:recv()
    assert.same({ type = "text", data = "héllo" }, m)
    ws:send(helper.ALL_BYTES, "binary")
    assert.same({ type = "binary", data = helper.ALL_BYTES }, ws:recv())
    ws:send("x", true) -- Lune's boolean form
    assert.equal("binary", ws:recv().type)
  end)

  it("net.socket is net.ws.connect, and next() returns data only", function()
    local server = echo_server()
    local ws = s.track(net.socket("ws://127.0.0.1:" .. server.port .. "/"))
    ws:set_timeout(3000)
    ws:ping("p")
    ws:send("data")
    assert.equal("data", ws:next()) -- the pong came first and was skipped
  end)

  it("answers pings and returns pongs as messages", function()
    local server = echo_server()
    local ws = client(server.port)
    ws:ping("heartbeat")
    assert.same({ type = "pong", data = "heartbeat" }, ws:recv())
  end)

  it("sends ping and pong frames with send(data, type), so an echo loop can echo every message", function()
    -- seed 000's echo server: `conn:send(msg.data, msg.type)` for whatever recv returns
    local listener = s.track(net.ws.listen("127.0.0.1", 0))
    s.go(function()
      local conn = listener:accept()
      while true do
        local msg = conn:recv()
        if msg == nil or msg.type == "close" then break end
        conn:send(msg.data, msg.type)
      end
    end)
    local ws = client(listener.port)
    ws:send("pong", "pong") -- unsolicited: the server reads it and sends it back
    assert.same({ type = "pong", data = "pong" }, ws:recv())
    ws:send("hb", "ping") -- answered by the server's core; its recv sees the ping and echoes it
    assert.same({ type = "pong", data = "hb" }, ws:recv())
    assert.same({ type = "ping", data = "hb" }, ws:recv()) -- (our core answers it)
    ws:send("still text")
    assert.same({ type = "pong", data = "hb" }, ws:recv()) -- the server read our answer, echoed it
    assert.same({ type = "text", data = "still text" }, ws:recv())
    helper.bad_argument(2, "send", "at most 125 bytes", ws.send, ws, ("x"):rep(126), "ping")
    helper.bad_argument(3, "send", '"ping", "pong" or a boolean expected', ws.send, ws, "x", "close")
  end)

  it("negotiates a subprotocol", function()
    local server = echo_server({ protocols = { "chat", "json" } })
    local ws = client(server.port, { protocols = { "x", "json" } })
    assert.equal("json", ws.subprotocol)
    assert.is_nil(client(server.port).subprotocol)
  end)

  it("closes with a code: closeCode, the peer's view, draining recv to nil", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    local seen
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      seen = conn:recv()
      return conn.closeCode
    end)
    local ws = client(server.port)
    assert.is_nil(ws.closeCode)
    ws:close(4001, "done")
    ws:close() -- harmless
    assert.equal(4001, ws.closeCode)
    local reply = ws:recv()
    assert.equal("close", reply.type)
    assert.is_nil(ws:recv())
    assert.equal(4001, t:join())
    assert.same({ type = "close", code = 4001, reason = "done", data = "done" }, seen)
    helper.raises("^closed: send on a closed websocket", ws.send, ws, "late")
  end)

  it("reports 1006 when the connection drops without a close frame", function()
    local p, port = helper.python_ws_dropper()
    finally(function() p:kill() end)
    local ws = client(port)
    assert.is_nil(ws:recv())
    assert.equal(1006, ws.closeCode)
    assert.is_nil(ws:recv()) -- and stays over
    helper.raises("^closed: ", ws.send, ws, "late")
  end)

  it("closes with 1009 when a message exceeds max_message_size", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { max_message_size = 1000 }))
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      local ok, e = pcall(conn.recv, conn)
      return ok, e, conn.closeCode
    end)
    local ws = client(server.port)
    ws:send(string.rep("x", 2000))
    local ok, e, code = t:join()
    assert.is_false(ok)
    assert.matches("^limit: ", e)
    assert.equal(1009, code)
    local m = ws:recv()
    assert.equal("close", m.type)
    assert.equal(1009, m.code)
  end)

  it("refuses text that is not UTF-8, and close codes outside 1000-4999", function()
    local server = echo_server()
    local ws = client(server.port)
    helper.bad_argument(2, "send", "not valid UTF%-8", ws.send, ws, "\255")
    helper.bad_argument(2, "close", "out of range", ws.close, ws, 999)
    helper.bad_argument(2, "close", "out of range", ws.close, ws, 5000)
  end)

  it("raises with the HTTP status when the upgrade is refused", function()
    local l = s.listen("127.0.0.1", 0)
    s.go(function()
      local c = s.track(l:accept())
      c:set_timeout(3000)
      repeat local line = c:read_line() until line == ""
      c:write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    end)
    helper.raises("^protocol: websocket upgrade to ws://127%.0%.0%.1:%d+/ refused %(HTTP 404%)",
      net.ws.connect, "ws://127.0.0.1:" .. l.port .. "/", { timeout = 3000 })
  end)

  it("lets one task receive while another sends on the same socket", function()
    local server = echo_server()
    local ws = client(server.port)
    local got = {}
    local reader = s.go(function()
      for i = 1, 50 do got[i] = ws:next() end
    end)
    local writer = s.go(function()
      for i = 1, 50 do ws:send("m" .. i) end
    end)
    writer:join()
    reader:join()
    assert.equal("m1", got[1])
    assert.equal("m50", got[50])
  end)

  it("serves 1000 concurrent clients in one process", function()
    local server = echo_server()
    local done, tasks = 0, {}
    for i = 1, 1000 do
      tasks[i] = s.go(function()
        local ws = net.ws.connect("ws://127.0.0.1:" .. server.port .. "/", { timeout = 10000 })
        ws:set_timeout(10000)
        ws:send("c" .. i)
        assert(ws:next() == "c" .. i)
        ws:close()
        done = done + 1
      end)
    end
    helper.wait_until(30, function() return done == 1000 end, 0.01)
    assert.equal(1000, done)
  end)
end)

describe("net.ws with Python websockets", function()
  it("connects to a Python websockets server", function()
    local p, port = helper.python_ws_echo()
    finally(function() p:kill() end)
    local ws = client(port)
    ws:send("to python")
    assert.equal("to python", ws:next())
    ws:send(helper.ALL_BYTES, "binary")
    assert.equal(helper.ALL_BYTES, ws:next())
    ws:close()
    assert.equal(1000, ws.closeCode)
  end)

  it("serves a Python websockets client, and closes 1007 on invalid UTF-8", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      local first = conn:next()
      conn:send("got " .. first)
      local ok, e = pcall(conn.recv, conn) -- the next frame is text with bad UTF-8
      return first, ok, e, conn.closeCode
    end)
    local p = helper.python([[
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/" % sys.argv[1]) as ws:
        await ws.send("from python")
        print(await ws.recv(), flush=True)
        # a masked text frame whose payload is not UTF-8, written past the library's checks
        ws.transport.write(b"\x81\x82\x00\x00\x00\x00\xff\xfe")
        try:
            await asyncio.wait_for(ws.recv(), 3)
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code if e.rcvd else None, flush=True)
asyncio.run(main())
]], tostring(server.port))
    finally(function() p:kill() end)
    assert.equal("got from python", p:wait_line())
    local first, ok, e, code = t:join()
    assert.equal("from python", first)
    assert.is_false(ok)
    assert.matches("^protocol: .*UTF%-8", e)
    assert.equal(1007, code)
  end)
end)

describe("wss://", function()
  it("connects over verified TLS", function()
    local pem = helper.pki() -- the test PKI, made once per run
    local server = echo_server({ tls = { cert = pem("server.pem"), key = pem("server.key") } })
    local ws = s.track(net.ws.connect("wss://localhost:" .. server.port .. "/", { tls = { ca_file = pem("ca.pem") }, timeout = 3000 }))
    ws:set_timeout(3000)
    ws:send("secure")
    assert.equal("secure", ws:next())
    helper.raises("^tls: certificate verify failed", net.ws.connect, "wss://localhost:" .. server.port .. "/", { timeout = 3000 })
  end)
end)
