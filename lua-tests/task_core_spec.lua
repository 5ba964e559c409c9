-- The task core as real programs use it: handles collected while their tasks run, many
-- joiners, many results, odd error values, sleep(0) as a yield, watchdog tasks cancelled while
-- they sleep, and spawn/join in tight loops with collections in between (coroutine addresses
-- get reused). Heavy cases run in a child interpreter (helper.child), bounded in time.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

describe("task core", function()
  it("tasks whose handles were collected still run to the end", function()
    local rc, out, err = helper.child([[
local done = 0
for _ = 1, 2000 do
  net.spawn(function()
    net.sleep(0.01)
    collectgarbage() -- the handles are garbage by now
    done = done + 1
  end)
end
collectgarbage(); collectgarbage()
net.run()
print(done)
]], 20)
    assert.are.equal(0, rc, err)
    assert.are.equal("2000", out)
  end)

  it("every joiner gets the results, in tasks and on the main thread", function()
    local t = net.spawn(function()
      net.sleep(0.02)
      return "a", nil, 3
    end)
    local got, joiners = {}, {}
    for i = 1, 3 do
      joiners[i] = net.spawn(function()
        local a, b, c = t:join()
        got[i] = table.concat({ a, tostring(b), c }, ",")
      end)
    end
    local a, b, c = t:join()
    for i = 1, 3 do joiners[i]:join() end
    assert.are.same({ "a", nil, 3 }, { a, b, c })
    assert.are.same({ "a,nil,3", "a,nil,3", "a,nil,3" }, got)
    assert.are.equal("done", t:status())
  end)

  it("returns hundreds of results", function()
    local t = net.spawn(function()
      local r = {}
      for i = 1, 300 do r[i] = i end
      return (table.unpack or unpack)(r)
    end)
    local r = { t:join() }
    assert.are.equal(300, #r)
    assert.are.equal(300, r[300])
  end)

  it("re-raises error values unchanged: tables, nil, numbers", function()
    local e = {}
    local cases = { e, nil, 42 }
    for i = 1, 3 do
      local t = net.spawn(function() error(cases[i], 0) end)
      local ok, got = pcall(t.join, t)
      assert.is_false(ok)
      assert.are.equal(cases[i], got)
      assert.are.equal("failed", t:status())
    end
  end)

  it("a failure nobody joins is printed with its traceback", function()
    local rc, out, err = helper.child([[
local function deep() error("boom here") end
net.spawn(function() deep() end)
print(net.run())
]], 10)
    assert.are.equal(0, rc, err)
    assert.are.equal("1", out)
    assert.matches("net: task failed: .*boom here\nstack traceback:.*deep", err)
  end)

  it("sleep(0) lets other tasks run", function()
    local order, ts = {}, {}
    for _, name in ipairs({ "a", "b" }) do
      ts[#ts + 1] = net.spawn(function()
        for i = 1, 3 do
          order[#order + 1] = name .. i
          net.sleep(0)
        end
      end)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.are.equal("a1 b1 a2 b2 a3 b3", table.concat(order, " "))
  end)

  it("sleeps end in deadline order, whatever order they start in", function()
    local order, ts = {}, {}
    for _, d in ipairs({ 0.05, 0.01, 0.03, 0.02, 0.04 }) do
      ts[#ts + 1] = net.spawn(function()
        net.sleep(d)
        order[#order + 1] = d
      end)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.are.same({ 0.01, 0.02, 0.03, 0.04, 0.05 }, order)
  end)

  it("cancelled sleepers (watchdog tasks) do not hold memory until their deadlines", function()
    local rc, out, err = helper.child([[
local function round(n)
  local ts = {}
  for i = 1, n do ts[i] = net.spawn(function() net.sleep(3600) end) end
  net.sleep(0.01) -- every task is asleep
  for i = 1, n do ts[i]:cancel() end
  ts = nil
  net.sleep(0.01)
  collectgarbage(); collectgarbage()
end
round(5000)
local before = proc_kib("VmRSS")
for _ = 1, 10 do round(5000) end
local grown = proc_kib("VmRSS") - before
print(grown < 4096 and "bounded" or ("grew " .. grown .. " KiB"))
]], 60)
    assert.are.equal(0, rc, err)
    assert.are.equal("bounded", out)
  end)

  it("a cancelled sleeper stays cancelled, and the others still wake on time", function()
    local woke = {}
    local a = net.spawn(function() net.sleep(0.02); woke[#woke + 1] = "a" end)
    local b = net.spawn(function() net.sleep(0.03); woke[#woke + 1] = "b" end)
    net.sleep(0.005)
    assert.is_true(a:cancel())
    b:join()
    assert.are.same({ "b" }, woke)
    assert.are.equal("cancelled", a:status())
  end)

  it("spawn and join in a tight loop with collections between steps", function()
    local rc, out, err = helper.child([[
local sum = 0
for i = 1, 20000 do
  sum = sum + net.spawn(function(x) return x end, i):join()
  if i % 1000 == 0 then collectgarbage() end
end
local t = net.spawn(function()
  local s = 0
  for i = 1, 20000 do
    s = s + net.spawn(function(x) net.sleep(0); return x end, i):join()
    if i % 997 == 0 then collectgarbage() end
  end
  return s
end)
print(sum, t:join())
]], 60)
    assert.are.equal(0, rc, err)
    assert.are.equal("200010000\t200010000", out)
  end)

  it("checks its arguments", function()
    assert.has_error(function() net.spawn() end, "bad argument #1 to 'net.spawn' (function expected, got no value)")
    assert.has_error(function() net.spawn("f") end, "bad argument #1 to 'net.spawn' (function expected, got string)")
    local t = net.spawn(function() end)
    assert.has_error(function() t.join({}) end, "bad argument #1 to 'join' (task expected, got table)")
    assert.has_error(function() t.status(io.stdout) end, "bad argument #1 to 'status' (task expected, got userdata)")
    assert.has_error(function() t.cancel() end, "bad argument #1 to 'cancel' (task expected, got no value)")
    assert.has_error(function() net.sleep("x") end, "bad argument #1 to 'net.sleep' (number expected, got string)")
    assert.has_error(function() net.sleep(-1) end, "bad argument #1 to 'net.sleep' (seconds must be >= 0, got -1)")
    assert.has_error(function() net.sleep(0 / 0) end, "bad argument #1 to 'net.sleep' (number must be finite)")
    local ok, e = net.spawn(function() return pcall(net.sleep, "x") end):join()
    assert.is_false(ok)
    assert.are.equal("bad argument #1 to 'net.sleep' (number expected, got string)", e)
  end)
end)
