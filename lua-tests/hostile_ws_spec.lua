-- WebSocket soundness against awkward and hostile peers: the close handshake finished even when
-- nobody reads, a ping flood that never reads our pongs, handshakes in flight when a server
-- closes, methods of a closed ws, and finalizers that use a ws while it is in use.
local helper = require("helper")
local net = helper.net
local websocket = require("net.websocket")

local s = helper.scope(3000)
after_each(s.cleanup)

-- Reads from a raw net stream until EOF or an error, bounded: "eof", "error" or "timeout", and
-- what was read.
local function read_end(c, seconds)
  c:set_timeout(seconds * 1000)
  local got = ""
  while true do
    local ok, data = pcall(c.read, c)
    if not ok then
      if tostring(data):match("^timeout:") then return "timeout", got end
      return "error", got
    end
    if data == nil then return "eof", got end
    got = got .. data
  end
end

describe("server:close() aborts handshakes in flight", function()
  it("a ws upgrade half sent: the client sees the end at once, the rest gets no 101", function()
    local server = s.track(net.ws.listen("127.0.0.1", 0))
    local accepted = s.go(function() return pcall(server.accept, server) end)
    local c = s.connect(server.port)
    c:write("GET / HTTP/1.1\r\nHost: x\r\n")
    helper.sleep(0.2) -- the server took the connection and is reading the request
    server:close()
    local t0 = net.now()
    local how, got = read_end(c, 2)
    assert.is_true(how == "eof" or how == "error", how)
    assert.equal("", got)
    assert.is_true(net.now() - t0 < 1)
    pcall(c.write, c, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    local _, rest = read_end(c, 0.5)
    assert.equal("", rest)
    assert.is_false((accepted:join()))
  end)

  it("a TLS handshake half sent: the client sees the end at once, the rest gets no answer", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && bash lua-tests/fixtures/make-certs.sh " .. dir .. " >/dev/null"))
    finally(function() os.execute("rm -rf " .. dir) end)
    -- a real ClientHello, made by Python's ssl module
    local py = io.popen([[python3 -c '
import ssl, sys
ctx = ssl.create_default_context()
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(i, o, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
sys.stdout.write(o.read().hex())
']])
    local hello = py:read("*a"):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
    py:close()
    assert.is_true(#hello > 100)
    local l = s.listen("127.0.0.1", 0, { tls = { cert = dir .. "/server.pem", key = dir .. "/server.key" } })
    local accepted = s.go(function() return pcall(l.accept, l) end)
    local c = s.connect(l.port)
    c:write(hello:sub(1, 20))
    helper.sleep(0.2)
    l:close()
    local t0 = net.now()
    local how, got = read_end(c, 2)
    assert.is_true(how == "eof" or how == "error", how)
    assert.equal("", got)
    assert.is_true(net.now() - t0 < 1)
    pcall(c.write, c, hello:sub(21))
    local _, rest = read_end(c, 0.5)
    assert.equal("", rest) -- no ServerHello
    assert.is_false((accepted:join()))
  end)
end)
