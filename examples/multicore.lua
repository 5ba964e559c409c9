-- One HTTP server on every core: the same script runs as N worker processes that all listen on
-- one port with `reuseport = true`, and the kernel spreads new connections over them (the
-- nginx model). Each worker is a whole, independent `net.serve` server.
--
--   lua5.4 examples/multicore.lua [workers [port]]     serve until Ctrl-C (default: one per core, 8080)
--   lua5.4 examples/multicore.lua --selftest           2 workers on a free port, 200 requests, exit
--
-- Try it with: wrk -t2 -c100 -d10s http://127.0.0.1:8080/
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line")

-- A worker: serves until killed (or, in the self-test, until told to quit).
if arg[1] == "--worker" then
  local id, port = arg[2], tonumber(arg[3])
  local server
  server = net.serve(port, {
    reuseport = true,
    handleRequest = function(req)
      if req.path == "/quit" then
        net.spawn(function() server:stop() end)
        return "bye from worker " .. id
      end
      return "Hello from worker " .. id .. "\n"
    end,
  })
  print("ready")
  net.run()
  return
end

local lua = arg[-1] or "lua5.4"
local selftest = arg[1] == "--selftest"
local count = tonumber(not selftest and arg[1] or nil) or (selftest and 2) or tonumber(io.popen("nproc"):read("*l")) or 2
local port = tonumber(not selftest and arg[2] or nil)
if not port then
  if selftest then
    -- A port that is free now: every worker binds it with SO_REUSEPORT.
    local probe = net.tcp.listen("127.0.0.1", 0)
    port = probe.port
    probe:close()
  else
    port = 8080
  end
end

-- Start the workers; each prints "ready" once it listens. `exec` keeps the shell's pid for it.
local workers = {}
for i = 1, count do
  local p = io.popen(("exec %s %s --worker %d %d"):format(lua, arg[0], i, port), "r")
  workers[i] = p
  assert(p:read("*l") == "ready", "worker " .. i .. " did not start")
end
print(("serving http://127.0.0.1:%d/ with %d worker processes"):format(port, count))

if not selftest then
  for _, p in ipairs(workers) do p:close() end -- waits for them: Ctrl-C ends all
  return
end

-- Self-test: fresh connections (Connection: close), so the kernel picks a worker for each.
local seen = {}
for _ = 1, 200 do
  local r = net.request({ url = ("http://127.0.0.1:%d/"):format(port), headers = { Connection = "close" } })
  local id = r.body:match("worker (%d+)")
  seen[id] = (seen[id] or 0) + 1
end
for i = 1, count do print(("worker %d answered %d requests"):format(i, seen[tostring(i)] or 0)) end
-- Tell each worker to quit: keep asking until every one has said goodbye.
local gone, tries = {}, 0
while tries < 2000 do
  local n = 0
  for _ in pairs(gone) do n = n + 1 end
  if n == count then break end
  tries = tries + 1
  local ok, r = pcall(net.request, { url = ("http://127.0.0.1:%d/quit"):format(port), headers = { Connection = "close" } })
  if ok then gone[r.body:match("worker (%d+)")] = true end
end
for _, p in ipairs(workers) do p:close() end
print("all workers stopped")
