-- The Lua side of the glue between Rust and scripts (see src/export.rs).
-- Rust functions report failure by returning FAIL followed by the message; `wrap` turns that into
-- a plain string error (design §4). Loaded once per Lua state; returns the helpers Rust keeps.
local FAIL, POLL_PENDING = ...
local error, select, type, tostring = error, select, type, tostring
local traceback = debug.traceback

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

-- The body of every task: runs fn under xpcall so a failure keeps its traceback.
-- Returns true, results... or false, error value, traceback.
local function on_error(e)
  return { e, traceback(type(e) == "string" and e or tostring(e), 2) }
end
local function task_finish(ok, ...)
  if ok then return true, ... end
  local t = ...
  return false, t[1], t[2]
end
if select(2, xpcall(function(...) return select("#", ...) end, on_error, 1, 2)) == 2 then
  function glue.task_main(fn, ...) return task_finish(xpcall(fn, on_error, ...)) end
else -- Lua 5.1: xpcall takes no arguments
  local unpack = unpack
  function glue.task_main(fn, ...)
    local n, args = select("#", ...), { ... }
    return task_finish(xpcall(function() return fn(unpack(args, 1, n)) end, on_error))
  end
end

-- net.wrap(fn): coroutine.wrap, except that when a net call inside the coroutine has to wait,
-- the wait is passed up to the enclosing task instead of being returned to the caller.
function glue.make_wrap(adopt, unadopt)
  local create, resume, status, yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
  return function(fn)
    if type(fn) ~= "function" then
      error("bad argument #1 to 'net.wrap' (function expected, got " .. (fn == nil and "no value" or type(fn)) .. ")", 2)
    end
    local co = create(fn)
    adopt(co)
    local function step(ok, ...)
      if not ok then unadopt(co); error((...), 0) end
      if status(co) == "dead" then unadopt(co); return ... end
      if select("#", ...) == 1 and (...) == POLL_PENDING then
        return step(resume(co, yield(POLL_PENDING)))
      end
      return ...
    end
    return function(...) return step(resume(co, ...)) end
  end
end

return glue
