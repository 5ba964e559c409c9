-- Seed 000's UDP fragments, run in order on 127.0.0.1: the Quick Start exchange, "Binding",
-- "Sending and Receiving" (with a size limit), "Connected Mode" and "Broadcast".
-- (Seed 000's complete UDP program is examples/udp_discovery.lua.)
--
--   lua5.4 examples/seed000_udp.lua
--
-- The seed sends to 127.0.0.1:9000 and 192.168.1.100:9000; here the peer is an echo task of this
-- script on a free port of 127.0.0.1, which answers every datagram with "echo: " .. data.
-- Broadcast goes to 127.255.255.255, the loopback network's broadcast address, where a second
-- socket of this script listens (the seed broadcasts to 255.255.255.255, the whole LAN).
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- The local peer: an echo server (the seed's port 9000).
local peer = net.udp.bind("127.0.0.1", 0)
local PEER = peer.port
net.spawn(function()
    while true do
        local ok, data, host, port = pcall(peer.recv, peer)
        if not ok then break end -- closed at the end
        peer:send("echo: " .. data, host, port)
    end
end)

-- Quick Start
local socket = net.udp.bind(0)
socket:set_timeout(2000) -- not in the seed: a lost datagram ends the example instead of hanging it
socket:send("Hello!", "127.0.0.1", PEER)
local data, host, port = socket:recv()
print(data, "from", host .. ":" .. port)

-- Binding: a port, an interface and a port, or port 0 (the OS picks a free one)
-- (the seed binds 9000, which may be taken here: a port that was free a moment ago instead)
local probe = net.udp.bind("127.0.0.1", 0)
local FREE = probe.port
probe:close()
local by_port = net.udp.bind(FREE)                -- bind to port FREE (all interfaces)
print("bound to a port:", by_port:local_addr())
by_port:close()
local by_host = net.udp.bind("127.0.0.1", FREE)   -- bind to specific interface
print("bound to an interface:", by_host:local_addr())
by_host:close()
local any = net.udp.bind(0)                       -- OS picks a free port
print("OS picked a port:", any.port > 0)
any:close()

-- Sending and Receiving
socket:send("Hello", "127.0.0.1", PEER)          -- send to a specific address
data, host, port = socket:recv()                 -- data, sender host, sender port
print(data, "from", host .. ":" .. port)
socket:send("a longer datagram", "127.0.0.1", PEER)
data, host, port = socket:recv(12)               -- limit receive buffer size: truncated
print(data, "from", host .. ":" .. port)

-- Connected Mode
socket:connect("127.0.0.1", PEER)
socket:send_connected("Hello")  -- no need to specify address each time
print("connected:", socket:recv_connected())

-- Broadcast: two listeners share the loopback broadcast address and port (reuseaddr).
local first = net.udp.bind("127.255.255.255", 0, { reuseaddr = true })
local BCAST = first.port
local listeners = { first, net.udp.bind("127.255.255.255", BCAST, { reuseaddr = true }) }
local b = net.udp.bind("127.0.0.1", 0)
b:set_broadcast(true)
b:send("Discovery!", "127.255.255.255", BCAST)
for i, l in ipairs(listeners) do
    l:set_timeout(2000)
    print(("broadcast listener %d got"):format(i), (l:recv()))
    l:close()
end
b:close()
socket:close()
peer:close()
