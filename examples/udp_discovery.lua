-- Seed 000's "UDP Service Discovery": broadcast a DISCOVER datagram and collect the answers until
-- a receive times out.
--
--   lua5.4 examples/udp_discovery.lua
--
-- The seed broadcasts to 255.255.255.255:5000 (the whole LAN). Here the broadcast goes to
-- 127.255.255.255, the loopback network's broadcast address, where two responder tasks of this
-- script listen on one port (shared with `reuseaddr`) and each answer with its name. The receive
-- timeout is 300 ms (the seed waits 3000).
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- The local services: both bound to the loopback broadcast address and the same port.
local first = net.udp.bind("127.255.255.255", 0, { reuseaddr = true })
local DISCOVERY_PORT = first.port
local listeners = { first, net.udp.bind("127.255.255.255", DISCOVERY_PORT, { reuseaddr = true }) }
for i, s in ipairs(listeners) do
    net.spawn(function()
        local data, host, port = s:recv()
        if data == "DISCOVER" then
            s:send("service-" .. i .. " here", host, port)
        end
        s:close()
    end)
end

local socket = net.udp.bind(0)
socket:set_broadcast(true)
socket:set_timeout(300)

-- Broadcast discovery request
socket:send("DISCOVER", "127.255.255.255", DISCOVERY_PORT)

-- Collect responses
local found = 0
while true do
    local ok, data, host, port = pcall(socket.recv, socket)
    if not ok then break end  -- timeout
    print("Found service:", host .. ":" .. port, data)
    found = found + 1
end
print(("%d services found"):format(found))
socket:close()
