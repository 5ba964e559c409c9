-- Seed 003's (Wippy's) WebSocket client fragments, run in order against an echo server task on
-- 127.0.0.1: the constants, connect with options, send, the receive channel in a spawned
-- receive loop, close, and the errors it returns instead of raising. (Seed 003's complete
-- example is examples/wippy_client.lua.)
--
--   lua5.4 examples/seed003_websocket.lua
--
-- The seed connects to ws://example.com/socket; the peer here is a task of this script on a free
-- port that echoes text and, when told "bye", closes with code 4000 and a reason.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
local websocket = require("net.websocket") -- a global in Wippy

-- The local peer.
local server = net.ws.listen("127.0.0.1", 0)
net.spawn(function()
    while true do
        local ok, conn = pcall(server.accept, server)
        if not ok then break end
        net.spawn(function()
            while true do
                local msg = conn:recv()
                if msg == nil or msg.type == "close" then break end
                if msg.data == "bye" then conn:close(4000, "see you"); break end
                if msg.type == "text" then conn:send(msg.data) end
            end
        end)
    end
end)
local URL = "ws://127.0.0.1:" .. server.port .. "/socket"

-- Constants
print("types:", websocket.TYPE_TEXT, websocket.TYPE_BINARY, websocket.TYPE_PING,
    websocket.TYPE_PONG, websocket.TYPE_CLOSE)
print("close codes:", websocket.CLOSE_CODES.NORMAL, websocket.CLOSE_CODES.GOING_AWAY,
    websocket.CLOSE_CODES.MESSAGE_TOO_BIG, websocket.CLOSE_CODES.TLS_HANDSHAKE)

-- websocket.connect
local client, err = websocket.connect(URL, {
    headers = { ["User-Agent"] = "Lua WebSocket Client" },
    dial_timeout = "5s",
    read_timeout = "30s",
    write_timeout = "10s"
})
if not client then
    error("Connection failed: " .. err)
end

-- client:receive(), read in a spawned task (Wippy's coroutine.spawn)
local ch = client:receive()
local reader = net.spawn(function()
    while true do
        local msg, ok = ch:receive()
        if not ok then
            print("Connection closed or error occurred")
            break
        end

        if msg.type == websocket.TYPE_TEXT then
            print("Received text:", msg.data)
        elseif msg.type == websocket.TYPE_CLOSE then
            print("Server closed connection:", msg.code, msg.reason)
            break
        end
    end
end)

-- client:send
local ok, err = client:send("Hello, WebSocket!")
if not ok then
    print("Send failed:", err)
end
client:send("bye") -- the peer closes with 4000 "see you": the reader sees TYPE_CLOSE
reader:join()

-- After the peer's close, send returns false and why (errors are returned, not raised).
print("send after the close:", client:send("anyone?"))

-- client:close on a second connection
client = assert(websocket.connect(URL, { dial_timeout = "5s" }))
local ok, err = client:close(websocket.CLOSE_CODES.NORMAL, "Goodbye")
if not ok then
    print("Close error:", err)
end
print("close returned", ok)
print("send after close:", client:send("late"))

-- Connection failures are returned too: nothing listens on a port that was free a moment ago.
local probe = net.tcp.listen("127.0.0.1", 0)
local closed_port = probe.port
probe:close()
print("connect:", websocket.connect("ws://127.0.0.1:" .. closed_port .. "/socket", { dial_timeout = "1s" }))
print("connect:", websocket.connect("http://127.0.0.1/socket"))
server:close()
