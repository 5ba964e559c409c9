-- Micro-benchmark: N tasks (default 100,000), each net.sleep(0.1), run with net.run().
-- Its anchor is tasks_luv.lua (same job on luv; micro.sh runs both and prints the ratios).
-- Usage: lua5.4|luajit tasks_100k.lua [N=100000]
-- Prints wall (net.now), CPU (os.clock), Lua heap (collectgarbage "count") and the process
-- RSS (VmRSS now, VmHWM peak) before, while all tasks sleep, and after.
local net = require("net")
local N = tonumber(arg[1]) or 100000

local function status()
  local f = io.open("/proc/self/status")
  if not f then return 0, 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0, tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

collectgarbage()
local rss0 = status()
local heap0 = collectgarbage("count")
local done = 0
local peak_heap, peak_rss, spawn_secs
local t0, c0 = net.now(), os.clock()
for _ = 1, N do
  net.spawn(function()
    net.sleep(0.1)
    done = done + 1
  end)
end
spawn_secs = net.now() - t0
-- probe while every task is asleep (fires before their 0.1 s sleeps end)
net.spawn(function()
  net.sleep(0.05)
  peak_heap = collectgarbage("count")
  peak_rss = status()
end)
net.run()
local wall, cpu = net.now() - t0, os.clock() - c0
local rss1, hwm = status()
assert(done == N, ("only %d of %d tasks finished"):format(done, N))
print(("RESULT tasks lua=%s n=%d wall_s=%.3f cpu_s=%.3f spawn_s=%.3f heap0_kib=%.0f heap_sleeping_kib=%s heap_end_kib=%.0f rss0_kib=%d rss_sleeping_kib=%s rss_end_kib=%d hwm_kib=%d"):format(
  (jit and jit.version or _VERSION):gsub(" ", "_"), N, wall, cpu, spawn_secs, heap0,
  peak_heap and ("%.0f"):format(peak_heap) or "NA", collectgarbage("count"), rss0,
  peak_rss and tostring(peak_rss) or "NA", rss1, hwm))
