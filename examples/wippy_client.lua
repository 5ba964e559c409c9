-- Seed 003's "Complete Example Usage" (the Wippy WebSocket client), run against an echo server
-- this script starts itself on 127.0.0.1. The seed's code is kept as it is, with three changes:
-- `websocket` comes from require("net.websocket") (Wippy has it as a global), Wippy's
-- `coroutine.spawn` is `net.spawn` here, and "Later" waits for the echo before closing.
local net = require("net")
local websocket = require("net.websocket")

-- The echo server: net.ws.listen on port 0 (a free port). It pings each client once, so the
-- receive loop below has a ping to observe, then echoes text until the client closes.
local server = net.ws.listen("127.0.0.1", 0)
net.spawn(function()
  local conn = server:accept()
  server:close() -- one client is all this example needs
  conn:ping("are you there?")
  while true do
    local msg = conn:recv()
    if msg == nil or msg.type == "close" then break end
    if msg.type == "text" then conn:send(msg.data) end
  end
end)
local got_reply = net.channel() -- lets the main thread wait for the echo ("Later")

-- Connect to the WebSocket server
local client, err = websocket.connect("ws://127.0.0.1:" .. server.port .. "/socket", {
    headers = { ["User-Agent"] = "Lua WebSocket Client" },
    dial_timeout = "5s",
    read_timeout = "30s",
    write_timeout = "10s",
    ping_interval = "15s",
    pong_timeout = "20s"
})
if not client then
    error("Connection failed: " .. err)
end

-- Start a receive loop in a coroutine (Wippy: coroutine.spawn; here: net.spawn)
local loop = net.spawn(function()
    local ch = client:receive()
    while true do
        local msg, ok = ch:receive()
        if not ok then
            print("Connection closed")
            break
        end

        if msg.type == websocket.TYPE_TEXT then
            print("Received:", msg.data)
            got_reply:send(msg.data)
        elseif msg.type == websocket.TYPE_CLOSE then
            print("Server closed connection:", msg.code, msg.reason)
            break
        elseif msg.type == websocket.TYPE_PING then
            -- Library handles pings automatically, but you can still observe them
            print("Received ping")
        end
    end
end)

-- Send a message
local ok, err = client:send("Hello")
if not ok then
    print("Send failed:", err)
end

-- Later, gracefully close the connection
got_reply:receive()
client:close(websocket.CLOSE_CODES.NORMAL, "Goodbye")

loop:join() -- the receive loop ends when close() closes its channel
net.run()   -- returns at once: closing the client stopped its background tasks
print("done")
