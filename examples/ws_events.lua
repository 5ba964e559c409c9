-- Seed 002's "WebSocket Communication", in Lua: an event-style server (on_connection, socket:on,
-- broadcast of a table as JSON) and the seed's client with "open", "message" and "error"
-- handlers (net.ws.server and net.ws.client, docs/api.md "WebSocket, event style").
--
--   lua5.4 examples/ws_events.lua [port]      serve on 127.0.0.1:port (default 8081) until Ctrl-C;
--                                             the seed's client connects once and says hello
--   lua5.4 examples/ws_events.lua --selftest  a free port, two clients that talk, then exit
--
-- The seed serves on 0.0.0.0:8081; this server listens on 127.0.0.1 only. Its peers are the
-- clients below, or any WebSocket client at ws://127.0.0.1:PORT/ (each message you send comes
-- back to every connected client as {"type":"chat","user":ID,"message":...}).
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local selftest = arg[1] == "--selftest"
local port = selftest and 0 or tonumber(arg[1]) or 8081

-- WebSocket Server
local ws_server = net.ws.server("127.0.0.1:" .. port)

ws_server:on_connection(function(socket)
    print("WebSocket connected: " .. socket.id)

    socket:on("message", function(data)
        print("Received: " .. data)

        -- Broadcast to all clients
        ws_server:broadcast({
            type = "chat",
            user = socket.id,
            message = data
        })
    end)

    socket:on("close", function()
        print("WebSocket disconnected: " .. socket.id)
    end)
end)

ws_server:start() -- listens now (server.port is the real port), so the clients below can connect
local url = "ws://127.0.0.1:" .. ws_server.port

-- WebSocket Client (the seed's; the self-test names it "alice")
local function client(name, on_open, on_message)
    local ws = net.ws.client(url)

    ws:on("open", function()
        print(name .. ": Connected to server")
        on_open(ws)
    end)

    ws:on("message", function(data)
        print(name .. ": Server says: " .. data)
        if on_message then on_message(ws, net.json.decode(data)) end
    end)

    ws:on("error", function(err)
        print(name .. ": WebSocket error: " .. err)
    end)
    return ws
end

if not selftest then
    client("client", function(ws) ws:send("Hello, server!") end)
    print("WebSocket server on " .. url .. "/ (Ctrl-C to stop)")
    ws_server:listen() -- runs the loop: serves until Ctrl-C
    return
end

-- Self-test: alice connects; once she is in, bob connects and says hello; alice answers when
-- she sees bob's message; each leaves after both messages, and the server closes after both.
local left = 0
local function leave_after_two()
    local seen = 0
    return function(ws, msg)
        seen = seen + 1
        if seen == 2 then
            ws:close()
            left = left + 1
            if left == 2 then ws_server:close() end
        end
    end
end
local alice_next = leave_after_two()
client("alice", function()
    local bob_next = leave_after_two()
    client("bob", function(ws) ws:send("Hello, server!") end, bob_next)
end, function(ws, msg)
    if msg.message == "Hello, server!" then ws:send("Hi bob, alice here") end
    alice_next(ws, msg)
end)
ws_server:listen() -- runs the loop until the server is closed and both clients are gone
print("selftest done: 2 clients, 2 messages, each broadcast to both")
