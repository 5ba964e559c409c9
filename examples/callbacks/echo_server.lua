-- Seed 001 (callback TCP API), "Basic Echo Server": greets each client and echoes what it sends.
--   lua examples/callbacks/echo_server.lua [port = 8888]      (Ctrl-C to stop)
-- Try it with examples/callbacks/echo_client.lua, or `nc localhost 8888`.
-- The script never calls net.run(): the loop runs when the script ends (docs/api.md, "Callback facade").
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 8888
io.stdout:setvbuf("line")

local server = net.TCPServer()

server:listen("localhost", PORT, {
    connected = function(client_id)
        print("✓ Client connected:", client_id)
        server:send(client_id, "Welcome to echo server!\n")
    end,

    data = function(client_id, data)
        print(string.format("Client %s sent: %s", client_id, (data:gsub("\n", "\\n"))))

        -- Echo the data back
        server:send(client_id, "Echo: " .. data)
    end,

    disconnected = function(client_id)
        print("✓ Client disconnected:", client_id)
    end,

    started = function()
        print("✓ TCP server listening on localhost:" .. PORT)
    end,

    error = function(error)
        print("✗ Server error:", error)
    end
})
