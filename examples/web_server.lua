-- Seed 002's "Quick Example": a web server with a logging middleware, an HTML page, a JSON API
-- and static files, on net.http.Server (docs/api.md, "Router").
--
--   lua5.4 examples/web_server.lua [addr]       serve on addr (default 127.0.0.1:8080) until Ctrl-C
--   lua5.4 examples/web_server.lua --selftest   serve on a free port, request every route, exit
--
-- Static files come from examples/public/, next to this script: try /public/ in a browser.
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local selftest = arg[1] == "--selftest"
local here = arg[0]:match("^(.*)/[^/]*$") or "."

local server = net.http.Server.new(selftest and "127.0.0.1:0" or arg[1] or "127.0.0.1:8080")

-- Middleware for logging: next() runs the rest of the chain, so the status is known after it.
server:use(function(req, res, next)
  local start = net.now()
  next()
  local duration = (net.now() - start) * 1000
  print(("%s %s - %d (%.1fms)"):format(req.method, req.path, res.statusCode, duration))
end)

-- Routes
local users = {
  { id = 1, name = "Alice", email = "alice@example.com" },
  { id = 2, name = "Bob", email = "bob@example.com" },
}

server:get("/", function(req, res)
  res:html("<h1>Welcome to the net server!</h1>")
end)

server:get("/api/users", function(req, res)
  res:json(users)
end)

server:post("/api/users", function(req, res)
  local user = req:json() -- an invalid body answers 400
  print("Creating user: " .. tostring(user.name))
  user.id = #users + 1
  user.created = os.date("!%Y-%m-%dT%H:%M:%SZ")
  users[#users + 1] = user
  res:status(201):json(user)
end)

-- Static files
server:static("/public", here .. "/public")

if not selftest then
  server:listen(function(handle)
    print(("Server running on http://%s:%d"):format(handle.ip, handle.port))
  end)
  return
end

-- --selftest: the server runs in the background (serve does not block) while a task requests
-- every route with net.request and checks the answers.
local handle = server:serve()
local base = ("http://127.0.0.1:%d"):format(handle.port)
print("Server running on " .. base)

local failures = 0
local function check(what, ok)
  print(("%s %s"):format(ok and "ok  " or "FAIL", what))
  if not ok then failures = failures + 1 end
end

local test = net.spawn(function()
  local res = net.http.get(base .. "/")
  check("GET / is the welcome page", res.status == 200 and res.headers["content-type"]:find("text/html")
    and res.body:find("Welcome"))
  res = net.http.get(base .. "/api/users")
  check("GET /api/users lists 2 users", res.status == 200 and #res:json() == 2)
  res = net.http.post(base .. "/api/users"):json({ name = "Carol", email = "carol@example.com" }):send()
  local carol = res.status == 201 and res:json()
  check("POST /api/users creates user 3", carol and carol.id == 3 and carol.name == "Carol" and carol.created ~= nil)
  res = net.http.post(base .. "/api/users", "{not json")
  check("POST /api/users with a broken body is 400", res.status == 400)
  res = net.http.get(base .. "/public/")
  check("GET /public/ is index.html", res.status == 200 and res.body:find("Static files", 1, true))
  res = net.http.get(base .. "/public/style.css")
  check("GET /public/style.css is text/css", res.status == 200 and res.headers["content-type"]:find("text/css"))
  res = net.http.get(base .. "/public/missing.txt")
  check("GET /public/missing.txt is 404", res.status == 404)
  res = net.http.get(base .. "/nope")
  check("GET /nope is 404", res.status == 404)
  handle:stop()
end)
net.run()
test:join()
print(failures == 0 and "selftest passed" or ("selftest: %d checks failed"):format(failures))
os.exit(failures == 0 and 0 or 1)
