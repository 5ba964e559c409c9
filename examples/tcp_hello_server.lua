-- Seed 000's "TCP Server": accept a connection, read its request line, answer a tiny HTTP/1.0
-- response and close, one client after the other.
--
--   lua5.4 examples/tcp_hello_server.lua [port [max_clients]]
--
-- It listens on 127.0.0.1 (the seed listens on 0.0.0.0:8080); port 0 (the default) picks a free
-- port, and the first line printed says which. With max_clients it stops after that many clients,
-- else it serves until Ctrl-C. Its client is examples/tcp_get.lua (seed 000's "TCP Client"), or
-- curl --http1.0 http://127.0.0.1:PORT/
local net = require("net")
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local port = tonumber(arg[1]) or 0
local max_clients = tonumber(arg[2])

local server = net.tcp.listen("127.0.0.1", port)
print("Listening on", server:local_addr())

local served = 0
while not max_clients or served < max_clients do
    local conn = server:accept()  -- blocks until a client connects
    print("Client:", conn:peer_addr())

    local request = conn:read_line()
    print("Request:", request)
    conn:write_all("HTTP/1.0 200 OK\r\n\r\nHello!\n")
    conn:close()
    served = served + 1
end

print(("served %d clients, bye"):format(served))
server:close()
