-- The Lua side of the glue between Rust and scripts (see src/export.rs).
-- Rust functions report failure by returning FAIL followed by the message; `wrap` turns that into
-- a plain string error (docs/internals.md, "Errors"). Loaded once per Lua state; returns the helpers Rust keeps.
local FAIL, POLL_PENDING = ...
local error, select, type = error, select, type

local function finish(...)
  if (...) == FAIL then error((select(2, ...)), 0) end
  return ...
end

local glue = {}

function glue.wrap(raw)
  return function(...) return finish(raw(...)) end
end

-- __index for userdata types that have fields (e.g. a stream's remotePort) as well as methods.
function glue.index(methods, getters)
  return function(self, key)
    local m = methods[key]
    if m ~= nil then return m end
    local g = getters[key]
    if g ~= nil then return g(self) end
    return nil
  end
end

-- net.wrap(fn): coroutine.wrap, except that when a net call inside the coroutine has to wait,
-- the wait is passed up to the enclosing task instead of being returned to the caller.
-- `enter(co)` makes co count as the calling task while it runs (true), if the caller is a task
-- (or such a coroutine); `leave(co)` ends that right after the resume. A generator that waits on
-- behalf of one task refuses to be called from another until the wait is over.
function glue.make_wrap(enter, leave)
  local create, resume, status, yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
  return function(fn)
    if type(fn) ~= "function" then
      error("bad argument #1 to 'net.wrap' (function expected, got " .. (fn == nil and "no value" or type(fn)) .. ")", 2)
    end
    local co = create(fn)
    local waiting = false
    local function step(adopted, ok, ...)
      if adopted then leave(co) end
      if not ok then error((...), 0) end
      if status(co) == "dead" then return ... end
      if adopted and select("#", ...) == 1 and (...) == POLL_PENDING then
        waiting = true
        yield(POLL_PENDING)
        waiting = false
        return step(enter(co), resume(co))
      end
      return ...
    end
    return function(...)
      if waiting then
        error("io: this net.wrap generator is waiting inside another task; call it from one task at a time", 2)
      end
      return step(enter(co), resume(co, ...))
    end
  end
end

-- Runs a cancelled task's pending to-be-closed variables (Lua 5.4); nothing to do elsewhere.
glue.close_coroutine = coroutine.close or function() return true end

return glue
