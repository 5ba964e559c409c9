-- The anchor of tasks_100k.lua: the same job written with bare coroutines on libuv timers (luv),
-- as a luv user would: each coroutine starts a one-shot timer, yields, and is resumed by the
-- timer's callback. Same output line as tasks_100k.lua. Usage: lua5.4|luajit tasks_luv.lua [N]
local uv = require("luv")
local N = tonumber(arg[1]) or 100000

local function status()
  local f = io.open("/proc/self/status")
  if not f then return 0, 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0, tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function now() return uv.hrtime() / 1e9 end

local function sleep(secs)
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(math.floor(secs * 1000), 0, function()
    t:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

local function spawn(fn)
  local co = coroutine.create(fn)
  assert(coroutine.resume(co))
end

collectgarbage()
local rss0 = status()
local heap0 = collectgarbage("count")
local done = 0
local peak_heap, peak_rss, spawn_secs
local t0, c0 = now(), os.clock()
for _ = 1, N do
  spawn(function()
    sleep(0.1)
    done = done + 1
  end)
end
spawn_secs = now() - t0
spawn(function()
  sleep(0.05)
  peak_heap = collectgarbage("count")
  peak_rss = status()
end)
uv.run()
local wall, cpu = now() - t0, os.clock() - c0
local rss1, hwm = status()
assert(done == N, ("only %d of %d tasks finished"):format(done, N))
print(("RESULT tasks_luv lua=%s n=%d wall_s=%.3f cpu_s=%.3f spawn_s=%.3f heap0_kib=%.0f heap_sleeping_kib=%s heap_end_kib=%.0f rss0_kib=%d rss_sleeping_kib=%s rss_end_kib=%d hwm_kib=%d"):format(
  (jit and jit.version or _VERSION):gsub(" ", "_"), N, wall, cpu, spawn_secs, heap0,
  peak_heap and ("%.0f"):format(peak_heap) or "NA", collectgarbage("count"), rss0,
  peak_rss and tostring(peak_rss) or "NA", rss1, hwm))
