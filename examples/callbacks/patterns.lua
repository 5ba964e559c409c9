-- Seed 001 (callback TCP API), "Best Practices": connection management, reconnecting on errors
-- and line framing, put together so that it runs and ends by itself.
--   lua examples/callbacks/patterns.lua [port = 9100]
-- 1. A client retries a port where nothing listens yet (the seed's reconnect loop, with a shorter
--    pause), 2. the server starts and the next attempt connects, 3. the client receives lines
--    split across reads and reassembles them, 4. the server logs each session when it ends.
local net = require("net"); setTimeout = net.setTimeout; json = net.json
local host, port = "localhost", tonumber(arg and arg[1]) or 9100
local RETRY_MS = 300 -- the seed waits 5000 ms

-- Connection management: keep track of active connections
local server = net.TCPServer()
local active_clients = {}

local function start_server()
    server:listen(host, port, {
        connected = function(client_id)
            active_clients[client_id] = {
                connected_at = os.time(),
                bytes_sent = 0,
                bytes_received = 0
            }
            -- Three lines, sent in pieces that do not match the line ends.
            for _, piece in ipairs({ "first li", "ne\nsecond line\nthi", "rd line\n" }) do
                server:send(client_id, piece)
                active_clients[client_id].bytes_sent = active_clients[client_id].bytes_sent + #piece
            end
        end,

        data = function(client_id, data)
            active_clients[client_id].bytes_received = active_clients[client_id].bytes_received + #data
        end,

        disconnected = function(client_id)
            local info = active_clients[client_id]
            if info then
                print(string.format("Client %s: session lasted %d seconds, %d bytes in, %d bytes out",
                      client_id, os.time() - info.connected_at, info.bytes_received, info.bytes_sent))
            end
            active_clients[client_id] = nil
            server:stop()
        end
    })
end

-- Data framing: handle message boundaries in streaming data
local client = net.TCPSocket()
local lines_seen = 0

local function handle_message(line)
    lines_seen = lines_seen + 1
    print("line:", line)
    if lines_seen == 3 then
        client:send("thanks\n")
        client:disconnect()
    end
end

local function create_line_handler()
    local buffer = ""

    return function(data)
        buffer = buffer .. data

        while true do
            local line, rest = buffer:match("([^\n]*)\n(.*)")
            if not line then break end

            buffer = rest

            -- Process complete line
            handle_message(line)
        end
    end
end

-- Error handling: robust reconnecting
local reconnect_count = 0
local max_reconnects = 3

local function try_connect()
    client = net.TCPSocket()
    client:connect(host, port, {
        connected = function()
            reconnect_count = 0  -- Reset on successful connect
            print("✓ Connected successfully")
        end,

        data = create_line_handler(),

        error = function(error)
            reconnect_count = reconnect_count + 1
            print(string.format("✗ Connection failed (attempt %d/%d): %s",
                  reconnect_count, max_reconnects, (error:match("^%a+"))))

            if reconnect_count < max_reconnects then
                if reconnect_count == 1 then start_server() end -- the server comes up meanwhile
                setTimeout(try_connect, RETRY_MS)  -- Retry after a pause
            else
                print("✗ Max reconnection attempts reached")
            end
        end
    })
end

try_connect()
