-- UDP service discovery (seed 000), on loopback: two responders answer "DISCOVER"; the client
-- asks each port and collects answers until a receive times out.
local net = require("net")

local responders = {}
for i = 1, 2 do
  local s = net.udp.bind("127.0.0.1", 0)
  responders[i] = s
  net.spawn(function()
    local data, host, port = s:recv()
    if data == "DISCOVER" then s:send("service-" .. i .. " at " .. s:local_addr(), host, port) end
  end)
end

local socket = net.udp.bind("127.0.0.1", 0)
socket:set_timeout(300)
for _, r in ipairs(responders) do socket:send("DISCOVER", "127.0.0.1", r.port) end

local found = 0
while true do
  local ok, data, host, port = pcall(socket.recv, socket)
  if not ok then break end -- "timeout: recv on ... timed out after 300 ms": nobody else answers
  found = found + 1
  print(("found %s (from %s:%d)"):format(data, host, port))
end
print(("%d services found"):format(found))
for _, r in ipairs(responders) do r:close() end
socket:close()
