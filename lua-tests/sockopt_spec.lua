-- Socket options of TCP streams and listeners: recvbuf, sendbuf, linger, keepalive, as options of
-- net.tcp.connect / net.tcp.listen / net.ws.connect and as stream setters, read back with
-- stream:socket_options() (what the kernel reports). Real sockets on 127.0.0.1.
local helper = require("helper")
local net = helper.net

local T = 3000
local scope = helper.scope(T)
after_each(scope.cleanup)
local go, track, listen, connect = scope.go, scope.track, scope.listen, scope.connect
local err_of = helper.err_of

-- A listener and the server side of one connection to it: returns listener, client, server.
local function pair(listen_opts, connect_opts)
  local l = listen("127.0.0.1", 0, listen_opts)
  local t = go(function() return track(l:accept()) end)
  local opts = connect_opts or {}
  opts.timeout = T
  local c = connect(l.port, "127.0.0.1", opts)
  local s = t:join()
  s:set_timeout(T)
  return l, c, s
end

local function exact(pattern)
  return "^" .. pattern:gsub("[%(%)%.%-%+%[%]%*%?%^%$]", "%%%0") .. "$"
end

describe("socket options", function()
  it("reads back the defaults", function()
    local _, c = pair()
    local o = c:socket_options()
    assert.is_true(o.nodelay)
    assert.is_false(o.keepalive)
    assert.is_false(o.linger)
    assert.is_true(o.recvbuf > 0 and o.sendbuf > 0)
    assert.is_true(o.ttl >= 1 and o.ttl <= 255)
  end)

  it("applies connect options before connecting and reads them back", function()
    local _, c = pair(nil, {
      recvbuf = 65536, sendbuf = 32768, linger = 0,
      keepalive = { idle = "60s", interval = 10000, count = 5 },
    })
    local o = c:socket_options()
    -- Linux doubles the sizes it is given (for its own bookkeeping): at least what was asked.
    assert.is_true(o.recvbuf >= 65536, o.recvbuf)
    assert.is_true(o.sendbuf >= 32768, o.sendbuf)
    assert.equal(0, o.linger)
    assert.same({ idle = 60000, interval = 10000, count = 5 }, o.keepalive)
  end)

  it("keepalive = true turns it on with the system's timers", function()
    local _, c = pair(nil, { keepalive = true })
    local k = c:socket_options().keepalive
    assert.is_table(k)
    assert.is_true(k.idle > 0 and k.interval > 0 and k.count > 0)
  end)

  it("a listener's options reach every accepted stream", function()
    local opts = { recvbuf = 131072, sendbuf = 65536, linger = 0, keepalive = { idle = "30s", interval = "5s", count = 3 } }
    local _, _, s = pair(opts)
    local o = s:socket_options()
    assert.is_true(o.recvbuf >= 131072, o.recvbuf)
    assert.is_true(o.sendbuf >= 65536, o.sendbuf)
    assert.equal(0, o.linger)
    assert.same({ idle = 30000, interval = 5000, count = 3 }, o.keepalive)
    -- and the same on a second connection
    local l2, _, s2 = pair({ keepalive = true })
    assert.is_table(s2:socket_options().keepalive)
    assert.is_number(l2.port)
  end)

  it("setters change an open stream, and what they read back can be passed back", function()
    local _, c, s = pair()
    c:set_recvbuf(200000)
    c:set_sendbuf(100000)
    c:set_keepalive({ idle = "2m", count = 4 })
    c:set_linger(0)
    local o = c:socket_options()
    assert.is_true(o.recvbuf >= 200000, o.recvbuf)
    assert.is_true(o.sendbuf >= 100000, o.sendbuf)
    assert.equal(120000, o.keepalive.idle)
    assert.equal(4, o.keepalive.count)
    assert.equal(0, o.linger)
    s:set_keepalive(o.keepalive)
    assert.same(o.keepalive, s:socket_options().keepalive)
    c:set_keepalive(false)
    c:set_linger(false)
    o = c:socket_options()
    assert.is_false(o.keepalive)
    assert.is_false(o.linger)
    c:set_linger(0)
    c:set_linger(nil) -- nil is the default too
    assert.is_false(c:socket_options().linger)
    -- the stream is unharmed
    c:write("ok")
    assert.equal("ok", s:read_exact(2))
  end)

  it("linger = 0: close resets the connection, the peer's read raises reset:", function()
    local _, c, s = pair(nil, { linger = 0 })
    c:write("x")
    assert.equal("x", s:read_exact(1))
    c:close()
    assert.matches("^reset: read from 127%.0%.0%.1:%d+ %(connection reset by peer%)", err_of(s.read, s))
  end)

  it("without linger, close is graceful: the peer reads the data, then the end", function()
    local _, c, s = pair()
    c:write("last words")
    c:close()
    assert.equal("last words", s:read_all())
  end)

  it("set_linger(0) on an accepted stream resets the client (a Python peer sees ECONNRESET)", function()
    local l = listen("127.0.0.1", 0)
    local peer = helper.python([[
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c.sendall(b"hi")
try:
    data = c.recv(10)
    data = c.recv(10)
    print("eof" if data == b"" else "data")
except ConnectionResetError:
    print("reset")
]], tostring(l.port))
    finally(function() peer:kill() end)
    local s = track(l:accept())
    s:set_timeout(T)
    assert.equal("hi", s:read_exact(2))
    s:write("a")
    s:set_linger(0)
    s:close()
    assert.equal("reset", peer:wait_line())
  end)

  it("bad values raise errors that name the option", function()
    local function bad(expected, fn, ...)
      assert.matches(exact(expected), err_of(fn, ...))
    end
    bad("bad argument #3 to 'net.tcp.connect' (option 'recvbuf': integer (bytes) expected, got string)",
      net.tcp.connect, "127.0.0.1", 1, { recvbuf = "big" })
    bad("bad argument #3 to 'net.tcp.connect' (option 'sendbuf': out of range: 0 is not in 1..2147483647)",
      net.tcp.connect, "127.0.0.1", 1, { sendbuf = 0 })
    bad("bad argument #3 to 'net.tcp.connect' (option 'keepalive.idle': whole seconds from 1 s to 32767 s expected, got 1500 ms)",
      net.tcp.connect, "127.0.0.1", 1, { keepalive = { idle = 1500 } })
    bad("bad argument #3 to 'net.tcp.connect' (option 'keepalive.count': out of range: 0 is not in 1..127)",
      net.tcp.connect, "127.0.0.1", 1, { keepalive = { count = 0 } })
    bad("bad argument #3 to 'net.tcp.connect' (option 'keepalive.idel': unknown option (known: idle, interval, count))",
      net.tcp.connect, "127.0.0.1", 1, { keepalive = { idel = "5s" } })
    bad("bad argument #3 to 'net.tcp.connect' (option 'keepalive': boolean or table expected, got string)",
      net.tcp.connect, "127.0.0.1", 1, { keepalive = "yes" })
    assert.matches("^bad argument #3 to 'net%.tcp%.connect' %(option 'linger': only 0 %(reset on close%) or false is supported, got 5000",
      err_of(net.tcp.connect, "127.0.0.1", 1, { linger = 5000 }))
    bad("bad argument #2 to 'net.tcp.listen' (option 'recvbuf': integer (bytes) expected, got boolean)",
      net.tcp.listen, 0, { recvbuf = true })
    bad("bad argument #3 to 'net.tcp.listen' (option 'keepalive.interval': invalid duration 'often' (use milliseconds or strings like \"250ms\", \"5s\", \"1m\"))",
      net.tcp.listen, "127.0.0.1", 0, { keepalive = { interval = "often" } })
    bad("bad argument #2 to 'net.ws.connect' (option 'sendbuf': integer (bytes) expected, got table)",
      net.ws.connect, "ws://127.0.0.1:1/", { sendbuf = {} })

    local _, c = pair()
    bad("bad argument #2 to 'set_recvbuf' (integer (bytes) expected, got string)", c.set_recvbuf, c, "x")
    bad("bad argument #2 to 'set_recvbuf' (integer expected, got no value)", c.set_recvbuf, c)
    bad("bad argument #2 to 'set_sendbuf' (out of range: -1 is not in 1..2147483647)", c.set_sendbuf, c, -1)
    assert.matches("^bad argument #2 to 'set_linger' %(only 0 ", err_of(c.set_linger, c, "1s"))
    bad("bad argument #2 to 'set_keepalive' (option 'count': out of range: 500 is not in 1..127)",
      c.set_keepalive, c, { count = 500 })
    bad("bad argument #2 to 'set_keepalive' (boolean or table expected, got number)", c.set_keepalive, c, 1)
    -- nothing was changed by the failed calls
    assert.is_false(c:socket_options().keepalive)
  end)

  it("is TCP only", function()
    local path = scope.tmp_path()
    local l = track(net.unix.listen(path))
    go(function() track(l:accept()) end)
    local c = track(net.unix.connect(path, { timeout = T }))
    assert.matches("^io: socket_options: not available on a Unix socket", err_of(c.socket_options, c))
    assert.matches("^io: set_recvbuf: not available on a Unix socket", err_of(c.set_recvbuf, c, 4096))
  end)
end)
