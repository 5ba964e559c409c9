-- Ctrl-C (SIGINT) while the main thread blocks in a waiting call: the call fails with
-- `interrupted: ...`, pcall and <close> cleanup run, the loop keeps working; uncaught, the script
-- ends like the interpreter's own "interrupted!" (message on stderr, exit status 1).
--
-- Each case runs in a child interpreter. The child prints "ready <pid>" from a task, so the line
-- comes only once the main thread is blocked in the loop, and the spec signals that pid: the
-- interpreter itself, not helper.spawn's `timeout` wrapper, which may pass a SIGINT on twice.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local lua54 = _VERSION == "Lua 5.4" and not jit

-- Prelude of every child: unbuffered stdout, net, and ready() (see above).
local PRELUDE = [[
io.stdout:setvbuf("no")
local net = require("net")
local function ready(tag)
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^%d+")
  f:close()
  net.spawn(function() print((tag or "ready") .. " " .. pid) end)
end
]]

-- `body` runs inside pcall; its cleanup prints "cleanup": from a <close> variable on 5.4, after
-- pcall on LuaJIT (no <close> there). Then "caught <error>", then `after` runs.
local function guarded(setup, body, after)
  local inner
  if lua54 then
    inner = ('local ok, err = pcall(function()\n' ..
      '  local cleanup <close> = setmetatable({}, { __close = function() print("cleanup") end })\n' ..
      '%s\nend)\n'):format(body)
  else
    inner = ('local ok, err = pcall(function()\n%s\nend)\nprint("cleanup")\n'):format(body)
  end
  return PRELUDE .. setup .. '\n' .. inner .. 'print("caught", ok, err)\n' .. (after or '')
end

-- Starts `src`, waits for its ready line, sends ONE SIGINT and waits for the exit.
-- Returns exit code, stdout lines, stderr, seconds from the signal to the exit.
local function interrupt(src)
  local p = helper.lua(src)
  finally(function() p:kill() end)
  local pid = tonumber(p:wait_line(10):match("^ready (%d+)$"))
  assert(pid, "no pid in the ready line")
  helper.sleep(0.05) -- the child is blocked already; this only makes a late signal less likely
  local t0 = net.now()
  os.execute("kill -INT " .. pid)
  local ok, rc = pcall(p.wait, p, 5)
  local lines, err = p:lines(), p:stderr()
  assert(ok, ("the child did not exit within 5 s of SIGINT; stdout:\n%s\nstderr:\n%s")
    :format(table.concat(lines, "\n"), err))
  return rc, lines, err, net.now() - t0
end

