-- The Express-style router (docs/api.md, "Router"): net.http.server() over net.serve.
-- The first half drives apps through app:handler() with hand-made requests (the function
-- net.serve would call); the second serves them over real HTTP to curl, raw TCP clients and
-- net.request, static files included (content types, validators, ranges, every path traversal
-- trick).
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local function call(app, method, path, opts)
  opts = opts or {}
  local req = { method = method, path = path, headers = opts.headers or {}, query = opts.query or {},
    body = opts.body or "", ip = "127.0.0.1", port = 1 }
  return app:handler()(req), req
end

-- Runs fn with io.stderr replaced; returns what was written to it.
local function captured_stderr(fn)
  local real, out = io.stderr, {}
  io.stderr = { write = function(_, ...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end }
  local ok, err = pcall(fn)
  io.stderr = real
  assert(ok, err)
  return table.concat(out)
end

describe("router dispatch", function()
  it("the first matching route answers; others are not run", function()
    local app, ran = net.http.server(), {}
    app:get("/a", function(_, res) ran[#ran + 1] = 1; res:text("first") end)
    app:get("/a", function(_, res) ran[#ran + 1] = 2; res:text("second") end)
    local r = call(app, "GET", "/a")
    assert.are.same({ 200, "first", "text/plain; charset=utf-8" }, { r.status, r.body, r.headers["content-type"] })
    assert.are.same({ 1 }, ran)
  end)

  it("next() falls through to the next matching layer, in registration order", function()
    local app, trace = net.http.server(), {}
    app:use(function(_, _, nxt) trace[#trace + 1] = "mw1"; nxt(); trace[#trace + 1] = "mw1 after" end)
    app:get("/x", function(_, _, nxt) trace[#trace + 1] = "route1"; nxt() end)
    app:get("/y", function() trace[#trace + 1] = "never" end)
    app:use(function(_, _, nxt) trace[#trace + 1] = "mw2"; nxt() end)
    app:all("/x", function(_, res) trace[#trace + 1] = "all"; res:send("done") end)
    local r = call(app, "GET", "/x")
    assert.are.equal("done", r.body)
    assert.are.same({ "mw1", "route1", "mw2", "all", "mw1 after" }, trace)
  end)

  it("a logging middleware reads the final statusCode after next(), 404s included", function()
    local app, seen = net.http.server(), {}
    app:use(function(req, res, nxt)
      assert.are.equal(200, res.statusCode)
      nxt()
      seen[#seen + 1] = req.method .. " " .. req.path .. " " .. res.statusCode
    end)
    app:post("/users", function(_, res) res:status(201):json({ id = 1 }) end)
    app:get("/boom", function() error("broken") end)
    call(app, "POST", "/users")
    call(app, "GET", "/nowhere")
    captured_stderr(function() call(app, "GET", "/boom") end)
    assert.are.same({ "POST /users 201", "GET /nowhere 404", "GET /boom 500" }, seen)
  end)

  it("several handlers on one route run in turn; next('route') skips the rest of them", function()
    local app = net.http.server()
    local function auth(req, res, nxt)
      if req:header("Authorization") ~= "token" then return res:status(401):json({ error = "Unauthorized" }) end
      req.user = "alice"
      nxt()
    end
    app:post("/p", auth, function(req, res) res:status(201):text("by " .. req.user) end)
    app:get("/r", function(_, _, nxt) nxt("route") end, function(_, res) res:text("skipped?") end)
    app:get("/r", function(_, res) res:text("second route") end)
    assert.are.equal(401, call(app, "POST", "/p").status)
    local r = call(app, "POST", "/p", { headers = { authorization = "token" } })
    assert.are.same({ 201, "by alice" }, { r.status, r.body })
    assert.are.equal("second route", call(app, "GET", "/r").body)
  end)

  it("methods: each verb its own, all() any, GET also answers HEAD without a body", function()
    local app = net.http.server()
    for _, m in ipairs({ "get", "post", "put", "patch", "delete", "options" }) do
      app[m](app, "/m", function(req, res) res:text(m .. ":" .. req.method) end)
    end
    app:head("/h", function(_, res) res:status(204):header("x-head", "yes"):send() end)
    app:all("/any", function(req, res) res:text(req.method) end)
    for _, m in ipairs({ "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" }) do
      assert.are.equal(m:lower() .. ":" .. m, call(app, m, "/m").body)
    end
    local r = call(app, "HEAD", "/m")
    assert.are.same({ 200, "", "8" }, { r.status, r.body, r.headers["content-length"] }) -- "get:HEAD"
    r = call(app, "HEAD", "/h")
    assert.are.same({ "yes", nil }, { r.headers["x-head"], r.headers["content-length"] }) -- 204: no length
    assert.are.equal(404, call(app, "GET", "/h").status)
    assert.are.equal("BREW", call(app, "BREW", "/any").body)
    assert.are.equal(404, call(app, "BREW", "/m").status)
  end)

  it(":params take one segment, decoded; a trailing slash is optional; matching is exact", function()
    local app = net.http.server()
    app:get("/users/:id", function(req, res) res:json({ id = req.params.id }) end)
    app:get("/users/:id/posts/:post_id", function(req, res) res:text(req.params.id .. "/" .. req.params.post_id) end)
    app:get("/files/:name.json", function(req, res) res:text("json " .. req.params.name) end)
    app:get("/dash/:from-:to", function(req, res) res:text(req.params.from .. " to " .. req.params.to) end)
    assert.are.equal('{"id":"42"}', call(app, "GET", "/users/42").body)
    assert.are.equal('{"id":"42"}', call(app, "GET", "/users/42/").body)
    assert.are.equal('{"id":"a b/c"}', call(app, "GET", "/users/a%20b%2Fc").body)
    assert.are.equal("7/9", call(app, "GET", "/users/7/posts/9").body)
    assert.are.equal("json report", call(app, "GET", "/files/report.json").body)
    assert.are.equal("a to b", call(app, "GET", "/dash/a-b").body)
    assert.are.equal(404, call(app, "GET", "/users/").status)
    assert.are.equal(404, call(app, "GET", "/users//").status)
    assert.are.equal(404, call(app, "GET", "/users/1/2").status)
    assert.are.equal(404, call(app, "GET", "/Users/1").status)
    assert.are.equal(404, call(app, "GET", "/users1").status)
  end)

  it("* matches the rest of the path, slashes included: req.params[1], [2], ...", function()
    local app = net.http.server()
    app:get("/static/*", function(req, res) res:text("s:" .. req.params[1]) end)
    app:get("/a/*/b/*", function(req, res) res:text(req.params[1] .. "|" .. req.params[2]) end)
    app:all("*", function(req, res) res:text("any:" .. req.params[1]) end)
    assert.are.equal("s:css/site.css", call(app, "GET", "/static/css/site.css").body)
    assert.are.equal("s:", call(app, "GET", "/static/").body)
    assert.are.equal("x/y|z", call(app, "GET", "/a/x/y/b/z").body)
    assert.are.equal("any:/whatever/else", call(app, "DELETE", "/whatever/else").body)
  end)

  it("use(prefix, fn) covers the prefix and what is under it, not longer names", function()
    local app, hits = net.http.server(), {}
    app:use("/api/", function(req, _, nxt) hits[#hits + 1] = req.path; nxt() end)
    app:all("*", function(_, res) res:send("") end)
    for _, p in ipairs({ "/api", "/api/", "/api/users", "/apis", "/x/api" }) do call(app, "GET", p) end
    assert.are.same({ "/api", "/api/", "/api/users" }, hits)
  end)

  it("raised errors and next(err) go to error middleware (4 parameters, or app:catch)", function()
    local app, seen = net.http.server(), {}
    app:get("/raise", function() error({ code = "E1" }) end)
    app:get("/next", function(_, _, nxt) nxt("passed on") end)
    app:get("/ok", function(_, res) res:text("fine") end)
    app:use(function(err, _, _, nxt) seen[#seen + 1] = "first"; nxt(err) end)
    app:catch(function(...)
      local err, _, res = ...
      seen[#seen + 1] = type(err) == "table" and err.code or err
      res:status(500):json({ error = "Internal server error" })
    end)
    local r = call(app, "GET", "/raise")
    assert.are.same({ 500, '{"error":"Internal server error"}' }, { r.status, r.body })
    assert.are.equal(500, call(app, "GET", "/next").status)
    assert.are.equal("fine", call(app, "GET", "/ok").body) -- no error: error middleware skipped
    assert.are.same({ "first", "E1", "first", "passed on" }, seen)
  end)

  it("error middleware that calls next() without an error resumes ordinary routing", function()
    local app = net.http.server()
    app:use(function() error("oops") end)
    app:use(function(_, _, _, nxt) nxt() end)
    app:get("/", function(_, res) res:text("recovered") end)
    assert.are.equal("recovered", call(app, "GET", "/").body)
  end)

  it("an unhandled error gives 500 and prints the traceback; the next request is served", function()
    local app = net.http.server()
    app:get("/boom", function() error("kaboom") end)
    app:get("/fine", function(_, res) res:text("ok") end)
    local r
    local err = captured_stderr(function() r = call(app, "GET", "/boom") end)
    assert.are.same({ 500, "Internal Server Error" }, { r.status, r.body })
    assert.matches("GET /boom: .*kaboom", err)
    assert.matches("stack traceback", err)
    assert.are.equal("ok", call(app, "GET", "/fine").body)
  end)

  it("an error table with a 4xx status gives that status, quietly", function()
    local app = net.http.server()
    app:get("/", function() error({ status = 403 }) end)
    local r
    assert.are.equal("", captured_stderr(function() r = call(app, "GET", "/") end))
    assert.are.equal(403, r.status)
  end)

  it("req:json() decodes once; a bad body is 400 unless error middleware takes it", function()
    local app = net.http.server()
    app:post("/echo", function(req, res)
      local v = req:json()
      assert.are.equal(v, req:json())
      res:status(201):json(v)
    end)
    local r = call(app, "POST", "/echo", { body = '{"name":"Ann","tags":["x"]}' })
    assert.are.equal(201, r.status)
    assert.are.same({ name = "Ann", tags = { "x" } }, net.json.decode(r.body))
    local stderr = captured_stderr(function() r = call(app, "POST", "/echo", { body = '{"name":' }) end)
    assert.are.same({ 400, "" }, { r.status, stderr })
    local seen
    app:use(function(err, _, res, _) seen = err; res:status(422):json({ error = "bad json" }) end)
    r = call(app, "POST", "/echo", { body = "nope" })
    assert.are.equal(422, r.status)
    assert.matches("^protocol: invalid JSON", seen)
  end)

  it("req: header() ignores case; query, body, ip as net.serve gives them", function()
    local app = net.http.server()
    app:get("/q", function(req, res)
      res:json({ ua = req:header("User-Agent"), missing = req:header("X-None") or "none", page = req.query.page,
        tags = req.query.tag, ip = req.ip })
    end)
    local r = call(app, "GET", "/q", { headers = { ["user-agent"] = "t/1" }, query = { page = "2", tag = { "a", "b" } } })
    assert.are.same({ ua = "t/1", missing = "none", page = "2", tags = { "a", "b" }, ip = "127.0.0.1" },
      net.json.decode(r.body))
  end)

  it("res: json, html, text, send(string | table | nothing | function), headers, redirect", function()
    local app = net.http.server()
    app:get("/json", function(_, res) res:json({ 1, 2 }) end)
    app:get("/problem", function(_, res) res:header("Content-Type", "application/problem+json"):json({ a = 1 }) end)
    app:get("/html", function(_, res) res:html("<b>x</b>") end)
    app:get("/send", function(_, res) res:send("<i>y</i>") end)
    app:get("/send-table", function(_, res) res:status(202):send({ ok = true }) end)
    app:get("/nothing", function(_, res) res:status(204):send() end)
    app:get("/stream", function(_, res)
      local n = 0
      res:header("content-type", "text/event-stream"):send(function()
        n = n + 1
        if n <= 2 then return "data: " .. n .. "\n\n" end
      end)
    end)
    app:get("/headers", function(_, res)
      res:headers({ ["X-A"] = "1", ["Set-Cookie"] = { "a=1", "b=2" }, ["X-N"] = 5 })
      res:header("x-gone", "1"):header("X-Gone", nil)
      res:text(tostring(res:get("x-a")))
    end)
    app:get("/go", function(_, res) res:redirect("/there") end)
    app:get("/moved", function(_, res) res:redirect(301, "/new") end)
    local r = call(app, "GET", "/json")
    assert.are.same({ "[1,2]", "application/json; charset=utf-8" }, { r.body, r.headers["content-type"] })
    assert.are.equal("application/problem+json", call(app, "GET", "/problem").headers["content-type"])
    assert.are.equal("text/html; charset=utf-8", call(app, "GET", "/html").headers["content-type"])
    assert.are.equal("text/html; charset=utf-8", call(app, "GET", "/send").headers["content-type"])
    r = call(app, "GET", "/send-table")
    assert.are.same({ 202, '{"ok":true}' }, { r.status, r.body })
    r = call(app, "GET", "/nothing")
    assert.are.same({ 204, "" }, { r.status, r.body })
    assert.is_nil(r.headers["content-type"])
    r = call(app, "GET", "/stream")
    assert.are.equal("function", type(r.body))
    assert.are.same({ "data: 1\n\n", "data: 2\n\n" }, { r.body(), r.body() })
    assert.is_nil(r.body())
    r = call(app, "GET", "/headers")
    assert.are.same({ "1", { "a=1", "b=2" }, "5" }, { r.headers["x-a"], r.headers["set-cookie"], r.headers["x-n"] })
    assert.is_nil(r.headers["x-gone"])
    assert.are.equal("1", r.body)
    r = call(app, "GET", "/go")
    assert.are.same({ 302, "/there" }, { r.status, r.headers.location })
    r = call(app, "GET", "/moved")
    assert.are.same({ 301, "/new" }, { r.status, r.headers.location })
  end)

  it("status chains; the response is decided once: sending or changing it again raises io:", function()
    local app, errs = net.http.server(), {}
    app:get("/", function(_, res)
      assert.are.equal(res, res:status(201))
      res:text("first")
      assert.is_true(res.sent)
      for _, f in ipairs({
        function() res:send("again") end, function() res:json({}) end, function() res:status(500) end,
        function() res:header("x", "y") end,
      }) do
        errs[#errs + 1] = helper.err_of(f)
      end
    end)
    local r = call(app, "GET", "/")
    assert.are.same({ 201, "first" }, { r.status, r.body })
    assert.are.equal(4, #errs)
    for _, e in ipairs(errs) do assert.matches("^io: res:%a+: the response was already sent %(status 201%)$", e) end
  end)

  it("404 Not Found when no layer sends, whether or not next() was called", function()
    local app = net.http.server()
    app:get("/silent", function() end)
    app:get("/passes", function(_, _, nxt) nxt() end)
    for _, p in ipairs({ "/silent", "/passes", "/missing" }) do
      local r = call(app, "GET", p)
      assert.are.same({ 404, "Not Found" }, { r.status, r.body })
    end
  end)

  it("routes added after handler() was taken count", function()
    local app = net.http.server()
    local h = app:handler()
    assert.are.equal(h, app:handler())
    app:get("/late", function(_, res) res:text("here") end)
    assert.are.equal("here", h({ method = "GET", path = "/late" }).body)
  end)

  it("bad arguments raise with their position", function()
    local app = net.http.server()
    local f = function() end
    helper.bad_argument(2, "get", "path string expected, got number", app.get, app, 1, f)
    helper.bad_argument(2, "get", "path must start with '/'", app.get, app, "x", f)
    helper.bad_argument(3, "get", "function expected, got no value", app.get, app, "/x")
    helper.bad_argument(4, "post", "function expected, got string", app.post, app, "/x", f, "nope")
    helper.bad_argument(2, "get", "a ':' in a path must start a parameter name", app.get, app, "/a/:/b", f)
    helper.bad_argument(2, "use", "function expected, got no value", app.use, app)
    helper.bad_argument(2, "use", "path prefix", app.use, app, "/a/:id", f)
    helper.bad_argument(3, "static", "directory string expected", app.static, app, "/s", nil)
    helper.bad_argument(1, "net.http.server", "address", net.http.server, "nope")
    helper.bad_argument(1, "Server.new", "port out of range", net.http.Server.new, 70000)
    assert.matches("^io: static directory '/no/such/dir' %(no such file or directory%)$",
      helper.err_of(app.static, app, "/s", "/no/such/dir"))
    local errs = {}
    app:get("/", function(_, res)
      errs[1] = helper.err_of(res.status, res, 99)
      errs[2] = helper.err_of(res.send, res, true)
      errs[3] = helper.err_of(res.header, res, "x", true)
      res:send("")
    end)
    call(app, "GET", "/")
    assert.matches("^bad argument #2 to 'status' %(status code", errs[1])
    assert.matches("^bad argument #2 to 'send' %(string, table, function or nil expected, got boolean%)", errs[2])
    assert.matches("^bad argument #3 to 'header'", errs[3])
  end)
end)

-- Real HTTP ----------------------------------------------------------------------------------

local function sh(cmd) assert(os.execute(cmd)) end

-- curl against 127.0.0.1:port -> {status, headers (lower-case, last response), body, code}
local function curl(port, path, ...)
  local base = os.tmpname()
  local hdr, out = base .. ".h", base .. ".b"
  local argv = { "curl", "-s", "--path-as-is", "--max-time", "5", "-D", hdr, "-o", out, ... }
  argv[#argv + 1] = "http://127.0.0.1:" .. port .. path
  local p = helper.spawn(argv, { max_life = 15 })
  local code = p:wait(10)
  p:kill()
  local head, body = helper.read_file(hdr) or "", helper.read_file(out) or ""
  os.remove(hdr); os.remove(out); os.remove(base)
  head = head:match(".*(HTTP/[^\n]*\n.-)\r?\n\r?\n") or head -- the last response (not a 100 Continue)
  local headers = {}
  for k, v in head:gmatch("\n([^:\r\n]+):[ \t]*([^\r\n]*)") do headers[k:lower()] = v end
  return { status = tonumber(head:match("^HTTP/[%d.]+ (%d+)")), headers = headers, body = body, code = code }
end

-- One request on a fresh TCP connection, exactly as written (no client normalises the path);
-- reads until the server closes.
local function raw(port, method, target, extra)
  local c = net.tcp.connect("127.0.0.1", port, { timeout = 5000 })
  c:set_timeout(5000)
  c:write(method .. " " .. target .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" .. (extra or "") .. "\r\n")
  local data = c:read_all()
  c:close()
  local head, body = data:match("^(.-)\r\n\r\n(.*)$")
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do headers[k:lower()] = v end
  return { status = tonumber(head:match("^HTTP/1%.1 (%d+)")), headers = headers, body = body }
end

describe("router over HTTP", function()
  local handles = {}
  local function serve(app)
    local h = app:serve("127.0.0.1:0")
    handles[#handles + 1] = h
    return h.port
  end
  after_each(function()
    for i = #handles, 1, -1 do pcall(handles[i].stop, handles[i]); handles[i] = nil end
  end)

  it("routes, JSON bodies, params and the logging middleware, to curl", function()
    local app, log = net.http.server(), {}
    app:use(function(req, res, nxt)
      local t0 = net.now()
      nxt()
      log[#log + 1] = ("%s %s - %d (%.1fms)"):format(req.method, req.path, res.statusCode, (net.now() - t0) * 1000)
    end)
    app:get("/api/users/:id", function(req, res) res:json({ id = tonumber(req.params.id), q = req.query.x }) end)
    app:post("/api/users", function(req, res)
      local u = req:json()
      u.id = 3
      res:status(201):json(u)
    end)
    local port = serve(app)
    local r = curl(port, "/api/users/7?x=1")
    assert.are.same({ 0, 200, "application/json; charset=utf-8" }, { r.code, r.status, r.headers["content-type"] })
    assert.are.same({ id = 7, q = "1" }, net.json.decode(r.body))
    r = curl(port, "/api/users", "-H", "Content-Type: application/json", "--data", '{"name":"Carol"}')
    assert.are.equal(201, r.status)
    assert.are.same({ name = "Carol", id = 3 }, net.json.decode(r.body))
    r = curl(port, "/api/users", "--data", "{bad")
    assert.are.equal(400, r.status)
    assert.are.equal(404, curl(port, "/nope").status)
    assert.are.equal(4, #log)
    assert.matches("^GET /api/users/7 %- 200 %([%d.]+ms%)$", log[1])
    assert.matches("^POST /api/users %- 201 ", log[2])
    assert.matches("^POST /api/users %- 400 ", log[3])
    assert.matches("^GET /nope %- 404 ", log[4])
  end)

  it("handlers may wait; a slow one does not hold up the others", function()
    local app = net.http.server()
    app:get("/slow", function(_, res) net.sleep(0.5); res:text("slow") end)
    app:get("/fast", function(_, res) res:text("fast") end)
    local port = serve(app)
    local order = {}
    local function get(path)
      local body = raw(port, "GET", path).body
      order[#order + 1] = body
    end
    local t1 = net.spawn(get, "/slow")
    net.sleep(0.05)
    local t2 = net.spawn(get, "/fast")
    t1:join(); t2:join()
    assert.are.same({ "fast", "slow" }, order)
  end)

  it("with net.serve's stream = true, req keeps read/lines and still has header and json", function()
    local app = net.http.server()
    app:post("/lines", function(req, res)
      local n, next_line = 0, req:lines()
      while next_line() do n = n + 1 end -- a while loop: Lua 5.1 cannot wait inside a for iterator
      res:json({ lines = n, type = req:header("Content-Type"), body = req.body or "absent" })
    end)
    app:post("/json", function(req, res) res:json({ got = req:json().x, again = req:json().x }) end)
    local h = app:serve("127.0.0.1:0", { stream = true })
    handles[#handles + 1] = h
    local base = "http://127.0.0.1:" .. h.port
    local r = net.request({ url = base .. "/lines", method = "POST", body = ("line\n"):rep(1000),
      headers = { ["content-type"] = "text/plain" } })
    assert.are.same({ lines = 1000, type = "text/plain", body = "absent" }, net.json.decode(r.body))
    local big = '{"pad":"' .. ("x"):rep(200000) .. '","x":42}'
    r = net.request({ url = base .. "/json", method = "POST", body = big })
    assert.are.same({ got = 42, again = 42 }, net.json.decode(r.body))
    r = net.request({ url = base .. "/json", method = "POST", body = "{nope" })
    assert.are.equal(400, r.status)
  end)

  it("HEAD over the wire: the GET route's headers and length, no body", function()
    local app = net.http.server()
    app:get("/page", function(_, res) res:html("<p>hello</p>") end)
    local r = raw(serve(app), "HEAD", "/page")
    assert.are.same({ 200, "12", "" }, { r.status, r.headers["content-length"], r.body })
  end)

  it("listen() serves, calls back with the handle, and blocks until the loop stops", function()
    local app = net.http.server("127.0.0.1:0")
    app:get("/", function(_, res) res:text("listening") end)
    local got, stopper
    local guard = net.setTimeout(function() net.stop() end, 5000)
    local h = app:listen(function(handle)
      stopper = net.spawn(function()
        got = raw(handle.port, "GET", "/").body
        handle:stop()
        net.stop()
      end)
    end)
    net.clearTimeout(guard)
    assert.are.equal("listening", got)
    assert.are.equal("done", stopper:status())
    assert.is_truthy(h.port > 0)
  end)

  describe("static files", function()
    local dir, root, outside, big
    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      root, outside = dir .. "/root", dir .. "/outside"
      sh(("mkdir -p '%s/sub' '%s/empty' '%s/noindex' '%s'"):format(root, root, root, outside))
      local function put(path, data)
        local f = assert(io.open(path, "wb")); f:write(data); f:close()
      end
      put(root .. "/index.html", "<h1>home</h1>")
      put(root .. "/style.css", "body{}")
      put(root .. "/app.js", "let x = 1")
      put(root .. "/data.json", '{"a":1}')
      put(root .. "/pic.png", "\137PNG\r\n\26\n")
      put(root .. "/file.weirdext", "?")
      put(root .. "/.env", "SECRET=1")
      put(root .. "/sub/index.html", "<p>sub</p>")
      put(root .. "/noindex/x.txt", "x")
      local t = {}
      for i = 1, 30000 do t[i] = ("%07d\n"):format(i) end
      big = table.concat(t) -- 240,000 bytes: several 64 KiB chunks
      put(root .. "/big.txt", big)
      put(outside .. "/secret.txt", "TOP SECRET")
      sh(("ln -s '%s/secret.txt' '%s/leak.txt'"):format(outside, root))
      sh(("ln -s '%s' '%s/leakdir'"):format(outside, root))
      sh(("ln -s style.css '%s/alias.css'"):format(root))
    end)
    teardown(function() if dir then sh(("rm -rf '%s'"):format(dir)) end end)

    local function static_app(opts)
      local app = net.http.server()
      app:static("/public", root, opts)
      app:get("/public/fallback", function(_, res) res:text("route after static") end)
      return serve(app)
    end

    it("serves files with content types by extension, and index.html for directories", function()
      local port = static_app()
      for path, want in pairs({
        ["/public/style.css"] = { "text/css; charset=utf-8", "body{}" },
        ["/public/app.js"] = { "javascript", "let x = 1" },
        ["/public/data.json"] = { "application/json", '{"a":1}' },
        ["/public/pic.png"] = { "image/png", "\137PNG\r\n\26\n" },
        ["/public/file.weirdext"] = { "application/octet-stream", "?" },
        ["/public/alias.css"] = { "text/css; charset=utf-8", "body{}" }, -- a symlink inside the root
        ["/public/"] = { "text/html; charset=utf-8", "<h1>home</h1>" },
        ["/public/sub/"] = { "text/html; charset=utf-8", "<p>sub</p>" },
      }) do
        local r = curl(port, path)
        assert.are.equal(200, r.status, path)
        assert.is_truthy(r.headers["content-type"]:find(want[1], 1, true), path .. ": " .. r.headers["content-type"])
        assert.are.equal(want[2], r.body, path)
        assert.are.equal(tostring(#want[2]), r.headers["content-length"], path)
        assert.are.equal("bytes", r.headers["accept-ranges"])
        assert.matches('^"%x+%-%x+"$', r.headers.etag)
        assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers["last-modified"])
      end
      local r = curl(port, "/public/sub")
      assert.are.same({ 301, "/public/sub/" }, { r.status, r.headers.location })
      assert.are.equal(404, curl(port, "/public/noindex/").status)
      assert.are.equal(404, curl(port, "/public/missing.txt").status)
      assert.are.equal(404, curl(port, "/public/.env").status) -- dotfiles are not served
      assert.are.equal("route after static", curl(port, "/public/fallback").body)
    end)

    it("a large file arrives intact, streamed; HEAD gives its length and no body", function()
      local port = static_app()
      local r = curl(port, "/public/big.txt")
      assert.are.same({ 200, tostring(#big) }, { r.status, r.headers["content-length"] })
      assert.is_true(r.body == big)
      r = curl(port, "/public/big.txt", "--http2-prior-knowledge")
      assert.is_true(r.body == big)
      r = raw(port, "HEAD", "/public/big.txt")
      assert.are.same({ 200, tostring(#big), "" }, { r.status, r.headers["content-length"], r.body })
    end)

    it("304 Not Modified for a matching If-None-Match or an If-Modified-Since not older than the file", function()
      local port = static_app()
      local first = curl(port, "/public/style.css")
      local etag, modified = first.headers.etag, first.headers["last-modified"]
      local r = curl(port, "/public/style.css", "-H", "If-None-Match: " .. etag)
      assert.are.same({ 304, "", etag }, { r.status, r.body, r.headers.etag })
      r = raw(port, "HEAD", "/public/style.css", "If-None-Match: " .. etag .. "\r\n")
      assert.are.same({ 304, "", nil }, { r.status, r.body, r.headers["content-length"] })
      assert.are.equal(304, curl(port, "/public/style.css", "-H", 'If-None-Match: "x", W/' .. etag).status)
      assert.are.equal(304, curl(port, "/public/style.css", "-H", "If-None-Match: *").status)
      assert.are.equal(200, curl(port, "/public/style.css", "-H", 'If-None-Match: "other"').status)
      assert.are.equal(304, curl(port, "/public/style.css", "-H", "If-Modified-Since: " .. modified).status)
      assert.are.equal(304, curl(port, "/public/style.css", "-H", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT").status)
      r = curl(port, "/public/style.css", "-H", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT")
      assert.are.same({ 200, "body{}" }, { r.status, r.body })
      assert.are.equal(200, curl(port, "/public/style.css", "-H", "If-Modified-Since: garbage").status)
      -- If-None-Match wins over If-Modified-Since
      assert.are.equal(200, curl(port, "/public/style.css", "-H", 'If-None-Match: "other"',
        "-H", "If-Modified-Since: " .. modified).status)
    end)

    it("206 for one byte range (also across chunks and from the end); 416 when none is there", function()
      local port = static_app()
      local size = #big
      local r = curl(port, "/public/big.txt", "-r", "0-9")
      assert.are.same({ 206, "bytes 0-9/" .. size, "10", big:sub(1, 10) },
        { r.status, r.headers["content-range"], r.headers["content-length"], r.body })
      r = curl(port, "/public/big.txt", "-r", "60000-200000")
      assert.are.same({ 206, "bytes 60000-200000/" .. size }, { r.status, r.headers["content-range"] })
      assert.is_true(r.body == big:sub(60001, 200001))
      r = curl(port, "/public/big.txt", "-r", "-8")
      assert.are.same({ 206, big:sub(-8) }, { r.status, r.body })
      r = curl(port, "/public/big.txt", "-r", (size - 3) .. "-")
      assert.are.same({ 206, big:sub(-3) }, { r.status, r.body })
      r = curl(port, "/public/big.txt", "-r", "100-99999999")
      assert.are.same({ 206, "bytes 100-" .. (size - 1) .. "/" .. size }, { r.status, r.headers["content-range"] })
      r = curl(port, "/public/big.txt", "-r", size .. "-")
      assert.are.same({ 416, "bytes */" .. size }, { r.status, r.headers["content-range"] })
      assert.are.equal(416, curl(port, "/public/style.css", "-r", "-0").status)
      -- ignored: several ranges, other units, nonsense; and If-Range that does not hold
      assert.are.equal(200, curl(port, "/public/style.css", "-r", "0-1,3-4").status)
      assert.are.equal(200, curl(port, "/public/style.css", "-H", "Range: lines=1-2").status)
      assert.are.equal(200, curl(port, "/public/style.css", "-H", "Range: bytes=5-1").status)
      local etag = curl(port, "/public/style.css").headers.etag
      r = curl(port, "/public/style.css", "-r", "0-1", "-H", "If-Range: " .. etag)
      assert.are.same({ 206, "bo" }, { r.status, r.body })
      assert.are.equal(200, curl(port, "/public/style.css", "-r", "0-1", "-H", 'If-Range: "old"').status)
      r = raw(port, "HEAD", "/public/big.txt", "Range: bytes=0-99\r\n")
      assert.are.same({ 206, "100", "" }, { r.status, r.headers["content-length"], r.body })
    end)

    it("never serves a file outside the directory: .., %2e%2e, %2f, //absolute, NUL, symlinks out", function()
      local port = static_app()
      local attempts = {
        "/public/../outside/secret.txt", "/public/sub/../../outside/secret.txt",
        "/public/%2e%2e/outside/secret.txt", "/public/%2E%2E/outside/secret.txt",
        "/public/.%2e/outside/secret.txt", "/public/..%2foutside%2fsecret.txt",
        "/public/%2e%2e%2foutside%2fsecret.txt", "/public/..%5coutside%5csecret.txt",
        "/public//etc/passwd", "/public/%2fetc%2fpasswd", "/public/" .. outside .. "/secret.txt",
        "/public/leak.txt", "/public/leakdir/secret.txt", "/public/style.css%00.png",
        "/public/..", "/public/%2e%2e",
      }
      for _, target in ipairs(attempts) do
        for _, r in ipairs({ raw(port, "GET", target), curl(port, target) }) do
          assert.are.equal(404, r.status, target)
          assert.is_falsy(r.body:find("SECRET", 1, true), target)
          assert.is_falsy(r.body:find("root:", 1, true), target)
        end
      end
    end)

    it("net.request on one kept-alive connection: 200, HEAD, 304, 206, 416, 301 followed, 404", function()
      local app, client_ports = net.http.server(), {}
      app:use(function(req, _, nxt) client_ports[req.port] = true; nxt() end)
      app:static("/public", root)
      local base = "http://127.0.0.1:" .. serve(app)
      local r = net.request(base .. "/public/big.txt")
      assert.are.equal(200, r.status)
      assert.is_true(r.body == big)
      local etag = r.headers.etag
      r = net.request({ url = base .. "/public/big.txt", method = "HEAD" })
      assert.are.same({ 200, tostring(#big), "" }, { r.status, r.headers["content-length"], r.body })
      r = net.request({ url = base .. "/public/big.txt", headers = { ["if-none-match"] = etag } })
      assert.are.same({ 304, "" }, { r.status, r.body })
      r = net.request({ url = base .. "/public/big.txt", headers = { range = "bytes=70000-70009" } })
      assert.are.same({ 206, big:sub(70001, 70010) }, { r.status, r.body })
      r = net.request({ url = base .. "/public/big.txt", headers = { range = "bytes=9999999-" } })
      assert.are.equal(416, r.status)
      r = net.request(base .. "/public/sub")
      assert.are.same({ 200, "<p>sub</p>", base .. "/public/sub/" }, { r.status, r.body, r.url })
      assert.are.equal(404, net.request(base .. "/public/nothing").status)
      r = net.request(base .. "/public/style.css")
      assert.are.same({ 200, "body{}" }, { r.status, r.body })
      local n = 0
      for _ in pairs(client_ports) do n = n + 1 end
      assert.are.equal(1, n) -- every response left the connection fit for the next request
    end)

    it("net.http.download resumes a partial file with a range, and knows the total", function()
      local app = net.http.server()
      app:static("/public", root)
      local url = "http://127.0.0.1:" .. serve(app) .. "/public/big.txt"
      local path = os.tmpname()
      finally(function() os.remove(path) end)
      local f = assert(io.open(path, "wb")); f:write(big:sub(1, 100000)); f:close()
      local totals = {}
      local r = net.http.download(url, path, { resume = true, on_progress = function(_, total) totals[total or -1] = true end })
      assert.are.same({ 206, #big - 100000 }, { r.status, r.bytes })
      assert.is_true(helper.read_file(path) == big)
      assert.is_true(totals[#big] or totals[#big - 100000] or false)
      assert.is_nil(totals[-1])
      r = net.http.download(url, path, { resume = true })
      assert.are.equal(416, r.status) -- already complete
      assert.is_true(helper.read_file(path) == big)
    end)

    it("options: index = false, dotfiles = true, max_age; other methods pass through", function()
      local app = net.http.server()
      app:static("/p", root, { index = false, dotfiles = true, max_age = 60 })
      app:post("/p/style.css", function(_, res) res:text("posted") end)
      local port = serve(app)
      assert.are.equal(404, curl(port, "/p/").status)
      local r = curl(port, "/p/.env")
      assert.are.same({ 200, "SECRET=1", "public, max-age=60" }, { r.status, r.body, r.headers["cache-control"] })
      assert.are.equal("posted", curl(port, "/p/style.css", "-X", "POST").body)
    end)

    it("a static root at / serves everything under it", function()
      local app = net.http.server()
      app:static("/", root)
      local port = serve(app)
      assert.are.equal("<h1>home</h1>", curl(port, "/").body)
      assert.are.equal("<p>sub</p>", curl(port, "/sub/").body)
      assert.are.equal(404, curl(port, "/../outside/secret.txt").status)
    end)
  end)
end)
