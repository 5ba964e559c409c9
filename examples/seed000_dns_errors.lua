-- Seed 000's "DNS Resolution" and "Error Handling" fragments, on this machine only: resolve a
-- name, then catch the common failures the seed lists (refused, DNS failure, timeout, reset,
-- WebSocket upgrade rejected), each an error string that starts with its kind word.
--
--   lua5.4 examples/seed000_dns_errors.lua
--
-- The seed resolves example.com and connects to unreachable.host; here the names are `localhost`
-- (answered from /etc/hosts) and `unreachable.invalid` (a name that never exists, RFC 6761: net
-- answers it without asking a DNS server). Every peer is a task of this script on 127.0.0.1.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- DNS Resolution
local addrs = net.resolve("localhost")
for _, ip in ipairs(addrs) do
    print(ip)
end

-- Error Handling: "All network operations raise Lua errors on failure"
local ok, err = pcall(function()
    local conn = net.tcp.connect("unreachable.invalid", 9999)
end)
if not ok then
    print("Connection failed:", err)
end

-- The other common scenarios, one each.
local function try(what, fn)
    local ok, err = pcall(fn)
    print(what .. ":", ok and "no error" or err)
end

-- Connection refused: nothing listens on a port that was free a moment ago
local probe = net.tcp.listen("127.0.0.1", 0)
local closed_port = probe.port
probe:close()
try("refused", function() net.tcp.connect("127.0.0.1", closed_port) end)

-- Connection timeout: a server that never answers, and a read bounded by a timeout
local quiet = net.tcp.listen("127.0.0.1", 0)
try("timeout", function()
    local conn = net.tcp.connect("127.0.0.1", quiet.port, { timeout = 1000 })
    conn:set_timeout(100)
    conn:read()
end)

quiet:close()

-- Connection reset: the peer closes with a reset (linger 0) while we wait for data
local rude = net.tcp.listen("127.0.0.1", 0)
net.spawn(function()
    local c = rude:accept()
    c:set_linger(0)
    c:close()
end)
try("reset", function()
    local conn = net.tcp.connect("127.0.0.1", rude.port)
    conn:set_timeout(2000)
    conn:read()
end)
rude:close()

-- WebSocket upgrade rejected: an HTTP server that is not a WebSocket endpoint
local http = net.serve(0, function() return { status = 404, body = "no websocket here" } end)
try("upgrade rejected", function() net.ws.connect("ws://127.0.0.1:" .. http.port .. "/chat") end)
http:stop()
