-- Seed 000's "WebSocket with JSON Messages": send JSON commands, decode the JSON that comes back.
--
--   lua5.4 examples/ws_json_client.lua PORT | URL
--
-- Made to talk to examples/ws_chat_server.lua, which answers every text message with
-- "Echo: " .. message: start the server, then run this with the port it printed.
local net = require("net")
local json = net.json

local target = assert(arg[1], "usage: ws_json_client.lua PORT | URL")
local url = target:match("^%d+$") and ("ws://127.0.0.1:" .. target .. "/api") or target

local ws = net.ws.connect(url, { timeout = 5000 })
ws:set_timeout(5000) -- a server that goes silent ends the example with an error instead of a hang

-- Send a JSON command, then a few price updates
local messages = {
    { action = "subscribe", channel = "prices" },
    { symbol = "ACME", price = 12.5 },
    { symbol = "INITECH", price = 3.25 },
    { symbol = "UMBRELLA", price = 99 },
}
for _, m in ipairs(messages) do
    ws:send(json.encode(m))
end

-- Receive one answer per message sent
for _ = 1, #messages do
    local msg = ws:recv()
    if msg == nil then break end
    if msg.type == "text" then
        local data = json.decode((msg.data:gsub("^Echo: ", ""))) -- the chat server's prefix
        if data.symbol then
            print(data.symbol, data.price)
        else
            print("subscribed to", data.channel)
        end
    end
end

ws:close()
while ws:recv() do end -- finish the close handshake: recv returns what is left, then nil
print("closed with code", ws.closeCode)
