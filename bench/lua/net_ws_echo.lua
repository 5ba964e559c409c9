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
-- (collectgarbage("count"), before and after a full collection) and the open connections to FILE.
local stats = os.getenv("NET_WS_STATS")
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
        f:write(("lua_kib=%.1f lua_kib_after_gc=%.1f conns=%d\n"):format(before, collectgarbage("count"), conns))
        f:close()
      end
    end
  end)
end
net.run()
