-- WebSocket protocol details on 127.0.0.1: permessage-deflate (against net itself and Python's
-- `websockets`, with a byte-counting proxy to see that compression really happens), frames a
-- peer gets wrong (written by hand over net.tcp), fragmentation, and the server's upgrade.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local s = helper.scope(3000)
after_each(s.cleanup)

-- A TCP proxy to `port` that counts the bytes going each way.
local function counting_proxy(port)
  local l = s.track(net.tcp.listen("127.0.0.1", 0))
  local count = { up = 0, down = 0 }
  local function pipe(from, to, key)
    while true do
      local ok, d = pcall(from.read, from, 65536)
      if not ok or d == nil then pcall(to.shutdown, to, "write") return end
      count[key] = count[key] + #d
      to:write_all(d)
    end
  end
  s.go(function()
    local a = s.track(l:accept())
    local b = s.track(net.tcp.connect("127.0.0.1", port))
    s.go(pipe, a, b, "up")
    pipe(b, a, "down")
  end)
  return l.port, count
end

local echo_server, client = s.ws_echo, s.ws_connect

describe("permessage-deflate", function()
  it("is negotiated between net peers and shrinks what goes over the wire", function()
    local server = echo_server()
    local port, count = counting_proxy(server.port)
    local ws = client(port)
    assert.equal("permessage-deflate; server_no_context_takeover", ws.extensions)
    local big = string.rep("net compresses repetitive JSON well. ", 30000) -- ~1.1 MB
    ws:send(big)
    assert.equal(big, ws:next())
    for i = 1, 20 do -- many small messages with a kept context (client side)
      local m = '{"seq":' .. i .. ',"text":"hello hello hello hello hello hello"}'
      ws:send(m)
      assert.equal(m, ws:next())
    end
    ws:close()
    assert.is_true(count.up < #big / 20, "client -> server bytes: " .. count.up)
    assert.is_true(count.down < #big / 20, "server -> client bytes: " .. count.down)
  end)

  it("is off with compress = false on either side", function()
    local server = echo_server()
    local port, count = counting_proxy(server.port)
    local ws = client(port, { compress = false })
    assert.is_nil(ws.extensions)
    local big = string.rep("a", 100000)
    ws:send(big)
    assert.equal(big, ws:next())
    ws:close()
    assert.is_true(count.up > #big and count.down > #big)
    local plain = echo_server({ compress = false })
    assert.is_nil(client(plain.port).extensions)
  end)

  it("leaves incompressible and tiny messages intact", function()
    local server = echo_server()
    local ws = client(server.port)
    local noise = {}
    local x = 12345
    for i = 1, 5000 do
      x = (x * 1103515245 + 12345) % 2147483648
      noise[i] = string.char(x % 256)
    end
    noise = table.concat(noise)
    for _, m in ipairs({ noise, helper.ALL_BYTES, "", "x", noise }) do
      ws:send(m, "binary")
      assert.equal(m, ws:next())
    end
  end)

  it("works with a Python websockets server (window bits 12) both ways", function()
    local p, port = helper.python_ws_echo()
    finally(function() p:kill() end)
    local proxy, count = counting_proxy(port)
    local ws = client(proxy)
    assert.matches("^permessage%-deflate", ws.extensions)
    assert.matches("client_max_window_bits=12", ws.extensions)
    local big = string.rep("abcdefgh", 50000)
    for _ = 1, 3 do
      ws:send(big)
      assert.equal(big, ws:next())
      ws:send(helper.ALL_BYTES, "binary")
      assert.equal(helper.ALL_BYTES, ws:next())
    end
    ws:close()
    assert.is_true(count.up < #big and count.down < #big)
  end)

  it("serves a Python websockets client that compresses, and stops a decompression bomb with 1009", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { max_message_size = 100000 }))
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      local ext = conn.extensions
      local first = conn:next()
      conn:send(first)
      local ok, e = pcall(conn.recv, conn)
      return ext, #first, ok, e, conn.closeCode
    end)
    local p = helper.python([[
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/" % sys.argv[1], max_size=None) as ws:
        await ws.send("z" * 90000)
        print(len(await ws.recv()), flush=True)
        await ws.send(b"\0" * 10_000_000)  # ~10 kB on the wire
        try:
            await asyncio.wait_for(ws.recv(), 3)
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code if e.rcvd else None, flush=True)
asyncio.run(main())
]], tostring(server.port))
    finally(function() p:kill() end)
    assert.equal("90000", p:wait_line())
    local ext, n, ok, e, code = t:join()
    assert.matches("^permessage%-deflate", ext)
    assert.equal(90000, n)
    assert.is_false(ok)
    assert.matches("^limit: .*max_message_size", e)
    assert.equal(1009, code)
    p:wait(5)
    assert.same({ "90000", "closed 1009" }, p:lines())
  end)
end)

