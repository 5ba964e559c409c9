-- Seed 002's "REST API Server" on net.http.Server (docs/api.md, "Router"), with an in-memory
-- table instead of the seed's SQLite database: CORS and authentication middleware, paging,
-- ownership checks (403), and error middleware that answers JSON.
--
--   lua5.4 examples/rest_api.lua [addr]       serve on addr (default 127.0.0.1:3000) until Ctrl-C
--   lua5.4 examples/rest_api.lua --selftest   serve on a free port, exercise the API, exit
--
-- Tokens: "Authorization: Bearer alice-token" (user 1) or "Bearer bob-token" (user 2), e.g.
--   curl -H 'Authorization: Bearer alice-token' --data '{"title":"Hi"}' http://127.0.0.1:3000/api/posts
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line")

local selftest = arg[1] == "--selftest"
local app = net.http.Server.new(selftest and "127.0.0.1:0" or arg[1] or "127.0.0.1:3000")

-- The "database": posts by id, newest last.
local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end
local posts, next_id = {}, 1
local function insert(post)
  post.id, next_id = next_id, next_id + 1
  post.created_at = now()
  posts[#posts + 1] = post
  return post
end
local function find(id)
  for i, post in ipairs(posts) do
    if post.id == tonumber(id) then return post, i end
  end
end
insert({ title = "Hello", body = "First post", author_id = 1 })
insert({ title = "Networking in Lua", body = "net does TCP, UDP, HTTP...", author_id = 2 })
insert({ title = "Routers", body = "Express-style", author_id = 1 })

local users_by_token = {
  ["Bearer alice-token"] = { id = 1, name = "alice" },
  ["Bearer bob-token"] = { id = 2, name = "bob" },
}

-- CORS middleware
app:use(function(req, res, next)
  res:header("Access-Control-Allow-Origin", "*")
  res:header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
  res:header("Access-Control-Allow-Headers", "Authorization, Content-Type")
  if req.method == "OPTIONS" then return res:status(204):send() end -- a browser's preflight
  next()
end)

-- Authentication middleware, used on the routes that write
local function require_auth(req, res, next)
  local user = users_by_token[req:header("Authorization") or ""]
  if not user then
    return res:status(401):json({ error = "Unauthorized" })
  end
  req.user = user
  next()
end

-- Routes
app:get("/api/posts", function(req, res)
  local page = math.max(1, math.floor(tonumber(req.query.page) or 1))
  local limit = math.min(100, math.max(1, math.floor(tonumber(req.query.limit) or 10)))
  local newest_first = {}
  for i = #posts, 1, -1 do newest_first[#newest_first + 1] = posts[i] end
  local slice = net.json.array()
  for i = (page - 1) * limit + 1, math.min(page * limit, #newest_first) do
    slice[#slice + 1] = newest_first[i]
  end
  res:json({ posts = slice, page = page, limit = limit, total = #posts })
end)

app:get("/api/posts/:id", function(req, res)
  local post = find(req.params.id)
  if post then
    res:json(post)
  else
    res:status(404):json({ error = "Post not found" })
  end
end)

app:post("/api/posts", require_auth, function(req, res)
  local post = req:json()
  if type(post) ~= "table" or type(post.title) ~= "string" then
    return res:status(400):json({ error = "title required" })
  end
  post.author_id = req.user.id
  res:status(201):json(insert(post))
end)

app:put("/api/posts/:id", require_auth, function(req, res)
  local post = find(req.params.id)
  if not post then return res:status(404):json({ error = "Post not found" }) end
  -- Check ownership
  if post.author_id ~= req.user.id then
    return res:status(403):json({ error = "Forbidden" })
  end
  local updates = req:json()
  post.title = updates.title or post.title -- a body that is not an object raises: error middleware
  post.body = updates.body or post.body
  post.updated_at = now()
  res:json(post)
end)

app:delete("/api/posts/:id", require_auth, function(req, res)
  local post, index = find(req.params.id)
  if not post then return res:status(404):json({ error = "Post not found" }) end
  if post.author_id ~= req.user.id then
    return res:status(403):json({ error = "Forbidden" })
  end
  table.remove(posts, index)
  res:status(204):send()
end)

-- Error handling: four parameters make this error middleware. Handlers that raise (or call
-- next(err)) end up here; a body that is not JSON is the client's fault (400), anything else ours.
app:use(function(err, req, res, next)
  io.stderr:write(("Error: %s %s: %s\n"):format(req.method, req.path, tostring(err)))
  local bad_json = tostring(err):find("^protocol: invalid JSON") ~= nil
  res:status(bad_json and 400 or 500):json({
    error = bad_json and "Invalid JSON body" or "Internal server error",
    message = tostring(err),
  })
end)

if not selftest then
  app:listen(function(handle)
    print(("API server running on http://%s:%d"):format(handle.ip, handle.port))
  end)
  return
end

-- --selftest: serve in the background, exercise every route from a task, check the answers.
local handle = app:serve()
print(("API server running on http://%s:%d"):format(handle.ip, handle.port))

-- A request with net.request -> status, headers, decoded JSON body (or the raw body).
local base = ("http://127.0.0.1:%d"):format(handle.port)
local function fetch(method, path, token, body)
  local res = net.request({ method = method, url = base .. path, body = body,
    headers = { authorization = token and "Bearer " .. token or nil, ["content-type"] = "application/json" } })
  local ok, data = pcall(res.json, res)
  return res.status, res.headers, ok and data or res.body
end

local failures = 0
local function check(what, ok)
  print(("%s %s"):format(ok and "ok  " or "FAIL", what))
  if not ok then failures = failures + 1 end
end

local test = net.spawn(function()
  local status, h, data = fetch("OPTIONS", "/api/posts")
  check("OPTIONS preflight: 204 with CORS headers", status == 204 and h["access-control-allow-origin"] == "*")
  status, h, data = fetch("GET", "/api/posts?page=1&limit=2")
  check("GET /api/posts?page=1&limit=2: the 2 newest of 3", status == 200 and data.total == 3 and #data.posts == 2
    and data.posts[1].id == 3 and h["access-control-allow-origin"] == "*")
  status, h, data = fetch("GET", "/api/posts?page=2&limit=2")
  check("GET /api/posts?page=2&limit=2: the oldest", status == 200 and #data.posts == 1 and data.posts[1].id == 1)
  status, h, data = fetch("GET", "/api/posts/2")
  check("GET /api/posts/2", status == 200 and data.title == "Networking in Lua")
  status, h, data = fetch("GET", "/api/posts/99")
  check("GET /api/posts/99: 404", status == 404 and data.error == "Post not found")
  status = fetch("POST", "/api/posts", nil, '{"title":"Anonymous"}')
  check("POST without a token: 401", status == 401)
  status, h, data = fetch("POST", "/api/posts", "alice-token", '{"title":"New","body":"from alice"}')
  check("POST as alice: 201, post 4 by user 1", status == 201 and data.id == 4 and data.author_id == 1)
  status = fetch("PUT", "/api/posts/1", "bob-token", '{"title":"Hijacked"}')
  check("PUT someone else's post: 403", status == 403)
  status, h, data = fetch("PUT", "/api/posts/1", "alice-token", '{"title":"Hello again"}')
  check("PUT own post: 200, updated", status == 200 and data.title == "Hello again" and data.updated_at ~= nil)
  status = fetch("DELETE", "/api/posts/2", "alice-token")
  check("DELETE someone else's post: 403", status == 403)
  status = fetch("DELETE", "/api/posts/2", "bob-token")
  check("DELETE own post: 204", status == 204)
  status = fetch("GET", "/api/posts/2")
  check("GET the deleted post: 404", status == 404)
  status, h, data = fetch("POST", "/api/posts", "alice-token", "{oops")
  check("POST a broken body: 400 from the error middleware", status == 400 and data.error == "Invalid JSON body")
  status, h, data = fetch("PUT", "/api/posts/1", "alice-token", "42")
  check("PUT a body that is not an object: 500 JSON", status == 500 and data.error == "Internal server error")
  handle:stop()
end)
net.run()
test:join()
print(failures == 0 and "selftest passed" or ("selftest: %d checks failed"):format(failures))
os.exit(failures == 0 and 0 or 1)
