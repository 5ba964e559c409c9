-- Channels between tasks: net.channel([capacity]), ch:send(v), ch:receive() -> v, true | nil, false,
-- ch:close(), ch:len(). A send on a full bounded channel waits; close wakes every waiter.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local pack = helper.pack
local bad = helper.raises -- bad(pattern, f, ...): f(...) must raise an error matching pattern

-- Close `ch` after `ms` if the test has not finished: a broken build fails instead of hanging.
-- The timer is cleared when the test ends, so it does not keep the loop alive for other specs.
local function guard(ch, ms)
  local id = net.setTimeout(function() ch:close() end, ms or 1000)
  finally(function() net.clearTimeout(id) end)
  return id
end

describe("net.channel", function()
  it("delivers values in FIFO order with ok = true", function()
    local ch = net.channel()
    for i = 1, 5 do ch:send(i * 10) end
    assert.equal(5, ch:len())
    for i = 1, 5 do
      assert.same({ n = 2, i * 10, true }, pack(ch:receive()))
    end
    assert.equal(0, ch:len())
  end)

  it("is unbounded without a capacity: sends never wait", function()
    local ch = net.channel()
    local t0 = net.now()
    for i = 1, 1000 do ch:send(i) end
    assert.equal(1000, ch:len())
    assert.is_true(net.now() - t0 < 0.5)
  end)

  it("carries any Lua value; tables keep their identity; nil is told apart by ok", function()
    local ch = net.channel()
    local t = { 1, 2 }
    local f = function() end
    ch:send(t); ch:send(f); ch:send(false); ch:send(nil); ch:send("s\0bin")
    assert.equal(t, (ch:receive()))
    assert.equal(f, (ch:receive()))
    assert.same({ n = 2, false, true }, pack(ch:receive()))
    assert.same({ n = 2, nil, true }, pack(ch:receive()))
    assert.equal("s\0bin", (ch:receive()))
  end)

  it("passes values between tasks; a receiver waits for the sender", function()
    local ch = net.channel()
    guard(ch)
    local got = {}
    local consumer = net.spawn(function()
      for _ = 1, 3 do got[#got + 1] = (ch:receive()) end
    end)
    local producer = net.spawn(function()
      for i = 1, 3 do net.sleep(0.005); ch:send("m" .. i) end
    end)
    producer:join(); consumer:join()
    assert.same({ "m1", "m2", "m3" }, got)
  end)

  it("gives each value to exactly one of several receivers", function()
    local ch = net.channel()
    guard(ch)
    local seen, receivers = {}, {}
    for r = 1, 3 do
      receivers[r] = net.spawn(function()
        while true do
          local v, ok = ch:receive()
          if not ok then return end
          seen[#seen + 1] = v
        end
      end)
    end
    for i = 1, 30 do ch:send(i) end
    net.sleep(0.01)
    ch:close()
    for _, r in ipairs(receivers) do r:join() end
    table.sort(seen)
    assert.equal(30, #seen)
    for i = 1, 30 do assert.equal(i, seen[i]) end
  end)

  it("main thread ch:receive() blocks while a task sends", function()
    local ch = net.channel()
    local g = guard(ch)
    net.spawn(function() net.sleep(0.02); ch:send("from task") end)
    local t0 = net.now()
    local v, ok = ch:receive()
    net.clearTimeout(g)
    assert.same({ "from task", true }, { v, ok })
    assert.is_true(net.now() - t0 >= 0.015)
  end)

  describe("with a capacity", function()
    it("makes send wait while the channel is full", function()
      local ch = net.channel(2)
      guard(ch)
      local log = {}
      local producer = net.spawn(function()
        for i = 1, 4 do ch:send(i); log[#log + 1] = "sent" .. i end
      end)
      net.sleep(0.02)
      assert.same({ "sent1", "sent2" }, log) -- the third send waits
      assert.equal(2, ch:len())
      assert.equal(1, (ch:receive()))
      net.sleep(0.01)
      assert.same({ "sent1", "sent2", "sent3" }, log)
      assert.equal(2, (ch:receive()))
      assert.equal(3, (ch:receive()))
      assert.equal(4, (ch:receive()))
      producer:join()
      assert.equal(4, #log)
    end)

    it("makes a main-thread send block while a task receives", function()
      local ch = net.channel(1)
      guard(ch)
      local got = {}
      local consumer = net.spawn(function()
        for _ = 1, 3 do net.sleep(0.01); got[#got + 1] = (ch:receive()) end
      end)
      local t0 = net.now()
      for i = 1, 3 do ch:send(i) end -- the 2nd and 3rd sends wait for the consumer
      assert.is_true(net.now() - t0 >= 0.015, "send did not wait")
      consumer:join()
      assert.same({ 1, 2, 3 }, got)
    end)

    it("wakes a waiting sender with 'closed: ' when the channel is closed", function()
      local ch = net.channel(1)
      ch:send("fills it")
      local sender = net.spawn(function() return pcall(ch.send, ch, "waits") end)
      net.sleep(0.01)
      assert.equal("running", sender:status())
      ch:close()
      local ok, err = helper.bounded(1, function() return sender:join() end)
      assert.is_false(ok)
      assert.matches("^closed: ", err)
    end)
  end)

  describe("close", function()
    it("wakes a waiting receiver with nil, false", function()
      local ch = net.channel()
      local receiver = net.spawn(function() return pack(ch:receive()) end)
      net.sleep(0.01)
      assert.equal("running", receiver:status())
      ch:close()
      local r = helper.bounded(1, function() return receiver:join() end)
      assert.same({ n = 2, nil, false }, r)
    end)

    it("lets receive drain the remaining values first, then nil, false (every time)", function()
      local ch = net.channel(3)
      ch:send("a"); ch:send("b")
      ch:close()
      assert.same({ n = 2, "a", true }, pack(ch:receive()))
      assert.same({ n = 2, "b", true }, pack(ch:receive()))
      assert.same({ n = 2, nil, false }, pack(ch:receive()))
      assert.same({ n = 2, nil, false }, pack(ch:receive()))
    end)

    it("makes send raise 'closed: send on a closed channel'", function()
      local ch = net.channel()
      ch:close()
      local ok, err = pcall(ch.send, ch, 1)
      assert.is_false(ok)
      assert.matches("^closed: ", err)
      assert.matches("send on a closed channel", err, 1, true)
      assert.equal(0, ch:len())
    end)

    it("is harmless twice", function()
      local ch = net.channel()
      ch:close()
      assert.has_no.errors(function() ch:close() end)
      assert.is_false(select(2, ch:receive()))
    end)
  end)

  describe("tostring", function()
    it("names a channel", function()
      local ch = net.channel(4)
      assert.matches("^channel{.*}$", tostring(ch))
    end)
  end)

  describe("bad arguments", function()
    it("net.channel needs nothing or a positive integer capacity", function()
      bad("^bad argument #1 to 'net%.channel' %(.*%)", net.channel, 0)
      bad("^bad argument #1 to 'net%.channel' %(.*%)", net.channel, -1)
      bad("^bad argument #1 to 'net%.channel' %(.*%)", net.channel, 1.5)
      bad("^bad argument #1 to 'net%.channel' %(integer expected, got string%)", net.channel, "x")
      bad("^bad argument #1 to 'net%.channel' %(integer expected, got table%)", net.channel, {})
    end)

    it("channel methods need a channel as self", function()
      local ch = net.channel()
      bad("^bad argument #1 to 'send' %(channel expected, got number%)", ch.send, 42, "v")
      bad("^bad argument #1 to 'receive' %(channel expected, got no value%)", ch.receive)
      bad("^bad argument #1 to 'close' %(channel expected, got table%)", ch.close, {})
      bad("^bad argument #1 to 'len' %(channel expected, got string%)", ch.len, "x")
      local task = net.spawn(function() end)
      bad("^bad argument #1 to 'send' %(channel expected, got userdata%)", ch.send, task, 1)
      task:join()
    end)
  end)
end)
