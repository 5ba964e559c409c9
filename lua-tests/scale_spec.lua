-- Many tasks at once (docs/internals.md, "Tasks"): 5,000 concurrent tasks anywhere, and 100,000 sleeping tasks on
-- LuaJIT, whose cap on live mlua references (~8000) a careless runtime would hit. Lua 5.4 runs the
-- big test with 20,000 tasks to keep the suite quick. Every wait is bounded.
local helper = require("helper")
local net = helper.net

local is_luajit = type(jit) == "table"

-- Drive the loop from the main thread (10 ms steps) until cond() is truthy or `seconds` pass.
local function wait_until(seconds, cond) return helper.wait_until(seconds, cond, 0.01) end

describe("scale", function()
  it("runs 5,000 concurrent tasks that sleep, pass values through a channel and are joined", function()
    local N = 5000
    local ch = net.channel()
    local tasks = {}
    local t0 = net.now()
    for i = 1, N do
      tasks[i] = net.spawn(function(k)
        net.sleep(0.02)
        ch:send(k)
        return k * 2
      end, i)
    end
    local sum = 0
    local ok = helper.bounded(20, function()
      for i = 1, N do sum = sum + tasks[i]:join() end
      return true
    end)
    assert.is_true(ok)
    assert.equal(N * (N + 1), sum) -- sum of 2k for k = 1..N
    assert.equal(N, ch:len())
    local seen, count = {}, 0
    for _ = 1, N do
      local v = ch:receive()
      if not seen[v] then seen[v] = true; count = count + 1 end
    end
    assert.equal(N, count)
    -- concurrent: far less than N * 20 ms (100 s) even on a slow machine
    assert.is_true(net.now() - t0 < 10, "took " .. (net.now() - t0) .. " s")
    for i = 1, N do assert.equal("done", tasks[i]:status()) end
  end)

  it("runs 5,000 tasks that each wait on their own channel and wake in turn", function()
    local N = 5000
    local chans, woken = {}, 0
    for i = 1, N do
      chans[i] = net.channel(1)
      net.spawn(function()
        local v = chans[i]:receive()
        if v == i then woken = woken + 1 end
      end)
    end
    net.sleep(0.01)
    assert.equal(0, woken) -- all waiting
    for i = 1, N do chans[i]:send(i) end
    assert.is_truthy(wait_until(10, function() return woken == N end), "woken: " .. woken)
  end)

  it("keeps " .. (is_luajit and "100,000" or "20,000") .. " tasks sleeping at the same time", function()
    local N = is_luajit and 100000 or 20000
    local started, finished = 0, 0
    local t0 = net.now()
    for _ = 1, N do
      net.spawn(function()
        started = started + 1
        net.sleep(0.5)
        finished = finished + 1
      end)
    end
    -- all of them are asleep at once before any wakes up
    assert.is_truthy(wait_until(30, function() return started == N end), "started: " .. started)
    local max_asleep = started - finished
    assert.is_truthy(wait_until(60, function() return finished == N end), "finished: " .. finished)
    assert.is_true(max_asleep > N / 2, "only " .. max_asleep .. " asleep at once")
    assert.is_true(net.now() - t0 < 60)
    collectgarbage()
  end)
end)
