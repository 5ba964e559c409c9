-- Interop with real non-Lua peers on 127.0.0.1: Python 3 TCP and UDP peers started as
-- subprocesses, and curl against a tiny HTTP responder written with net.tcp.listen in a task.
-- Every peer is killed in `finally`; every socket has a timeout.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local T = 5000

local have = helper.have
local HAVE_PY, HAVE_CURL = have("python3"), have("curl")

local scope = helper.scope(T)
after_each(scope.cleanup)
local go, track = scope.go, scope.track
local connect = scope.connect -- connect(port): a tracked stream to 127.0.0.1:port with timeout T
local ALL_BYTES, read_file = helper.ALL_BYTES, helper.read_file

local function hex(s)
  return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

-- Waits (running net tasks) until the peer printed a line starting with `prefix`.
local function wait_for_line(p, prefix, timeout)
  local deadline = net.now() + (timeout or 10)
  repeat
    for _, l in ipairs(p:lines()) do
      if l:sub(1, #prefix) == prefix then return l end
    end
    net.sleep(0.02)
  until net.now() > deadline
  error("peer printed no line starting with '" .. prefix .. "'; stderr:\n" .. p:stderr(), 2)
end

local PY_TCP_SERVER = [[
import socket, struct, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)

def handle(c):
    c.settimeout(10)
    f = c.makefile("rb")
    mode = f.readline().strip()
    if mode == b"ECHO":            # echo everything after the client's FIN, then close
        c.sendall(f.read())
    elif mode == b"HALF":          # python half-closes first, then reads the reply to EOF
        c.sendall(bytes(range(256)) + b"tail\n")
        c.shutdown(socket.SHUT_WR)
        print("GOT " + f.read().hex(), flush=True)
    elif mode == b"FRAMES":        # u32 big-endian framed messages, answered reversed
        while True:
            h = f.read(4)
            if len(h) < 4:
                break
            body = f.read(struct.unpack(">I", h)[0])
            c.sendall(struct.pack(">I", len(body)) + body[::-1])
    elif mode == b"RESET":         # some bytes, then an abortive close (RST)
        c.sendall(b"partial")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()

while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
]]

local PY_TCP_CLIENT = [[
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"hello from python\r\n" + bytes(range(256)) + b"\n")
c.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = c.recv(65536)
    if not b:
        break
    data += b
print("RESULT " + data.hex(), flush=True)
]]

local PY_UDP = [[
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(b"py:" + data[::-1], addr)
]]

