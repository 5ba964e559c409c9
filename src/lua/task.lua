-- The Lua side of task handles and net.sleep (see src/runtime/task.rs and timer.rs): the raw C
-- functions answer at once; waiting happens here, by parking the calling task (cheap) or, outside
-- a task, through an async function that blocks the caller.
local FAIL, PENDING, POLL_PENDING, resumed, FOREIGN_RESUME, isyieldable = ...
local error, yield, tostring = error, coroutine.yield, tostring
local close = coroutine.close -- Lua 5.4 only; cancel returns a coroutine to close only there

local helpers = {}
local JOIN, PARK, CANCEL, STATUS = 0, 1, 2, 3

-- After a park, the task's driver must be the one that resumed us (see src/lua/stream.lua).
local function parked()
  yield(POLL_PENDING)
  if not resumed() then error(FOREIGN_RESUME, 0) end
end

-- `op(task, which)` is task.rs's `task_op`; `join_wait(task)` waits (blocks) until it ends.
function helpers.methods(op, join_wait)
  local function joined(self, r, ...)
    if r == true then return ... end
    if r == FAIL then error((...), 0) end
    -- PENDING: still running
    if isyieldable() and op(self, PARK) == true then
      parked()
    else
      local w, e = join_wait(self)
      if w == FAIL then error(e, 0) end
    end
    return joined(self, op(self, JOIN))
  end
  local function one(r, e)
    if r == FAIL then error(e, 0) end
    return r
  end
  return {
    join = function(self) return joined(self, op(self, JOIN)) end,
    cancel = function(self)
      local r, co = op(self, CANCEL)
      if r == FAIL then error(co, 0) end
      if co then
        -- another task's coroutine: its pending <close> variables run now
        local ok, e = close(co)
        if not ok then io.stderr:write("net: closing a cancelled task: ", tostring(e), "\n") end
      end
      return r
    end,
    status = function(self) return one(op(self, STATUS)) end,
  }
end

-- net.sleep: `park_sleep(secs)` parks the calling task until the deadline (true), says it is not
-- a task (false), or fails on a bad argument; `sleep_wait(secs)` is the async version.
function helpers.sleep(park_sleep, sleep_wait)
  return function(secs)
    if isyieldable() then
      local r, e = park_sleep(secs)
      if r == true then return parked() end
      if r == FAIL then error(e, 0) end
    end
    local r, e = sleep_wait(secs)
    if r == FAIL then error(e, 0) end
  end
end

return helpers
