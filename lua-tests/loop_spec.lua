-- The event loop: net.spawn / task:join / task:cancel / task:status, net.run / net.stop, net.wrap,
-- and the "one function, three behaviours" rule (docs/internals.md): a waiting call yields inside a task,
-- blocks (running every task) on the main thread, and raises in a foreign coroutine inside a task.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local pack, unpack = helper.pack, helper.unpack
-- child(src, seconds): run src in a fresh interpreter (its own loop) -> exit code, stdout, stderr
local child = helper.child

-- net.run() until every task in `tasks` has ended (then net.stop()), or a watchdog stops it after
-- `seconds`. Leftover tasks of other spec files cannot make it hang. Returns net.run()'s result.
local function run_until_done(seconds, tasks)
  local fired = false
  local dog = net.setTimeout(function() fired = true; net.stop() end, math.floor(seconds * 1000))
  net.spawn(function()
    for _, t in ipairs(tasks) do
      while t:status() == "running" do net.sleep(0.002) end
    end
    net.clearTimeout(dog)
    net.stop()
  end)
  local res = pack(net.run())
  assert(not fired, ("net.run() did not finish within %g s"):format(seconds))
  return unpack(res, 1, res.n)
end

describe("net.spawn and task:join", function()
  it("passes the spawn arguments to the function", function()
    local t = net.spawn(function(a, b, c) return a + b, c end, 1, 2, "x")
    local r = pack(t:join())
    assert.same({ n = 2, 3, "x" }, r)
  end)

  it("returns every result of the function, nils included", function()
    local t = net.spawn(function() return nil, 2, nil, "four", nil end)
    local r = pack(t:join())
    assert.equal(5, r.n)
    assert.same({ n = 5, nil, 2, nil, "four", nil }, r)
  end)

  it("returns nothing for a function that returns nothing", function()
    local t = net.spawn(function() end)
    assert.equal(0, select("#", t:join()))
  end)

  it("returns the same results when joined twice", function()
    local t = net.spawn(function() net.sleep(0.005); return "a", 1 end)
    assert.same({ n = 2, "a", 1 }, pack(t:join()))
    assert.same({ n = 2, "a", 1 }, pack(t:join()))
  end)

  it("re-raises the task's error string as is (position included)", function()
    local line
    local t = net.spawn(function() line = debug.getinfo(1, "l").currentline; error("boom") end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.equal(("%s:%d: boom"):format(debug.getinfo(1, "S").short_src, line), err)
  end)

  it("re-raises a table error value itself, not a copy or a string", function()
    local e = { code = 42 }
    local t = net.spawn(function() net.sleep(0.005); error(e) end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.equal(e, err) -- same table
  end)

  it("re-raises non-string scalar error values (number, false)", function()
    local t1 = net.spawn(function() error(7, 0) end)
    local t2 = net.spawn(function() net.sleep(0.005); error(false) end) -- joined before it fails
    local ok1, e1 = pcall(t1.join, t1)
    local ok2, e2 = pcall(t2.join, t2)
    assert.same({ false, 7 }, { ok1, e1 })
    assert.same({ false, false }, { ok2, e2 })
  end)

  it("runs tasks concurrently: two 50 ms sleeps take about 50 ms, not 100", function()
    local t0 = net.now()
    local a = net.spawn(function() net.sleep(0.05); return "a" end)
    local b = net.spawn(function() net.sleep(0.05); return "b" end)
    assert.equal("a", a:join())
    assert.equal("b", b:join())
    local dt = net.now() - t0
    assert.is_true(dt >= 0.045, "too fast: " .. dt)
    assert.is_true(dt < 0.095, "not concurrent: " .. dt)
  end)

  it("interleaves tasks in the order of their wake-up times", function()
    local order = {}
    local ts = {}
    for _, d in ipairs({ 30, 10, 20 }) do
      ts[#ts + 1] = net.spawn(function() net.sleep(d / 1000); order[#order + 1] = d end)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.same({ 10, 20, 30 }, order)
  end)

  it("lets a task spawn and join other tasks", function()
    local outer = net.spawn(function()
      local kids = {}
      for i = 1, 3 do kids[i] = net.spawn(function() net.sleep(0.005 * i); return i * i end) end
      local sum = 0
      for i = 1, 3 do sum = sum + kids[i]:join() end
      return sum
    end)
    assert.equal(14, outer:join())
  end)

  it("keeps other tasks running when one task fails", function()
    local bad = net.spawn(function() net.sleep(0.005); error("task died") end)
    local good = net.spawn(function() net.sleep(0.02); return "still here" end)
    local ok, err = pcall(bad.join, bad)
    assert.is_false(ok)
    assert.matches("task died$", err)
    assert.equal("running", good:status())
    assert.equal("still here", good:join())
  end)

  it("refuses a task joining itself", function()
    local me
    me = net.spawn(function()
      net.sleep(0.001)
      return pcall(me.join, me)
    end)
    local ok, err = me:join()
    assert.is_false(ok)
    assert.matches("^io: ", err)
    assert.matches("itself", err)
  end)
end)

describe("task:status", function()
  it("is 'running', then 'done' after the function returned", function()
    local t = net.spawn(function() net.sleep(0.01) end)
    assert.equal("running", t:status())
    t:join()
    assert.equal("done", t:status())
  end)

  it("is 'failed' after the function raised", function()
    local t = net.spawn(function() error("x") end)
    pcall(t.join, t)
    assert.equal("failed", t:status())
  end)

  it("is 'cancelled' after cancel", function()
    local t = net.spawn(function() net.sleep(1) end)
    net.sleep(0.005) -- let it start
    assert.is_true(t:cancel())
    assert.equal("cancelled", t:status())
  end)
end)

describe("task:cancel", function()
  it("stops a sleeping task: it never resumes and join raises 'cancelled: '", function()
    local resumed = false
    local t = net.spawn(function() net.sleep(0.03); resumed = true end)
    net.sleep(0.005)
    assert.is_true(t:cancel())
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.matches("^cancelled: ", err)
    net.sleep(0.05)
    assert.is_false(resumed)
    assert.equal("cancelled", t:status())
  end)

  it("wakes a task that is joining the cancelled task with 'cancelled: '", function()
    local sleeper = net.spawn(function() net.sleep(1) end)
    local joiner = net.spawn(function() return pcall(sleeper.join, sleeper) end)
    net.sleep(0.01)
    sleeper:cancel()
    local ok, err = helper.bounded(1, function() return joiner:join() end)
    assert.is_false(ok)
    assert.matches("^cancelled: ", err)
  end)

  it("can be called from another task", function()
    local victim = net.spawn(function() net.sleep(1) end)
    local killer = net.spawn(function()
      net.sleep(0.005)
      local was_running = victim:cancel()
      return was_running, pcall(victim.join, victim)
    end)
    local was_running, ok, err = helper.bounded(1, function() return killer:join() end)
    assert.is_true(was_running)
    assert.is_false(ok)
    assert.matches("^cancelled: ", err)
  end)

  it("returns false for a task that has already finished, which keeps its results", function()
    local t = net.spawn(function() return "result" end)
    assert.equal("result", t:join())
    assert.is_false(t:cancel())
    assert.equal("done", t:status())
    assert.equal("result", t:join())
  end)

  it("works on a task that has not started yet (join raises 'cancelled: ', net.run returns)", function()
    -- in a child process: a lost task here would keep this process's loop alive forever
    local rc, out = child([[
      local t = net.spawn(function() print("body ran") end)
      print(t:cancel(), t:status())
      print(pcall(t.join, t))
      print("run", net.run())
    ]], 2)
    assert.equal(0, rc)
    local lines = {}
    for l in (out .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.equal("true\tcancelled", lines[1])
    assert.matches("^false\tcancelled: ", lines[2])
    assert.equal("run\t0", lines[3])
    assert.is_nil(lines[4])
  end)
end)

describe("bad arguments", function()
  local bad = helper.raises

  it("net.spawn needs a function as argument #1", function()
    bad("^bad argument #1 to 'net%.spawn' %(function expected, got number%)", net.spawn, 42)
    bad("^bad argument #1 to 'net%.spawn' %(function expected, got no value%)", net.spawn)
    bad("^bad argument #1 to 'net%.spawn' %(function expected, got string%)", net.spawn, "print")
  end)

  it("task methods need a task as self", function()
    local t = net.spawn(function() end)
    bad("^bad argument #1 to 'join' %(task expected, got number%)", t.join, 42)
    bad("^bad argument #1 to 'cancel' %(task expected, got table%)", t.cancel, {})
    bad("^bad argument #1 to 'status' %(task expected, got no value%)", t.status)
    bad("^bad argument #1 to 'join' %(task expected, got userdata%)", t.join, net.channel())
    t:join()
  end)

  it("net.wrap needs a function", function()
    bad("^bad argument #1 to 'net%.wrap' %(function expected, got number%)", net.wrap, 1)
    bad("^bad argument #1 to 'net%.wrap' %(function expected, got no value%)", net.wrap)
  end)

  it("net.run inside a task raises an io error", function()
    local t = net.spawn(function() return pcall(net.run) end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("^io: net%.run", err)
  end)
end)

describe("tostring", function()
  it("of a task names it and tells tasks apart", function()
    local a, b = net.spawn(function() end), net.spawn(function() end)
    assert.matches("^task{.+}$", tostring(a))
    assert.not_equal(tostring(a), tostring(b))
    a:join(); b:join()
  end)
end)

describe("net.run", function()
  it("returns the number of tasks that failed during the run", function()
    local ts = {
      net.spawn(function() net.sleep(0.005); error("one") end),
      net.spawn(function() net.sleep(0.01); error({ "two" }) end),
      net.spawn(function() net.sleep(0.01); return "fine" end),
    }
    -- joined (pcall) by a task: the failures are not printed, but still counted
    local joins = {}
    for i, t in ipairs(ts) do joins[i] = net.spawn(function() return pcall(t.join, t) end) end
    local failed = run_until_done(2, ts)
    assert.equal(2, failed)
    assert.equal("fine", ts[3]:join())
    for _, j in ipairs(joins) do j:join() end
  end)

  it("counts only the failures of this run", function()
    local t = net.spawn(function() net.sleep(0.005) end)
    assert.equal(0, run_until_done(2, { t }))
  end)

  it("returns by itself once no task or timer is left", function()
    local rc, out = child([[
      local t0 = net.now()
      local log = {}
      net.spawn(function() net.sleep(0.02); log[#log + 1] = "task" end)
      net.setTimeout(function() log[#log + 1] = "timer" end, 40)
      local n = net.run()
      print(n, table.concat(log, ","), net.now() - t0 >= 0.035)
      print(net.run()) -- nothing left: returns at once
    ]], 5)
    assert.equal(0, rc)
    assert.equal("0\ttask,timer\ttrue\n0", out)
  end)

  it("returns early on net.stop() while tasks are pending; the next run finishes them", function()
    local steps = 0
    local t = net.spawn(function()
      for _ = 1, 3 do net.sleep(0.02); steps = steps + 1 end
      return "finished"
    end)
    local t0 = net.now()
    net.setTimeout(function() net.stop() end, 30) -- between step 1 and step 2
    net.run()
    local dt = net.now() - t0
    assert.is_true(dt < 0.055, "net.run returned after " .. dt .. " s")
    assert.equal(1, steps)
    assert.equal("running", t:status())
    assert.equal("finished", helper.bounded(1, function() return t:join() end))
    assert.equal(3, steps)
  end)

  it("can be stopped from inside a task", function()
    local after = false
    local sleeper = net.spawn(function() net.sleep(0.2); after = true end)
    net.spawn(function() net.sleep(0.01); net.stop() end)
    local t0 = net.now()
    net.run()
    assert.is_true(net.now() - t0 < 0.15)
    assert.is_false(after)
    sleeper:cancel()
  end)

  it("prints an unjoined task's error with its traceback to stderr, and only that one", function()
    local rc, out, err = child([[
      net.spawn(function() net.sleep(0.01); error("unjoined failure") end)
      local j = net.spawn(function() net.sleep(0.01); error("joined failure") end)
      net.spawn(function() print(pcall(j.join, j)) end)
      print("failed", net.run())
    ]], 5)
    assert.equal(0, rc)
    assert.matches("joined failure", out)
    assert.matches("failed\t2$", out)
    assert.matches("net: task failed: [^\n]*unjoined failure", err)
    assert.matches("stack traceback:", err)
    local _, printed = err:gsub("net: task failed:", "")
    assert.equal(1, printed)
    assert.not_matches("[^n]joined failure", err)
  end)
end)

describe("the three behaviours of a waiting call", function()
  it("in a task, net.sleep yields so that other tasks run meanwhile", function()
    local log = {}
    local a = net.spawn(function()
      log[#log + 1] = "a1"; net.sleep(0.02); log[#log + 1] = "a2"
    end)
    local b = net.spawn(function()
      log[#log + 1] = "b1"; net.sleep(0.01); log[#log + 1] = "b2"
    end)
    a:join(); b:join()
    assert.same({ "a1", "b1", "b2", "a2" }, log)
  end)

  it("on the main thread, net.sleep blocks while spawned tasks keep running", function()
    local counter = 0
    local t = net.spawn(function()
      while true do counter = counter + 1; net.sleep(0.005) end
    end)
    local t0 = net.now()
    net.sleep(0.05)
    local dt = net.now() - t0
    t:cancel()
    assert.is_true(dt >= 0.045, "slept only " .. dt)
    assert.is_true(counter >= 4, "the task ran " .. counter .. " times")
    local frozen = counter
    net.sleep(0.02)
    assert.equal(frozen, counter)
  end)

  it("on the main thread, ch:receive() blocks while a task sends", function()
    local ch = net.channel()
    local guard = net.setTimeout(function() ch:close() end, 1000) -- a broken loop fails, not hangs
    net.spawn(function() net.sleep(0.01); ch:send("hello") end)
    local v, ok = ch:receive()
    net.clearTimeout(guard)
    assert.equal("hello", v)
    assert.is_true(ok)
  end)

  it("in a plain coroutine outside the loop, net.sleep just blocks", function()
    local t0 = net.now()
    local co = coroutine.wrap(function() net.sleep(0.02); return "woke" end)
    assert.equal("woke", co())
    assert.is_true(net.now() - t0 >= 0.015)
  end)

  it("in a coroutine.wrap inside a task, net.sleep raises an error naming net.spawn and net.wrap", function()
    local t = net.spawn(function()
      local f = coroutine.wrap(function() net.sleep(0.01); return "slept" end)
      return pcall(f)
    end)
    local ok, err = helper.bounded(1, function() return t:join() end)
    assert.is_false(ok)
    assert.matches("^io: ", err)
    assert.truthy(err:find("net.spawn", 1, true), err)
    assert.truthy(err:find("net.wrap", 1, true), err)
  end)

  it("a plain coroutine.yield() inside a task is a cooperative yield: the task goes on", function()
    local log = {}
    local a = net.spawn(function()
      for i = 1, 3 do
        log[#log + 1] = "a" .. i
        local r = pack(coroutine.yield("ignored"))
        assert(r.n == 0, "yield returned values")
      end
      return "a done"
    end)
    local b = net.spawn(function()
      for i = 1, 3 do log[#log + 1] = "b" .. i; coroutine.yield() end
    end)
    assert.equal("a done", helper.bounded(1, function() return a:join() end))
    b:join()
    local pos = {}
    for i, v in ipairs(log) do pos[v] = i end
    assert.equal(6, #log)
    assert.is_true(pos.a1 < pos.a2 and pos.a2 < pos.a3, table.concat(log, ","))
    assert.is_true(pos.b1 < pos.a3, "b did not run between a's yields: " .. table.concat(log, ","))
  end)

  it("pcall around a yielding call works inside a task (success and error after the yield)", function()
    local t = net.spawn(function()
      local ok1, v1 = pcall(function() net.sleep(0.005); return "after sleep" end)
      local ok2, e2 = pcall(function() net.sleep(0.005); error("raised after sleep", 0) end)
      local ok3, e3 = pcall(net.sleep, -1)
      return ok1, v1, ok2, e2, ok3, e3
    end)
    local r = pack(helper.bounded(1, function() return t:join() end))
    assert.same({ true, "after sleep", false, "raised after sleep", false }, { unpack(r, 1, 5) })
    assert.matches("^bad argument #1 to 'net%.sleep'", r[6])
  end)
end)

describe("net.wrap", function()
  it("makes a generator that can net.sleep inside a task", function()
    local t = net.spawn(function()
      local gen = net.wrap(function(a)
        for i = 1, 3 do net.sleep(0.005); coroutine.yield(i * a) end
        return "end"
      end)
      return gen(10), gen(), gen(), gen()
    end)
    assert.same({ n = 4, 10, 20, 30, "end" }, pack(helper.bounded(1, function() return t:join() end)))
  end)

  it("lets other tasks run while the generator sleeps", function()
    local ticks = 0
    local ticker = net.spawn(function() for _ = 1, 100 do ticks = ticks + 1; net.sleep(0.002) end end)
    local t = net.spawn(function()
      local gen = net.wrap(function() net.sleep(0.03); coroutine.yield("v") end)
      return gen()
    end)
    assert.equal("v", helper.bounded(1, function() return t:join() end))
    ticker:cancel()
    assert.is_true(ticks >= 5, "ticker ran " .. ticks .. " times")
  end)

  it("passes values both ways like coroutine.wrap", function()
    local gen = net.wrap(function(a)
      local b = coroutine.yield(a + 1)
      local c = coroutine.yield(b * 2)
      return a, b, c
    end)
    assert.equal(2, gen(1))
    assert.equal(10, gen(5))
    assert.same({ n = 3, 1, 5, "x" }, pack(gen("x")))
  end)

  it("raises the generator's error at the caller, and a dead generator raises", function()
    local gen = net.wrap(function() coroutine.yield(1); error("gen failed", 0) end)
    assert.equal(1, gen())
    local ok, err = pcall(gen)
    assert.is_false(ok)
    assert.equal("gen failed", err)
    ok, err = pcall(gen)
    assert.is_false(ok)
    assert.matches("dead coroutine", err)
  end)

  it("outside the loop, net calls inside it just block", function()
    local gen = net.wrap(function()
      net.sleep(0.01); coroutine.yield("a")
      net.sleep(0.01); return "b"
    end)
    local t0 = net.now()
    assert.equal("a", gen())
    assert.equal("b", gen())
    assert.is_true(net.now() - t0 >= 0.018)
  end)
end)
