-- Seed 000's "Simple Chat Server (WebSocket)": accept one client at a time and answer each of its
-- text messages with "Echo: " .. message.
--
--   lua5.4 examples/ws_chat_server.lua [port [max_clients]]
--
-- port 0 (the default) picks a free port; the first line printed says which. With max_clients
-- the server stops after serving that many clients, else it runs until killed. Talk to it with
-- examples/ws_json_client.lua, or any WebSocket client, at ws://127.0.0.1:PORT/.
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe or a file

local port = tonumber(arg[1]) or 0
local max_clients = tonumber(arg[2])

local server = net.ws.listen("127.0.0.1", port)
print("Chat server on", server:local_addr())

-- Accept loop (single-threaded, one client at a time for simplicity)
local served = 0
while not max_clients or served < max_clients do
    local conn = server:accept()
    local who = conn:peer_addr()
    print("New client:", who)

    while true do
        local msg = conn:recv()
        if msg == nil or msg.type == "close" then break end
        if msg.type == "text" then
            print("[" .. who .. "] " .. msg.data)
            conn:send("Echo: " .. msg.data)
        end
    end

    print("Client disconnected:", who)
    served = served + 1
end

print(("served %d clients, bye"):format(served))
server:close()
