-- net.tcp: connect, listen, streams and their options, on 127.0.0.1 (and ::1 when available).
-- Servers run as net tasks; the test body mostly makes blocking calls on the main thread, which
-- run those tasks while they wait (no net.run). Every socket has a timeout so nothing can hang.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)
local unpack = helper.unpack

local T = 3000 -- ms: the default timeout of every socket in this file

-- Tasks and objects made by a test; after_each cancels / closes whatever is left.
-- listen(host, port, opts) and connect(port, host, opts) give tracked sockets with timeout T.
local scope = helper.scope(T)
after_each(scope.cleanup)
local go, track, listen, connect = scope.go, scope.track, scope.listen, scope.connect
local err_of, ALL_BYTES = helper.err_of, helper.ALL_BYTES
local port_just_closed = helper.free_port -- a port on 127.0.0.1 that nothing listens on any more

-- A listener whose task accepts one connection and returns handler(stream)'s results.
local function serve_one(handler, host)
  local l = listen(host)
  local t = go(function()
    local s = track(l:accept())
    s:set_timeout(T)
    local r = { handler(s) }
    s:close()
    return unpack(r)
  end)
  return l, t
end

-- A listener echoing every connection in its own task, until cancelled.
local function echo_server(opts)
  local l = track(net.tcp.listen("127.0.0.1", 0, opts))
  go(function()
    while true do
      local s = l:accept()
      go(function()
        pcall(function()
          while true do
            local d = s:read(65536)
            if not d then break end
            s:write(d)
          end
        end)
        s:close()
      end)
    end
  end)
  return l
end

describe("net.tcp listener", function()
  it("has ip, port, local_addr and __tostring", function()
    local l = listen()
    assert.equal("127.0.0.1", l.ip)
    assert.is_true(math.type == nil or math.type(l.port) == "integer")
    assert.is_true(l.port > 0 and l.port < 65536)
    assert.equal("127.0.0.1:" .. l.port, l:local_addr())
    assert.equal("listener{127.0.0.1:" .. l.port .. "}", tostring(l))
  end)

  it("listen(port) listens on 0.0.0.0, reachable through 127.0.0.1", function()
    local l = track(net.tcp.listen(0))
    assert.equal("0.0.0.0", l.ip)
    local t = go(function() local s = l:accept(); s:write("hi"); s:close() end)
    l:set_timeout(T)
    local c = connect(l.port)
    assert.equal("hi", c:read_all())
    t:join()
  end)

  it("listen('localhost', 0) binds the loopback", function()
    local l = listen("localhost")
    assert.equal("127.0.0.1", l.ip)
  end)

  it("accept times out with timeout: ... after 100 ms", function()
    local l = listen()
    l:set_timeout(100)
    local t0 = net.now()
    local e = err_of(l.accept, l)
    local dt = net.now() - t0
    assert.equal("timeout: accept on 127.0.0.1:" .. l.port .. " timed out after 100 ms", e)
    assert.is_true(dt >= 0.09 and dt < 1, "took " .. dt .. " s")
  end)

  it("accepts a duration string as timeout", function()
    local l = listen()
    l:set_timeout("50ms")
    assert.matches("^timeout: accept on .* after 50 ms$", err_of(l.accept, l))
  end)

  it("a busy port with reuseaddr=false raises addrinuse", function()
    local l = listen()
    local e = err_of(net.tcp.listen, "127.0.0.1", l.port, { reuseaddr = false })
    assert.matches("^addrinuse: ", e)
    assert.matches("127%.0%.0%.1:" .. l.port, e)
  end)

  it("backlog and reuseport options are accepted", function()
    local l = listen("127.0.0.1", 0, { backlog = 16, reuseport = true })
    assert.is_true(l.port > 0)
  end)
end)

