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

-- net.pcall / net.xpcall: pcall and xpcall that a task can wait inside. Lua 5.2+ and LuaJIT can
-- yield across pcall, so there they are the built-ins. Lua 5.1 cannot ("attempt to yield across
-- metamethod/C-call boundary"): there fn runs in a coroutine of its own that counts as the calling
-- task (as net.wrap's do), and every yield of it is passed up to whoever resumed the caller, with
-- the values of the next resume passed back down. An error ends fn's coroutine; xpcall's handler
-- then runs on the caller's stack and gets fn's coroutine as well (debug.traceback(co, msg)).
local function yield_across_pcall()
  local co = coroutine.create(function() return pcall(coroutine.yield, true) end)
  local ok, yielded = coroutine.resume(co)
  return ok and yielded == true
end

function glue.make_pcall(enter, leave)
  if yield_across_pcall() then return pcall, xpcall end
  local create, resume, status, yield, unpack = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield, unpack
  local getinfo = debug.getinfo
  -- 5.1's coroutine.create takes no C function: one runs under the built-in pcall inside the
  -- coroutine (called from Lua, a coroutine.wrap function would put our line in its errors). net's
  -- waiting functions are Lua functions; a C function that yields (coroutine.yield) cannot be.
  local function reraise(ok, ...)
    if ok then return ... end
    error((...), 0)
  end
  local function call_c(fn, ...) return reraise(pcall(fn, ...)) end
  local function run(fn, on_error, ...)
    local is_c = getinfo(fn, "S").what == "C"
    local co = create(is_c and call_c or fn)
    local step
    -- enter only after our own yield returned: an adoption lasts for one poll of the task
    local function again(...) return step(enter(co), resume(co, ...)) end
    function step(adopted, ok, ...)
      if adopted then leave(co) end
      if not ok then
        if on_error then return false, on_error((...), co) end
        return false, ...
      end
      if status(co) == "dead" then return true, ... end
      return again(yield(...))
    end
    if is_c then return step(enter(co), resume(co, fn, ...)) end
    return step(enter(co), resume(co, ...))
  end
  local function net_pcall(fn, ...)
    if type(fn) ~= "function" then return pcall(fn, ...) end -- the built-in's own error
    return run(fn, nil, ...)
  end
  local function net_xpcall(fn, handler, ...)
    if type(fn) ~= "function" then -- the built-in reports it through the handler
      local args = { n = select("#", ...), ... }
      return xpcall(function() return fn(unpack(args, 1, args.n)) end, handler)
    end
    return run(fn, handler, ...)
  end
  return net_pcall, net_xpcall
end

-- coroutine.isyieldable (Lua 5.3+, LuaJIT 2.1). Lua 5.1 and 5.2 lack it; there the best guess is
-- "inside a coroutine": a wait inside a C call that cannot yield (5.1: pcall, metamethods; both:
-- table.sort comparators) then fails with Lua's own "attempt to yield across ..." error, and the
-- park it left is dropped by the next wait (docs/internals.md, "Lua versions").
glue.isyieldable = coroutine.isyieldable or function()
  local co, main = coroutine.running() -- 5.1: nil on the main thread; 5.2: the main thread, true
  return co ~= nil and not main
end

-- Runs a cancelled task's pending to-be-closed variables (Lua 5.4); nothing to do elsewhere.
glue.close_coroutine = coroutine.close or function() return true end

return glue