;(HAVE_PY and describe or pending)("a Python 3 TCP peer", function()
  local p, port
  before_each(function()
    p = helper.python(PY_TCP_SERVER)
    port = tonumber(p:wait_line(10))
  end)
  after_each(function() if p then p:kill() end end)

  it("echoes all 256 byte values after our half-close", function()
    local c = connect(port)
    c:write("ECHO\n")
    local data = ALL_BYTES .. ("\0"):rep(1000) .. ALL_BYTES:reverse()
    assert.equal(#data, c:write_all(data))
    c:shutdown("write")
    assert.equal(data, c:read_all())
  end)

  it("half-closes first: we see EOF and can still send our reply", function()
    local c = connect(port)
    c:write("HALF\n")
    assert.equal(ALL_BYTES .. "tail\n", c:read_all())
    assert.is_nil(c:read())
    c:write("reply after EOF")
    c:close()
    assert.equal("GOT " .. hex("reply after EOF"), wait_for_line(p, "GOT "))
  end)

  it("speaks u32 big-endian framing with Python's struct '>I'", function()
    local c = connect(port)
    c:write("FRAMES\n")
    for _, m in ipairs({ "", "a", ALL_BYTES, string.rep("xyz", 50000) }) do
      c:write_u32(#m)
      c:write(m)
      assert.equal(#m, c:read_u32())
      assert.equal(m:reverse(), c:read_exact(#m))
    end
    c:shutdown("write")
    assert.is_nil(c:read_u32())
  end)

  it("an abortive close (RST) gives reset: or closed:, not a crash", function()
    local c = connect(port)
    c:write("RESET\n")
    local ok, e = pcall(function()
      for _ = 1, 100 do c:read_exact(1000) end
    end)
    assert.is_false(ok)
    assert.is_truthy(e:match("^reset: ") or e:match("^closed: "), e)
  end)
end)

;(HAVE_PY and describe or pending)("a Python 3 TCP client", function()
  it("talks to a net.tcp server task, with half-close both ways", function()
    local l = track(net.tcp.listen("127.0.0.1", 0))
    l:set_timeout(T)
    local srv = go(function()
      local s = track(l:accept())
      s:set_timeout(T)
      local first = s:read_line()
      local bytes = s:read_exact(256)
      assert(s:read_line() == "", "expected the newline after the bytes")
      assert(s:read() == nil, "expected EOF")
      s:write("ack:" .. first .. ":")
      s:write(bytes:reverse())
      s:close()
      return first, bytes
    end)
    local p = helper.python(PY_TCP_CLIENT, tostring(l.port))
    finally(function() p:kill() end)
    local result = wait_for_line(p, "RESULT ")
    local first, bytes = srv:join()
    assert.equal("hello from python", first)
    assert.equal(ALL_BYTES, bytes)
    assert.equal("RESULT " .. hex("ack:hello from python:" .. ALL_BYTES:reverse()), result)
    assert.equal(0, p:wait(5))
  end)
end)

;(HAVE_PY and describe or pending)("a Python 3 UDP peer", function()
  it("exchanges datagrams, binary-safe, in both modes", function()
    local p = helper.python(PY_UDP)
    finally(function() p:kill() end)
    local port = tonumber(p:wait_line(10))
    local u = track(net.udp.bind("127.0.0.1", 0))
    u:set_timeout(2000)
    for _, m in ipairs({ "hello", ALL_BYTES, "", string.rep("U", 60000) }) do
      assert.equal(#m, u:send(m, "127.0.0.1", port))
      local d, host, from = u:recv()
      assert.equal("py:" .. m:reverse(), d)
      assert.equal("127.0.0.1", host)
      assert.equal(port, from)
    end
    u:connect("127.0.0.1", port)
    u:send_connected(ALL_BYTES)
    assert.equal("py:" .. ALL_BYTES:reverse(), (u:recv_connected()))
  end)
end)

-- A minimal HTTP/1.1 responder: one request per connection, Connection: close.
local function http_server(handler)
  local l = track(net.tcp.listen("127.0.0.1", 0))
  l:set_timeout(T)
  local requests = {}
  go(function()
    while true do
      local s = l:accept()
      go(function()
        s:set_timeout(T)
        local req = { headers = {} }
        req.method, req.target, req.version = s:read_line():match("^(%S+) (%S+) (HTTP/%d%.%d)$")
        while true do
          local line = s:read_line()
          if line == "" then break end
          local k, v = line:match("^([^:]+):%s*(.*)$")
          req.headers[k:lower()] = v
        end
        local len = tonumber(req.headers["content-length"] or "0")
        req.body = s:read_exact(len)
        requests[#requests + 1] = req
        local status, body = handler(req)
        s:write_all(("HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n" ..
          "Connection: close\r\n\r\n"):format(status, #body) .. body)
        s:close()
      end)
    end
  end)
  return l, requests
end

;(HAVE_CURL and describe or pending)("curl against a net.tcp HTTP responder", function()
  it("GET: status, headers and body", function()
    local l, requests = http_server(function(req) return "200 OK", "you asked for " .. req.target end)
    local p = helper.spawn({ "curl", "-sS", "--max-time", "5", "-i", "http://127.0.0.1:" .. l.port .. "/hello?x=1&y=%20" })
    finally(function() p:kill() end)
    local rc = p:wait(10)
    assert.equal(0, rc, p:stderr())
    local out = read_file(p.out)
    assert.matches("^HTTP/1%.1 200 OK\r\n", out)
    assert.matches("\r\nContent%-Length: 30\r\n", out)
    assert.matches("you asked for /hello%?x=1&y=%%20$", out)
    assert.equal(1, #requests)
    local req = requests[1]
    assert.equal("GET", req.method)
    assert.equal("/hello?x=1&y=%20", req.target)
    assert.equal("HTTP/1.1", req.version)
    assert.equal("127.0.0.1:" .. l.port, req.headers.host)
    assert.matches("^curl/", req.headers["user-agent"])
  end)

  it("POST: a binary body with all 256 byte values goes both ways exactly", function()
    local l, requests = http_server(function(req) return "201 Created", req.body:reverse() end)
    local inf, outf = os.tmpname(), os.tmpname()
    finally(function() os.remove(inf); os.remove(outf) end)
    local f = assert(io.open(inf, "wb"))
    local body = ALL_BYTES:rep(40)
    f:write(body)
    f:close()
    local p = helper.spawn({ "curl", "-sS", "--max-time", "5", "-o", outf, "-w", "%{http_code}",
      "-H", "Content-Type: application/octet-stream", "--data-binary", "@" .. inf,
      "http://127.0.0.1:" .. l.port .. "/upload" })
    finally(function() p:kill() end)
    assert.equal(0, p:wait(10), p:stderr())
    assert.equal("201", read_file(p.out))
    assert.equal(body:reverse(), read_file(outf))
    assert.equal("POST", requests[1].method)
    assert.equal(body, requests[1].body)
  end)

  it("serves several curl processes at once", function()
    local l = http_server(function(req) return "200 OK", req.target end)
    local ps = {}
    finally(function() for _, p in ipairs(ps) do p:kill() end end)
    for i = 1, 5 do
      ps[i] = helper.spawn({ "curl", "-sS", "--max-time", "5", "http://127.0.0.1:" .. l.port .. "/n" .. i })
    end
    for i = 1, 5 do
      assert.equal(0, ps[i]:wait(10), ps[i]:stderr())
      assert.equal("/n" .. i, read_file(ps[i].out))
    end
  end)
end)
