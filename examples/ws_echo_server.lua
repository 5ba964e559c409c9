-- Seed 000's "WebSocket Server": accept WebSocket clients one after the other and echo every
-- message back with its type (text stays text, binary stays binary).
--
--   lua5.4 examples/ws_echo_server.lua [port [max_clients]]
--
-- It listens on 127.0.0.1 (as the seed does); port 0 (the default; the seed has 9001) picks a free
-- port, and the first line printed says which. With max_clients it stops after that many clients,
-- else it serves until Ctrl-C. Its client is examples/ws_client.lua (seed 000's WebSocket client):
--   lua5.4 examples/ws_echo_server.lua 9001 &   lua5.4 examples/ws_client.lua ws://127.0.0.1:9001
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local port = tonumber(arg[1]) or 0
local max_clients = tonumber(arg[2])

local server = net.ws.listen("127.0.0.1", port)
print("WebSocket server on", server:local_addr())

local served = 0
while not max_clients or served < max_clients do
    local conn = server:accept()
    print("Client:", conn:peer_addr())

    -- Echo loop
    while true do
        local msg = conn:recv()
        if msg == nil or msg.type == "close" then break end
        -- (not in the seed: pings and pongs come through recv too, and send takes only "text"
        -- or "binary"; the library has already answered the pings)
        if msg.type == "text" or msg.type == "binary" then conn:send(msg.data, msg.type) end
    end
    served = served + 1
end

print(("served %d clients, bye"):format(served))
server:close()
