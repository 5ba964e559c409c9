-- The Express-style router (docs/api.md, "Router"): `net.http.server([addr])` and
-- `net.http.Server.new(addr)`.
--
-- Thin Lua over `net.serve`. An app is one ordered list of layers: middleware (`app:use`),
-- error middleware, route handlers (`app:get(path, h1, h2)` adds one layer per handler) and
-- static directories. A request walks the list from the top; the first layer that matches runs,
-- and `next()` walks on from there, so a middleware's code after `next()` runs once everything
-- after it is done (a logging middleware sees the final status). The response is collected on
-- `res` and handed back to `net.serve` as `{status, headers, body}` when the chain returns.
--
-- Per request the router makes `res` with its headers table, one `next` function and the
-- response table (plus `req.params` when a route matches): route patterns are compiled to Lua
-- patterns when they are registered, and exact paths compare as plain strings.
--
-- Loaded once per Lua state by src/http/router.rs with the `net` table and the private file
-- helpers of src/http/files.rs (`files.lookup` and friends, used only by `app:static`).
local net, files = ...

local type, error, select, pairs, ipairs, tostring, tonumber = type, error, select, pairs, ipairs, tostring, tonumber
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins, except on Lua 5.1 (a handler may wait)
local find, match, gmatch, sub, gsub, lower, upper, byte, format =
  string.find, string.match, string.gmatch, string.sub, string.gsub, string.lower, string.upper, string.byte, string.format
local concat = table.concat
local getinfo, traceback = debug.getinfo, debug.traceback
local tointeger = math.tointeger or function(n) return n end -- LuaJIT: every number is a float
local json_encode, json_decode, url_decode = net.json.encode, net.json.decode, net.urlDecode
local lookup, read_range, stream_range, parse_date, CHUNK =
  files.lookup, files.read, files.stream, files.parse_date, files.CHUNK

local DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
local SLASH = byte("/")
local TEXT, HTML, JSON = "text/plain; charset=utf-8", "text/html; charset=utf-8", "application/json; charset=utf-8"

-- Errors ------------------------------------------------------------------------------------

local function got(v)
  return v == nil and "no value" or type(v)
end

-- Arguments count as Lua counts them for methods: `self` is #1 (as in the rest of net).
local function bad_arg(pos, fname, what)
  error(format("bad argument #%d to '%s' (%s)", pos, fname, what), 0)
end

local function bad_type(pos, fname, expected, v)
  bad_arg(pos, fname, expected .. " expected, got " .. got(v))
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Express tells error middleware by its arity: a function declared with four parameters
-- (err, req, res, next). Lua 5.2+ and LuaJIT 2.1 report `nparams` in debug.getinfo's "u";
-- anything else (callable tables, C functions, `function(...)`) is ordinary middleware, and
-- `app:catch` registers error middleware explicitly whatever its shape.
-- Lua 5.1's getinfo has no nparams: there it is read from the function's bytecode header
-- (string.dump: a 12-byte header whose bytes 7 and 9 give the byte order and sizeof(size_t), the
-- source name as a size_t length and bytes, two ints of line numbers, nups, then numparams).
local function nparams_from_dump(fn)
  local ok, dump = pcall(string.dump, fn)
  if not ok or sub(dump, 1, 5) ~= "\27Lua\81" then return nil end -- a C function, or not 5.1
  local little, int_size, size_t = byte(dump, 7) == 1, byte(dump, 8), byte(dump, 9)
  local len = 0
  for i = 1, size_t do
    len = len * 256 + byte(dump, little and 12 + size_t + 1 - i or 12 + i)
  end
  return byte(dump, 13 + size_t + len + 2 * int_size + 1)
end

local function is_error_handler(fn)
  if type(fn) ~= "function" then return false end
  local info = getinfo(fn, "u")
  if info and info.nparams == nil then return nparams_from_dump(fn) == 4 end
  return info ~= nil and info.nparams == 4
end

-- Paths -------------------------------------------------------------------------------------

