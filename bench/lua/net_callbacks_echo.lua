-- `net` TCP echo server in the callback style (net.TCPServer), written the way a user would.
-- Usage: lua5.4|luajit net_callbacks_echo.lua PORT   (net.so must be on package.cpath; bench/tcp.sh sets it)
-- Beside net_tcp_echo.lua (the same server as tasks) it measures what the callback facade costs:
-- a Lua callback per read and a send through the facade, on top of the same task per connection.
local net = require("net")
local server = net.TCPServer()
server:listen("127.0.0.1", tonumber(arg[1]), {
  started = function()
    io.stderr:write(("net callbacks echo (%s) on 127.0.0.1:%d\n"):format(jit and jit.version or _VERSION, server.port))
  end,
  data = function(id, data) server:send(id, data) end,
  error = function() end, -- clients of the load generator reset at the end; keep the bench quiet
})
