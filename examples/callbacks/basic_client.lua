-- Seed 001 (callback TCP API), "Basic Client Connection": connect, send an HTTP request, print
-- what comes back.
--   lua examples/callbacks/basic_client.lua [host = localhost] [port = 8890]
-- Start examples/callbacks/http_server.lua first (the seed asked www.google.com:80).
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local HOST = arg and arg[1] or "localhost"
local PORT = tonumber(arg and arg[2]) or 8890

local client = net.TCPSocket()

client:connect(HOST, PORT, {
    connected = function()
        print("✓ Connected to server")

        -- Send HTTP request
        local request = "GET / HTTP/1.1\r\nHost: " .. HOST .. "\r\nConnection: close\r\n\r\n"
        client:send(request)
    end,

    data = function(data)
        print("Received:", #data, "bytes")
        print(data:sub(1, 200) .. "...")  -- Show first 200 chars
    end,

    disconnected = function()
        print("✓ Disconnected from server")
    end,

    error = function(error)
        print("✗ Connection error:", error)
    end
})
