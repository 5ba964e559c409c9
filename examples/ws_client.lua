-- Seed 000's WebSocket client, its Quick Start and its "Client" section in one run: send a text
-- and a binary message, read the echoes with the "Message Format" receive loop, close.
--
--   lua5.4 examples/ws_client.lua [url]
--
-- The seed talks to wss://echo.websocket.org. Without a URL this script starts its own echo server
-- on a free port of 127.0.0.1 (seed 000's "WebSocket Server" loop, as a task); with one it talks
-- to that server instead, e.g. examples/ws_echo_server.lua:
--   lua5.4 examples/ws_echo_server.lua 9001 &   lua5.4 examples/ws_client.lua ws://127.0.0.1:9001
local net = require("net")

local url = arg[1]
if not url then
    -- The local peer: seed 000's "WebSocket Server" echo loop, for one client, in a task.
    local server = net.ws.listen("127.0.0.1", 0)
    url = "ws://127.0.0.1:" .. server.port
    net.spawn(function()
        local conn = server:accept()
        server:close()
        while true do
            local msg = conn:recv()
            if msg == nil or msg.type == "close" then break end
            if msg.type == "text" or msg.type == "binary" then conn:send(msg.data, msg.type) end
        end
    end)
end

-- Quick Start
local ws = net.ws.connect(url)
ws:set_timeout(5000) -- not in the seed: a silent server ends the example instead of hanging it
ws:send("Hello WebSocket!")
local msg = ws:recv()
print(msg.type, msg.data)  --> "text", "Hello WebSocket!"

-- Client: send text (default), send binary
ws:send("Hello!")
ws:send("\0\1\2\3", "binary") -- the seed writes "\x00\x01\x02\x03" (Lua 5.2+ only; the same bytes)

-- Receive messages: seed 000's "Message Format" loop. Closing after the two echoes starts the
-- close handshake; recv then returns the server's close reply and nil (the seed's graceful close).
local echoes = 0
while true do
    local msg = ws:recv()
    if msg == nil then
        print("Connection closed")
        break
    end

    if msg.type == "text" then
        print("Text:", msg.data)
    elseif msg.type == "binary" then
        print("Binary:", #msg.data, "bytes")
    elseif msg.type == "close" then
        print("Close:", msg.code, msg.reason)
        break
    end
    echoes = echoes + 1
    if echoes == 2 then ws:close() end
end
print("close code", ws.closeCode)
