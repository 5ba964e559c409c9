-- `net` TCP echo server, written the way a user would write it.
-- Usage: lua5.4|luajit net_tcp_echo.lua PORT   (net.so must be on package.cpath; bench/tcp.sh sets it)
-- One task per connection; read(65536) returns whatever is there (up to 64 KiB), write(d) writes
-- all of it before the next read, which is the back-pressure for the bulk test. A client that
-- disconnects mid-write makes read/write raise ("reset: ..."); the pcall keeps the bench quiet.
local net = require("net")
local lst = net.tcp.listen("127.0.0.1", tonumber(arg[1]))
io.stderr:write(("net echo (%s) on %s:%d\n"):format(jit and jit.version or _VERSION, lst.ip, lst.port))
net.spawn(function()
  while true do
    local c = lst:accept()
    net.spawn(function()
      pcall(function()
        while true do
          local d = c:read(65536)
          if not d then break end
          c:write(d)
        end
      end)
      pcall(c.close, c)
    end)
  end
end)
net.run()
