-- Seed 000's Quick Start "TCP Client": send an HTTP/1.0 request over a raw TCP stream and print
-- everything the server sends back until it closes.
--
--   lua5.4 examples/tcp_get.lua [host port]
--
-- The seed talks to example.com:80. Without arguments this script starts its own one-shot server
-- on a free port of 127.0.0.1 (the same answer as examples/tcp_hello_server.lua, as a task);
-- with host and port it talks to that server instead, e.g. one started with
--   lua5.4 examples/tcp_hello_server.lua 8080 &   lua5.4 examples/tcp_get.lua 127.0.0.1 8080
local net = require("net")

local host, port = arg[1], tonumber(arg[2])
if not host then
    -- The local peer: seed 000's "TCP Server", serving a single client in a task.
    local server = net.tcp.listen("127.0.0.1", 0)
    host, port = "127.0.0.1", server.port
    net.spawn(function()
        local conn = server:accept()
        conn:read_line()
        conn:write_all("HTTP/1.0 200 OK\r\n\r\nHello!\n")
        conn:close()
        server:close()
    end)
end
assert(port, "usage: tcp_get.lua [host port]")

local conn = net.tcp.connect(host, port)
conn:set_timeout(5000) -- a silent server ends the example with an error instead of a hang
conn:write_all("GET / HTTP/1.0\r\nHost: " .. host .. "\r\n\r\n")
local response = conn:read_all()
print(response)
conn:close()
