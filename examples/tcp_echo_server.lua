-- Seed 002's "TCP Networking" server, in Lua: every client gets a task of its own (the seed's
-- `spawn { ... }`), which answers each line with "Echo: " .. line until the client hangs up.
--
--   lua5.4 examples/tcp_echo_server.lua [port [max_clients]]
--
-- It listens on 127.0.0.1 (as the seed does); port 0 (the default; the seed has 9000) picks a
-- free port, and the first line printed says which. With max_clients it stops once that many
-- clients have come and gone, else it serves until Ctrl-C. Its client is
-- examples/tcp_echo_client.lua (the seed's "TCP Client"), or `nc 127.0.0.1 PORT`.
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local port = tonumber(arg[1]) or 0
local max_clients = tonumber(arg[2])

local server = net.tcp.listen("127.0.0.1", port)
print("Server listening on port " .. server.port)

local accepted, finished = 0, 0
while not max_clients or accepted < max_clients do
    local client = server:accept()
    accepted = accepted + 1

    -- Handle each client in a separate task
    net.spawn(function()
        print("Client connected: " .. client:peer_addr())

        while true do
            local message = client:read_line()
            if message == nil then -- the seed checks message.is_empty(): here nil is the end
                break
            end

            print("Received: " .. message)
            client:write("Echo: " .. message .. "\n")
        end

        client:close()
        print("Client disconnected")
        finished = finished + 1
    end)
end

server:close()
net.run() -- wait for the last clients' tasks
print(("served %d clients, bye"):format(finished))
