-- Micro-benchmark: the cost of a `read` whose data is already there (target: <= 150 ns per call
-- on LuaJIT). Usage: lua5.4|luajit read_fastpath.lua [MiB=64] [readsize=64] [block KiB=32]
-- One process, one task: connect to our own listener on 127.0.0.1; per round, the accepted end
-- writes one block (it fits in the loopback socket buffers, so write returns at once and the
-- bytes are already queued on the reading end), then the reading end consumes the block with
-- c:read(readsize) calls. Only those read loops are timed (os.clock = process CPU time), so the
-- figure covers the buffered fast path plus the occasional recv() that refills net's buffer.
local net = require("net")
local MIB = tonumber(arg[1]) or 64
local RSZ = tonumber(arg[2]) or 64
local BLOCK = (tonumber(arg[3]) or 32) * 1024
local ROUNDS = math.floor(MIB * 1024 * 1024 / BLOCK)
local clock = os.clock

local result
net.spawn(function()
  local lst = net.tcp.listen("127.0.0.1", 0)
  local w
  net.spawn(function() w = lst:accept() end)
  local c = net.tcp.connect("127.0.0.1", lst.port)
  while not w do net.sleep(0.001) end
  local block = string.rep("x", BLOCK)
  -- watchdog: a block larger than the socket buffers would block write() forever
  local done = false
  local wd = net.setTimeout(function()
    if not done then io.stderr:write("read_fastpath: stuck (block too big for the socket buffers?)\n") os.exit(2) end
  end, 120000)
  -- warm-up (JIT, buffer growth): 1/8 of the rounds, untimed
  for _ = 1, math.max(1, math.floor(ROUNDS / 8)) do
    w:write(block)
    local got = 0
    while got < BLOCK do got = got + #c:read(RSZ) end
  end
  local t, calls = 0, 0
  for _ = 1, ROUNDS do
    w:write(block)
    local got, n = 0, 0
    local t0 = clock()
    while got < BLOCK do
      local d = c:read(RSZ)
      got = got + #d
      n = n + 1
    end
    t = t + (clock() - t0)
    calls = calls + n
  end
  done = true
  net.clearTimeout(wd)
  c:close(); w:close(); lst:close()
  result = { t = t, calls = calls }
end)
net.run()
assert(result, "benchmark task did not finish")
print(("RESULT read_fastpath lua=%s readsize=%d block=%d MiB=%d calls=%d secs=%.3f ns_per_call=%.1f"):format(
  (jit and jit.version or _VERSION):gsub(" ", "_"), RSZ, BLOCK, MIB, result.calls, result.t,
  result.t * 1e9 / result.calls))
