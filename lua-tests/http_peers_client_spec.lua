-- net.request and net.http.download against real foreign HTTP servers on 127.0.0.1: Python's
-- http.server (content codings, chunked and close-delimited bodies, a server that drops kept-alive
-- connections, redirects between two servers, a large streamed body, ranges for resumed
-- downloads, a download cut short), nghttpd (h2 over TLS) and tinyproxy as a real proxy (absolute
-- form, CONNECT tunnels, the proxy environment variables).
-- net.serve against foreign clients is http_peers_spec.lua.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)
local read_file = helper.read_file

local have = helper.have
local HAVE_PY = have("python3")
local HAVE_BROTLI = HAVE_PY and os.execute("python3 -c 'import brotli' 2>/dev/null")
HAVE_BROTLI = HAVE_BROTLI == true or HAVE_BROTLI == 0

local pem = helper.pki() -- the test PKI (lua-tests/fixtures/make-certs.sh)
local CA = { ca_file = pem("ca.pem") }

local servers, peers = {}, {}
after_each(function()
  for i = #servers, 1, -1 do pcall(servers[i].stop, servers[i]); servers[i] = nil end
  for i = #peers, 1, -1 do peers[i]:kill(); peers[i] = nil end
end)
local function track(p) peers[#peers + 1] = p; return p end

local function tmp_path()
  local path = os.tmpname()
  finally(function() os.remove(path) end)
  return path
end

-- Two Python http.server instances (HTTP/1.1, a thread per connection) in one process; prints
-- both ports. PLAIN and FILE are what the tests compare against (see plain_body and file_body).
local PY_SERVER = [[
import gzip, json, socket, sys, threading, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs
try:
    import brotli
except ImportError:
    brotli = None

PLAIN = b"".join(b"line %05d of the body: the quick brown fox\n" % i for i in range(2000))
FILE = bytes((i * 7 + i // 251) % 256 for i in range(3 * 1024 * 1024 + 123))

def encode(kind, data):
    if kind == "gzip": return gzip.compress(data)
    if kind == "zlib": return zlib.compress(data)
    if kind == "raw":
        c = zlib.compressobj(wbits=-15)
        return c.compress(data) + c.flush()
    if kind == "br": return brotli.compress(data)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_POST(self): self.do_GET()
    def do_PUT(self): self.do_GET()
    def do_GET(self):
        self.served = getattr(self, "served", 0) + 1
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        p = u.path
        if p == "/echo":
            info = {"method": self.command, "path": self.path, "body": body.decode("latin-1"),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "port": self.server.server_address[1], "peer": self.client_address[1]}
            self.send(200, json.dumps(info).encode(), [("Content-Type", "application/json")])
        elif p.startswith("/enc/"):
            kind = p[5:]
            self.send(200, encode(kind, PLAIN), [("Content-Encoding", "deflate" if kind in ("zlib", "raw") else kind),
                                                 ("X-Accept-Encoding", self.headers.get("Accept-Encoding", ""))])
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", 5))):
                c = b"chunk %d\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                self.wfile.flush()
                time.sleep(float(q.get("gap", 0)))
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/close":
            # no length: the body ends where the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the connection closes\n" * 100)
            self.close_connection = True
        elif p == "/flaky":
            # the first request of a connection is answered, the second closes it unanswered
            if self.served > 1:
                self.close_connection = True
                return
            self.send(200, b"first request of connection %d" % self.client_address[1])
        elif p == "/idle-close":
            # answered with keep-alive, then the server closes the idle connection
            self.send(200, b"connection %d" % self.client_address[1])
            conn = self.connection
            threading.Timer(0.2, lambda: conn.shutdown(socket.SHUT_RDWR)).start()
        elif p == "/redirect":
            self.send(int(q.get("code", 302)), b"moved", [("Location", q["to"])])
        elif p == "/big":
            n = int(q["n"])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = bytes(range(256)) * 256
            while n > 0:
                k = min(n, len(block))
                self.wfile.write(block[:k])
                n -= k
        elif p == "/file":
            start, status, extra = 0, 200, []
            r = self.headers.get("Range")
            if r and r.startswith("bytes=") and r.endswith("-"):
                start = int(r[6:-1])
                if start >= len(FILE):
                    return self.send(416, b"", [("Content-Range", "bytes */%d" % len(FILE))])
                status, extra = 206, [("Content-Range", "bytes %d-%d/%d" % (start, len(FILE) - 1, len(FILE)))]
            part = FILE[start:]
            self.send_response(status)
            for k, v in extra: self.send_header(k, v)
            self.send_header("Content-Length", str(len(part)))
            self.send_header("X-Range", r or "none")
            self.end_headers()
            if "cut" in q:
                # half the promised bytes, then the connection goes
                self.wfile.write(part[:len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self.wfile.write(part)
        else:
            self.send(404, b"no such path")

servers = [ThreadingHTTPServer(("127.0.0.1", 0), H) for _ in range(2)]
for s in servers:
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(" ".join(str(s.server_address[1]) for s in servers), flush=True)
time.sleep(300)
]]

-- The bodies PY_SERVER serves, made the same way in Lua.
local function plain_body()
  local t = {}
  for i = 0, 1999 do t[#t + 1] = ("line %05d of the body: the quick brown fox\n"):format(i) end
  return table.concat(t)
end
local file_cache
local function file_body()
  if not file_cache then
    local t, n = {}, 3 * 1024 * 1024 + 123
    local char, floor = string.char, math.floor
    for i = 0, n - 1 do t[i + 1] = char((i * 7 + floor(i / 251)) % 256) end
    file_cache = table.concat(t)
  end
  return file_cache
end
local PLAIN = plain_body()

-- One Python server process for the whole file (started lazily): ports A and B.
local py, A, B
local function python_servers()
  if not py then
    py = helper.spawn({ "python3", "-u", "-c", PY_SERVER }, { max_life = 300 })
    local line = py:wait_line(10)
    A, B = line:match("^(%d+) (%d+)$")
    A, B = tonumber(A), tonumber(B)
  end
  return "http://127.0.0.1:" .. A, "http://127.0.0.1:" .. B
end
teardown(function() if py then py:kill() end end)

describe("net.request against Python's http.server", function()
  if not HAVE_PY then pending("python3 not installed") return end

  it("decodes gzip, deflate (zlib and raw) and br, and offers them", function()
    helper.bounded(10, function()
      local base = python_servers()
      local kinds = { "gzip", "zlib", "raw" }
      if HAVE_BROTLI then kinds[#kinds + 1] = "br" end
      for _, kind in ipairs(kinds) do
        local res = net.request(base .. "/enc/" .. kind)
        assert.equal(200, res.status)
        assert.equal("gzip, deflate, br", res.headers["x-accept-encoding"])
        assert.is_nil(res.headers["content-encoding"])
        assert.is_nil(res.headers["content-length"])
        assert.is_true(res.body == PLAIN, kind .. ": the decoded body differs")
        -- streamed, the body is decoded piece by piece
        local s = net.request({ url = base .. "/enc/" .. kind, stream = true })
        local pieces, next_line = {}, s:lines()
        local line = next_line() -- a while loop: Lua 5.1 cannot wait inside a for iterator
        while line do pieces[#pieces + 1] = line .. "\n"; line = next_line() end
        assert.equal(2000, #pieces)
        assert.is_true(table.concat(pieces) == PLAIN, kind .. ": the streamed lines differ")
        s = net.request({ url = base .. "/enc/" .. kind, stream = true })
        pieces = {}
        local piece = s:read(1000)
        while piece do pieces[#pieces + 1] = piece; piece = s:read(1000) end
        assert.is_true(table.concat(pieces) == PLAIN, kind .. ": the streamed pieces differ")
      end
      if not HAVE_BROTLI then pending("python3 has no brotli module: br not tested (pip install brotli)") end
    end)
  end)

  it("leaves the body encoded with decompress = false", function()
    helper.bounded(10, function()
      local base = python_servers()
      for _, o in ipairs({ { decompress = false }, { options = { decompress = false } } }) do
        o.url = base .. "/enc/gzip"
        local res = net.request(o)
        assert.equal("gzip", res.headers["content-encoding"])
        assert.equal("\31\139", res.body:sub(1, 2)) -- gzip's magic
        assert.equal(tonumber(res.headers["content-length"]), #res.body)
        assert.equal("", res.headers["x-accept-encoding"]) -- nothing offered
      end
    end)
  end)

  it("reads chunked responses, whole and as they come", function()
    helper.bounded(10, function()
      local base = python_servers()
      local res = net.request(base .. "/chunked?n=20")
      assert.equal("chunked", res.headers["transfer-encoding"])
      local want = {}
      for i = 0, 19 do want[#want + 1] = "chunk " .. i .. "\n" end
      assert.equal(table.concat(want), res.body)
      -- streamed: the first line is there long before the last chunk is sent
      local t0 = net.now()
      local s = net.request({ url = base .. "/chunked?n=4&gap=0.3", stream = true })
      local first = s:lines()()
      local at = net.now() - t0
      assert.equal("chunk 0", first)
      assert.is_true(at < 0.6, "the first chunk took " .. at .. " s")
      assert.equal("chunk 1\nchunk 2\nchunk 3\n", s:read(100) .. s:read(100) .. s:read(100))
      assert.is_nil(s:read())
      assert.is_true(net.now() - t0 > 0.8)
    end)
  end)

  it("reads a body delimited by the connection's end (Connection: close), then goes on", function()
    helper.bounded(10, function()
      local base = python_servers()
      for _ = 1, 3 do
        local res = net.request(base .. "/close")
        assert.equal(200, res.status)
        assert.equal(("until the connection closes\n"):rep(100), res.body)
        assert.equal("close", res.headers.connection)
      end
    end)
  end)

  it("retries a GET on a fresh connection when the server dropped the kept-alive one", function()
    helper.bounded(10, function()
      local base = python_servers()
      local conns = {}
      for i = 1, 4 do
        local res = net.request(base .. "/flaky")
        assert.equal(200, res.status)
        local c = res.body:match("^first request of connection (%d+)$")
        assert.truthy(c, res.body)
        assert.is_nil(conns[c], "request " .. i .. " came on a connection that had served one")
        conns[c] = true
      end
      -- a POST is not sent twice: it fails when the pooled connection turns out dead
      local ok, err = pcall(net.request, { url = base .. "/flaky", method = "POST", body = "once" })
      assert.is_false(ok)
      assert.matches("^closed: POST http://127%.0%.0%.1:%d+/flaky %(the server closed the connection", err)
      -- and the pool carries on
      assert.equal(200, net.request({ url = base .. "/flaky", method = "POST", body = "once" }).status)
    end)
  end)

  it("replaces a kept-alive connection the server closed while it was idle", function()
    helper.bounded(10, function()
      local base = python_servers()
      local seen = {}
      local function get()
        local res = net.request(base .. "/idle-close")
        assert.equal(200, res.status)
        local c = res.body:match("^connection (%d+)$")
        assert.is_nil(seen[c], "a closed connection was used again")
        seen[c] = true
      end
      get()
      net.sleep(0.4) -- the loop runs: the close is seen before the next request
      get()
      os.execute("sleep 0.4") -- the loop does not run: the close is found when the request is sent
      get()
    end)
  end)

  it("follows redirects across two servers, dropping credentials only across origins", function()
    helper.bounded(10, function()
      local base, other = python_servers()
      local creds = { Authorization = "Bearer secret", Cookie = "session=1", ["X-Trace"] = "kept" }
      local function via(to, code, o)
        o = o or {}
        o.url, o.query = base .. "/redirect", { code = code or 302, to = to }
        o.headers = o.headers or creds
        local res = net.request(o)
        return res, res.status == 200 and net.json.decode(res.body) or nil
      end
      local res, seen = via(other .. "/echo")
      assert.equal(other .. "/echo", res.url)
      assert.equal(B, seen.port)
      assert.is_nil(seen.headers.authorization)
      assert.is_nil(seen.headers.cookie)
      assert.equal("kept", seen.headers["x-trace"])
      assert.equal("127.0.0.1:" .. B, seen.headers.host)

      res, seen = via("/echo?same=1")
      assert.equal(base .. "/echo?same=1", res.url)
      assert.equal(A, seen.port)
      assert.equal("Bearer secret", seen.headers.authorization)
      assert.equal("session=1", seen.headers.cookie)

      -- 303 turns a POST into a GET without its body; 307 and 308 send both again
      res, seen = via(other .. "/echo", 303, { method = "POST", body = "payload", headers = {} })
      assert.equal("GET", seen.method)
      assert.equal("", seen.body)
      for _, code in ipairs({ 307, 308 }) do
        res, seen = via(other .. "/echo", code, { method = "POST", body = "payload", headers = {} })
        assert.equal("POST", seen.method)
        assert.equal("payload", seen.body)
      end
      -- not followed
      res = via(other .. "/echo", 302, { redirects = false })
      assert.equal(302, res.status)
      assert.equal(other .. "/echo", res.headers.location)
    end)
  end)

  it("streams a 32 MiB body piece by piece", function()
    helper.bounded(20, function()
      local base = python_servers()
      local n = 32 * 1024 * 1024
      local res = net.request({ url = base .. "/big?n=" .. n, stream = true })
      assert.equal(tostring(n), res.headers["content-length"])
      assert.is_nil(rawget(res, "body"))
      local got, pieces, biggest, mismatch = 0, 0, 0, nil
      local block = helper.ALL_BYTES:rep(256)
      while true do
        local piece = res:read(100000)
        if piece == nil then break end
        pieces = pieces + 1
        if #piece > biggest then biggest = #piece end
        -- the body is `block` over and over: check each piece where it falls
        local at = got % #block
        if not mismatch and piece:sub(1, 64) ~= (block .. block):sub(at + 1, at + math.min(64, #piece)) then
          mismatch = got
        end
        got = got + #piece
      end
      assert.equal(n, got)
      assert.is_nil(mismatch, "wrong bytes at offset " .. tostring(mismatch))
      assert.is_true(biggest <= 100000)
      assert.is_true(pieces >= n / 100000)
      assert.is_nil(res:read()) -- still the end
    end)
  end)

  it("downloads with progress and resumes with a range", function()
    helper.bounded(20, function()
      local base = python_servers()
      local FILE = file_body()
      local path = tmp_path()
      local calls, last, monotonic = 0, 0, true
      local res = net.http.download(base .. "/file", path, {
        on_progress = function(done, total)
          calls = calls + 1
          if done < last or total ~= #FILE then monotonic = false end
          last = done
        end,
      })
      assert.equal(200, res.status)
      assert.equal(#FILE, res.bytes)
      assert.is_true(read_file(path) == FILE, "the downloaded file differs")
      assert.is_true(calls > 1)
      assert.is_true(monotonic)
      assert.equal(#FILE, last)

      -- resume from a third of the file: the server sees the range and answers 206
      local f = assert(io.open(path, "wb"))
      f:write(FILE:sub(1, 1000000))
      f:close()
      res = net.http.download(base .. "/file", path, { resume = true })
      assert.equal(206, res.status)
      assert.equal("bytes=1000000-", res.headers["x-range"])
      assert.equal(#FILE - 1000000, res.bytes)
      assert.is_true(read_file(path) == FILE, "the resumed file differs")
      -- nothing left to fetch: 416, the file stays as it is
      res = net.http.download(base .. "/file", path, { resume = true })
      assert.equal(416, res.status)
      assert.equal(0, res.bytes)
      assert.is_true(read_file(path) == FILE)
    end)
  end)

  it("removes a download cut short, or keeps it to resume", function()
    helper.bounded(20, function()
      local base = python_servers()
      local FILE = file_body()
      local path = tmp_path()
      local ok, err = pcall(net.http.download, base .. "/file?cut=1", path)
      assert.is_false(ok)
      assert.matches("^closed:", err)
      assert.is_nil(io.open(path, "rb"), "the partial file was left behind")

      ok, err = pcall(net.http.download, base .. "/file?cut=1", path, { resume = true })
      assert.is_false(ok)
      assert.matches("^closed:", err)
      local part = read_file(path)
      assert.truthy(part, "the partial file was removed")
      assert.is_true(#part > 0 and #part < #FILE)
      assert.is_true(part == FILE:sub(1, #part))
      local res = net.http.download(base .. "/file", path, { resume = true })
      assert.equal(206, res.status)
      assert.equal("bytes=" .. #part .. "-", res.headers["x-range"])
      assert.is_true(read_file(path) == FILE, "the resumed file differs")
    end)
  end)

  it("draws progress on stderr with progress = true", function()
    helper.bounded(15, function()
      local base = python_servers()
      local path = tmp_path()
      local rc, out, err = helper.child(([[
local res = net.http.download(%q, %q, { progress = true })
print(res.status, res.bytes)
]]):format(base .. "/file", path), 10)
      assert.equal(0, rc, err)
      assert.equal("200\t" .. (3 * 1024 * 1024 + 123), out)
      assert.matches("100%.0%%%s+3%.0 MiB / 3%.0 MiB", err) -- the last line: all of it
    end)
  end)
end)

describe("net.request against nghttpd (h2 over TLS)", function()
  if not have("nghttpd") then pending("nghttpd not installed") return end

  it("speaks h2, verifies the server with the test CA and shares one connection", function()
    helper.bounded(15, function()
      local docs = tmp_path()
      os.remove(docs)
      assert(os.execute("mkdir -p " .. docs))
      finally(function() os.execute("rm -rf " .. docs) end)
      local blob = helper.ALL_BYTES:rep(1000)
      local f = assert(io.open(docs .. "/blob", "wb"))
      f:write(blob)
      f:close()
      local port = helper.free_port()
      -- stdbuf: nghttpd logs with stdio, which holds lines back when stdout is a file
      local p = track(helper.spawn({ "stdbuf", "-oL", "nghttpd", "-v", "-d", docs, tostring(port), pem("server.key"),
        pem("server.pem") }))
      local up = helper.wait_until(5, function() return p:exit_code() or net.is_port_open("127.0.0.1", port, 200) end, 0.05)
      assert(up == true, "nghttpd did not start: " .. p:stderr())
      -- nghttpd -v tags every line with its session ("[id=N]"): the sessions that asked for /blob
      local function blob_sessions()
        local ids, n, streams = {}, 0, 0
        for _, l in ipairs(p:lines()) do
          local id = l:match("^%[id=(%d+)%].* :path: /blob$")
          if id then
            streams = streams + 1
            if not ids[id] then ids[id], n = true, n + 1 end
          end
        end
        return n, streams
      end
      local url = "https://localhost:" .. port .. "/blob"
      local res = net.request({ url = url, tls = CA })
      assert.equal(200, res.status)
      assert.equal("2", res.version)
      assert.is_true(res.body == blob)
      assert.matches("^nghttpd", res.headers.server)
      assert.equal(404, net.request({ url = "https://localhost:" .. port .. "/nope", tls = CA }).status)
      local head = net.request({ url = url, method = "HEAD", tls = CA })
      assert.equal(200, head.status)
      assert.equal("", head.body)
      assert.equal(tostring(#blob), head.headers["content-length"])
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = net.spawn(function() return net.request({ url = url, tls = CA }) end)
      end
      for i = 1, 10 do
        local r = tasks[i]:join()
        assert.equal("2", r.version)
        assert.is_true(r.body == blob)
      end
      helper.wait_until(2, function() return select(2, blob_sessions()) >= 12 end)
      local n, streams = blob_sessions()
      assert.equal(12, streams) -- GET, HEAD, then the ten
      assert.equal(1, n) -- the ten streams went on the connection already open
      -- without the CA, the certificate is refused
      local ok, err = pcall(net.request, { url = url, proxy = false })
      assert.is_false(ok)
      assert.matches("^tls:", err)
    end)
  end)
end)

describe("net.request through tinyproxy", function()
  if not (have("tinyproxy") and HAVE_PY) then pending("tinyproxy or python3 not installed") return end

  -- A tinyproxy on a free port that allows CONNECT to `connect_port` only.
  local function tinyproxy(connect_port)
    local port = helper.free_port()
    local conf = tmp_path()
    local f = assert(io.open(conf, "w"))
    f:write(([[
Port %d
Listen 127.0.0.1
Timeout 30
Allow 127.0.0.1
ConnectPort %d
MaxClients 50
LogLevel Connect
]]):format(port, connect_port))
    f:close()
    local p = track(helper.spawn({ "tinyproxy", "-d", "-c", conf }))
    assert(helper.wait_until(5, function() return p:exit_code() or net.is_port_open("127.0.0.1", port, 200) end, 0.05)
      == true, "tinyproxy did not start: " .. p:stderr())
    return "http://127.0.0.1:" .. port, p
  end

  -- A net TLS server for the CONNECT tunnels.
  local function tls_server()
    local srv = net.serve(0, {
      tls = { cert = pem("server.pem"), key = pem("server.key") },
      handleRequest = function(req) return "secret over " .. req.version .. " to " .. req.path end,
    })
    servers[#servers + 1] = srv
    return srv
  end

  it("sends plain HTTP in absolute form and https through a CONNECT tunnel", function()
    helper.bounded(15, function()
      local base = python_servers()
      local srv = tls_server()
      local proxy, p = tinyproxy(srv.port)
      local res = net.request({ url = base .. "/echo?via=proxy", proxy = proxy })
      assert.equal(200, res.status)
      local seen = net.json.decode(res.body)
      assert.matches("tinyproxy", seen.headers.via)
      assert.equal("/echo?via=proxy", seen.path)
      assert.matches("tinyproxy", res.headers.via)
      -- tinyproxy closes its client connection after each response without saying so: GETs
      -- straight after one another may find the kept connection closed, and are sent again
      for i = 1, 5 do
        res = net.request({ url = base .. "/echo?n=" .. i, proxy = proxy })
        assert.equal("/echo?n=" .. i, net.json.decode(res.body).path)
      end
      -- a POST is never sent twice: give the closed connection time to be noticed first
      net.sleep(0.1)
      res = net.request({ url = base .. "/echo", method = "POST", body = "through", proxy = proxy })
      seen = net.json.decode(res.body)
      assert.equal("through", seen.body)
      assert.matches("tinyproxy", seen.headers.via)
      -- https: tinyproxy only relays bytes; TLS (verified with the test CA) is ours end to end
      res = net.request({ url = "https://localhost:" .. srv.port .. "/tunnel", proxy = proxy, tls = CA })
      assert.equal("secret over 2 to /tunnel", res.body)
      assert.is_nil(res.headers.via)
      assert.matches("CONNECT", p:stderr() .. table.concat(p:lines(), "\n"))
      -- a port tinyproxy does not tunnel to: its refusal is reported
      local ok, err = pcall(net.request, { url = "https://localhost:" .. A .. "/", proxy = proxy, tls = CA })
      assert.is_false(ok)
      assert.matches("^protocol: CONNECT localhost:" .. A .. " through the proxy 127%.0%.0%.1:%d+ %(the proxy answered 403%)", err)
    end)
  end)

  -- Runs `src` in a child interpreter with `env` (a list of "name=value") -> its stdout lines.
  local function child_with_env(env, src)
    local file = tmp_path() .. ".lua"
    finally(function() os.remove(file) end)
    local f = assert(io.open(file, "w"))
    f:write('io.stdout:setvbuf("no")\nlocal net = require("net")\nlocal pcall = net.pcall\n', src)
    f:close()
    local argv = { "env" }
    for _, e in ipairs(env) do argv[#argv + 1] = e end
    argv[#argv + 1] = helper.lua_bin()
    argv[#argv + 1] = file
    local p = track(helper.spawn(argv))
    local rc = p:wait(10)
    assert.equal(0, rc, p:stderr())
    return p:lines()
  end

  it("takes the proxy from http_proxy / https_proxy, and no_proxy exempts hosts", function()
    helper.bounded(20, function()
      local base = python_servers()
      local srv = tls_server()
      local proxy = tinyproxy(srv.port)
      local src = ([[
local r = net.request(%q)
print(net.json.decode(r.body).headers.via or "direct")
r = net.request({ url = %q, tls = { ca_file = %q } })
print(r.body)
]]):format(base .. "/echo", "https://localhost:" .. srv.port .. "/env", CA.ca_file)
      local clear = { "-u", "no_proxy", "-u", "NO_PROXY", "-u", "all_proxy", "-u", "ALL_PROXY", "-u", "HTTP_PROXY",
        "-u", "HTTPS_PROXY" }
      local function env(...)
        local t = {}
        for _, v in ipairs(clear) do t[#t + 1] = v end
        for _, v in ipairs({ ... }) do t[#t + 1] = v end
        return t
      end
      local lines = child_with_env(env("http_proxy=" .. proxy, "https_proxy=" .. proxy), src)
      assert.matches("tinyproxy", lines[1])
      assert.equal("secret over 2 to /env", lines[2])
      -- the tunnel went through the proxy: with a proxy that is not there, https fails
      local dead = "http://127.0.0.1:" .. helper.free_port()
      local file_src = 'print(pcall(net.request, { url = "https://localhost:' .. srv.port .. '/", tls = { ca_file = "' ..
        CA.ca_file .. '" } }))'
      lines = child_with_env(env("https_proxy=" .. dead), file_src)
      assert.matches("^false\trefused:", lines[1])
      -- no_proxy exempts both hosts: straight to the servers
      lines = child_with_env(env("http_proxy=" .. dead, "https_proxy=" .. dead, "no_proxy=example.com,127.0.0.1,localhost"), src)
      assert.same({ "direct", "secret over 2 to /env" }, lines)
      -- proxy = false overrides the environment
      lines = child_with_env(env("http_proxy=" .. dead), ('print(net.request({ url = %q, proxy = false }).status)')
        :format(base .. "/echo"))
      assert.same({ "200" }, lines)
    end)
  end)
end)