describe("net.tcp.connect", function()
  it("gives a stream with addresses, Lune fields and __tostring", function()
    local l, t = serve_one(function(s)
      return s:peer_addr(), s:local_addr(), s.remotePort, tostring(s)
    end)
    local c = connect(l.port)
    assert.equal("127.0.0.1:" .. l.port, c:peer_addr())
    assert.equal("127.0.0.1", c.remoteIp)
    assert.equal(l.port, c.remotePort)
    assert.equal("127.0.0.1", c.localIp)
    assert.equal("127.0.0.1:" .. c.localPort, c:local_addr())
    assert.equal("tcp{127.0.0.1:" .. c.localPort .. " -> 127.0.0.1:" .. l.port .. "}", tostring(c))
    local peer, loc, rport, str = t:join()
    assert.equal(c:local_addr(), peer)
    assert.equal(c:peer_addr(), loc)
    assert.equal(c.localPort, rport)
    assert.equal("tcp{127.0.0.1:" .. l.port .. " -> 127.0.0.1:" .. c.localPort .. "}", str)
  end)

  it("connects by the name localhost", function()
    local l, t = serve_one(function(s) return s:read_line() end)
    local c = connect(l.port, "localhost")
    c:write("named\n")
    assert.equal("named", t:join())
  end)

  it("takes nodelay, keepalive, ttl and bind options", function()
    local l, t = serve_one(function(s) return s.remotePort, s:read_all() end)
    local probe = net.tcp.listen("127.0.0.1", 0) -- find a free local port for bind
    local bport = probe.port
    probe:close()
    local c = connect(l.port, "127.0.0.1",
      { timeout = "2s", nodelay = false, keepalive = true, ttl = 32, bind = "127.0.0.1:" .. bport })
    assert.equal(bport, c.localPort)
    c:write("opts")
    c:shutdown("write")
    local rport, data = t:join()
    assert.equal(bport, rport)
    assert.equal("opts", data)
  end)

  it("refused on a port that was just closed", function()
    local port = port_just_closed()
    local e = err_of(net.tcp.connect, "127.0.0.1", port, { timeout = T })
    assert.matches("^refused: ", e)
    assert.equal("refused: connect to 127.0.0.1:" .. port .. " (connection refused)", e)
  end)

  it("times out on a listener whose accept queue is full", function()
    local l = listen("127.0.0.1", 0, { backlog = 1 })
    -- fill the queue (nobody accepts), then a connect's SYN is dropped until the timeout
    local e
    for _ = 1, 8 do
      local ok, c = pcall(net.tcp.connect, "127.0.0.1", l.port, { timeout = 200 })
      if not ok then e = c break end
      track(c)
    end
    assert.equal("timeout: connect to 127.0.0.1:" .. l.port .. " timed out after 200 ms", e)
    -- the same through connect_timeout and a duration string
    assert.matches("^timeout: connect to .* after 150 ms$", err_of(net.tcp.connect_timeout, "127.0.0.1", l.port, "150ms"))
  end)

  it("bounds a connect to a non-routable address (10.255.255.1) by its timeout", function()
    local t0 = net.now()
    local ok, e = pcall(net.tcp.connect, "10.255.255.1", 9, { timeout = 100 })
    local dt = net.now() - t0
    if ok then
      e:close() -- some sandboxes answer every address; only the bound can be checked then
    else
      assert.is_truthy(e:match("^timeout: ") or e:match("^unreachable: ") or e:match("^refused: "), e)
    end
    assert.is_true(dt < 1.5, "took " .. dt .. " s")
  end)

  it("connect_timeout connects when the server is there", function()
    local l, t = serve_one(function(s) s:write("ok") end)
    local c = track(net.tcp.connect_timeout("127.0.0.1", l.port, 1000))
    c:set_timeout(T)
    assert.equal("ok", c:read_all())
    t:join()
  end)

  it("is_port_open tells open from closed", function()
    local l = listen()
    assert.is_true(net.is_port_open("127.0.0.1", l.port))
    assert.is_true(net.is_port_open("127.0.0.1", l.port, 500))
    assert.is_false(net.is_port_open("127.0.0.1", port_just_closed(), 500))
  end)

  it("TLS to a server that does not speak it fails with tls: (both forms of the option)", function()
    for _, opts in ipairs({ true, { tls = true, timeout = T } }) do
      local l = serve_one(function(s) s:write("HTTP/1.0 400 Bad Request\r\n\r\n"); s:close() end)
      assert.matches("^tls: handshake with 127%.0%.0%.1:%d+ failed", err_of(net.tcp.connect, "127.0.0.1", l.port, opts))
    end
  end)
end)