-- Layer kinds: how a layer looks at the path.
local ANY, EXACT, PREFIX, PATTERN = 1, 2, 3, 4

local function escape(s)
  return (gsub(s, "%W", "%%%0")) -- every punctuation character literal in a Lua pattern
end

-- A route path becomes one of:
--   EXACT   "/users" matches "/users" and "/users/" (a plain string comparison, no pattern)
--   PATTERN "/users/:id/*" becomes "^/users/([^/]+)/(.*)/?$" with names {"id", 1}: `:name`
--           takes one non-empty segment, `*` anything (slashes too), numbered 1, 2, ... in
--           req.params. A trailing slash in the request is optional, as in Express.
-- Matching is case-sensitive and done on the raw (still percent-encoded) path; parameter values
-- are decoded.
local function set_route_path(layer, path, fname)
  if type(path) ~= "string" then bad_type(2, fname, "path string", path) end
  if path ~= "*" and byte(path, 1) ~= SLASH then bad_arg(2, fname, "path must start with '/' or be '*', got '" .. path .. "'") end
  local n = #path
  if n > 1 and byte(path, n) == SLASH then n = n - 1 end
  if not find(path, "[:*]") then
    local p = sub(path, 1, n)
    layer.kind, layer.path, layer.path_slash = EXACT, p, p == "/" and p or p .. "/"
    return
  end
  local out, names, stars, i = { "^" }, {}, 0, 1
  while i <= n do
    local c = sub(path, i, i)
    if c == ":" then
      local name = match(path, "^[%a_][%w_]*", i + 1)
      if not name then bad_arg(2, fname, "a ':' in a path must start a parameter name, in '" .. path .. "'") end
      out[#out + 1], names[#names + 1], i = "([^/]+)", name, i + 1 + #name
    elseif c == "*" then
      stars = stars + 1
      out[#out + 1], names[#names + 1], i = "(.*)", stars, i + 1
    else
      out[#out + 1], i = escape(c), i + 1
    end
  end
  out[#out + 1] = "/?$"
  layer.kind, layer.pattern, layer.names = PATTERN, concat(out), names
end

-- A middleware prefix ("/api") matches "/api" and everything under "/api/", not "/apis".
local function set_prefix(layer, prefix, fname)
  if prefix == nil then layer.kind = ANY; return end
  if type(prefix) ~= "string" or byte(prefix, 1) ~= SLASH or find(prefix, "[:*]") then
    bad_arg(2, fname, "path prefix ('/...', without ':' or '*') expected, got " ..
      (type(prefix) == "string" and "'" .. prefix .. "'" or got(prefix)))
  end
  prefix = gsub(prefix, "/+$", "")
  if prefix == "" then layer.kind = ANY; return end
  layer.kind, layer.anchored, layer.plen = PREFIX, "^" .. escape(prefix), #prefix
end

local function decode(s)
  if find(s, "%", 1, true) then return url_decode(s, true) end -- binary: never raises
  return s
end

-- The params of a PATTERN match (`first` is nil when it did not match).
local function capture(names, first, ...)
  if first == nil then return false end
  local params = { [names[1]] = decode(first) }
  for i = 2, #names do
    params[names[i]] = decode((select(i - 1, ...)))
  end
  return true, params
end

-- Whether `layer` takes a request; for a route with parameters, also its params. A GET route
-- also answers HEAD (the body is dropped at the end), as in Express.
local function matches(layer, method, path)
  local m = layer.method
  if m ~= nil and m ~= method and not (m == "GET" and method == "HEAD") then return false end
  local kind = layer.kind
  if kind == ANY then return true end
  if kind == EXACT then return path == layer.path or path == layer.path_slash end
  if kind == PREFIX then
    if not find(path, layer.anchored) then return false end
    local after = byte(path, layer.plen + 1)
    return after == nil or after == SLASH
  end
  return capture(layer.names, match(path, layer.pattern))
end

-- req ---------------------------------------------------------------------------------------

-- Private keys on the request table (tables, so they cannot clash with a user's string keys).
local JSON_BODY, BAD_BODY = {}, {}

local Req = {}
Req.__index = Req

function Req:header(name)
  if type(name) ~= "string" then bad_type(2, "header", "string", name) end
  return self.headers[lower(name)]
end

-- The body decoded as JSON, once (later calls return the same value). An invalid body raises
-- net.json.decode's `protocol: invalid JSON: ...`; unless error middleware handles it, the
-- request gets 400 rather than 500, since the client sent it. A streamed request (net.serve's
-- `stream = true`) is read to its end first: asking for JSON means wanting all of it.
function Req:json()
  local v = rawget(self, JSON_BODY)
  if v ~= nil then return v end
  local body = self.body
  if body == nil and self.stream ~= nil then
    local parts = {}
    while true do
      local chunk = self:read(65536)
      if chunk == nil then break end
      parts[#parts + 1] = chunk
    end
    body = concat(parts)
    self.body = body
  end
  local ok, res = pcall(json_decode, body or "")
  if not ok then
    self[BAD_BODY] = res
    error(res, 0)
  end
  self[JSON_BODY] = res
  return res
end

-- A streamed request (net.serve's `stream = true`) comes with net's message methods (`read`,
-- `lines`) in its own metatable: it gets one with those and Req's together, made once per
-- metatable seen.
local merged = setmetatable({}, { __mode = "k" })
local function req_meta(mt)
  if mt == nil or mt == Req then return Req end
  local m = merged[mt]
  if m == nil then
    local base, methods = mt.__index, {}
    if type(base) == "table" then
      for k, f in pairs(base) do
        if type(k) ~= "string" or sub(k, 1, 2) ~= "__" then methods[k] = f end
      end
    end
    for k, f in pairs(Req) do
      if k ~= "__index" then methods[k] = f end
    end
    m = { __index = methods }
    if type(base) == "function" then
      m.__index = function(t, k)
        local f = methods[k]
        if f ~= nil then return f end
        return base(t, k)
      end
    end
    merged[mt] = m
  end
  return m
end

-- res ---------------------------------------------------------------------------------------

-- res fields: statusCode (200 until set), sent (true once a body is chosen); private: _h (the
-- headers, lower-case names), _body, _req, _layers, _i (the layer running), _next.
local Res = {}
Res.__index = Res

local function open(res, fname)
  if res.sent then
    error(format("io: %s: the response was already sent (status %d)", fname, res.statusCode), 0)
  end
end

local function headers_of(res)
  local h = res._h
  if h == nil then h = {}; res._h = h end
  return h
end

function Res:status(code)
  if type(code) ~= "number" or code % 1 ~= 0 or code < 100 or code > 599 then
    bad_type(2, "status", "status code (integer 100-599)", code)
  end
  open(self, "res:status")
  self.statusCode = tointeger(code)
  return self
end

-- A value is a string (numbers are converted), an array of strings for a repeated header
-- (Set-Cookie), or nil to remove the header.
function Res:header(name, value)
  if type(name) ~= "string" then bad_type(2, "header", "string", name) end
  local t = type(value)
  if t == "number" then
    value = tostring(tointeger(value) or value)
  elseif t ~= "string" and t ~= "table" and value ~= nil then
    bad_type(3, "header", "string, array of strings or nil", value)
  end
  open(self, "res:header")
  headers_of(self)[lower(name)] = value
  return self
end

function Res:headers(t)
  if type(t) ~= "table" then bad_type(2, "headers", "table", t) end
  for k, v in pairs(t) do self:header(k, v) end
  return self
end

function Res:get(name)
  if type(name) ~= "string" then bad_type(2, "get", "string", name) end
  local h = self._h
  return h and h[lower(name)]
end

local function finish(res, body, ctype, force)
  local h = headers_of(res)
  if ctype and (force or h["content-type"] == nil) then h["content-type"] = ctype end
  res._body, res.sent = body, true
  return res
end

-- send: a string (Content-Type text/html unless one was set, as Express does), a table (JSON),
-- a function returning chunks then nil (streamed as net.serve streams it), or nothing (an empty
-- body, e.g. `res:status(204):send()`).
function Res:send(body)
  local t = type(body)
  if t == "table" then return self:json(body) end
  open(self, "res:send")
  if t == "string" then return finish(self, body, HTML, false) end
  if t == "number" then return finish(self, tostring(body), HTML, false) end
  if body == nil then return finish(self, "", nil) end
  if t == "function" then return finish(self, body, nil) end
  bad_type(2, "send", "string, table, function or nil", body)
end

function Res:json(value)
  open(self, "res:json")
  return finish(self, json_encode(value), JSON, false)
end

local function text_arg(v, fname)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  bad_type(2, fname, "string", v)
end

function Res:html(s)
  s = text_arg(s, "html")
  open(self, "res:html")
  return finish(self, s, HTML, true)
end

function Res:text(s)
  s = text_arg(s, "text")
  open(self, "res:text")
  return finish(self, s, TEXT, true)
end

-- redirect(url[, status = 302]); Express's order redirect(status, url) works too.
function Res:redirect(url, status)
  if type(url) == "number" and type(status) == "string" then url, status = status, url end
  if type(url) ~= "string" then bad_type(2, "redirect", "string", url) end
  self:status(status or 302)
  self:header("location", url)
  return self:text("Redirecting to " .. url)
end

-- Dispatch ----------------------------------------------------------------------------------

-- The traceback of the last error a handler raised. Set by the message handler and read right
-- after xpcall returns, with no yield in between, so concurrent requests cannot mix them up.
local last_traceback
local function keep_traceback(e, co) -- co: the handler's own coroutine (net.xpcall on Lua 5.1)
  last_traceback = co and traceback(co, tostring(e)) or traceback(tostring(e), 2)
  return e
end

-- An error no error middleware handled. Errors the client caused get their 4xx status quietly;
-- anything else is a bug in a handler: 500, and the traceback on stderr.
local function unhandled(req, res, err)
  local status = 500
  if err == rawget(req, BAD_BODY) then
    status = 400
  elseif type(err) == "table" then
    local s = tonumber(err.status or err.statusCode)
    if s and s >= 400 and s <= 599 and s % 1 == 0 then status = tointeger(s) end
  end
  if status >= 500 then
    local tb = res._err == err and res._tb or tostring(err)
    io.stderr:write(format("net.http.server: %s %s: %s\n", tostring(req.method), tostring(req.path), tb))
  end
  if res.sent then return end
  res.statusCode = status
  finish(res, status == 400 and "Bad Request" or status == 500 and "Internal Server Error" or "Error", TEXT, true)
end

-- Runs the next layer that takes the request, from just after the current one. `e` is an error
-- to hand to error middleware (nil: ordinary layers run; "route": skip the rest of this route's
-- handlers). Ordinary layers are skipped while an error is pending, error middleware while none
-- is. Past the last layer: 404, or the unhandled error.
local function step(res, e)
  local layers, req, i = res._layers, res._req, res._i
  if e == "route" then
    local route = layers[i] and layers[i].route
    while route and layers[i + 1] and layers[i + 1].route == route do i = i + 1 end
    e = nil
  end
  local method, path = req.method, req.path
  local erring = e ~= nil
  while true do
    i = i + 1
    local layer = layers[i]
    if layer == nil then
      res._i = i
      if erring then return unhandled(req, res, e) end
      if not res.sent then
        res.statusCode = 404
        finish(res, "Not Found", TEXT, true)
      end
      return
    end
    if layer.is_err == erring then
      local hit, params = matches(layer, method, path)
      if hit then
        if layer.route then req.params = params or {} end
        res._i = i
        local ok, raised
        if erring then
          ok, raised = xpcall(layer.fn, keep_traceback, e, req, res, res._next)
        else
          ok, raised = xpcall(layer.fn, keep_traceback, req, res, res._next)
        end
        if ok then return end
        -- A raised error goes to the error middleware after this layer, even if the handler
        -- had called next() before raising.
        res._i, res._err, res._tb = i, raised, last_traceback
        return step(res, raised)
      end
    end
  end
end

local function handle(app, req)
  local mt = getmetatable(req)
  setmetatable(req, mt == nil and Req or req_meta(mt))
  -- Tolerate hand-made requests (tests, embedding) that leave these out.
  if req.headers == nil then req.headers = {} end
  if req.query == nil then req.query = {} end
  if req.body == nil and mt == nil then req.body = "" end -- a streamed request has no body field
  local res = setmetatable({ statusCode = 200, sent = false, _req = req, _layers = app._layers, _i = 0 }, Res)
  -- The one closure per request: `next` must know where this request is in the chain, and
  -- handlers may keep it across waits while other requests run.
  res._next = function(err) return step(res, err) end
  step(res, nil)
  if not res.sent then -- the chain ended without an answer: nobody sent and nobody called next()
    res.statusCode = 404
    finish(res, "Not Found", TEXT, true)
  end
  local body = res._body
  local status = res.statusCode
  if req.method == "HEAD" then -- headers only; the length is the one GET would have sent
    local h = res._h
    if type(body) == "string" and h["content-length"] == nil and status ~= 204 and status ~= 304 then
      h["content-length"] = tostring(#body)
    end
    body = ""
  end
  return { status = status, headers = res._h, body = body }
end

-- Static files ------------------------------------------------------------------------------

-- If-None-Match: a list of tags or "*"; compared weakly (W/ is ignored), as RFC 9110 asks.
local function etag_matches(list, etag)
  if find(list, "^%s*%*%s*$") then return true end
  for tag in gmatch(list, '"[^"]*"') do
    if tag == etag then return true end
  end
  return false
end

-- If-Range: the range applies only if the validator is our (strong) ETag, or our Last-Modified.
local function if_range_holds(v, etag, mtime)
  if v == nil then return true end
  if byte(v, 1) == byte('"') then return v == etag end
  if sub(v, 1, 2) == "W/" then return false end
  return parse_date(v) == mtime
end

-- Range: one range of bytes. Returns first, last; false when no byte of it exists (416); nil for
-- anything to ignore (malformed, other units, several ranges: the whole file is sent, as
-- RFC 9110 allows).
local function parse_range(v, size)
  local a, b = match(v, "^%s*bytes%s*=%s*(%d*)%s*%-%s*(%d*)%s*$")
  if a == nil or (a == "" and b == "") then return nil end
  if a == "" then -- the last b bytes
    local n = tonumber(b)
    if n == 0 or size == 0 then return false end
    return n >= size and 0 or size - n, size - 1
  end
  local first, last = tonumber(a), b ~= "" and tonumber(b) or nil
  if last and last < first then return nil end
  if first >= size then return false end
  if last == nil or last >= size then last = size - 1 end
  return first, last
end

local function serve_file(st, req, res, nxt)
  local method = req.method
  if method ~= "GET" and method ~= "HEAD" then return nxt() end
  local path = req.path
  local file, size, mtime, etag, modified, ctype = lookup(st.root, sub(path, st.plen + 1), st.index, st.dotfiles)
  if not file then
    if size == "slash" then return res:redirect(path .. "/", 301) end
    if size == "refused" then return res:status(404):text("Not Found") end
    return nxt() -- not here: later routes may have it
  end
  local rh, h = req.headers, headers_of(res)
  h["etag"], h["last-modified"], h["accept-ranges"] = etag, modified, "bytes"
  if st.cache_control then h["cache-control"] = st.cache_control end

  -- Conditional GET: If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
  local fresh
  local inm = rh["if-none-match"]
  if inm ~= nil then
    fresh = etag_matches(inm, etag)
  else
    local ims = rh["if-modified-since"]
    local t = ims and parse_date(ims)
    fresh = t ~= nil and mtime <= t
  end
  if fresh then
    res.statusCode = 304
    return finish(res, "", nil)
  end

  local first, last, status = 0, size - 1, 200
  local range = rh["range"]
  if range ~= nil and if_range_holds(rh["if-range"], etag, mtime) then
    local a, b = parse_range(range, size)
    if a == false then
      h["content-range"] = "bytes */" .. size
      res.statusCode = 416
      return finish(res, "Range Not Satisfiable", TEXT, true)
    elseif a then
      first, last, status = a, b, 206
      h["content-range"] = format("bytes %d-%d/%d", a, b, size)
    end
  end
  local len = last - first + 1
  h["content-type"], h["content-length"] = ctype, tostring(len)
  res.statusCode = status
  local body
  if method == "HEAD" or len <= 0 then
    body = ""
  elseif len <= CHUNK then
    body = read_range(file, first, len)
  else
    body = stream_range(file, first, len) -- read as it is sent, 64 KiB at a time
  end
  return finish(res, body, nil)
end

-- The app -----------------------------------------------------------------------------------

local App = {}
App.__index = App

-- addr: "host:port", "[v6]:port", ":port" (default host), a port number or numeric string.
-- Returns host (or nil), port (or nil).
local function parse_addr(addr, fname, pos)
  if addr == nil then return nil, nil end
  local t = type(addr)
  if t == "number" then
    if addr % 1 ~= 0 or addr < 0 or addr > 65535 then bad_arg(pos, fname, "port out of range: " .. addr) end
    return nil, tointeger(addr)
  end
  if t ~= "string" then bad_type(pos, fname, "address (\"host:port\", \":port\" or a port number)", addr) end
  local host, port = match(addr, "^%[(.+)%]:(%d+)$")
  if not host then host, port = match(addr, "^([^:]*):(%d+)$") end
  if not host then host, port = "", match(addr, "^(%d+)$") end
  port = tonumber(port)
  if not port or port > 65535 then
    bad_arg(pos, fname, "address \"host:port\", \":port\" or a port number expected, got '" .. addr .. "'")
  end
  return host ~= "" and host or nil, port
end

local function new_app(fname, addr, opts)
  local host, port = parse_addr(addr, fname, 1)
  if opts ~= nil and type(opts) ~= "table" then bad_type(2, fname, "table", opts) end
  return setmetatable({ _layers = {}, _host = host, _port = port, _opts = opts }, App)
end

local function add(self, layer, fn, pos, fname, is_err)
  if not callable(fn) then bad_type(pos, fname, "function", fn) end
  layer.fn = fn
  if is_err == nil then is_err = is_error_handler(fn) end
  layer.is_err = is_err
  self._layers[#self._layers + 1] = layer
end

-- use([prefix,] fn, ...) and catch([prefix,] fn, ...): one layer per function.
local function add_middleware(self, fname, force_err, ...)
  local prefix, start = ..., 1
  if type(prefix) == "string" then start = 2 else prefix = nil end
  local n = select("#", ...)
  if n < start then bad_type(start + 1, fname, "function", nil) end
  for i = start, n do
    local layer = {}
    set_prefix(layer, prefix, fname)
    add(self, layer, (select(i, ...)), i + 1, fname, force_err or nil)
  end
  return self
end

function App:use(...)
  return add_middleware(self, "use", false, ...)
end

function App:catch(...)
  return add_middleware(self, "catch", true, ...)
end

-- get(path, h1, h2, ...): one layer per handler, sharing the route's identity so that
-- next("route") can skip the rest of them.
local function add_route(self, method, fname, path, ...)
  local n = select("#", ...)
  if n == 0 then bad_type(3, fname, "function", nil) end
  local proto = {}
  set_route_path(proto, path, fname)
  local route = {}
  for i = 1, n do
    local layer = { method = method, route = route, kind = proto.kind, path = proto.path,
      path_slash = proto.path_slash, pattern = proto.pattern, names = proto.names }
    add(self, layer, (select(i, ...)), i + 2, fname)
  end
  return self
end

for _, m in ipairs({ "get", "post", "put", "patch", "delete", "head", "options" }) do
  local method = upper(m)
  App[m] = function(self, path, ...) return add_route(self, method, m, path, ...) end
end

function App:all(path, ...)
  return add_route(self, nil, "all", path, ...)
end

-- static(prefix, dir[, {index = "index.html" | false, dotfiles = false, max_age = seconds}])
function App:static(prefix, dir, opts)
  if type(dir) ~= "string" then bad_type(3, "static", "directory string", dir) end
  if opts ~= nil and type(opts) ~= "table" then bad_type(4, "static", "table", opts) end
  opts = opts or {}
  local index = opts.index
  if index == nil then index = "index.html" end
  if index ~= false and (type(index) ~= "string" or find(index, "/", 1, true)) then
    bad_arg(4, "static", "option 'index': file name or false expected, got " .. got(index))
  end
  if opts.dotfiles ~= nil and type(opts.dotfiles) ~= "boolean" then
    bad_arg(4, "static", "option 'dotfiles': boolean expected, got " .. got(opts.dotfiles))
  end
  local max_age = opts.max_age
  if max_age ~= nil and (type(max_age) ~= "number" or max_age < 0 or max_age % 1 ~= 0) then
    bad_arg(4, "static", "option 'max_age': whole seconds expected, got " .. tostring(max_age))
  end
  local layer = {}
  set_prefix(layer, prefix, "static")
  local st = {
    root = files.root(dir), -- raises io: ... now if the directory is not there
    plen = layer.plen or 0,
    index = index,
    dotfiles = opts.dotfiles == true,
    cache_control = max_age and format("public, max-age=%d", max_age) or nil,
  }
  add(self, layer, function(req, res, nxt) return serve_file(st, req, res, nxt) end, 2, "static", false)
  return self
end

-- The function net.serve calls for each request (also handy to test an app without a socket:
-- call it with a table {method =, path =, headers =, query =, body =}). The same function every
-- time; routes added later still count.
function App:handler()
  local h = self._handler
  if h == nil then
    h = function(req) return handle(self, req) end
    self._handler = h
  end
  return h
end

-- serve([addr][, opts]) -> handle: starts serving without blocking. opts go to net.serve
-- (tls, limits, reuseport, handleWebSocket); those given to the constructor come first.
function App:serve(addr, opts)
  if type(addr) == "table" and opts == nil then addr, opts = nil, addr end
  local host, port = parse_addr(addr, "serve", 2)
  if opts ~= nil and type(opts) ~= "table" then bad_type(3, "serve", "table", opts) end
  local o = {}
  for _, src in ipairs({ self._opts or {}, opts or {} }) do
    for k, v in pairs(src) do o[k] = v end
  end
  o.address = host or self._host or DEFAULT_HOST
  o.handleRequest = self:handler()
  local serve = net.serve
  if serve == nil then error("io: net.serve is not in this build", 0) end
  return serve(port or self._port or DEFAULT_PORT, o)
end

-- listen([addr][, opts][, fn(handle)]): serve, call fn once listening, then run the loop until
-- net.stop() (or handle:stop() and nothing else left). Returns the handle.
function App:listen(...)
  local addr, opts, on_listen
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local t = type(v)
    if t == "function" then on_listen = v elseif t == "table" then opts = v elseif v ~= nil then addr = v end
  end
  local handle = self:serve(addr, opts)
  if on_listen then on_listen(handle) end
  net.run()
  return handle
end

local Server = {}
function Server.new(addr, opts)
  if addr == Server then addr, opts = opts, nil end -- Server:new(addr) forgives the colon
  return new_app("Server.new", addr, opts)
end

return {
  server = function(addr, opts) return new_app("net.http.server", addr, opts) end,
  Server = Server,
}
