-- Seed 001 (callback TCP API), "Chat Server Example": the first line a client sends is its name,
-- every later line goes to everyone else.
--   lua examples/callbacks/chat_server.lua [port = 8889]      (Ctrl-C to stop)
-- Connect with `telnet localhost 8889` or `nc localhost 8889` from two terminals.
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 8889
io.stdout:setvbuf("line")

local server = net.TCPServer()
local clients = {}
local client_names = {}

local function broadcast(message, sender_id)
    for client_id, _ in pairs(clients) do
        if client_id ~= sender_id then
            server:send(client_id, message)
        end
    end
end

server:listen("localhost", PORT, {
    connected = function(client_id)
        clients[client_id] = true
        print("✓ Client connected:", client_id)

        server:send(client_id, "Welcome to plua2 chat! Enter your name: ")
    end,

    data = function(client_id, data)
        local message = data:gsub("[\r\n]+", "")

        if not client_names[client_id] then
            -- First message is the name
            client_names[client_id] = message
            server:send(client_id, "Hello " .. message .. "! You can now chat.\n")
            broadcast(message .. " joined the chat\n", client_id)
        else
            -- Regular chat message
            local chat_message = client_names[client_id] .. ": " .. message .. "\n"
            print("Chat:", (chat_message:gsub("\n", "")))
            broadcast(chat_message, client_id)
        end
    end,

    disconnected = function(client_id)
        if client_names[client_id] then
            broadcast(client_names[client_id] .. " left the chat\n", client_id)
            client_names[client_id] = nil
        end
        clients[client_id] = nil
        print("✓ Client disconnected:", client_id)
    end,

    started = function()
        print("✓ Chat server listening on localhost:" .. PORT)
        print("Connect with: telnet localhost " .. PORT)
    end,

    error = function(error)
        print("✗ Chat server error:", error)
    end
})
