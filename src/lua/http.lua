-- The thin Lua side of the HTTP client (docs/api.md, "HTTP client"): the response methods,
-- `net.http.get/post/put/patch/delete/head`, the `net.http.request(url)` builder and
-- `net.http.download`. `net.request` itself (connections, pool, redirects, decompression) is
-- Rust: src/http/client.rs.
local net, http, isatty = ...
local pcall = net.pcall -- the built-in, except on Lua 5.1 (the body inside waits)
local json_decode = net.json.decode

-- Response methods (the metatable of every response table).
local Response = {}
Response.__index = Response

function Response:json()
  local body = rawget(self, "body")
  if body == nil then error("json: the response body was streamed (use read or lines)", 2) end
  return json_decode(body)
end

function Response:text()
  return rawget(self, "body")
end

function Response:is_success()
  return self.ok
end

local function stream_of(res, op)
  local s = rawget(res, "stream")
  if s == nil then error(op .. ": the response is not streamed (pass stream = true)", 3) end
  return s
end

-- With `stream = true`: the next piece of the body (at most n bytes), nil at its end.
function Response:read(n)
  return stream_of(self, "read"):read(n)
end

-- With `stream = true`: an iterator over the body's lines (without their ends).
function Response:lines()
  local s = stream_of(self, "lines")
  return function() return s:line() end
end

function Response:close()
  local s = rawget(self, "stream")
  if s ~= nil then s:close() end
end

-- net.http.get(url[, opts]) and friends: opts as net.request's, url and method filled in.
local function with(url, method, opts, body)
  local o = {}
  if opts ~= nil then
    if type(opts) ~= "table" then error("bad argument: options table expected, got " .. type(opts), 3) end
    for k, v in pairs(opts) do o[k] = v end
  end
  o.url, o.method = url, method
  if body ~= nil then o.body = body end
  return o
end

-- The builder of `net.http.request(url)`: each method records and returns the builder.
local Builder = {}
Builder.__index = Builder

local function builder(url, method)
  if type(url) ~= "string" then error("bad argument #1 to 'net.http.request' (string expected, got " .. type(url) .. ")", 3) end
  return setmetatable({ opts = { url = url, method = method or "GET", headers = {}, query = {} } }, Builder)
end