describe("tcp stream reads", function()
  it("read(n) returns at most n bytes, read() up to 4096, nil at EOF", function()
    local l, t = serve_one(function(s) s:write(string.rep("a", 10000)) end)
    local c = connect(l.port)
    t:join()
    assert.equal("aaa", c:read(3))
    local got = 3
    while true do
      local d = c:read()
      if not d then break end
      assert.is_true(#d <= 4096, "read() gave " .. #d)
      got = got + #d
    end
    assert.equal(10000, got)
    assert.is_nil(c:read())
  end)

  it("read_line strips \\n and \\r\\n, keeps a lone \\r, returns the last line then nil", function()
    local l, t = serve_one(function(s) s:write("one\ntwo\r\n\nmid\rdle\r\nlast") end)
    local c = connect(l.port)
    t:join()
    assert.equal("one", c:read_line())
    assert.equal("two", c:read_line())
    assert.equal("", c:read_line())
    assert.equal("mid\rdle", c:read_line())
    assert.equal("last", c:read_line())
    assert.is_nil(c:read_line())
    assert.is_nil(c:read_line())
  end)

  it("read_line keeps the bytes after the newline for the next read", function()
    local l, t = serve_one(function(s) s:write("HEAD\r\nbody-bytes") end)
    local c = connect(l.port)
    t:join()
    assert.equal("HEAD", c:read_line())
    assert.equal("body", c:read_exact(4))
    assert.equal("-bytes", c:read())
    assert.is_nil(c:read())
  end)

  it("read_line assembles a line sent in pieces", function()
    local l, t = serve_one(function(s)
      for _, p in ipairs({ "he", "ll", "o\r", "\nworld\n" }) do s:write(p); net.sleep(0.02) end
    end)
    local c = connect(l.port)
    assert.equal("hello", c:read_line())
    assert.equal("world", c:read_line())
    t:join()
  end)

  it("a line longer than 1 MiB raises limit: and its bytes stay readable", function()
    local size = 1024 * 1024 + 100
    local l, t = serve_one(function(s) s:write(string.rep("x", size)) end)
    local c = connect(l.port)
    local e = err_of(c.read_line, c)
    assert.matches("^limit: ", e)
    assert.matches("1048576", e)
    local rest = c:read_all()
    assert.equal(size, #rest)
    assert.equal(string.rep("x", size), rest)
    t:join()
  end)

  it("read_exact waits for exactly n bytes; read_exact(0) is empty", function()
    local l, t = serve_one(function(s) for i = 1, 5 do s:write(tostring(i)); net.sleep(0.01) end end)
    local c = connect(l.port)
    assert.equal("", c:read_exact(0))
    assert.equal("1234", c:read_exact(4))
    assert.equal("5", c:read_exact(1))
    t:join()
  end)

  it("read_exact meeting EOF raises closed: and the partial bytes stay readable", function()
    local l, t = serve_one(function(s) s:write("abc") end)
    local c = connect(l.port)
    t:join()
    local e = err_of(c.read_exact, c, 5)
    assert.matches("^closed: ", e)
    assert.equal("closed: read_exact from 127.0.0.1:" .. l.port .. ": connection closed after 3 of 5 bytes", e)
    assert.equal("abc", c:read())
    assert.is_nil(c:read())
  end)

  it("read_u32 / write_u32 frame messages (big-endian), nil at clean EOF", function()
    local l, t = serve_one(function(s)
      for _, m in ipairs({ "", "x", string.rep("y", 70000), ALL_BYTES }) do
        s:write_u32(#m)
        s:write(m)
      end
      s:write_u32(0xFFFFFFFF)
      s:write("\0\0\1\2") -- raw big-endian 258
    end)
    local c = connect(l.port)
    for _, m in ipairs({ "", "x", string.rep("y", 70000), ALL_BYTES }) do
      local n = c:read_u32()
      assert.equal(#m, n)
      assert.equal(m, c:read_exact(n))
    end
    assert.equal(4294967295, c:read_u32())
    local v = c:read_u32()
    assert.equal(258, v)
    if math.type then assert.equal("integer", math.type(v)) end
    assert.is_nil(c:read_u32())
    t:join()
  end)

  it("write_u32 sends 4 big-endian bytes", function()
    local l, t = serve_one(function(s) return s:read_all() end)
    local c = connect(l.port)
    c:write_u32(0x01020304)
    c:write_u32(0)
    c:close()
    assert.equal("\1\2\3\4\0\0\0\0", t:join())
  end)

  it("read_u32 on a torn value raises closed:", function()
    local l, t = serve_one(function(s) s:write("\0\1") end)
    local c = connect(l.port)
    t:join()
    assert.matches("^closed: .*2 of 4 bytes", err_of(c.read_u32, c))
  end)

  it("read_all returns everything until EOF, and \"\" when nothing came", function()
    local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
    local l, t = serve_one(function(s) s:write(big) end)
    local c = connect(l.port)
    assert.equal(big, c:read_all())
    t:join()
    local l2, t2 = serve_one(function() end)
    local c2 = connect(l2.port)
    t2:join()
    assert.equal("", c2:read_all())
  end)
end)

describe("tcp stream writes", function()
  it("write and write_all return the byte count, flush returns true", function()
    local l, t = serve_one(function(s) return s:read_all() end)
    local c = connect(l.port)
    assert.equal(5, c:write("hello"))
    assert.equal(0, c:write(""))
    local big = string.rep("z", 3 * 1024 * 1024)
    assert.equal(#big, c:write_all(big))
    assert.is_true(c:flush())
    c:shutdown("write")
    assert.equal("hello" .. big, t:join())
  end)

  it("all 256 byte values round-trip exactly through an echo", function()
    local l = echo_server()
    local c = connect(l.port)
    local data = ALL_BYTES .. ALL_BYTES:reverse() .. ("\0"):rep(100) .. ALL_BYTES
    assert.equal(#data, c:write(data))
    assert.equal(data, c:read_exact(#data))
    c:shutdown("write")
    assert.is_nil(c:read())
  end)

  it("a write to a peer that does not read times out with timeout: write to", function()
    local l, t = serve_one(function() net.sleep(2) end)
    local c = connect(l.port)
    c:set_timeout(200)
    local t0 = net.now()
    local e = err_of(c.write, c, string.rep("w", 64 * 1024 * 1024))
    assert.equal("timeout: write to 127.0.0.1:" .. l.port .. " timed out after 200 ms", e)
    assert.is_true(net.now() - t0 < 3)
  end)
end)

describe("tcp timeouts", function()
  it("read raises timeout: read from 127.0.0.1:PORT timed out after 100 ms", function()
    local l, t = serve_one(function(s) s:read() end)
    local c = connect(l.port)
    c:set_timeout(100)
    local t0 = net.now()
    local e = err_of(c.read, c)
    local dt = net.now() - t0
    assert.equal("timeout: read from 127.0.0.1:" .. l.port .. " timed out after 100 ms", e)
    assert.is_true(dt >= 0.09 and dt < 1, "took " .. dt)
    for _, m in ipairs({ "read_line", "read_all", "read_u32" }) do
      assert.matches("^timeout: read from .* after 100 ms$", err_of(c[m], c))
    end
    assert.matches("^timeout: .* after 100 ms$", err_of(c.read_exact, c, 1))
    -- the stream is still usable after a timeout
    c:write("wake")
    assert.is_nil(c:read())
    t:join()
  end)

  it("set_timeout(nil) removes the timeout; strings are durations", function()
    local l, t = serve_one(function(s) net.sleep(0.3); s:write("late") end)
    local c = connect(l.port)
    c:set_timeout("100ms")
    assert.matches("after 100 ms$", err_of(c.read, c))
    c:set_timeout(nil)
    assert.equal("late", c:read()) -- would have timed out at 100 ms
    t:join()
  end)
end)

describe("tcp half-close and shutdown", function()
  it("shutdown('write'): the peer sees EOF but can still send back", function()
    local l, t = serve_one(function(s)
      local req = s:read_all() -- ends at the client's FIN
      s:write("got " .. #req .. " bytes")
      return req
    end)
    local c = connect(l.port)
    c:write("request body")
    c:shutdown("write")
    assert.equal("got 12 bytes", c:read_all())
    assert.equal("request body", t:join())
    local e = err_of(c.write, c, "more") -- writing after our own shutdown fails cleanly
    assert.is_truthy(e:match("^reset: ") or e:match("^closed: "), e)
  end)

  it("shutdown() / 'both' / 'read' are accepted, anything else is a bad argument", function()
    local l = echo_server()
    local a, b = connect(l.port), connect(l.port)
    a:shutdown("read")
    b:shutdown()
    assert.matches("^bad argument #2 to '[%w_.:]*shutdown' %(", err_of(a.shutdown, a, "up"))
  end)

  it("options can be changed on an open stream", function()
    local l = echo_server()
    local c = connect(l.port)
    c:set_nodelay(false)
    c:set_nodelay(true)
    c:set_keepalive(true)
    c:set_keepalive(false)
    c:set_ttl(64)
    c:write("still works")
    assert.equal("still works", c:read_exact(11))
  end)
end)

describe("tcp peers that go away", function()
  it("a peer closing mid-transfer gives reset: or closed:, not a crash", function()
    local l, t = serve_one(function(s)
      s:read_exact(10)   -- leaves unread data behind: close sends RST
      s:write(string.rep("p", 1000))
    end)
    local c = connect(l.port)
    c:write(string.rep("q", 20000))
    local ok, e = pcall(function() while true do c:read_exact(1000000) end end)
    assert.is_false(ok)
    assert.is_truthy(e:match("^reset: ") or e:match("^closed: "), e)
    t:join()
  end)

  it("writing to a closed peer raises (no SIGPIPE) and the process goes on", function()
    local l, t = serve_one(function() end)
    local c = connect(l.port)
    t:join()
    local chunk = string.rep("s", 65536)
    local e
    for _ = 1, 200 do
      local ok, err = pcall(c.write, c, chunk)
      if not ok then e = err break end
      net.sleep(0.005)
    end
    assert.is_string(e, "writes to a closed peer never failed")
    assert.is_truthy(e:match("^reset: ") or e:match("^closed: "), e)
    -- still here (SIGPIPE did not kill us) and the loop still works
    local l2 = echo_server()
    local c2 = connect(l2.port)
    c2:write("after")
    assert.equal("after", c2:read_exact(5))
  end)
end)

describe("tcp concurrency", function()
  it("a server task serves blocking main-thread calls (no net.run)", function()
    local l, t = serve_one(function(s)
      local n = 0
      while true do
        local line = s:read_line()
        if not line then break end
        n = n + 1
        s:write(line:upper() .. "\n")
      end
      return n
    end)
    local c = connect(l.port)
    for i = 1, 50 do
      c:write("msg " .. i .. "\n")
      assert.equal("MSG " .. i, c:read_line())
    end
    c:close()
    assert.equal(50, t:join())
  end)

  it("one task writes while another reads the same socket", function()
    local l = echo_server()
    helper.bounded(10, function()
      local c = connect(l.port)
      local n = 2000
      local writer = go(function()
        for i = 1, n do c:write(("%08d"):format(i)) end
        return "written"
      end)
      local reader = go(function()
        for i = 1, n do assert.equal(("%08d"):format(i), c:read_exact(8)) end
        return "read"
      end)
      assert.equal("written", writer:join())
      assert.equal("read", reader:join())
    end)
  end)

  it("5000 concurrent echo clients in one process", function()
    local p = io.popen("ulimit -n")
    local limit = tonumber(p:read("*l")) or 1024
    p:close()
    local n = 5000
    if limit < 2 * n + 200 then
      n = math.max(10, math.floor((limit - 200) / 2))
      print(("\n[tcp_spec] ulimit -n is %d: scaling the concurrency test down to %d clients"):format(limit, n))
    end
    local l = echo_server({ backlog = 4096 })
    helper.bounded(20, function()
      local clients = {}
      for i = 1, n do
        clients[i] = go(function()
          local c = net.tcp.connect("127.0.0.1", l.port, { timeout = 10000 })
          c:set_timeout(10000)
          local msg = "client " .. i .. "\n"
          c:write(msg)
          local back = c:read_line()
          c:close()
          return back == "client " .. i
        end)
      end
      local good = 0
      for i = 1, n do if clients[i]:join() then good = good + 1 end end
      assert.equal(n, good)
    end)
  end)
end)

local has_v6 = pcall(function() net.tcp.listen("::1", 0):close() end)
;(has_v6 and describe or pending)("tcp over IPv6 (::1)", function()
  it("listens and connects with ::1 and [::1]", function()
    local l = listen("::1")
    assert.equal("::1", l.ip)
    assert.equal("[::1]:" .. l.port, l:local_addr())
    for _, host in ipairs({ "::1", "[::1]" }) do
      local t = go(function() local s = l:accept(); s:write(s.remoteIp); s:close() end)
      local c = connect(l.port, host)
      assert.equal("::1", c.remoteIp)
      assert.equal("[::1]:" .. l.port, c:peer_addr())
      assert.equal("::1", c:read_all())
      t:join()
    end
  end)
end)

describe("tcp argument checks", function()
  local bad = helper.bad_argument

  it("net.tcp.connect / connect_timeout / listen / is_port_open", function()
    bad(1, "net%.tcp%.connect", "string expected, got no value", net.tcp.connect)
    bad(1, "net%.tcp%.connect", "string expected, got table", net.tcp.connect, {}, 80)
    bad(2, "net%.tcp%.connect", "integer expected, got string", net.tcp.connect, "127.0.0.1", "x")
    bad(2, "net%.tcp%.connect", "0%.%.65535", net.tcp.connect, "127.0.0.1", 70000)
    bad(3, "net%.tcp%.connect", "table expected, got number", net.tcp.connect, "127.0.0.1", 1, 5)
    bad(3, "net%.tcp%.connect", "option 'timeout'", net.tcp.connect, "127.0.0.1", 1, { timeout = "fast" })
    bad(3, "net%.tcp%.connect", "option 'ttl'", net.tcp.connect, "127.0.0.1", 1, { ttl = 300 })
    bad(3, "net%.tcp%.connect", "option 'nodelay': boolean expected, got number", net.tcp.connect, "127.0.0.1", 1, { nodelay = 1 })
    bad(3, "net%.tcp%.connect", "option 'bind'", net.tcp.connect, "127.0.0.1", 1, { bind = "nope" })
    bad(3, "net%.tcp%.connect_timeout", "duration", net.tcp.connect_timeout, "127.0.0.1", 1, "x")
    bad(1, "net%.tcp%.listen", "string expected, got table", net.tcp.listen, {})
    bad(2, "net%.tcp%.listen", "integer expected, got string", net.tcp.listen, "127.0.0.1", "x")
    bad(3, "net%.tcp%.listen", "table expected, got number", net.tcp.listen, "127.0.0.1", 0, 5)
    bad(2, "net%.is_port_open", "integer expected, got no value", net.is_port_open, "127.0.0.1")
  end)

  it("stream and listener methods", function()
    local l = echo_server()
    local c = connect(l.port)
    bad(2, "read", "1%.%.2147483647", c.read, c, 0)
    bad(2, "read", "integer expected, got string", c.read, c, "x")
    bad(2, "read_exact", "integer expected, got no value", c.read_exact, c)
    bad(2, "read_exact", "0%.%.2147483647", c.read_exact, c, -1)
    bad(2, "write", "string expected, got no value", c.write, c)
    bad(2, "write_all", "string expected, got table", c.write_all, c, {})
    bad(2, "write_u32", "0%.%.4294967295", c.write_u32, c, -1)
    bad(2, "write_u32", "0%.%.4294967295", c.write_u32, c, 4294967296)
    bad(2, "set_timeout", "non%-negative", c.set_timeout, c, -5)
    bad(2, "set_timeout", "got table", c.set_timeout, c, {})
    bad(2, "set_nodelay", "boolean expected, got number", c.set_nodelay, c, 1)
    bad(2, "set_keepalive", "boolean or table expected, got no value", c.set_keepalive, c)
    bad(2, "set_ttl", "1%.%.255", c.set_ttl, c, 0)
    bad(1, "read", "stream expected, got table", c.read, {})
    bad(1, "accept", "listener expected, got userdata", l.accept, c)
    bad(2, "set_timeout", "got boolean", l.set_timeout, l, true)
    -- the stream is unharmed by all that
    c:write("ok")
    assert.equal("ok", c:read_exact(2))
  end)
end)
