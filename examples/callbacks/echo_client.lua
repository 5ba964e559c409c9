-- Seed 001 (callback TCP API), "Echo Client Example": sends three messages a second apart to the
-- echo server and prints the echoes.
--   lua examples/callbacks/echo_client.lua [port = 8888]
-- Start examples/callbacks/echo_server.lua first. Like the seed's, it stays connected until the
-- server goes away (Ctrl-C to stop it sooner).
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 8888
io.stdout:setvbuf("line")

local client = net.TCPSocket()

client:connect("localhost", PORT, {
    connected = function()
        print("✓ Connected to echo server")

        -- Send test messages
        client:send("Hello, server!")

        setTimeout(function()
            client:send("This is message 2")
        end, 1000)

        setTimeout(function()
            client:send("Goodbye!")
        end, 2000)
    end,

    data = function(data)
        print("Echo received:", data)
    end,

    disconnected = function()
        print("✓ Disconnected from echo server")
    end,

    error = function(error)
        print("✗ Client error:", error)
    end
})
