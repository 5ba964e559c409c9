-- Micro-benchmark: spawn + join of an empty task, in ns per pair. Usage: lua5.4|luajit
-- spawn_join.lua [N=200000]. Two cases: from inside a task (what a server handler pays: the
-- join parks the caller, the loop runs the child) and from the main thread (each join runs the
-- loop until the child is done). Prints one RESULT line.
local net = require("net")
local N = tonumber(arg[1]) or 200000
local function empty() end

local function timed(n, body)
  for _ = 1, 1000 do body() end -- warm-up
  collectgarbage()
  local t0 = os.clock()
  for _ = 1, n do body() end
  return (os.clock() - t0) / n * 1e9
end

local in_task
net.spawn(function()
  in_task = timed(N, function() net.spawn(empty):join() end)
end)
net.run()
local from_main = timed(N, function() net.spawn(empty):join() end)
print(("RESULT spawn_join lua=%s n=%d in_task_ns=%.0f main_ns=%.0f"):format(
  (jit and jit.version or _VERSION):gsub(" ", "_"), N, in_task, from_main))
