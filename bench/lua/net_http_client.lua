-- Sequential HTTP GETs for a bounded time with net.request (one task, one request at a time,
-- the client's keep-alive connection reused), for bench/http.sh's client part.
-- Usage: lua5.4|luajit net_http_client.lua URL SECS   (loopback URLs only)
-- Prints `RESULT http-client net (<Lua>) reqs=<n> secs=<s> rate=<req/s> errors=<n>` like the
-- LuaSocket and lua-http clients beside it; the first error is printed to stderr.
local net = require("net")
local url, secs = arg[1] or "http://127.0.0.1:8080/", tonumber(arg[2]) or 5
assert(url:match("^http://127%.[%d%.]+:%d+/"), "loopback targets only")
local n, errs = 0, 0
local t0, el
net.spawn(function()
  t0 = net.now()
  local deadline = t0 + secs
  while net.now() < deadline do
    local ok, res = pcall(net.request, url)
    if ok and res.status == 200 and res.body == "Hello, World!" then
      n = n + 1
    else
      errs = errs + 1
      if errs == 1 then
        io.stderr:write("first error: ", ok and ("status " .. tostring(res.status)) or tostring(res), "\n")
      end
      -- a server that refuses everything must not turn this into a busy loop of errors
      if n == 0 and errs >= 100 then break end
    end
  end
  el = net.now() - t0
end)
net.run()
el = el or secs
print(("RESULT http-client net (%s) reqs=%d secs=%.3f rate=%.0f errors=%d"):format(
  jit and jit.version or _VERSION, n, el, n / el, errs))
