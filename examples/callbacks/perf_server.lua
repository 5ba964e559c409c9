-- Seed 001 (callback TCP API), "Performance Test": an echo server that reports every 1000 reads.
--   lua examples/callbacks/perf_server.lua [port = 10000]      (Ctrl-C to stop)
-- Load it with any client, e.g. examples/callbacks/echo_client.lua 10000, or
--   python3 -c 'import socket; s=socket.create_connection(("localhost",10000)); [s.sendall(b"x") or s.recv(9) for _ in range(5000)]'
-- A read may carry several messages (TCP is a byte stream), so it counts reads.
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local PORT = tonumber(arg and arg[1]) or 10000
io.stdout:setvbuf("line")

local server = net.TCPServer()
local message_count = 0
local start_time = os.time()

-- High-throughput echo server
server:listen("localhost", PORT, {
    data = function(client_id, data)
        message_count = message_count + 1
        server:send(client_id, data)  -- Echo back

        if message_count % 1000 == 0 then
            local elapsed = os.time() - start_time
            print(string.format("Processed %d messages in %d seconds (%.1f msg/sec)",
                  message_count, elapsed, message_count / math.max(elapsed, 1)))
        end
    end,

    started = function()
        print("✓ Performance test server ready on localhost:" .. PORT)
    end
})