describe("SIGINT during a blocking call", function()
  it("interrupts net.run(); tasks keep their state and net.run() works again", function()
    local rc, lines, err, took = interrupt(guarded([[
local sleeper = net.spawn(function() net.sleep(60); print("sleeper woke") end)
local spins = 0 -- a busy task: the signal often lands while its Lua code runs
local busy = net.spawn(function()
  while true do
    spins = spins + 1
    for _ = 1, 20000 do end
    net.sleep(0)
  end
end)
ready()
]], [[
net.run()
error("net.run returned")
]], [[
print("status", sleeper:status(), busy:status())
local before = spins
net.spawn(function() net.sleep(0.1); net.stop() end)
print("second run", net.run(), spins > before, sleeper:status(), busy:status())
sleeper:cancel(); busy:cancel()
]]))
    assert.equal(0, rc, err)
    assert.same({
      "ready " .. lines[1]:match("%d+"),
      "cleanup",
      "caught\tfalse\tinterrupted: net.run interrupted by SIGINT",
      "status\trunning\trunning",
      "second run\t0\ttrue\trunning\trunning",
    }, lines)
    assert.is_true(took < 3, "took " .. took .. " s")
  end)

  it("interrupts listener:accept(); the listener still accepts", function()
    local rc, lines, err = interrupt(guarded([[
local l = net.tcp.listen("127.0.0.1", 0)
ready()
]], [[
l:accept()
error("accept returned")
]], [[
net.spawn(function() local c = net.tcp.connect("127.0.0.1", l.port); c:write("x"); c:close() end)
local c = l:accept()
print("accepted again", c:read())
]]))
    assert.equal(0, rc, err)
    assert.same({ "cleanup", "caught\tfalse\tinterrupted: accept interrupted by SIGINT", "accepted again\tx" },
      { lines[2], lines[3], lines[4] })
    assert.equal(4, #lines)
  end)

  it("interrupts stream:read() on a silent peer; the stream still reads", function()
    local rc, lines, err = interrupt(guarded([[
local l = net.tcp.listen("127.0.0.1", 0)
local c = net.tcp.connect("127.0.0.1", l.port)
local peer = l:accept()
ready()
]], [[
c:read()
error("read returned")
]], [[
peer:write("late\n")
print("read again", c:read_line())
]]))
    assert.equal(0, rc, err)
    assert.same({ "cleanup", "caught\tfalse\tinterrupted: read interrupted by SIGINT", "read again\tlate" },
      { lines[2], lines[3], lines[4] })
    assert.equal(4, #lines)
  end)

  it("interrupts net.sleep() on the main thread; timers still work", function()
    local rc, lines, err = interrupt(guarded([[
ready()
]], [[
net.sleep(60)
error("sleep returned")
]], [[
local t0 = net.now()
net.sleep(0.05)
print("slept again", net.now() - t0 < 5)
]]))
    assert.equal(0, rc, err)
    assert.same({ "cleanup", "caught\tfalse\tinterrupted: net.sleep interrupted by SIGINT", "slept again\ttrue" },
      { lines[2], lines[3], lines[4] })
    assert.equal(4, #lines)
  end)

  it("uncaught: the script ends with the error on stderr and exit status 1", function()
    local close = lua54
      and 'local cleanup <close> = setmetatable({}, { __close = function() print("cleanup") end })\n'
      or ''
    local rc, lines, err = interrupt(PRELUDE .. close .. 'ready()\nnet.sleep(60)\nprint("not reached")\n')
    assert.equal(1, rc, err)
    assert.matches("interrupted: net.sleep interrupted by SIGINT", err, 1, true)
    assert.same(lua54 and { lines[1], "cleanup" } or { lines[1] }, lines)
  end)

  it("a second SIGINT, after a caught one, ends the process as the interpreter's own does", function()
    local p = helper.lua(PRELUDE .. [[
print("caught", pcall((function() ready(); net.sleep(60) end)))
ready("again")
net.sleep(60)
print("not reached")
]])
    finally(function() p:kill() end)
    local pid = tonumber(p:wait_line(10):match("^ready (%d+)$"))
    helper.sleep(0.05)
    os.execute("kill -INT " .. pid)
    assert.is_truthy(helper.wait_until(5, function() return p:lines()[3] end), p:stderr())
    assert.same({ "caught\tfalse\tinterrupted: net.sleep interrupted by SIGINT", "again " .. pid },
      { p:lines()[2], p:lines()[3] })
    helper.sleep(0.05)
    os.execute("kill -INT " .. pid)
    -- killed by SIGINT: helper.spawn's shell reports 128 + 2
    assert.equal(130, p:wait(5))
    assert.equal(3, #p:lines())
  end)

  it("is ignored when the program ignores SIGINT (LuaJIT: set with the FFI)", function()
    if not jit then
      pending("needs the LuaJIT FFI to set SIG_IGN under lua.c, which installs its own handler")
      return
    end
    local p = helper.lua(PRELUDE .. [[
local ffi = require("ffi")
ffi.cdef("typedef void (*sighandler_t)(int); sighandler_t signal(int, sighandler_t);")
ffi.C.signal(2, ffi.cast("sighandler_t", 1)) -- SIGINT, SIG_IGN
ready()
net.sleep(1)
print("slept", net.run())
]])
    finally(function() p:kill() end)
    local pid = tonumber(p:wait_line(10):match("^ready (%d+)$"))
    os.execute("kill -INT " .. pid)
    assert.equal(0, p:wait(5), p:stderr())
    assert.same({ "ready " .. pid, "slept\t0" }, p:lines())
  end)
end)
