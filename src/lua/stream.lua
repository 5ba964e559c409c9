-- Fast paths for stream and socket methods (docs/internals.md, "Fast paths
-- and finalizers"): each method first calls a synchronous
-- Rust function that answers at once when it can (data already buffered, socket writable), and
-- only when that would wait calls the async version, which yields the task or blocks the caller.
local FAIL, PENDING, POLL_PENDING, resumed, FOREIGN_RESUME, isyieldable = ...
local error, yield = error, coroutine.yield

local fast = {}

-- method(self, a) -> one value. `try` returns the value, or PENDING plus a hint for the next
-- attempt (how many bytes a write already sent), or FAIL plus the message. When it would wait, a
-- task parks on the socket's readiness and yields to its driver (`park`, cheap); anywhere else, or
-- with a timeout set, the async `wait` does the waiting (it blocks or yields: docs/internals.md, "Three behaviours").
-- A coroutine that cannot yield (e.g. inside a table.sort comparator) must not park: the park
-- would outlive the failed yield. After the yield, `resumed()` checks that the task's driver, not
-- someone holding the coroutine, resumed it.
local function slow(self, a, r, e, try, wait, park)
  while r == PENDING and park and isyieldable() and park(self) do
    yield(POLL_PENDING) -- mlua's "waiting" marker: the driver resumes us when the socket is ready
    if not resumed() then error(FOREIGN_RESUME, 0) end
    r, e = try(self, a, e)
  end
  if r == PENDING then r, e = wait(self, a, e) end
  if r == FAIL then error(e, 0) end
  return r
end

-- The hit path stays loop-free so LuaJIT compiles it into the caller's trace (a loop here, even
-- one never entered, doubled the cost of a buffered read).
function fast.method(try, wait, park)
  return function(self, a)
    local r, e = try(self, a)
    if r ~= PENDING and r ~= FAIL then return r end
    return slow(self, a, r, e, try, wait, park)
  end
end

-- the same for methods returning several values (UDP recv: data, host, port)
function fast.method3(try, wait)
  return function(self, a)
    local r, b, c = try(self, a)
    if r == PENDING then r, b, c = wait(self, a, b) end
    if r == FAIL then error(b, 0) end
    return r, b, c
  end
end

-- any arguments, one value; `wait` gets the same arguments again (used where a retry needs no
-- hint, e.g. a datagram is sent whole or not at all)
function fast.varargs(try, wait)
  return function(...)
    local r, e = try(...)
    if r == PENDING then r, e = wait(...) end
    if r == FAIL then error(e, 0) end
    return r
  end
end

return fast
