-- Seed 000's "TCP Port Scanner": try a TCP connection to each port of a list, one after the
-- other, and print the ones that accept. (Seed 002's concurrent scanner with service names is
-- examples/network_scanner.lua.)
--
--   lua5.4 examples/port_scan.lua [port ...]
--
-- It scans 127.0.0.1 only: the seed's list of well-known ports, plus two listeners this script
-- opens itself so that there is always something to find (given ports replace the seed's list).
-- A connection that is refused fails at once on loopback; a port that does not answer at all is
-- bounded by the 1 s connect timeout.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- Two local listeners: the ports the scan must report OPEN.
local a = net.tcp.listen("127.0.0.1", 0)
local b = net.tcp.listen("127.0.0.1", 0)

local host = "127.0.0.1"
local ports = { 22, 80, 443, 3306, 5432, 6379, 8080 }
if arg[1] then
    ports = {}
    for i = 1, #arg do ports[i] = assert(tonumber(arg[i]), "ports are numbers") end
end
table.insert(ports, a.port)
table.insert(ports, b.port)

for _, port in ipairs(ports) do
    local ok = pcall(function()
        local conn = net.tcp.connect(host, port, { timeout = 1000 }) -- the seed has no connect timeout
        conn:set_timeout(1000)
        conn:close()
    end)
    if ok then
        print(string.format("  %s:%d  OPEN", host, port))
    end
end
print(("scanned %d ports; this script's own listeners are %d and %d"):format(#ports, a.port, b.port))
a:close()
b:close()
