-- TLS on streams: net.tcp.connect(..., {tls = ...}) and net.tcp.listen(..., {tls = {cert, key}}),
-- against net itself, Python's ssl module and curl, with a test CA made by openssl for this run.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local s = helper.scope(3000)
after_each(s.cleanup)

local pem = helper.pki() -- the test PKI (lua-tests/fixtures/make-certs.sh)

local CA = { ca_file = pem("ca.pem") }
local SERVER = { cert = pem("server.pem"), key = pem("server.key") }

-- A net TLS server whose connections answer one line with "echo <line>"; returns the listener.
local function echo_server(tls)
  local l = s.listen("127.0.0.1", 0, { tls = tls or SERVER })
  s.go(function()
    while true do
      local ok, c = pcall(l.accept, l)
      if not ok then return end
      s.track(c)
      s.go(function()
        c:set_timeout(3000)
        local line = c:read_line()
        if line then c:write("echo " .. line .. "\n") end
        c:close()
      end)
    end
  end)
  return l
end

local function exchange(c, text)
  c:set_timeout(3000)
  c:write(text .. "\n")
  return c:read_line()
end

describe("TLS client and server (net to net)", function()
  it("verifies the server against ca_file and carries data both ways", function()
    local l = echo_server()
    local c = s.track(net.tcp.connect("localhost", l.port, { tls = CA, timeout = 3000 }))
    assert.matches("^tls{127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:%d+}$", tostring(c))
    assert.equal("echo hello", exchange(c, "hello"))
  end)

  it("verifies against a hashed ca_dir (openssl rehash), and not against an empty one", function()
    local l = echo_server()
    local cadir, empty = pem("cadir"), pem("emptydir")
    assert(os.execute("mkdir -p " .. cadir .. " " .. empty .. " && cp " .. pem("ca.pem") .. " " .. cadir ..
      "/ && openssl rehash " .. cadir .. " >/dev/null 2>&1"))
    local c = s.track(net.tcp.connect("localhost", l.port, { tls = { ca_dir = cadir }, timeout = 3000 }))
    assert.equal("echo via dir", exchange(c, "via dir"))
    helper.raises("^tls: certificate verify failed for localhost: ", net.tcp.connect, "localhost", l.port,
      { tls = { ca_dir = empty }, timeout = 3000 })
  end)

  it("verifies an IP address against the certificate's IP entry", function()
    local l = echo_server()
    local c = s.track(net.tcp.connect("127.0.0.1", l.port, { tls = CA, timeout = 3000 }))
    assert.equal("echo by ip", exchange(c, "by ip"))
  end)

  it("is binary-safe", function()
    local l = s.listen("127.0.0.1", 0, { tls = SERVER })
    s.go(function()
      local c = s.track(l:accept())
      c:write(c:read_exact(#helper.ALL_BYTES * 4))
    end)
    local c = s.track(net.tcp.connect("localhost", l.port, { tls = CA, timeout = 3000 }))
    c:set_timeout(3000)
    local data = helper.ALL_BYTES:rep(4)
    c:write(data)
    assert.equal(data, c:read_exact(#data))
  end)

  it("negotiates ALPN, the server's preference first", function()
    local l = echo_server({ cert = SERVER.cert, key = SERVER.key, alpn = { "x-b", "x-a" } })
    local c = s.track(net.tcp.connect("localhost", l.port, { tls = { ca_file = CA.ca_file, alpn = { "x-a", "x-b" } } }))
    assert.equal("x-b", c:alpn())
    local plain = s.track(net.tcp.connect("localhost", l.port, { tls = CA }))
    assert.is_nil(plain:alpn())
  end)

  it("rejects a server signed by another CA", function()
    local l = echo_server()
    helper.raises("^tls: certificate verify failed for localhost: ", net.tcp.connect, "localhost", l.port,
      { tls = { ca_file = pem("other.pem") } })
  end)

  it("verifies against the system store by default, where the test CA is not", function()
    local l = echo_server()
    helper.raises("^tls: certificate verify failed for localhost: ", net.tcp.connect, "localhost", l.port, true)
    helper.raises("^tls: certificate verify failed", net.tcp.connect, "localhost", l.port, { tls = true })
  end)

  it("rejects a certificate for another host name", function()
    local l = echo_server()
    local e = helper.err_of(net.tcp.connect, "127.0.0.1", l.port, { tls = { ca_file = CA.ca_file, server_name = "wrong.example" } })
    assert.matches("^tls: certificate verify failed for wrong%.example: hostname mismatch", e)
  end)

  it("rejects an expired certificate", function()
    local l = echo_server({ cert = pem("expired.pem"), key = pem("server.key") })
    local e = helper.err_of(net.tcp.connect, "localhost", l.port, { tls = CA })
    assert.matches("^tls: certificate verify failed for localhost: certificate has expired", e)
  end)

  it("connects without verification only when asked (verify = false or insecure = true)", function()
    local l = echo_server({ cert = pem("expired.pem"), key = pem("server.key") })
    local a = s.track(net.tcp.connect("127.0.0.1", l.port, { tls = { verify = false } }))
    assert.equal("echo a", exchange(a, "a"))
    local b = s.track(net.tcp.connect("127.0.0.1", l.port, { tls = { insecure = true } }))
    assert.equal("echo b", exchange(b, "b"))
  end)

  it("requires client certificates when the server has a ca_file", function()
    local l = echo_server({ cert = SERVER.cert, key = SERVER.key, ca_file = CA.ca_file })
    local c = s.track(net.tcp.connect("localhost", l.port,
      { tls = { ca_file = CA.ca_file, cert = pem("client.pem"), key = pem("client.key") } }))
    assert.equal("echo with cert", exchange(c, "with cert"))
    -- without one the exchange fails (TLS 1.3 reports it after the client's handshake)
    local ok, r = pcall(function()
      local d = s.track(net.tcp.connect("localhost", l.port, { tls = CA, timeout = 3000 }))
      return exchange(d, "no cert")
    end)
    assert.is_true(not ok or r == nil, "a client without a certificate got an answer")
    if not ok then assert.matches("^%a+: ", r) end
  end)

  it("keeps accepting while a client never starts its handshake", function()
    local l = echo_server()
    s.track(net.tcp.connect("127.0.0.1", l.port)) -- plain TCP, silent
    local c = s.track(net.tcp.connect("localhost", l.port, { tls = CA, timeout = 3000 }))
    assert.equal("echo next", exchange(c, "next"))
  end)
end)

describe("TLS with other peers", function()
  it("talks to a Python ssl server", function()
    local p = helper.python([[
import socket, ssl, sys
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
t = ctx.wrap_socket(conn, server_side=True)
data = b""
while not data.endswith(b"\n"):
    data += t.recv(100)
t.sendall(b"py:" + data)
t.close()
]], SERVER.cert, SERVER.key)
    finally(function() p:kill() end)
    local port = tonumber(p:wait_line())
    local c = s.track(net.tcp.connect("localhost", port, { tls = CA, timeout = 3000 }))
    assert.equal("py:hi", exchange(c, "hi"))
  end)

  it("serves curl over https", function()
    local l = s.listen("127.0.0.1", 0, { tls = SERVER })
    s.go(function()
      local c = s.track(l:accept())
      c:set_timeout(3000)
      repeat local line = c:read_line() until line == nil or line == ""
      c:write("HTTP/1.0 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nhello tls")
      c:close()
    end)
    local p = helper.spawn({ "curl", "-s", "-w", "\\n", "--max-time", "5", "--cacert", CA.ca_file,
      ("https://localhost:%d/"):format(l.port) })
    finally(function() p:kill() end)
    helper.wait_until(5, function() return #p:lines() > 0 end)
    assert.equal("hello tls", p:lines()[1])
  end)
end)

describe("TLS options", function()
  it("reports unreadable certificate files plainly", function()
    helper.raises("^tls: cannot load certificate " .. pem("nope.pem"):gsub("%p", "%%%0") .. ": no such file",
      net.tcp.listen, "127.0.0.1", 0, { tls = { cert = pem("nope.pem") } })
    helper.raises("^tls: cannot load CA file ", net.tcp.connect, "127.0.0.1", 1, { tls = { ca_file = pem("nope.pem") } })
  end)

  it("needs a certificate to serve", function()
    helper.raises("^tls: a TLS server needs", net.tcp.listen, "127.0.0.1", 0, { tls = true })
  end)

  it("rejects wrong option types", function()
    helper.bad_argument(3, "connect", "option 'tls'", net.tcp.connect, "127.0.0.1", 1, { tls = 5 })
    helper.bad_argument(3, "connect", "option 'tls.alpn'", net.tcp.connect, "127.0.0.1", 1, { tls = { alpn = 5 } })
    helper.bad_argument(3, "connect", "option 'tls.verify'", net.tcp.connect, "127.0.0.1", 1, { tls = { verify = "no" } })
  end)

  -- The tls table is read by the nested options reader: its errors name the full path, and the
  -- type is Lua's name for it ("number", never mlua's "integer").
  it("names nested options by their full path", function()
    local e = helper.err_of(net.tcp.connect, "127.0.0.1", 1, { tls = { ca_file = 5 } })
    assert.equal("bad argument #3 to 'net.tcp.connect' (option 'tls.ca_file': string expected, got number)", e)
    e = helper.err_of(net.tcp.listen, "127.0.0.1", 0, { tls = { cert = pem("server.pem"), key = 7 } })
    assert.equal("bad argument #3 to 'net.tcp.listen' (option 'tls.key': string expected, got number)", e)
    e = helper.err_of(net.tcp.listen, 0, { tls = { cert = {} } })
    assert.equal("bad argument #2 to 'net.tcp.listen' (option 'tls.cert': string expected, got table)", e)
    e = helper.err_of(net.ws.connect, "wss://127.0.0.1:1/", { tls = { server_name = false } })
    assert.equal("bad argument #2 to 'net.ws.connect' (option 'tls.server_name': string expected, got boolean)", e)
  end)

  -- A typo inside tls = {...} would otherwise be ignored silently (verfy = false leaves
  -- verification on; ca_fil = ... uses the system store): unknown keys there raise.
  it("refuses unknown keys inside the tls table", function()
    local e = helper.err_of(net.tcp.connect, "127.0.0.1", 1, { tls = { verfy = false } })
    assert.matches("^bad argument #3 to 'net%.tcp%.connect' %(option 'tls%.verfy': unknown option %(known: verify, ", e)
    e = helper.err_of(net.tcp.listen, "127.0.0.1", 0, { tls = { cert = pem("server.pem"), ca = pem("ca.pem") } })
    assert.matches("^bad argument #3 to 'net%.tcp%.listen' %(option 'tls%.ca': unknown option %(known: cert, key, ca_file, alpn%)%)$", e)
    -- Unknown keys at the top level are ignored (tables may carry other libraries' keys).
    local l = s.listen("127.0.0.1", 0, { tls = SERVER, some_other_library_key = 1 })
    assert.is_number(l.port)
  end)
end)