-- Frames written by hand: b0 is FIN/RSV/opcode; client frames carry the mask bit and key 0.
local function frame(b0, payload, masked)
  local len = #payload
  local m = masked == false and 0 or 128
  local head
  if len < 126 then
    head = string.char(b0, m + len)
  else
    head = string.char(b0, m + 126, math.floor(len / 256), len % 256)
  end
  return head .. (m == 128 and "\0\0\0\0" or "") .. payload
end

-- A raw TCP client that has done the upgrade by hand; returns it and the status line.
local function raw_client(port, request)
  local c = s.track(net.tcp.connect("127.0.0.1", port))
  c:set_timeout(3000)
  c:write_all(request or ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
  local status = c:read_line()
  local headers = {}
  while true do
    local l = c:read_line()
    if l == nil or l == "" then break end
    headers[#headers + 1] = l
  end
  return c, status, headers
end

-- The next frame from the server: opcode byte, payload.
local function read_frame(c)
  local h = c:read_exact(2)
  local len = h:byte(2) % 128
  if len == 126 then
    local e = c:read_exact(2)
    len = e:byte(1) * 256 + e:byte(2)
  end
  return h:byte(1), len > 0 and c:read_exact(len) or ""
end

local function close_code(payload)
  return payload:byte(1) * 256 + payload:byte(2)
end

describe("the WebSocket server", function()
  -- A server whose accepted connection reports what its first recv gave.
  local function one_conn()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { compress = false }))
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      local got = {}
      while true do
        local ok, m = pcall(conn.recv, conn)
        if not ok then
          got[#got + 1] = m
          return got, conn.closeCode
        end
        if m == nil then return got, conn.closeCode end
        got[#got + 1] = m.type .. ":" .. (m.data or "")
      end
    end)
    return server, t
  end

  it("answers the upgrade with the accept key RFC 6455 gives", function()
    local server = one_conn()
    local c, status, headers = raw_client(server.port)
    assert.equal("HTTP/1.1 101 Switching Protocols", status)
    local h = table.concat(headers, "\n")
    assert.matches("Sec%-WebSocket%-Accept: s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=", h)
    c:write_all(frame(0x88, "\3\232"))
  end)

  it("puts fragments together and answers a ping between them", function()
    local server, t = one_conn()
    local c = raw_client(server.port)
    c:write_all(frame(0x01, "Hel") .. frame(0x89, "mid") .. frame(0x80, "lo") .. frame(0x88, "\3\232"))
    local op, payload = read_frame(c)
    assert.equal(0x8A, op) -- pong
    assert.equal("mid", payload)
    op, payload = read_frame(c)
    assert.equal(0x88, op)
    assert.equal(1000, close_code(payload))
    assert.is_nil(c:read()) -- the server ends the TCP connection after the close handshake
    local got, code = t:join()
    assert.same({ "ping:mid", "text:Hello", "close:" }, got)
    assert.equal(1000, code)
  end)

  for _, case in ipairs({
    { "an unmasked frame", frame(0x81, "hi", false) },
    { "RSV1 without permessage-deflate", frame(0xC1, "hi") },
    { "a reserved opcode", frame(0x83, "hi") },
    { "a fragmented ping", frame(0x09, "hi") },
    { "a continuation without a message", frame(0x80, "hi") },
    { "a new message inside a fragmented one", frame(0x01, "a") .. frame(0x81, "b") },
    { "a close code that is not allowed", frame(0x88, "\3\237") }, -- 1005
  }) do
    it("closes with 1002 on " .. case[1], function()
      local server, t = one_conn()
      local c = raw_client(server.port)
      c:write_all(case[2])
      local op, payload = read_frame(c)
      assert.equal(0x88, op)
      assert.equal(1002, close_code(payload))
      local got, code = t:join()
      assert.matches("^protocol: ", got[#got])
      assert.equal(1002, code)
    end)
  end

  it("closes with 1009 on a frame over max_message_size before reading it", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { max_message_size = 10 }))
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(3000)
      return pcall(conn.recv, conn)
    end)
    local c = raw_client(server.port)
    c:write_all(frame(0x82, string.rep("x", 11)))
    local op, payload = read_frame(c)
    assert.equal(0x88, op)
    assert.equal(1009, close_code(payload))
    local ok, e = t:join()
    assert.is_false(ok)
    assert.matches("^limit: ", e)
  end)

  it("refuses requests that are not upgrades, with an HTTP status", function()
    local server = one_conn()
    local _, status = raw_client(server.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal("HTTP/1.1 400 Bad Request", status)
    _, status = raw_client(server.port, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
    assert.equal("HTTP/1.1 426 Upgrade Required", status)
    _, status = raw_client(server.port, "POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal("HTTP/1.1 405 Method Not Allowed", status)
  end)

  it("is not held up by a client that never finishes its upgrade", function()
    local server = echo_server()
    local silent = s.track(net.tcp.connect("127.0.0.1", server.port))
    silent:write("GET / HTTP/1.1\r\n") -- and nothing more
    local t0 = net.now()
    local ws = client(server.port)
    ws:send("next one")
    assert.equal("next one", ws:next())
    assert.is_true(net.now() - t0 < 1)
  end)

  it("answers a ping on the main thread while its send queue is stuck, and catches up later", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0, { compress = false }))
    local go = net.channel()
    local t = s.go(function()
      local conn = s.track(server:accept())
      conn:set_timeout(5000)
      conn:ping("are you there")
      go:receive() -- read nothing until the client's send has timed out
      local big = conn:recv()
      local pong = conn:recv()
      conn:send("done")
      return #big.data, pong.type, pong.data
    end)
    local ws = client(server.port, { compress = false })
    ws:set_timeout(300)
    local big = string.rep("x", 8 * 1024 * 1024)
    helper.raises("^timeout: ", ws.send, ws, big, "binary") -- the socket is full; the rest stays queued
    ws:set_timeout(5000)
    assert.same({ type = "ping", data = "are you there" }, ws:recv()) -- its pong queues behind
    go:send(true)
    assert.same({ type = "text", data = "done" }, ws:recv()) -- waiting wrote the queue out
    local n, kind, data = t:join()
    assert.equal(#big, n)
    assert.equal("pong", kind)
    assert.equal("are you there", data)
  end)

  it("wakes a task that waits without a timeout (parked on the socket) for every kind of frame", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    local got, code = {}, nil
    s.go(function()
      local conn = s.track(server:accept()) -- no set_timeout: recv parks on the socket's readiness
      while true do
        local m = conn:recv()
        if m == nil then code = conn.closeCode return end
        got[#got + 1] = m.type .. ":" .. #(m.data or "")
      end
    end)
    local ws = client(server.port)
    ws:send("one")
    helper.wait_until(3, function() return #got == 1 end)
    ws:ping("p")
    ws:send(string.rep("z", 300000)) -- many reads, each a wake-up
    ws:close(4000, "bye")
    while ws:recv() do end
    helper.wait_until(3, function() return code ~= nil end)
    assert.same({ "text:3", "ping:1", "text:300000", "close:3" }, got)
    assert.equal(4000, code)
  end)

  it("closes its sockets when connections end, not when the collector gets to them", function()
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("*l"):match("^(%d+)")
    f:close()
    local function fds()
      local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
      local n = tonumber(p:read("*l"))
      p:close()
      return n
    end
    local server = echo_server()
    local p, dropper = helper.python_ws_dropper()
    finally(function() p:kill() end)
    local keep = {} -- every websocket stays referenced: only their own ending may close the sockets
    collectgarbage("stop")
    local ok, e = pcall(function()
      local before = fds()
      for i = 1, 20 do
        local ws = client(server.port) -- closed by us: the close handshake
        keep[#keep + 1] = ws
        ws:send("x")
        assert.equal("x", ws:next())
        ws:close()
        assert.equal("close", ws:recv().type)
        assert.is_nil(ws:recv())
        local gone = client(dropper) -- the peer drops the connection without a close frame
        keep[#keep + 1] = gone
        gone:send("bye")
        gone:set_timeout(3000)
        assert.equal(1006, (function() while gone:recv() do end return gone.closeCode end)())
      end
      helper.wait_until(3, function() return fds() <= before + 3 end)
      assert.is_true(fds() <= before + 3, ("%d sockets before, %d after"):format(before, fds()))
    end)
    collectgarbage("restart")
    assert(ok, e)
  end)

  it("raises closed: for set_timeout and local_addr after close", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    server:close()
    helper.raises("^closed: ", server.set_timeout, server, 100)
    helper.raises("^closed: ", server.local_addr, server)
    helper.raises("^closed: ", server.accept, server)
    server:close() -- harmless twice
  end)
end)
