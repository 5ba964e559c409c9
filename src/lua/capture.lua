-- The callback style of net.capture (seed: `monitor.on_packet(fn); monitor.start()`), as thin
-- Lua over capture:next() and net.spawn (docs/api.md, "Packet capture").
--
--   local cap = net.capture.open("lo", { filter = "tcp" })
--   cap:on_packet(function(p) print(p.src, p.src_port, "->", p.dst, p.dst_port) end)
--   cap:start()                -- a task reads packets and calls the function for each
--   net.run()                  -- runs until cap:stop() (or cap:close()); a script that ends
--                              -- without it has the loop run at its end (`arm`)
--
-- The callback runs inside the capture's task, so it may wait (net.sleep, a request); packets
-- wait in the kernel's buffer meanwhile (dropped past it, counted by stats()). One that raises
-- is reported on stderr and the capture goes on.
local net, methods, raw_close, state, arm = ...
local type, tostring, error = type, tostring, error
local pcall = net.pcall -- the built-in, except on Lua 5.1 (the callback may wait)

-- The capture's own state table (callback, task), or a bad-argument error.
local function st(self, fname)
  local s = state(self)
  if not s then
    local got = self == nil and "no value" or type(self)
    error("bad argument #1 to '" .. fname .. "' (capture expected, got " .. got .. ")", 0)
  end
  return s
end

local function report(err)
  io.stderr:write("net.capture: on_packet callback failed: " .. tostring(err) .. "\n")
end

function methods.on_packet(self, fn)
  local s = st(self, "on_packet")
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on_packet' (function expected, got " .. (fn == nil and "no value" or type(fn)) .. ")", 0)
  end
  s.fn = fn
  return self
end

-- Starts the capture task (once; a second start while running does nothing) and returns at
-- once. The task keeps net.run() going until stop() or close().
function methods.start(self)
  local s = st(self, "start")
  self:stats() -- raises closed: on a closed capture
  -- Already running? (A task that died of an error from next() is replaced.)
  if s.task and s.task:status() == "running" then return self end
  if not s.fn then error("io: capture:start() needs a callback: call capture:on_packet(fn) first", 0) end
  local task
  task = net.spawn(function()
    while s.task == task do
      local p = self:next()
      if p == nil or s.task ~= task then break end -- closed, or stopped while waiting
      local ok, err = pcall(s.fn, p)
      if not ok then report(err) end
    end
    if s.task == task then s.task = nil end
  end)
  s.task = task
  -- As the seed's `monitor.start()` ends its script: from the main thread, run the loop when the
  -- script ends (docs/api.md, "When the script ends").
  arm()
  return self
end

-- Ends the capture task: no callback runs after this returns (called from inside the callback,
-- that call finishes first). The capture stays open: next() and start() work again.
function methods.stop(self)
  local s = st(self, "stop")
  local task = s.task
  s.task = nil
  if task then task:cancel() end
  return self
end

function methods.close(self)
  local s = state(self)
  if s and s.task then methods.stop(self) end
  return raw_close(self)
end
