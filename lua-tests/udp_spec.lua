-- net.udp: bind, send/recv, connected mode, socket options, on 127.0.0.1 (and ::1 when available).
local helper = require("helper")
local net = helper.net

local T = 2000 -- ms: the default receive timeout in this file

local tasks, objs = {}, {}
local function go(fn, ...)
  local t = net.spawn(fn, ...)
  tasks[#tasks + 1] = t
  return t
end
after_each(function()
  for i = #tasks, 1, -1 do pcall(tasks[i].cancel, tasks[i]); tasks[i] = nil end
  for i = #objs, 1, -1 do pcall(objs[i].close, objs[i]); objs[i] = nil end
end)

local function bind(...)
  local u = net.udp.bind(...)
  objs[#objs + 1] = u
  u:set_timeout(T)
  return u
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return e
end

local ALL_BYTES = {}
for i = 0, 255 do ALL_BYTES[#ALL_BYTES + 1] = string.char(i) end
ALL_BYTES = table.concat(ALL_BYTES)

describe("net.udp.bind", function()
  it("bind(host, port) gives a socket with ip, port, local_addr and __tostring", function()
    local u = bind("127.0.0.1", 0)
    assert.equal("127.0.0.1", u.ip)
    assert.is_true(u.port > 0 and u.port < 65536)
    assert.equal("127.0.0.1:" .. u.port, u:local_addr())
    assert.equal("udp{127.0.0.1:" .. u.port .. "}", tostring(u))
  end)

  it("bind(port) and bind() use 0.0.0.0", function()
    local a = bind(0)
    assert.equal("0.0.0.0", a.ip)
    local b = bind()
    assert.equal("0.0.0.0", b.ip)
    assert.is_true(b.port > 0)
    -- reachable through the loopback
    local c = bind("127.0.0.1", 0)
    c:send("to any", "127.0.0.1", a.port)
    assert.equal("to any", (a:recv()))
  end)

  it("a busy port raises addrinuse:", function()
    local a = bind("127.0.0.1", 0)
    local e = err_of(net.udp.bind, "127.0.0.1", a.port)
    assert.equal("addrinuse: bind 127.0.0.1:" .. a.port .. " (address already in use)", e)
  end)

  it("reuseaddr = true on both sockets shares a port", function()
    local a = bind("127.0.0.1", 0, { reuseaddr = true })
    local b = bind("127.0.0.1", a.port, { reuseaddr = true })
    assert.equal(a.port, b.port)
  end)

  it("takes the broadcast and reuseport options", function()
    local a = bind("127.0.0.1", 0, { broadcast = true, reuseport = true })
    assert.is_true(a.port > 0)
  end)
end)

describe("udp send / recv", function()
  it("send returns the byte count, recv returns data, host, port", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    assert.equal(5, a:send("hello", "127.0.0.1", b.port))
    local data, host, port = b:recv()
    assert.equal("hello", data)
    assert.equal("127.0.0.1", host)
    assert.equal(a.port, port)
    if math.type then assert.equal("integer", math.type(port)) end
  end)

  it("keeps datagram boundaries and order on the loopback", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    for i = 1, 20 do a:send("d" .. i, "127.0.0.1", b.port) end
    for i = 1, 20 do assert.equal("d" .. i, (b:recv())) end
  end)

  it("all 256 byte values and an empty datagram round-trip exactly", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    local data = ALL_BYTES .. ("\0"):rep(10) .. ALL_BYTES:reverse()
    assert.equal(#data, a:send(data, "127.0.0.1", b.port))
    assert.equal(data, (b:recv()))
    assert.equal(0, a:send("", "127.0.0.1", b.port))
    local d, host = b:recv()
    assert.equal("", d)
    assert.equal("127.0.0.1", host)
  end)

  it("a 65507-byte datagram arrives whole", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    local big = string.rep("0123456789abcdef", 4096):sub(1, 65507)
    assert.equal(65507, a:send(big, "127.0.0.1", b.port))
    assert.equal(big, (b:recv()))
  end)

  it("recv(max) truncates a longer datagram and drops the rest", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    a:send("0123456789", "127.0.0.1", b.port)
    a:send("next", "127.0.0.1", b.port)
    assert.equal("0123", (b:recv(4)))
    assert.equal("next", (b:recv(4)))
  end)

  it("sends to the name localhost", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    assert.equal(4, a:send("name", "localhost", b.port))
    assert.equal("name", (b:recv()))
  end)

  it("recv times out with timeout: recv on ... after 100 ms", function()
    local b = bind("127.0.0.1", 0)
    b:set_timeout(100)
    local t0 = net.now()
    local e = err_of(b.recv, b)
    local dt = net.now() - t0
    assert.equal("timeout: recv on 127.0.0.1:" .. b.port .. " timed out after 100 ms", e)
    assert.is_true(dt >= 0.09 and dt < 1, "took " .. dt)
    b:set_timeout("50ms")
    assert.matches("^timeout: recv on .* after 50 ms$", err_of(b.recv, b))
  end)

  it("a task waiting in recv is woken by a datagram from the main thread", function()
    local srv = bind("127.0.0.1", 0)
    local echo = go(function()
      for _ = 1, 3 do
        local d, host, port = srv:recv()
        srv:send(d:upper(), host, port)
      end
      return "done"
    end)
    local c = bind("127.0.0.1", 0)
    for i = 1, 3 do
      c:send("ping" .. i, "127.0.0.1", srv.port)
      local d, _, port = c:recv()
      assert.equal("PING" .. i, d)
      assert.equal(srv.port, port)
    end
    assert.equal("done", echo:join())
  end)
end)

describe("udp connected mode", function()
  it("connect, send_connected, recv_connected", function()
    local a, b = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    b:connect("127.0.0.1", a.port)
    assert.equal("udp{127.0.0.1:" .. b.port .. " -> 127.0.0.1:" .. a.port .. "}", tostring(b))
    assert.equal(2, b:send_connected("c1"))
    local d, host, port = a:recv()
    assert.equal("c1", d)
    assert.equal("127.0.0.1", host)
    assert.equal(b.port, port)
    a:send(ALL_BYTES, "127.0.0.1", b.port)
    assert.equal(ALL_BYTES, (b:recv_connected()))
    a:send("abcdef", "127.0.0.1", b.port)
    assert.equal("abc", (b:recv_connected(3)))
  end)

  it("recv_connected ignores datagrams from other senders", function()
    local a, b, other = bind("127.0.0.1", 0), bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    b:connect("127.0.0.1", a.port)
    other:send("intruder", "127.0.0.1", b.port)
    a:send("friend", "127.0.0.1", b.port)
    assert.equal("friend", (b:recv_connected()))
  end)

  it("recv_connected before connect raises closed:", function()
    local b = bind("127.0.0.1", 0)
    assert.matches("^closed: .*not connected", err_of(b.recv_connected, b))
  end)
end)

describe("udp options", function()
  it("set_broadcast, set_ttl, join/leave_multicast", function()
    local u = bind("0.0.0.0", 0)
    u:set_broadcast(true)
    u:set_broadcast(false)
    u:set_ttl(5)
    u:join_multicast("239.1.2.3")
    u:leave_multicast("239.1.2.3")
    u:join_multicast("239.1.2.4", "127.0.0.1")
    u:leave_multicast("239.1.2.4", "127.0.0.1")
    assert.matches("^bad argument #2 to '[%w_.:]*join_multicast' %(multicast group address expected",
      err_of(u.join_multicast, u, "1.2.3.4"))
  end)
end)

local has_v6 = pcall(function() net.udp.bind("::1", 0):close() end)
;(has_v6 and describe or pending)("udp over IPv6 (::1)", function()
  it("sends and receives on ::1", function()
    local a, b = bind("::1", 0), bind("::1", 0)
    assert.equal("::1", a.ip)
    assert.equal("[::1]:" .. a.port, a:local_addr())
    a:send("v6", "::1", b.port)
    local d, host, port = b:recv()
    assert.equal("v6", d)
    assert.equal("::1", host)
    assert.equal(a.port, port)
  end)
end)

describe("udp argument checks", function()
  local function bad(pos, fname, expected, fn, ...)
    local e = err_of(fn, ...)
    assert.matches("^bad argument #" .. pos .. " to '[%w_.:]*" .. fname .. "' %(.*" .. expected, e)
  end

  it("net.udp.bind and socket methods", function()
    bad(2, "net%.udp%.bind", "0%.%.65535", net.udp.bind, "127.0.0.1", 70000)
    bad(1, "net%.udp%.bind", "string expected, got table", net.udp.bind, {})
    bad(3, "net%.udp%.bind", "table expected, got number", net.udp.bind, "127.0.0.1", 0, 1)
    bad(3, "net%.udp%.bind", "option 'reuseaddr': boolean expected", net.udp.bind, "127.0.0.1", 0, { reuseaddr = 1 })
    local u = bind("127.0.0.1", 0)
    bad(2, "send", "string expected, got table", u.send, u, {}, "127.0.0.1", 1)
    bad(3, "send", "string expected, got no value", u.send, u, "x")
    bad(4, "send", "integer expected, got no value", u.send, u, "x", "127.0.0.1")
    bad(2, "recv", "1%.%.65535", u.recv, u, 0)
    bad(2, "recv", "integer expected, got string", u.recv, u, "x")
    bad(2, "send_connected", "string expected, got no value", u.send_connected, u)
    bad(3, "connect", "integer expected, got no value", u.connect, u, "127.0.0.1")
    bad(2, "set_broadcast", "boolean expected, got string", u.set_broadcast, u, "yes")
    bad(2, "set_ttl", "1%.%.255", u.set_ttl, u, 256)
    bad(2, "set_timeout", "non%-negative", u.set_timeout, u, -1)
    bad(1, "recv", "udp socket expected", u.recv, {})
  end)
end)
