-- net.serve and net.request against each other: Lune's request and serve behaviours (methods,
-- query with emoji, status codes, redirects, headers, non-blocking serve, stop, 100 requests),
-- WebSocket hand-over, streamed bodies both ways, HTTP/2 over TLS, the pool, limits, bad
-- arguments. Foreign peers (curl, nghttp, Python, tinyproxy) are in http_peers_spec.lua.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local s = helper.scope(5000)
after_each(s.cleanup)

local pem = helper.pki() -- the test PKI (lua-tests/fixtures/make-certs.sh)

-- A server for the test (stopped by the scope's cleanup) and its base URL.
local function serve(handler, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if type(handler) == "function" then o.handleRequest = handler end
  local h = s.track(net.serve(0, o))
  return h, "http://127.0.0.1:" .. h.port
end

-- Echoes what the server saw, as JSON.
local function echo(req)
  return {
    status = 200,
    headers = { ["content-type"] = "application/json" },
    body = net.json.encode({ method = req.method, path = req.path, query = req.query, headers = req.headers,
      body = req.body, version = req.version, ip = req.ip }),
  }
end

describe("net.serve", function()
  it("does not block, and a plain script's net.request is served while it waits", function()
    local h, base = serve(function(req) return "Echo:\n" .. req.body end)
    assert.is_number(h.port)
    assert.equal("127.0.0.1", h.ip)
    assert.matches("^http.server{127.0.0.1:%d+}$", tostring(h))
    local r = net.request({ url = base, method = "POST", body = "hello" })
    assert.equal("Echo:\nhello", r.body)
    assert.equal(200, r.status)
    assert.equal("text/plain; charset=utf-8", r.headers["content-type"])
  end)

  it("gives the handler method, path, query, headers, body, ip and port", function()
    local seen
    local _, base = serve(function(req) seen = req; return "ok" end)
    net.request({ url = base .. "/a/b%20c?x=1&y=%F0%9F%98%80&x=2&flag", method = "put", body = "data",
      headers = { ["X-Custom"] = "v" } })
    assert.equal("PUT", seen.method)
    assert.equal("/a/b%20c", seen.path)
    assert.same({ "1", "2" }, seen.query.x)
    assert.equal("😀", seen.query.y)
    assert.equal("", seen.query.flag)
    assert.equal("v", seen.headers["x-custom"])
    assert.equal("data", seen.body)
    assert.equal("127.0.0.1", seen.ip)
    assert.is_number(seen.port)
    assert.equal("1.1", seen.version)
  end)

  it("answers {status, headers, body}: repeated headers, statuses 100..599, empty bodies", function()
    local _, base = serve(function(req)
      local code = tonumber(req.path:sub(2))
      return { status = code, headers = { ["x-list"] = { "a", "b" }, ["x-n"] = 5 }, body = code == 204 and nil or "c" .. code }
    end)
    for _, code in ipairs({ 200, 201, 204, 400, 404, 418, 500, 503, 599 }) do
      local r = net.request(base .. "/" .. code)
      assert.equal(code, r.status)
      assert.equal(code, r.statusCode)
      assert.equal(code >= 200 and code < 300, r.ok)
      assert.equal(r.ok, r:is_success())
      assert.same({ "a", "b" }, r.headers["x-list"])
      assert.equal("5", r.headers["x-n"])
      assert.equal(code == 204 and "" or "c" .. code, r.body)
    end
    assert.equal("Not Found", net.request(base .. "/404").statusMessage)
    assert.equal("I'm a teapot", net.request(base .. "/418").statusMessage)
  end)

  it("answers 500 when the handler raises or returns nonsense, and goes on", function()
    local _, base = serve(function(req)
      if req.path == "/raise" then error("boom") end
      if req.path == "/nil" then return nil end
      if req.path == "/status" then return { status = 99 } end
      if req.path == "/header" then return { headers = { ["bad name"] = "x" } } end
      return "fine"
    end)
    for _, p in ipairs({ "/raise", "/nil", "/status", "/header" }) do
      assert.equal(500, net.request(base .. p).status)
    end
    assert.equal("fine", net.request(base .. "/").body)
  end)

  it("serves 100 requests in a row on one kept-alive connection, and 100 at once", function()
    local ports = {}
    local _, base = serve(function(req) ports[req.port] = true; return req.query.i end)
    for i = 1, 100 do
      assert.equal(tostring(i), net.request(base .. "/?i=" .. i).body)
    end
    local n = 0
    for _ in pairs(ports) do n = n + 1 end
    assert.equal(1, n) -- the pool reused one connection
    helper.bounded(10, function()
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = net.spawn(function() return net.request(base .. "/?i=" .. i).body end)
      end
      for i = 1, 100 do assert.equal(tostring(i), tasks[i]:join()) end
    end)
  end)

  it("keeps serving while one handler never returns", function()
    local _, base = serve(function(req)
      if req.path == "/stuck" then net.sleep(3600) end
      return "quick"
    end)
    helper.bounded(5, function()
      local stuck = net.spawn(function() return net.request({ url = base .. "/stuck", timeout = 300 }) end)
      for _ = 1, 5 do assert.equal("quick", net.request(base .. "/").body) end
      local ok, e = pcall(stuck.join, stuck)
      assert.is_false(ok)
      assert.matches("^timeout: GET http://127.0.0.1:%d+/stuck timed out after 300 ms", e)
    end)
  end)

  it("stop(): new connections are refused, a request in flight finishes, a second stop raises", function()
    local h, base = serve(function(req)
      if req.path == "/slow" then net.sleep(0.3) end
      return "done " .. req.path
    end)
    helper.bounded(5, function()
      local slow = net.spawn(function() return net.request(base .. "/slow").body end)
      net.sleep(0.1)
      h:stop()
      assert.matches("^refused: ", helper.err_of(net.request, { url = base .. "/", redirects = false }))
      assert.equal("done /slow", slow:join())
    end)
    assert.matches("^closed: ", helper.err_of(h.stop, h))
    h:close() -- harmless
    assert.matches("stopped", tostring(h))
  end)

  it("net.run() returns once the server is stopped", function()
    local code, out, err = helper.child([[
      local net = require("net")
      local h = net.serve(0, function() return "x" end)
      net.spawn(function()
        print(net.request("http://127.0.0.1:" .. h.port .. "/").body)
        h:stop()
      end)
      net.run()
      print("returned")
    ]], 10)
    assert.equal(0, code, err)
    assert.equal("x\nreturned", (out:gsub("\n$", "")))
  end)

  it("streams a body function as chunks (server-sent events)", function()
    local _, base = serve(function()
      local i = 0
      return { headers = { ["content-type"] = "text/event-stream" }, body = function()
        i = i + 1
        if i > 3 then return nil end
        if i > 1 then net.sleep(0.05) end
        return "data: " .. i .. "\n\n"
      end }
    end)
    helper.bounded(5, function()
      local r = net.request({ url = base, stream = true })
      assert.is_nil(r.body)
      local events, next_line = {}, r:lines()
      local line = next_line() -- a while loop: Lua 5.1 cannot wait inside a for iterator
      while line do
        if line ~= "" then events[#events + 1] = line end
        line = next_line()
      end
      assert.same({ "data: 1", "data: 2", "data: 3" }, events)
      assert.is_nil(r:read())
    end)
  end)

  it("a body function that raises cuts the response short: the client sees an error", function()
    local _, base = serve(function()
      local i = 0
      return { body = function()
        i = i + 1
        if i == 3 then error("producer broke") end
        return "chunk" .. i
      end }
    end)
    local e = helper.err_of(net.request, base)
    assert.matches("^%a+: ", e)
  end)

  it("hands upgrades to handleWebSocket with the request's path and query", function()
    local _, base = serve(echo, { handleWebSocket = function(ws)
      local r = ws.request
      assert(r.method == "GET" and r.path == "/room" and r.query.id == "7" and r.headers.upgrade == "websocket")
      ws:send(ws.path .. "?" .. ws.query)
      local m = ws:recv()
      ws:send("echo " .. m.data)
      ws:close()
    end })
    local port = base:match("%d+$")
    helper.bounded(5, function()
      local ws = s.track(net.ws.connect("ws://127.0.0.1:" .. port .. "/room?id=7", { timeout = 3000 }))
      ws:set_timeout(3000)
      assert.equal("/room?id=7", ws:recv().data)
      ws:send("hi")
      assert.equal("echo hi", ws:recv().data)
      -- Plain requests still reach handleRequest.
      assert.equal("GET", net.request(base .. "/x"):json().method)
    end)
  end)

  it("with stream = true, handlers read large request bodies piece by piece, within body_bytes", function()
    local _, base = serve(function(req)
      assert.is_nil(req.body)
      local total, pieces = 0, 0
      local ok, e = pcall(function()
        while true do
          local piece = req:read(65536)
          if piece == nil then break end
          total, pieces = total + #piece, pieces + 1
        end
      end)
      if not ok then return { status = 413, body = e } end
      return total .. " bytes in " .. (pieces > 1 and "pieces" or "one piece")
    end, { stream = true, limits = { body_bytes = 3000000 } })
    local n = 0
    local r = net.request({ url = base, method = "POST", body = function()
      n = n + 1
      if n > 40 then return nil end
      return string.rep("x", 65536)
    end })
    assert.equal("2621440 bytes in pieces", r.body)
    n = 0
    r = net.request({ url = base, method = "POST", body = function()
      n = n + 1
      if n > 60 then return nil end
      return string.rep("x", 65536)
    end })
    assert.equal(413, r.status)
    assert.matches("^limit: POST /: the body is over 3000000 bytes", r.body)
  end)

  it("with only handleWebSocket, plain requests get 426", function()
    local h = s.track(net.serve(0, { handleWebSocket = function(ws) ws:close() end }))
    local r = net.request("http://127.0.0.1:" .. h.port .. "/")
    assert.equal(426, r.status)
    assert.equal("websocket", r.headers.upgrade)
  end)

  it("answers 413 over body_bytes and 431 over header_bytes", function()
    local _, base = serve(function(req) return "got " .. #req.body end, { limits = { body_bytes = 10, header_bytes = 2048 } })
    assert.equal("got 10", net.request({ url = base, method = "POST", body = string.rep("x", 10) }).body)
    assert.equal(413, net.request({ url = base, method = "POST", body = string.rep("x", 11) }).status)
    local r = net.request({ url = base, headers = { ["x-big"] = string.rep("a", 4000) } })
    assert.equal(431, r.status)
    assert.equal("got 0", net.request(base).body)
  end)

  it("answers 408 to a head that does not finish in header_timeout, and serves others meanwhile", function()
    local h, base = serve(function() return "ok" end, { limits = { header_timeout = 300 } })
    helper.bounded(5, function()
      local c = s.connect(h.port)
      c:write("GET / HTTP/1.1\r\nHost: x\r\n")
      assert.equal("ok", net.request(base).body)
      local t0 = net.now()
      local line = c:read_line()
      assert.equal("HTTP/1.1 408 Request Timeout", line)
      assert.is_true(net.now() - t0 < 1)
    end)
  end)

  it("closes idle keep-alive connections after idle_timeout", function()
    local h = serve(function() return "ok" end, { limits = { idle_timeout = 200 } })
    helper.bounded(5, function()
      local c = s.connect(h.port)
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      local head = c:read_line()
      assert.equal("HTTP/1.1 200 OK", head)
      local t0 = net.now()
      repeat local d = c:read() until d == nil
      assert.is_true(net.now() - t0 < 1.5)
    end)
  end)

  it("answers malformed requests with 400 and keeps serving", function()
    local h, base = serve(function() return "ok" end)
    helper.bounded(5, function()
      local c = s.connect(h.port)
      c:write("NOT HTTP AT ALL\r\n\r\n")
      assert.matches("^HTTP/1.1 400", c:read_line())
      assert.equal("ok", net.request(base).body)
    end)
  end)

  it("refuses bad arguments", function()
    helper.bad_argument(1, "net.serve", "integer expected", net.serve, "x", function() end)
    assert.matches("bad argument #2 to 'net.serve' %(function or table expected, got number%)",
      helper.err_of(net.serve, 0, 5))
    assert.matches("handleRequest or handleWebSocket expected", helper.err_of(net.serve, 0, {}))
    assert.matches("option 'limits.nope': unknown option", helper.err_of(net.serve, 0, { handleRequest = echo, limits = { nope = 1 } }))
    assert.matches("option 'handleRequest': function expected", helper.err_of(net.serve, 0, { handleRequest = 1 }))
  end)

  it("runs thousands of handlers that return, raise, yield, sleep or are abandoned, with GC between", function()
    -- Handlers' coroutines are reused after a normal return: mix every way a handler can end.
    local _, base = serve(function(req)
      local k = tonumber(req.query.k)
      if k % 31 == 0 then error("planned " .. k) end
      if k % 5 == 0 then coroutine.yield() end
      if k % 11 == 0 then net.sleep(0.001) end
      if k % 13 == 0 then net.sleep(5) end -- its client gives up first
      return { status = 200, body = tostring(k) }
    end)
    helper.bounded(30, function()
      for round = 0, 9 do
        local tasks = {}
        for i = 1, 200 do
          local k = round * 200 + i
          tasks[i] = net.spawn(function()
            local ok, r = pcall(net.request, { url = base .. "/?k=" .. k, timeout = 200 })
            if k % 13 == 0 and k % 31 ~= 0 then return ok and "late answer" or "gave up" end
            if k % 31 == 0 then return r.status end
            return r.body
          end)
        end
        collectgarbage()
        for i = 1, 200 do
          local k = round * 200 + i
          local expect = (k % 31 == 0 and 500) or (k % 13 == 0 and "gave up") or tostring(k)
          assert.equal(expect, tasks[i]:join())
        end
        collectgarbage()
      end
    end)
  end)

  it("survives a handler's coroutine resumed from outside, after its request and during another", function()
    local saved, hold = {}, nil
    local _, base = serve(function(req)
      saved[#saved + 1] = coroutine.running()
      if req.query.wait then hold = coroutine.running(); net.sleep(0.2) end
      return "ok " .. #saved
    end)
    helper.bounded(10, function()
      assert.equal("ok 1", net.request(base).body)
      -- Finished: resuming it is refused, whatever coroutine now runs there.
      local ok = coroutine.resume(saved[1])
      assert.is_false(ok)
      local waiting = net.spawn(function() return net.request(base .. "/?wait=1").body end)
      net.sleep(0.05)
      -- Suspended in net.sleep: a foreign resume fails that request (500), not the server.
      pcall(coroutine.resume, hold)
      assert.equal("Internal Server Error\n", waiting:join())
      for i = 1, 5 do assert.matches("^ok %d+$", net.request(base).body) end
    end)
  end)

  it("takes Lune's address form and stays reachable on it", function()
    local h = s.track(net.serve(0, { address = "http://127.0.0.1", handleRequest = function() return "a" end }))
    assert.equal("a", net.request("http://127.0.0.1:" .. h.port).body)
  end)
end)

describe("net.request", function()
  it("sends the methods, a default User-Agent and Accept-Encoding", function()
    local _, base = serve(echo)
    for _, m in ipairs({ "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" }) do
      local r = net.request({ url = base, method = m })
      assert.equal(m, r:json().method)
    end
    local r = net.request({ url = base, method = "HEAD" })
    assert.equal(200, r.status)
    assert.equal("", r.body)
    local j = net.request(base):json()
    assert.matches("^lua%-net/", j.headers["user-agent"])
    assert.equal("gzip, deflate, br", j.headers["accept-encoding"])
    j = net.request({ url = base, decompress = false }):json()
    assert.is_nil(j.headers["accept-encoding"])
    j = net.request({ url = base, headers = { ["User-Agent"] = "mine" } }):json()
    assert.equal("mine", j.headers["user-agent"])
  end)

  it("encodes a query table (repeated keys, emoji) after the URL's own query", function()
    local _, base = serve(echo)
    local j = net.request({ url = base .. "/p?a=1", query = { e = "😀 x&y", list = { "1", "2" }, n = 3 } }):json()
    assert.same({ a = "1", e = "😀 x&y", list = { "1", "2" }, n = "3" }, j.query)
  end)

  it("follows redirects: relative ones keep their query, 303 makes a GET, 307 keeps the body", function()
    local base
    _, base = serve(function(req)
      if req.path == "/rel" then return { status = 302, headers = { location = "/dest?k=v" } } end
      if req.path == "/see" then return { status = 303, headers = { location = base .. "/dest" } } end
      if req.path == "/temp" then return { status = 307, headers = { location = "dest" } } end
      if req.path == "/perm" then return { status = 301, headers = { location = "/dest" } } end
      if req.path:match("^/loop") then
        local n = tonumber(req.path:sub(6)) or 0
        return { status = 302, headers = { location = "/loop" .. (n + 1) } }
      end
      return echo(req)
    end)
    local r = net.request(base .. "/rel")
    assert.equal(200, r.status)
    assert.equal(base .. "/dest?k=v", r.url)
    assert.same({ k = "v" }, r:json().query)
    local j = net.request({ url = base .. "/see", method = "POST", body = "b" }):json()
    assert.equal("GET", j.method)
    assert.equal("", j.body)
    j = net.request({ url = base .. "/perm", method = "POST", body = "b" }):json()
    assert.equal("GET", j.method)
    j = net.request({ url = base .. "/temp", method = "POST", body = "keep me" }):json()
    assert.equal("POST", j.method)
    assert.equal("keep me", j.body)
    -- Ten redirects are followed; the eleventh response is returned as it is.
    r = net.request(base .. "/loop")
    assert.equal(302, r.status)
    assert.equal(base .. "/loop10", r.url)
    r = net.request({ url = base .. "/rel", redirects = false })
    assert.equal(302, r.status)
    assert.equal("/dest?k=v", r.headers.location)
  end)

  it("drops Authorization and Cookie on a redirect to another origin, keeps them on the same", function()
    local _, other = serve(echo)
    local _, base = serve(function(req)
      if req.path == "/away" then return { status = 302, headers = { location = other .. "/there" } } end
      if req.path == "/here" then return { status = 302, headers = { location = "/echo" } } end
      return echo(req)
    end)
    local auth = { Authorization = "Bearer t", Cookie = "c=1", ["X-Keep"] = "k" }
    local j = net.request({ url = base .. "/away", headers = auth }):json()
    assert.equal("/there", j.path)
    assert.is_nil(j.headers.authorization)
    assert.is_nil(j.headers.cookie)
    assert.equal("k", j.headers["x-keep"])
    j = net.request({ url = base .. "/here", headers = auth }):json()
    assert.equal("Bearer t", j.headers.authorization)
    assert.equal("c=1", j.headers.cookie)
  end)

  it("sends a body from a function and from a file", function()
    local _, base = serve(function(req) return #req.body .. ":" .. req.body:sub(1, 12) end)
    local parts = { "one,", "two,", "three" }
    local i = 0
    local r = net.request({ url = base, method = "POST", body = function() i = i + 1; return parts[i] end })
    assert.equal("13:one,two,thre", r.body)
    local path = os.tmpname()
    local f = io.open(path, "wb")
    f:write(string.rep("0123456789", 50000))
    f:close()
    r = net.request({ url = base, method = "PUT", body = { file = path } })
    os.remove(path)
    assert.equal("500000:012345678901", r.body)
  end)

  it("reads a large streamed body piece by piece", function()
    local _, base = serve(function()
      local n = 0
      return { body = function()
        n = n + 1
        if n > 64 then return nil end
        return string.rep(string.char(64 + n % 26), 16384)
      end }
    end)
    helper.bounded(10, function()
      local r = net.request({ url = base, stream = true })
      local total, pieces = 0, 0
      while true do
        local piece = r:read(10000)
        if piece == nil then break end
        assert.is_true(#piece <= 10000)
        total, pieces = total + #piece, pieces + 1
      end
      assert.equal(64 * 16384, total)
      assert.is_true(pieces >= 105)
      r:close()
      assert.matches("^closed: ", helper.err_of(r.read, r))
    end)
  end)

  it("raises only when no response came: refused, timeout, bad arguments", function()
    local port = helper.free_port()
    assert.matches("^refused: connect to 127.0.0.1:" .. port, helper.err_of(net.request, "http://127.0.0.1:" .. port .. "/"))
    local _, base = serve(function() net.sleep(1); return "late" end)
    assert.matches("^timeout: GET " .. base:gsub("%p", "%%%0") .. "/ timed out after 100 ms",
      helper.err_of(net.request, { url = base, timeout = 100 }))
    helper.bad_argument(1, "net.request", "string or table expected", net.request, 5)
    assert.matches("http:// or https:// URL expected", helper.err_of(net.request, "ftp://x/"))
    assert.matches("bad argument #1 to 'net.request' %(invalid URL \"not a url\"", helper.err_of(net.request, "not a url"))
    assert.matches("option 'method': invalid method", helper.err_of(net.request, { url = base, method = "B A D" }))
    assert.matches("option 'headers': invalid header name", helper.err_of(net.request, { url = base, headers = { ["a b"] = "x" } }))
    assert.matches("option 'body'", helper.err_of(net.request, { url = base, body = 5 }))
  end)

  it("replaces a pooled connection the server closed, transparently", function()
    local h, base = serve(function() return "fresh" end, { limits = { idle_timeout = 100 } })
    helper.bounded(5, function()
      assert.equal("fresh", net.request(base).body)
      net.sleep(0.3) -- the server closed the idle connection meanwhile
      assert.equal("fresh", net.request(base).body)
      assert.equal("fresh", net.request({ url = base, method = "POST", body = "x" }).body)
    end)
    assert.is_truthy(h)
  end)

  it("speaks HTTP/2 over TLS (ALPN) to net.serve, verifying with the CA", function()
    local h = s.track(net.serve(0, { tls = { cert = pem("server.pem"), key = pem("server.key") }, handleRequest = echo }))
    local url = "https://localhost:" .. h.port .. "/h2"
    local r = net.request({ url = url, tls = { ca_file = pem("ca.pem") } })
    assert.equal("2", r.version)
    assert.equal("2", r:json().version)
    assert.matches("^tls: ", helper.err_of(net.request, url))
    r = net.request({ url = url, tls = { verify = false, alpn = { "http/1.1" } } })
    assert.equal("1.1", r.version)
    -- Requests started together on a cold pool wait for the first connection, and share it.
    local ports = {}
    local cold = s.track(net.serve(0, { tls = { cert = pem("server.pem"), key = pem("server.key") },
      handleRequest = function(req) ports[req.port] = true; return "ok" end }))
    helper.bounded(10, function()
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = net.spawn(function()
          return net.request({ url = "https://localhost:" .. cold.port .. "/", tls = { ca_file = pem("ca.pem") } }).body
        end)
      end
      for i = 1, 10 do assert.equal("ok", tasks[i]:join()) end
    end)
    local n = 0
    for _ in pairs(ports) do n = n + 1 end
    assert.equal(1, n)
    -- Concurrent requests share the origin's one HTTP/2 connection.
    helper.bounded(10, function()
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = net.spawn(function() return net.request({ url = url .. "?i=" .. i, tls = { ca_file = pem("ca.pem") } }):json().query.i end)
      end
      for i = 1, 20 do assert.equal(tostring(i), tasks[i]:join()) end
    end)
  end)

  it("survives garbage collection between steps and thousands of short requests", function()
    local _, base = serve(function(req) return req.query.i end)
    helper.bounded(20, function()
      for round = 1, 20 do
        local tasks = {}
        for i = 1, 100 do
          tasks[i] = net.spawn(function() return net.request(base .. "/?i=" .. (round * 1000 + i)).body end)
        end
        collectgarbage()
        for i = 1, 100 do assert.equal(tostring(round * 1000 + i), tasks[i]:join()) end
        collectgarbage()
      end
    end)
  end)
end)

describe("net.http", function()
  it("get/post/put/patch/delete/head and the builder", function()
    local _, base = serve(echo)
    assert.equal("GET", net.http.get(base):json().method)
    assert.equal("b", net.http.post(base, "b"):json().body)
    assert.equal("PUT", net.http.put(base, "b"):json().method)
    assert.equal("PATCH", net.http.patch(base, "b"):json().method)
    assert.equal("DELETE", net.http.delete(base):json().method)
    assert.equal(200, net.http.head(base).status)
    local r = net.http.request(base .. "/b"):method("POST"):header("X-A", "1"):headers({ ["X-B"] = "2" })
      :query("page", 1):query("tag", "x"):query("tag", "y"):json({ name = "Alice" }):timeout(2000):send()
    local j = r:json()
    assert.equal("POST", j.method)
    assert.equal("1", j.headers["x-a"])
    assert.equal("2", j.headers["x-b"])
    assert.equal("application/json", j.headers["content-type"])
    assert.same({ page = "1", tag = { "x", "y" } }, j.query)
    assert.same({ name = "Alice" }, net.json.decode(j.body))
    -- post(url) without a body is a builder (seed 002: http::post(url).json(user).send()).
    assert.equal("POST", net.http.post(base):json({ a = 1 }):send():json().method)
  end)

  it("download streams to a file, reports progress and resumes with Range", function()
    local data = string.rep("abcdefghij", 30000)
    local _, base = serve(function(req)
      local range = req.headers.range
      if range then
        local from = tonumber(range:match("bytes=(%d+)%-"))
        return { status = 206, headers = { ["content-range"] = "bytes " .. from .. "-" .. (#data - 1) .. "/" .. #data },
          body = data:sub(from + 1) }
      end
      return data
    end)
    local path = os.tmpname()
    local calls, last_done, last_total = 0, 0, nil
    local r = net.http.download(base .. "/f", path, { on_progress = function(done, total)
      calls, last_done, last_total = calls + 1, done, total
    end })
    assert.equal(200, r.status)
    assert.equal(#data, r.bytes)
    assert.is_nil(r.body)
    assert.equal(data, helper.read_file(path))
    assert.is_true(calls >= 1)
    assert.equal(#data, last_done)
    assert.equal(#data, last_total)
    -- Resume: keep the first 1000 bytes, fetch the rest.
    local f = io.open(path, "wb")
    f:write(data:sub(1, 1000))
    f:close()
    r = net.http.download(base .. "/f", path, { resume = true })
    assert.equal(206, r.status)
    assert.equal(#data - 1000, r.bytes)
    assert.equal(data, helper.read_file(path))
    os.remove(path)
    -- A failed status writes nothing.
    local _, missing = serve(function() return { status = 404, body = "nope" } end)
    r = net.http.download(missing .. "/x", path)
    assert.equal(404, r.status)
    assert.is_nil(helper.read_file(path))
  end)
end)
