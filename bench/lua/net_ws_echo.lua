-- `net` WebSocket echo server, written the way a user would write it.
-- Usage: lua5.4|luajit net_ws_echo.lua PORT   (net.so must be on package.cpath; bench/ws.sh sets it)
-- One task per connection: every text or binary message goes back with the same type; pings are
-- answered by net itself, a close from the peer is answered by net and recv() then returns nil.
-- A client that drops the connection makes recv/send raise; the pcall keeps the bench quiet.
local net = require("net")
local server = net.ws.listen("127.0.0.1", tonumber(arg[1]))
io.stderr:write(("net ws echo (%s) on ws://127.0.0.1:%d/\n"):format(jit and jit.version or _VERSION, server.port))

local conns = 0 -- open connections (only for the optional stats below)
net.spawn(function()
  while true do
    local ws = server:accept()
    net.spawn(function()
      conns = conns + 1
      pcall(function()
        while true do
          local msg = ws:recv()
          if not msg then break end
          if msg.type == "text" or msg.type == "binary" then ws:send(msg.data, msg.type) end
        end
      end)
      pcall(ws.close, ws)
      conns = conns - 1
    end)
  end
end)

-- Not part of the echo server: bench/ws.sh's idle-memory test sets NET_WS_STATS=FILE and, once it
-- has read the process's RSS, creates FILE.go; this task then writes the Lua heap size
-- (collectgarbage("count"), before and after a full collection) and the open connections to FILE,
-- and on LuaJIT (whose GC heap is its own allocator, not malloc) glibc's malloc in-use and free
-- bytes (mallinfo2): the Rust side of net, since net.so uses the system allocator.
local stats = os.getenv("NET_WS_STATS")
local malloc_kib = function() return "" end
if stats and jit then
  local ok, ffi = pcall(require, "ffi")
  if ok and pcall(ffi.cdef, [[
    struct net_bench_mallinfo2 { size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks,
      uordblks, fordblks, keepcost; };
    struct net_bench_mallinfo2 mallinfo2(void);]]) and pcall(function() return ffi.C.mallinfo2 end) then
    malloc_kib = function()
      local m = ffi.C.mallinfo2()
      return (" malloc_inuse_kib=%.1f malloc_free_kib=%.1f"):format(
        tonumber(m.uordblks + m.hblkhd) / 1024, tonumber(m.fordblks) / 1024)
    end
  end
end
if stats then
  net.spawn(function()
    while true do
      net.sleep(0.2)
      local go = io.open(stats .. ".go")
      if go then
        go:close()
        os.remove(stats .. ".go")
        local before = collectgarbage("count")
        collectgarbage("collect")
        local f = assert(io.open(stats, "w"))
        f:write(("lua_kib=%.1f lua_kib_after_gc=%.1f conns=%d%s\n"):format(
          before, collectgarbage("count"), conns, malloc_kib()))
        f:close()
      end
    end
  end)
end
net.run()
