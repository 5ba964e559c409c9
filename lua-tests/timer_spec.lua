-- Time: net.sleep, net.now, net.setTimeout / net.clearTimeout, net.setInterval / net.clearInterval.
-- Timers are driven here by a main-thread net.sleep (which runs the loop while it blocks).
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local function is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v % 1 == 0
end

-- wait_until(seconds, cond): drive the loop from the main thread until cond() is truthy or time is up.
-- child(src, seconds): run src in a fresh interpreter -> exit code, stdout, stderr.
-- bad(pattern, f, ...): f(...) must raise an error matching pattern.
local wait_until, child, bad = helper.wait_until, helper.child, helper.raises

describe("net.now", function()
  it("is a number of seconds that never goes back", function()
    local a = net.now()
    local b = net.now()
    assert.is_number(a)
    assert.is_true(b >= a)
  end)

  it("advances by the time slept", function()
    local a = net.now()
    net.sleep(0.03)
    local dt = net.now() - a
    assert.is_true(dt >= 0.029, "advanced " .. dt)
    assert.is_true(dt < 0.5, "advanced " .. dt)
  end)
end)

describe("net.sleep", function()
  it("waits about the given seconds (fractions too)", function()
    local t0 = net.now()
    net.sleep(0.025)
    local dt = net.now() - t0
    assert.is_true(dt >= 0.024 and dt < 0.5, "slept " .. dt)
  end)

  it("accepts 0 (main thread and task)", function()
    local t0 = net.now()
    net.sleep(0)
    assert.is_true(net.now() - t0 < 0.1)
    local t = net.spawn(function() net.sleep(0); return "ok" end)
    assert.equal("ok", t:join())
  end)

  it("in a task wakes tasks in the order of their sleep times", function()
    local order = {}
    local ts = {}
    for _, ms in ipairs({ 40, 5, 25, 15 }) do
      ts[#ts + 1] = net.spawn(function() net.sleep(ms / 1000); order[#order + 1] = ms end)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.same({ 5, 15, 25, 40 }, order)
  end)

  it("rejects bad arguments with the argument position", function()
    bad("^bad argument #1 to 'net%.sleep' %(number expected, got string%)", net.sleep, "x")
    bad("^bad argument #1 to 'net%.sleep' %(number expected, got no value%)", net.sleep)
    bad("^bad argument #1 to 'net%.sleep' %(number expected, got table%)", net.sleep, {})
    bad("^bad argument #1 to 'net%.sleep' %(.*%)", net.sleep, -1)
    bad("^bad argument #1 to 'net%.sleep' %(.*%)", net.sleep, -0.001)
    bad("^bad argument #1 to 'net%.sleep' %(.*%)", net.sleep, 0 / 0)
    bad("^bad argument #1 to 'net%.sleep' %(.*%)", net.sleep, math.huge)
  end)

  it("rejects a negative time inside a task too, without killing the task", function()
    local t = net.spawn(function()
      local ok, err = pcall(net.sleep, -1)
      return ok, err, "after"
    end)
    local ok, err, after = t:join()
    assert.is_false(ok)
    assert.matches("^bad argument #1 to 'net%.sleep'", err)
    assert.equal("after", after)
  end)
end)

describe("net.setTimeout", function()
  it("returns an integer id, different for each timer", function()
    local a = net.setTimeout(function() end, 1)
    local b = net.setTimeout(function() end, 1)
    assert.is_true(is_integer(a), tostring(a))
    assert.is_true(is_integer(b), tostring(b))
    assert.not_equal(a, b)
    net.clearTimeout(a); net.clearTimeout(b)
  end)

  it("calls the function once, after the delay in milliseconds", function()
    local calls, at = 0, nil
    local t0 = net.now()
    net.setTimeout(function() calls = calls + 1; at = net.now() end, 50)
    net.sleep(0.01)
    assert.equal(0, calls)
    assert.is_truthy(wait_until(1, function() return calls > 0 end))
    assert.is_true(at - t0 >= 0.049, "fired after " .. (at - t0))
    net.sleep(0.04)
    assert.equal(1, calls)
  end)

  it("fires timers in the order of their delays, not of their creation", function()
    local order = {}
    for _, ms in ipairs({ 30, 10, 20, 0 }) do
      net.setTimeout(function() order[#order + 1] = ms end, ms)
    end
    wait_until(1, function() return #order == 4 end)
    assert.same({ 0, 10, 20, 30 }, order)
  end)

  it("accepts duration strings like '20ms'", function()
    local fired = false
    local t0 = net.now()
    net.setTimeout(function() fired = net.now() - t0 end, "20ms")
    assert.is_truthy(wait_until(1, function() return fired end))
    assert.is_true(fired >= 0.019, "fired after " .. tostring(fired))
  end)

  it("runs the callback as a task: it may call net.sleep", function()
    local log = {}
    net.setTimeout(function()
      log[#log + 1] = "start"
      net.sleep(0.01)
      log[#log + 1] = "end"
    end, 1)
    wait_until(1, function() return #log == 2 end)
    assert.same({ "start", "end" }, log)
  end)

  it("fires while the main thread is blocked in net.sleep", function()
    local fired = false
    net.setTimeout(function() fired = true end, 10)
    net.sleep(0.04)
    assert.is_true(fired)
  end)

  it("rejects bad arguments with the argument position", function()
    bad("^bad argument #1 to 'net%.setTimeout' %(function expected, got no value%)", net.setTimeout, nil, 1)
    bad("^bad argument #1 to 'net%.setTimeout' %(function expected, got number%)", net.setTimeout, 5, 1)
    bad("^bad argument #2 to 'net%.setTimeout' %(.*%)", net.setTimeout, function() end, -1)
    bad("^bad argument #2 to 'net%.setTimeout' %(.*%)", net.setTimeout, function() end, "soon")
    bad("^bad argument #2 to 'net%.setTimeout' %(.*%)", net.setTimeout, function() end, {})
  end)
end)

describe("net.clearTimeout", function()
  it("cancels a timer before it fires", function()
    local fired = false
    local id = net.setTimeout(function() fired = true end, 10)
    net.clearTimeout(id)
    net.sleep(0.03)
    assert.is_false(fired)
  end)

  it("cancels only the timer it is given", function()
    local log = {}
    local a = net.setTimeout(function() log[#log + 1] = "a" end, 10)
    net.setTimeout(function() log[#log + 1] = "b" end, 10)
    net.clearTimeout(a)
    wait_until(1, function() return #log > 0 end)
    net.sleep(0.01)
    assert.same({ "b" }, log)
  end)

  it("can be called from another timer's callback", function()
    local fired = {}
    local late
    net.setTimeout(function() net.clearTimeout(late); fired[#fired + 1] = "early" end, 5)
    late = net.setTimeout(function() fired[#fired + 1] = "late" end, 25)
    net.sleep(0.05)
    assert.same({ "early" }, fired)
  end)

  it("is a no-op for nil, an unknown id and a timer that already fired", function()
    local n = 0
    local id = net.setTimeout(function() n = n + 1 end, 1)
    wait_until(1, function() return n == 1 end)
    assert.has_no.errors(function()
      net.clearTimeout(nil)
      net.clearTimeout(987654321)
      net.clearTimeout(id)
      net.clearTimeout(id)
    end)
    assert.equal(1, n)
  end)

  it("rejects a non-integer id", function()
    bad("^bad argument #1 to 'net%.clearTimeout' %(.*%)", net.clearTimeout, "x")
    bad("^bad argument #1 to 'net%.clearTimeout' %(.*%)", net.clearTimeout, {})
  end)
end)

describe("net.setInterval", function()
  it("calls the function repeatedly, about every N ms, until clearInterval", function()
    local times = {}
    local id
    id = net.setInterval(function()
      times[#times + 1] = net.now()
      if #times == 3 then net.clearInterval(id) end
    end, 10)
    assert.is_true(is_integer(id))
    assert.is_truthy(wait_until(1, function() return #times >= 3 end))
    net.sleep(0.04)
    assert.equal(3, #times) -- cleared from inside its own callback
    -- Ticks are 10 ms apart; each callback starts when its task first runs, which a loaded
    -- machine delays by a few ms, so two starts can be closer than the ticks.
    for i = 2, 3 do
      assert.is_true(times[i] - times[i - 1] >= 0.005, "ticks too close: " .. (times[i] - times[i - 1]))
    end
  end)

  it("stops when cleared from outside", function()
    local n = 0
    local id = net.setInterval(function() n = n + 1 end, 5)
    wait_until(1, function() return n >= 2 end)
    net.clearInterval(id)
    local seen = n
    net.sleep(0.03)
    assert.is_true(seen >= 2)
    assert.equal(seen, n)
  end)

  it("accepts duration strings", function()
    local n = 0
    local id = net.setInterval(function() n = n + 1 end, "5ms")
    local ok = wait_until(1, function() return n >= 2 end)
    net.clearInterval(id)
    assert.is_truthy(ok)
  end)

  it("stops only the interval whose callback raised; the error is printed; others go on", function()
    local rc, out, err = child([[
      local bad_calls, good_calls = 0, 0
      net.setInterval(function()
        bad_calls = bad_calls + 1
        if bad_calls == 2 then error("interval boom") end
      end, 5)
      local good = net.setInterval(function() good_calls = good_calls + 1 end, 5)
      net.setTimeout(function() net.clearInterval(good) end, 80)
      net.run()
      print(bad_calls, good_calls >= 8)
    ]], 5)
    assert.equal(0, rc)
    assert.equal("2\ttrue", out)
    assert.matches("net: task failed: [^\n]*interval boom", err)
  end)

  it("is a no-op to clear nil or an unknown id", function()
    assert.has_no.errors(function()
      net.clearInterval(nil)
      net.clearInterval(123456789)
    end)
  end)

  it("rejects bad arguments with the argument position", function()
    bad("^bad argument #1 to 'net%.setInterval' %(function expected, got string%)", net.setInterval, "f", 10)
    bad("^bad argument #2 to 'net%.setInterval' %(.*%)", net.setInterval, function() end, -10)
    bad("^bad argument #1 to 'net%.clearInterval' %(.*%)", net.clearInterval, "x")
  end)
end)
