-- net.serve against real foreign HTTP clients on 127.0.0.1: curl (HTTP/1.1 keep-alive, h2c by
-- prior knowledge, h2 over TLS by ALPN, uploads, chunked uploads, server-sent events arriving as
-- they are produced), nghttp (h2c and h2 over TLS, multiplexing), Python's http.client and
-- urllib; then hostile and heavy clients on raw sockets: garbage, oversized heads and bodies, a
-- slowloris, a thousand clients at once, a handler that never returns.
-- The client side of HTTP against foreign servers and a proxy is http_peers_client_spec.lua.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)
local read_file = helper.read_file

local have = helper.have
local HAVE = { curl = have("curl"), nghttp = have("nghttp"), python = have("python3") }

local pem = helper.pki() -- the test PKI (lua-tests/fixtures/make-certs.sh)
local TLS = { cert = pem("server.pem"), key = pem("server.key") }

-- Every server a test starts is stopped after it; every peer killed (in `finally` too).
local servers, peers = {}, {}
after_each(function()
  for i = #servers, 1, -1 do pcall(servers[i].stop, servers[i]); servers[i] = nil end
  for i = #peers, 1, -1 do peers[i]:kill(); peers[i] = nil end
end)
local function serve(opts)
  local srv = net.serve(0, opts)
  servers[#servers + 1] = srv
  return srv
end

-- Runs argv to its end (driving the loop meanwhile) -> exit code, stdout, stderr.
local function run(argv, seconds)
  local p = helper.spawn(argv)
  peers[#peers + 1] = p
  local ok, rc = pcall(p.wait, p, seconds or 10)
  local out, err = read_file(p.out) or "", p:stderr()
  p:kill()
  if not ok then error(argv[1] .. " did not finish in time; stderr:\n" .. err, 2) end
  return rc, out, err
end
local function start(argv)
  local p = helper.spawn(argv)
  peers[#peers + 1] = p
  return p
end
local function python(src, ...)
  local p = helper.python(src, ...)
  peers[#peers + 1] = p
  return p
end

local function tmpfile(data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  finally(function() os.remove(path) end)
  return path
end

-- A request echoed back: the body as it came, what the server saw in x- headers.
local function echo(req)
  return {
    status = 200,
    headers = {
      ["content-type"] = "application/octet-stream",
      ["x-method"] = req.method, ["x-version"] = req.version, ["x-len"] = #req.body,
      ["x-te"] = req.headers["transfer-encoding"] or "", ["x-port"] = req.port,
    },
    body = req.body,
  }
end

-- 300 KB of every byte value, not a multiple of any buffer size.
local PAYLOAD = helper.ALL_BYTES:rep(1200) .. "tail"

describe("curl as a client of net.serve", function()
  if not HAVE.curl then pending("curl not installed") return end

  it("keeps an HTTP/1.1 connection alive across two URLs", function()
    helper.bounded(10, function()
      local ports = {}
      local srv = serve(function(req)
        ports[#ports + 1] = req.port
        return req.path .. " over " .. req.version .. "\n"
      end)
      local base = "http://127.0.0.1:" .. srv.port
      local rc, out, err = run({ "curl", "-sS", "-v", base .. "/one", base .. "/two" })
      assert.equal(0, rc, err)
      assert.equal("/one over 1.1\n/two over 1.1\n", out)
      assert.matches("Re%-using existing connection", err)
      assert.equal(2, #ports)
      assert.equal(ports[1], ports[2]) -- the same client port: one connection
    end)
  end)

  it("speaks h2c to --http2-prior-knowledge", function()
    helper.bounded(10, function()
      local srv = serve(echo)
      local body = tmpfile(PAYLOAD)
      local got = os.tmpname()
      finally(function() os.remove(got) end)
      local rc, out, err = run({ "curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@" .. body,
        "-o", got, "-D", "-", "-w", "version=%{http_version}\n", "http://127.0.0.1:" .. srv.port .. "/up" })
      assert.equal(0, rc, err)
      assert.matches("^HTTP/2 200", out)
      assert.matches("x%-version: 2\r\n", out)
      assert.matches("x%-method: POST\r\n", out)
      assert.matches("version=2\n", out)
      assert.equal(PAYLOAD, read_file(got))
    end)
  end)

  it("speaks h2 over TLS (ALPN) and HTTP/1.1 over TLS, the certificate verified by curl", function()
    helper.bounded(10, function()
      local srv = serve({ handleRequest = echo, tls = TLS })
      local url = "https://localhost:" .. srv.port .. "/tls"
      for _, case in ipairs({ { "--http2", "2" }, { "--http1.1", "1.1" } }) do
        local body, got = tmpfile(PAYLOAD .. case[2]), os.tmpname()
        local rc, out, err = run({ "curl", "-sS", case[1], "--cacert", pem("ca.pem"), "--data-binary", "@" .. body,
          "-o", got, "-D", "-", "-w", "version=%{http_version}\n", url })
        local echoed = read_file(got)
        os.remove(got)
        assert.equal(0, rc, err)
        assert.matches("x%-version: " .. case[2]:gsub("%.", "%%.") .. "\r\n", out)
        assert.matches("version=" .. case[2]:gsub("%.", "%%.") .. "\n", out)
        assert.equal(PAYLOAD .. case[2], echoed)
      end
    end)
  end)

  it("receives POST bodies whole, with and without chunked transfer coding", function()
    helper.bounded(10, function()
      local srv = serve(echo)
      local body = tmpfile(PAYLOAD)
      local url = "http://127.0.0.1:" .. srv.port .. "/post"
      for _, chunked in ipairs({ false, true }) do
        local got = os.tmpname()
        local argv = { "curl", "-sS", "--http1.1", "--data-binary", "@" .. body, "-o", got, "-D", "-", url }
        if chunked then table.insert(argv, 2, "Transfer-Encoding: chunked"); table.insert(argv, 2, "-H") end
        local rc, out, err = run(argv)
        local echoed = read_file(got)
        os.remove(got)
        assert.equal(0, rc, err)
        assert.matches("x%-len: " .. #PAYLOAD .. "\r\n", out)
        assert.matches("x%-te: " .. (chunked and "chunked" or "") .. "\r\n", out)
        assert.equal(PAYLOAD, echoed)
      end
    end)
  end)

  it("answers Expect: 100-continue: takes a 3 MB upload, refuses one over the limit unsent", function()
    helper.bounded(10, function()
      local big = tmpfile(PAYLOAD:rep(10))
      local srv = serve(echo)
      local small = serve({ handleRequest = echo, limits = { body_bytes = 100000 } })
      -- curl asks first (Expect: 100-continue) for bodies over 1 MiB
      local got = os.tmpname()
      finally(function() os.remove(got) end)
      local rc, out, err = run({ "curl", "-sS", "-v", "--data-binary", "@" .. big, "-o", got,
        "-w", "%{http_code}", "http://127.0.0.1:" .. srv.port .. "/" })
      assert.equal(0, rc, err)
      assert.matches("> Expect: 100%-continue", err)
      assert.matches("< HTTP/1%.1 100 Continue", err)
      assert.equal("200", out)
      assert.is_true(read_file(got) == PAYLOAD:rep(10))
      rc, out, err = run({ "curl", "-sS", "-v", "--data-binary", "@" .. big, "-w", "\n%{http_code} %{size_upload}",
        "http://127.0.0.1:" .. small.port .. "/" })
      assert.equal(0, rc, err)
      assert.equal("Payload Too Large\n\n413 0", out) -- answered before a byte of the body was sent
    end)
  end)

  it("stops a streamed body's producer when the client leaves", function()
    helper.bounded(10, function()
      local calls = 0
      local srv = serve(function()
        return {
          headers = { ["content-type"] = "text/event-stream" },
          body = function()
            calls = calls + 1
            net.sleep(0.05)
            return "data: " .. calls .. "\n\n"
          end,
        }
      end)
      local rc = run({ "curl", "-sS", "-N", "--max-time", "0.5", "http://127.0.0.1:" .. srv.port .. "/forever" })
      assert.equal(28, rc) -- curl's "operation timed out"
      net.sleep(0.2)
      local after = calls
      assert.is_true(after > 3, "the producer ran only " .. after .. " times")
      net.sleep(0.5)
      assert.equal(after, calls, "the producer went on after the client left")
    end)
  end)

  it("gets a streamed (function) body piece by piece: the first event before the last is made", function()
    helper.bounded(10, function()
      local made = {}
      local srv = serve(function()
        local i = 0
        return {
          headers = { ["content-type"] = "text/event-stream", ["cache-control"] = "no-cache" },
          body = function()
            if i > 0 then net.sleep(0.3) end
            if i == 4 then return nil end
            made[i] = net.now()
            i = i + 1
            return "data: event " .. (i - 1) .. "\n\n"
          end,
        }
      end)
      local p = start({ "curl", "-sS", "-N", "http://127.0.0.1:" .. srv.port .. "/events" })
      local first = helper.wait_until(5, function()
        for _, l in ipairs(p:lines()) do if l == "data: event 0" then return net.now() end end
      end, 0.01)
      assert.truthy(first, "the first event never came; curl said: " .. p:stderr())
      assert.equal(0, p:wait(5))
      assert.equal("data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n", read_file(p.out))
      assert.is_true(first < made[3], "the first event came only after the last was produced")
      assert.is_true(first - made[0] < 0.25, "the first event took " .. (first - made[0]) .. " s to arrive")
    end)
  end)
end)

describe("HEAD from curl and nghttp", function()
  if not (HAVE.curl and HAVE.nghttp) then pending("curl or nghttp not installed") return end

  it("gets the headers alone, with the body's length, over HTTP/1.1, h2c and h2", function()
    helper.bounded(10, function()
      local calls = 0
      local function app(req)
        if req.path == "/stream" then
          return { headers = { ["x-method"] = req.method }, body = function()
            calls = calls + 1
            net.sleep(0.01)
            if calls < 100 then return "chunk\n" end
          end }
        end
        return { headers = { ["x-method"] = req.method }, body = "twenty bytes of body" }
      end
      local plain, tls = serve(app), serve({ handleRequest = app, tls = TLS })
      local url = "http://127.0.0.1:" .. plain.port
      for _, how in ipairs({ "--http1.1", "--http2-prior-knowledge" }) do
        local rc, out, err = run({ "curl", "-sS", "-I", how, url .. "/" })
        assert.equal(0, rc, err)
        assert.matches("x%-method: HEAD\r\n", out)
        assert.matches("content%-length: 20\r\n", out)
        assert.matches("\r\n\r\n$", out)
        rc, out, err = run({ "curl", "-sS", "-I", how, url .. "/stream" })
        assert.equal(0, rc, err)
        assert.matches("x%-method: HEAD\r\n", out)
      end
      local rc, out, err = run({ "nghttp", "-v", "-H", ":method: HEAD", "https://127.0.0.1:" .. tls.port .. "/" })
      assert.equal(0, rc, err)
      assert.matches("content%-length: 20", out)
      assert.matches("recv HEADERS frame [^\n]*\n%s*; END_STREAM", out) -- no DATA after the headers
      assert.is_nil(out:find("RST_STREAM"))
      net.sleep(0.1)
      assert.is_true(calls < 5, "a HEAD response's body was produced " .. calls .. " times")
    end)
  end)
end)

describe("nghttp as a client of net.serve", function()
  if not HAVE.nghttp then pending("nghttp not installed") return end

  it("speaks h2c by prior knowledge, several streams on one connection", function()
    helper.bounded(10, function()
      local seen = {}
      local srv = serve(function(req)
        seen[#seen + 1] = req
        return "stream " .. req.path .. " over " .. req.version .. "\n"
      end)
      local base = "http://127.0.0.1:" .. srv.port
      local rc, out, err = run({ "nghttp", "-n", "-v", base .. "/a", base .. "/b", base .. "/c" })
      assert.equal(0, rc, err .. out)
      assert.matches("recv SETTINGS frame", out)
      assert.equal(3, #seen)
      for _, req in ipairs(seen) do
        assert.equal("2", req.version)
        assert.equal(seen[1].port, req.port) -- multiplexed on one connection
      end
      local rc2, out2 = run({ "nghttp", base .. "/a" })
      assert.equal(0, rc2)
      assert.equal("stream /a over 2\n", out2)
    end)
  end)

  it("speaks h2 over TLS and takes an upload (-d)", function()
    helper.bounded(10, function()
      local srv = serve({ handleRequest = echo, tls = TLS })
      local body = tmpfile(PAYLOAD)
      local rc, out, err = run({ "nghttp", "-d", body, "https://127.0.0.1:" .. srv.port .. "/up" })
      assert.equal(0, rc, err)
      assert.equal(PAYLOAD, out)
      local rc2, out2 = run({ "nghttp", "-v", "-n", "https://localhost:" .. srv.port .. "/" })
      assert.equal(0, rc2)
      assert.matches("The negotiated protocol: h2", out2)
      assert.matches("x%-version: 2", out2)
    end)
  end)

  it("answers an h2 upload over the limit with 413, then RST_STREAM NO_ERROR", function()
    helper.bounded(10, function()
      local srv = serve({ handleRequest = echo, limits = { body_bytes = 100000 } })
      local body = tmpfile(PAYLOAD:rep(10))
      local rc, out, err = run({ "nghttp", "-v", "-d", body, "http://127.0.0.1:" .. srv.port .. "/up" })
      assert.equal(0, rc, err)
      assert.matches(":status: 413", out)
      assert.matches("Payload Too Large", out)
      -- RFC 9113 8.1: a complete response before the whole request, then NO_ERROR
      assert.matches("recv RST_STREAM frame[^\n]*\n%s*%(error_code=NO_ERROR", out)
    end)
  end)

  it("serves other streams of a connection while one handler waits", function()
    helper.bounded(10, function()
      local gate = net.channel()
      finally(function() gate:close() end)
      local srv = serve(function(req)
        if req.path == "/slow" then gate:receive() return "slow done\n" end
        return "fast done\n"
      end)
      local base = "http://127.0.0.1:" .. srv.port
      -- stdbuf: nghttp writes bodies with stdio, which holds them back when stdout is a file
      local p = start({ "stdbuf", "-o0", "nghttp", base .. "/slow", base .. "/fast" })
      local fast = helper.wait_until(5, function() return (read_file(p.out) or ""):find("fast done") end, 0.01)
      assert.truthy(fast, "the fast stream waited for the slow one: " .. p:stderr())
      assert.is_nil((read_file(p.out) or ""):find("slow done"))
      gate:send(true)
      assert.equal(0, p:wait(5))
      assert.matches("slow done", read_file(p.out))
    end)
  end)
end)

describe("Python's http.client and urllib as clients of net.serve", function()
  if not HAVE.python then pending("python3 not installed") return end

  local function app(req)
    local code = tonumber(req.path:match("^/status/(%d+)$"))
    if code then
      return { status = code, headers = { ["x-code"] = code }, body = code ~= 204 and ("status " .. code) or nil }
    end
    return {
      headers = { ["content-type"] = "application/json", ["set-cookie"] = { "a=1", "b=2" } },
      body = net.json.encode({
        method = req.method, path = req.path, query = req.query, body = req.body, port = req.port,
        custom = req.headers["x-custom"] or net.json.null, multi = req.headers["x-multi"] or net.json.null,
      }),
    }
  end

  it("serves methods, headers, an emoji query and status codes on one kept-alive connection", function()
    helper.bounded(15, function()
      local srv = serve(app)
      local p = python([[
import http.client, json, sys, urllib.parse
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
out = []
def go(method, path, body=None, headers={}):
    c.putrequest(method, path)
    for k, v in headers:
        c.putheader(k, v)
    if body is not None:
        c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    data = r.read()
    out.append({"status": r.status, "reason": r.reason, "body": data.decode(),
                "cookies": r.headers.get_all("set-cookie") or [], "code": r.getheader("x-code")})
q = "/q?name=" + urllib.parse.quote("😀 grüße & co") + "&tag=a&tag=b&empty="
go("GET", q, headers=[("X-Custom", "ünï".encode().decode("latin-1")), ("X-Multi", "1"), ("X-Multi", "2")])
for m in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
    go(m, "/m", body=("body of " + m).encode())
go("HEAD", "/m")
for code in [201, 204, 301, 404, 418, 503]:
    go("GET", "/status/%d" % code)
print(json.dumps(out))
]], tostring(srv.port))
      local line = p:wait_line(10)
      local out = net.json.decode(line)
      local q = net.json.decode(out[1].body)
      assert.equal("/q", q.path)
      assert.same({ name = "😀 grüße & co", tag = { "a", "b" }, empty = "" }, q.query)
      assert.equal("ünï", q.custom)
      assert.equal("1, 2", q.multi)
      assert.same({ "a=1", "b=2" }, out[1].cookies)
      local port = q.port
      for i, m in ipairs({ "POST", "PUT", "PATCH", "DELETE", "OPTIONS" }) do
        local r = net.json.decode(out[i + 1].body)
        assert.equal(200, out[i + 1].status)
        assert.equal(m, r.method)
        assert.equal("body of " .. m, r.body)
        assert.equal(port, r.port) -- http.client kept its one connection
      end
      assert.equal(200, out[7].status)
      assert.equal("", out[7].body) -- HEAD: no body
      local want = { { 201, "Created" }, { 204, "No Content" }, { 301, "Moved Permanently" }, { 404, "Not Found" },
        { 418, "I'm a teapot" }, { 503, "Service Unavailable" } }
      for i, w in ipairs(want) do
        local r = out[7 + i]
        assert.equal(w[1], r.status)
        assert.equal(w[2], r.reason)
        assert.equal(tostring(w[1]), r.code)
        assert.equal(w[1] == 204 and "" or ("status " .. w[1]), r.body)
      end
    end)
  end)

  it("answers urllib (POST form, errors as HTTPError, a raising handler as 500)", function()
    helper.bounded(15, function()
      local srv = serve(function(req)
        if req.path == "/boom" then error("handler failure on purpose") end
        return app(req)
      end)
      local p = python([[
import json, sys, urllib.error, urllib.parse, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
out = {}
data = urllib.parse.urlencode({"k": "v w", "emoji": "🎉"}).encode()
with urllib.request.urlopen(urllib.request.Request(base + "/form", data=data), timeout=10) as r:
    out["form"] = json.loads(r.read())
for path in ["/status/404", "/boom"]:
    try:
        urllib.request.urlopen(base + path, timeout=10)
    except urllib.error.HTTPError as e:
        out[path] = [e.code, e.read().decode()]
print(json.dumps(out))
]], tostring(srv.port))
      local out = net.json.decode(p:wait_line(10))
      assert.equal("POST", out.form.method)
      assert.equal("k=v+w&emoji=%F0%9F%8E%89", out.form.body)
      assert.same({ 404, "status 404" }, out["/status/404"])
      assert.equal(500, out["/boom"][1])
    end)
  end)
end)

describe("net.serve and hostile clients", function()
  -- A raw exchange: writes `data`, reads until the server closes (or `seconds` pass).
  local function raw(port, data, seconds)
    local c = net.tcp.connect("127.0.0.1", port, { timeout = 2000 })
    finally(function() c:close() end)
    c:set_timeout(math.floor((seconds or 5) * 1000))
    if data ~= "" then c:write(data) end
    local ok, got = pcall(c.read_all, c)
    c:close()
    assert(ok, got)
    return got
  end
  local LIMITS = { header_bytes = 4096, body_bytes = 100000, header_timeout = "1s" }
  local function small_server()
    return serve({ limits = LIMITS, handleRequest = function(req) return "ok " .. #req.body end })
  end
  local function status_of(answer) return tonumber(answer:match("^HTTP/1%.1 (%d%d%d) ")) end

  it("answers a garbage request line with 400 and goes on serving", function()
    helper.bounded(10, function()
      local srv = small_server()
      assert.equal(400, status_of(raw(srv.port, "HELLO THERE\r\n\r\n")))
      assert.equal(400, status_of(raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")))
      assert.equal(400, status_of(raw(srv.port, "\0\1\2\3\255 / HTTP/1.1\r\n\r\n")))
      local ok = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.equal(200, status_of(ok))
      assert.matches("\r\n\r\nok 0$", ok)
    end)
  end)

  it("answers a head over header_bytes with 431, which reaches the client", function()
    helper.bounded(10, function()
      local srv = small_server()
      local answer = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(8000) .. "\r\n\r\n")
      assert.equal(431, status_of(answer))
      -- a head just under the limit is fine
      answer = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " .. ("a"):rep(3000) .. "\r\n\r\n")
      assert.equal(200, status_of(answer))
    end)
  end)

  it("answers a body over body_bytes with 413 (declared, chunked, and sent whole anyway)", function()
    helper.bounded(10, function()
      local srv = small_server()
      local big = ("b"):rep(150000)
      -- Content-Length over the limit, and the client sends it all before reading
      assert.equal(413, status_of(raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " .. #big ..
        "\r\n\r\n" .. big)))
      -- chunked, over the limit only once read
      local chunks = {}
      for i = 1, 15 do chunks[i] = ("2710\r\n%s\r\n"):format(("c"):rep(10000)) end
      assert.equal(413, status_of(raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
        table.concat(chunks) .. "0\r\n\r\n")))
      -- exactly the limit passes
      local ok = raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n" ..
        ("d"):rep(100000))
      assert.equal(200, status_of(ok))
      assert.matches("ok 100000$", ok)
    end)
  end)

  it("answers a 16 MB upload over the limit with 413 even to a client that writes it all first", function()
    if not HAVE.python then pending("python3 not installed") return end
    helper.bounded(10, function()
      local srv = small_server()
      -- Python writes head and body with one sendall, only then reads: the server must drain
      -- what it does not want instead of resetting the connection over the unread bytes.
      local p = python([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
body = b"x" * (16 * 1024 * 1024)
try:
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
except OSError as e:
    print("send failed:", e, flush=True)
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except OSError as e:
    print("recv failed:", e, flush=True)
print(data.split(b"\r\n")[0].decode(), flush=True)
]], tostring(srv.port))
      assert.equal(0, p:wait(8))
      assert.same({ "HTTP/1.1 413 Payload Too Large" }, p:lines())
    end)
  end)

  it("times a slowloris out with 408 after header_timeout while serving another client", function()
    helper.bounded(10, function()
      local srv = small_server()
      local answer, took
      local loris = net.spawn(function()
        local t0 = net.now()
        answer = raw(srv.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 5)
        took = net.now() - t0
      end)
      net.sleep(0.2)
      local t0 = net.now()
      local res = net.request({ url = "http://127.0.0.1:" .. srv.port .. "/", timeout = 2000 })
      assert.equal("ok 0", res.body)
      assert.is_true(net.now() - t0 < 0.5, "another client waited for the slowloris")
      assert.is_nil(answer)
      loris:join()
      assert.equal(408, status_of(answer))
      assert.is_true(took > 0.9 and took < 3, "the slowloris was cut after " .. took .. " s")
    end)
  end)

  it("answers 1000 concurrent Python clients", function()
    if not HAVE.python then pending("python3 not installed") return end
    helper.bounded(30, function()
      local active, most, served = 0, 0, 0
      local srv = serve(function(req)
        active = active + 1
        if active > most then most = active end
        net.sleep(0.3) -- every client is still waiting when the last one arrives
        active = active - 1
        served = served + 1
        return "hello " .. req.query.i
      end)
      local p = python([[
import resource, socket, sys, threading
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
N = 1000
port = int(sys.argv[1])
ready = threading.Barrier(N)
good = []
bad = []
def client(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        ready.wait()
        s.sendall(b"GET /?i=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        if data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello %d" % i):
            good.append(i)
        else:
            bad.append(data[:40])
    except Exception as e:
        bad.append(repr(e))
threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in threads: t.start()
for t in threads: t.join()
print(len(good), len(bad), repr(bad[:3]), flush=True)
]], tostring(srv.port))
      assert.equal(0, p:wait(25))
      assert.equal("1000 0 []", p:lines()[1])
      assert.equal(1000, served)
      assert.is_true(most >= 500, "only " .. most .. " requests were handled at once")
    end)
  end)

  it("lets a handler that never returns stall only its own request", function()
    helper.bounded(10, function()
      local gate = net.channel()
      finally(function() gate:close() end)
      local srv = serve(function(req)
        if req.path == "/never" then gate:receive() end
        return "answered " .. req.path
      end)
      local base = "http://127.0.0.1:" .. srv.port
      local stuck = net.spawn(function()
        return pcall(net.request, { url = base .. "/never", timeout = 1500 })
      end)
      net.sleep(0.1)
      for i = 1, 5 do
        local t0 = net.now()
        assert.equal("answered /fast" .. i, net.request({ url = base .. "/fast" .. i, timeout = 1000 }).body)
        assert.is_true(net.now() - t0 < 0.5)
      end
      if HAVE.curl then
        local rc, out = run({ "curl", "-sS", "--http2-prior-knowledge", base .. "/h2" })
        assert.equal(0, rc)
        assert.equal("answered /h2", out)
      end
      local ok, err = stuck:join()
      assert.is_false(ok)
      assert.matches("^timeout:", err)
    end)
  end)
end)
