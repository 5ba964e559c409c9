-- Seed 000's WebSocket reference fragments, run in order against a server task on 127.0.0.1:
-- "Connection Options" (headers and a timeout), "Ping / Pong", "Graceful Close" and, from "Error
-- Handling", a receive that times out. (Seed 000's complete WebSocket programs are
-- examples/ws_client.lua, ws_echo_server.lua, ws_chat_server.lua and ws_json_client.lua.)
--
--   lua5.4 examples/seed000_websocket.lua
--
-- The seed connects to ws://localhost:8080/chat; the peer here is a task of this script on a free
-- port that prints what it sees of each client (headers, pings, pongs, the close) and echoes text.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

local server = net.ws.listen("127.0.0.1", 0)
local PORT = server.port
net.spawn(function()
    while true do
        local ok, conn = pcall(server.accept, server)
        if not ok then break end -- closed at the end
        net.spawn(function()
            local h = conn.headers
            print("server: " .. conn.path .. " from", h["x-client-id"], h["authorization"])
            while true do
                local msg = conn:recv()
                if msg == nil then break end
                if msg.type == "close" then
                    print("server: close", msg.code, msg.reason)
                    break
                elseif msg.type == "ping" or msg.type == "pong" then
                    print("server: " .. msg.type, msg.data)
                else
                    conn:send(msg.data, msg.type)
                end
            end
        end)
    end
end)

-- Connection Options: custom headers for authentication, a timeout for the connection
local ws = net.ws.connect("ws://localhost:" .. PORT .. "/chat", {
    headers = {
        ["Authorization"] = "Bearer my-token",
        ["X-Client-Id"] = "coppermoon-1",
    },
    timeout = 5000,  -- ms
})
ws:set_timeout(5000) -- not in the seed: a silent server ends the example instead of hanging it

-- Ping / Pong: the server answers our pings by itself; our pong arrives there unsolicited
-- (each ping waits for its pong here: of pings sent faster than the peer's pongs come back,
-- only the latest is answered, as RFC 6455 allows)
ws:ping()            -- empty ping
local msg = ws:recv()
print("client: " .. msg.type, msg.data)
ws:ping("heartbeat") -- ping with payload
msg = ws:recv()
print("client: " .. msg.type, msg.data)
ws:pong("data")      -- unsolicited pong

-- Graceful Close: a custom close, then recv() until it returns nil to complete the handshake
ws:close(1001, "Going Away")     -- custom close (ws:close() is code 1000, Normal)
while true do
    local msg = ws:recv()
    if msg == nil then break end
    print("client: " .. msg.type, msg.code)
end
print("client: closeCode", ws.closeCode)

-- Error Handling: "For WebSocket recv timeouts, set a timeout and catch the error"
ws = net.ws.connect("ws://127.0.0.1:" .. PORT .. "/quiet", { timeout = 5000 })
ws:set_timeout(300) -- the seed waits 5000 ms; the server sends nothing, so this always times out
local ok, result = pcall(ws.recv, ws)
if not ok then
    print("Recv timed out")
    print(result)
end
ws:close()
while ws:recv() do end
server:close()