function Builder:method(m) self.opts.method = m; return self end
function Builder:header(k, v) self.opts.headers[k] = v; return self end
function Builder:headers(t) for k, v in pairs(t) do self.opts.headers[k] = v end; return self end
function Builder:query(k, v)
  local q = self.opts.query
  if q[k] == nil then q[k] = v
  elseif type(q[k]) == "table" then q[k][#q[k] + 1] = v
  else q[k] = { q[k], v } end
  return self
end
function Builder:body(b) self.opts.body = b; return self end
function Builder:json(t)
  self.opts.body = net.json.encode(t)
  if self.opts.headers["Content-Type"] == nil and self.opts.headers["content-type"] == nil then
    self.opts.headers["content-type"] = "application/json"
  end
  return self
end
function Builder:timeout(ms) self.opts.timeout = ms; return self end
function Builder:tls(t) self.opts.tls = t; return self end
function Builder:option(k, v) self.opts[k] = v; return self end
function Builder:send() return net.request(self.opts) end

http.request = function(url) return builder(url) end
http.get = function(url, opts) return net.request(with(url, "GET", opts)) end
http.head = function(url, opts) return net.request(with(url, "HEAD", opts)) end
http.delete = function(url, opts) return net.request(with(url, "DELETE", opts)) end
for _, m in ipairs({ "post", "put", "patch" }) do
  local method = m:upper()
  -- Without a body: a builder (`net.http.post(url):json(t):send()`, as seed 002 writes it).
  http[m] = function(url, body, opts)
    if body == nil and opts == nil then return builder(url, method) end
    return net.request(with(url, method, opts, body))
  end
end

-- Progress: a bar on a terminal, a line every few seconds otherwise (logs, CI).
local function human(n)
  local units, i = { "B", "KiB", "MiB", "GiB", "TiB" }, 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and string.format("%d %s", n, units[i]) or string.format("%.1f %s", n, units[i])
end

local function progress_drawer()
  local tty = isatty(2)
  local started, last = net.now(), -1
  local function draw(done, total, final)
    local now = net.now()
    local every = tty and 0.1 or 2
    if not final and now - last < every then return end
    last = now
    local elapsed = math.max(now - started, 1e-6)
    local rate = done / elapsed
    local line
    if total and total > 0 then
      local frac = math.min(done / total, 1)
      local eta = rate > 0 and (total - done) / rate or 0
      if tty then
        local width = 30
        local fill = math.floor(frac * width)
        line = string.format("\r[%s%s] %5.1f%%  %s / %s  %s/s  ETA %ds ", string.rep("#", fill),
          string.rep(" ", width - fill), frac * 100, human(done), human(total), human(rate), math.floor(eta + 0.5))
      else
        line = string.format("%5.1f%%  %s / %s  %s/s  ETA %ds\n", frac * 100, human(done), human(total),
          human(rate), math.floor(eta + 0.5))
      end
    else
      line = string.format(tty and "\r%s  %s/s " or "%s  %s/s\n", human(done), human(rate))
    end
    io.stderr:write(line)
    if final and tty then io.stderr:write("\n") end
  end
  return draw
end

-- net.http.download(url, path[, opts]): streams the body to `path`, never holding it whole.
http.download = function(url, path, opts)
  if type(url) ~= "string" then error("bad argument #1 to 'net.http.download' (string expected, got " .. type(url) .. ")", 2) end
  if type(path) ~= "string" then error("bad argument #2 to 'net.http.download' (string expected, got " .. type(path) .. ")", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #3 to 'net.http.download' (table expected, got " .. type(opts) .. ")", 2) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local on_progress, bar, resume = o.on_progress, o.progress, o.resume
  o.on_progress, o.progress, o.resume = nil, nil, nil
  if on_progress ~= nil and type(on_progress) ~= "function" then
    error("bad argument #3 to 'net.http.download' (option 'on_progress': function expected)", 2)
  end
  o.url, o.stream = url, true
  -- The file is the resource as the server stores it: no content coding (which would also
  -- make byte ranges meaningless for `resume`).
  o.decompress = false
  local headers = {}
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  o.headers = headers
  local offset = 0
  if resume then
    local f = io.open(path, "rb")
    if f then offset = f:seek("end") or 0; f:close() end
    if offset > 0 then headers["range"] = "bytes=" .. offset .. "-" end
  end
  local res = net.request(o)
  if offset > 0 and res.status == 416 then
    -- Nothing past what we have: the file is complete.
    res:close()
    res.bytes = 0
    return res
  end
  if not res.ok then
    res:close()
    res.bytes = 0
    return res
  end
  local mode = "wb"
  if offset > 0 and res.status == 206 then mode = "ab" else offset = 0 end
  local f, err = io.open(path, mode)
  if not f then
    res:close()
    error("io: cannot open " .. path .. " for writing: " .. tostring(err), 2)
  end
  local len = tonumber(res.headers["content-length"])
  local total = len and len + offset or nil
  local done = offset
  local draw = bar and progress_drawer() or nil
  local ok, failure = pcall(function()
    while true do
      local chunk = res:read(65536)
      if chunk == nil then break end
      local wrote, werr = f:write(chunk)
      if not wrote then error("io: writing " .. path .. ": " .. tostring(werr), 0) end
      done = done + #chunk
      if on_progress then on_progress(done, total) end
      if draw then draw(done, total, false) end
    end
  end)
  f:close()
  if draw then draw(done, total, true) end
  if not ok then
    res:close()
    if not resume then os.remove(path) end
    error(failure, 0)
  end
  if total and done < total then
    if not resume then os.remove(path) end
    error("closed: download of " .. url .. " ended after " .. done .. " of " .. total .. " bytes", 2)
  end
  res.bytes = done - offset
  return res
end

-- A streamed request of net.serve (`stream = true`) reads its body as a streamed response does;
-- the other response methods (json, text, is_success) would misread a request, so it gets only
-- these. (The router's req:json() reads a streamed body itself.)
local Request = { read = Response.read, lines = Response.lines, close = Response.close }
Request.__index = Request

return { response = Response, request = Request }
