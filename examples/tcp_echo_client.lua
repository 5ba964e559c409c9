-- Seed 002's "TCP Client", in Lua: send a line to the echo server and print its reply.
--
--   lua5.4 examples/tcp_echo_client.lua PORT [message]
--
-- Made to talk to examples/tcp_echo_server.lua on 127.0.0.1 (the seed's 127.0.0.1:9000): start
-- the server, then run this with the port it printed.
local net = require("net")

local port = assert(tonumber(arg[1]), "usage: tcp_echo_client.lua PORT [message]")
local message = arg[2] or "Hello, server!"

local client = net.tcp.connect("127.0.0.1", port) -- the seed: TcpStream::connect("127.0.0.1:9000")
client:set_timeout(5000) -- not in the seed: a silent server ends the example instead of hanging it
client:write(message .. "\n")
local response = client:read_line()
print("Server replied: " .. response)
client:close()
