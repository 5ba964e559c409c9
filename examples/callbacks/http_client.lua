-- Seed 001 (callback TCP API), "HTTP Client Example": a GET by hand over net.TCPSocket, parsed
-- when the server closes the connection.
--   lua examples/callbacks/http_client.lua [port = 8890] [path = /time]
-- Start examples/callbacks/http_server.lua first (the seed asked httpbin.org; this asks localhost).
-- (For real HTTP use net.request: docs/api.md, "HTTP client".)
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 8890
local PATH = arg and arg[2] or "/time"

local function http_get(host, port, path)
    local client = net.TCPSocket()
    local response_data = ""

    client:connect(host, port, {
        connected = function()
            local request = string.format(
                "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                path, host
            )
            client:send(request)
        end,

        data = function(data)
            response_data = response_data .. data
        end,

        disconnected = function()
            -- Parse HTTP response
            local status_line = response_data:match("HTTP/1%.1 (%d+)")
            local body = response_data:match("\r\n\r\n(.*)$")

            print("HTTP Status:", status_line)
            print("Response Body:", body and body:sub(1, 500) or "No body")
        end,

        error = function(error)
            print("HTTP request failed:", error)
        end
    })
end

-- Usage
http_get("localhost", PORT, PATH)
