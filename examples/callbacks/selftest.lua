-- Seed 001 (callback TCP API), "Test TCP Connection": an echo server that, once started,
-- connects a client to itself, exchanges one message and stops; the script then ends.
--   lua examples/callbacks/selftest.lua [port = 9999]
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 9999

-- Start a simple echo server for testing
local server = net.TCPServer()
server:listen("localhost", PORT, {
    connected = function(client_id)
        print("Test client connected")
    end,

    data = function(client_id, data)
        server:send(client_id, "Echo: " .. data)
    end,

    started = function()
        print("✓ Test server ready")

        -- Connect a test client
        local client = net.TCPSocket()
        client:connect("localhost", PORT, {
            connected = function()
                print("✓ Test client connected")
                client:send("Hello, test!")
            end,

            data = function(data)
                print("✓ Received:", data)
                client:disconnect()
            end,

            disconnected = function()
                print("✓ Test completed")
                server:stop()
            end
        })
    end
})
