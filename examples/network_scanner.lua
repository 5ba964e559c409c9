-- Seed 002's "Network Scanner", in Lua: scan a host's TCP ports concurrently (one task per port,
-- at most 200 connecting at once), name the well-known services, and print a sorted report.
-- (Seed 000's simpler sequential scanner is examples/port_scan.lua.)
--
--   lua5.4 examples/network_scanner.lua [host [quick|full|custom LOW-HIGH]]
--   lua5.4 examples/network_scanner.lua --selftest
--
-- Without arguments it asks, as the seed does (an empty answer or no terminal: 127.0.0.1, quick).
-- Scan only hosts you run yourself. --selftest opens three listeners of its own on 127.0.0.1,
-- scans a small range around them and checks that exactly those are reported open.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line")

print("=== Network Scanner ===")

local function scan_port(host, port, timeout)
    timeout = timeout or 1000
    local ok = pcall(function()
        local socket = net.tcp.connect_timeout(host, port, timeout)
        socket:close()
    end)
    return ok
end

local function identify_service(port)
    local services = {
        [21] = "FTP",
        [22] = "SSH",
        [23] = "Telnet",
        [25] = "SMTP",
        [53] = "DNS",
        [80] = "HTTP",
        [110] = "POP3",
        [143] = "IMAP",
        [443] = "HTTPS",
        [445] = "SMB",
        [3306] = "MySQL",
        [5432] = "PostgreSQL",
        [6379] = "Redis",
        [8080] = "HTTP-Alt",
        [8443] = "HTTPS-Alt",
        [27017] = "MongoDB"
    }

    return services[port] or "Unknown"
end

local function scan_host(host, ports)
    print(("\nScanning %s..."):format(host))
    local open_ports = {}

    -- Parallel port scanning: a task per port; a bounded channel keeps at most 200 connects in
    -- flight (the seed starts them all at once, which a full scan's 65535 sockets would not survive)
    local slots = net.channel(200)
    local tasks = {}
    for _, port in ipairs(ports) do
        tasks[#tasks + 1] = net.spawn(function()
            slots:send(true)          -- take a slot (waits while 200 are taken)
            local open = scan_port(host, port)
            slots:receive()           -- give it back
            if open then
                return port
            end
            return nil
        end)
    end

    for _, task in ipairs(tasks) do -- the seed's async::wait_all
        local port = task:join()
        if port then
            local service = identify_service(port)
            table.insert(open_ports, { port = port, service = service })
            print(("  + Port %5d open - %s"):format(port, service))
        end
    end

    return open_ports
end

local function input(prompt)
    io.write(prompt)
    io.flush()
    local answer = io.read("*l")
    if answer == nil or answer == "" then return nil end
    return answer
end

local function range(low, high)
    local t = {}
    for p = low, high do t[#t + 1] = p end
    return t
end

-- Get scan parameters
local selftest = arg[1] == "--selftest"
local target, scan_type, range_str, listeners
if selftest then
    -- Three listeners on ports as close together as the system allows; the scan covers them and
    -- the ports around them, which are (very likely) closed.
    local first = net.tcp.listen("127.0.0.1", 0)
    listeners = { first }
    local p = first.port
    while #listeners < 3 and p < first.port + 20 and p < 65535 do
        p = p + 1
        local ok, l = pcall(net.tcp.listen, "127.0.0.1", p)
        if ok then listeners[#listeners + 1] = l end
    end
    target, scan_type = "127.0.0.1", "custom"
    range_str = (first.port - 5) .. "-" .. (listeners[#listeners].port + 5)
else
    target = arg[1] or input("Target host (IP or domain): ") or "127.0.0.1"
    scan_type = arg[2] or input("Scan type (quick/full/custom): ") or "quick"
end

local ports
if scan_type == "quick" then
    ports = { 21, 22, 23, 25, 80, 443, 3306, 5432, 8080 }
elseif scan_type == "full" then
    ports = range(1, 65535)
elseif scan_type == "custom" then
    range_str = range_str or arg[3] or input("Port range (e.g., 1-1000): ") or "1-1000"
    local low, high = range_str:match("^(%d+)%-(%d+)$")
    ports = range(assert(tonumber(low), "a range is LOW-HIGH"), tonumber(high))
else
    ports = { 80, 443 }
end

print(("\nScanning %d ports on %s..."):format(#ports, target))
local start_time = net.now()

local results = scan_host(target, ports)

local duration = net.now() - start_time
print(("\nScan complete in %.1fs"):format(duration))
print(("Found %d open ports"):format(#results))

-- Generate report
if #results > 0 then
    print("\n=== Open Services ===")
    table.sort(results, function(a, b) return a.port < b.port end)
    for _, item in ipairs(results) do
        print(("%5d - %s"):format(item.port, item.service))
    end
end

if selftest then
    -- Every listener must be reported; another program's port in the range may be too.
    local reported, missing = {}, {}
    for _, item in ipairs(results) do reported[item.port] = true end
    for _, l in ipairs(listeners) do
        if not reported[l.port] then missing[#missing + 1] = l.port end
        l:close()
    end
    print(#missing == 0 and ("selftest passed: all %d listeners found"):format(#listeners)
        or ("selftest FAILED: not reported: " .. table.concat(missing, " ")))
    os.exit(#missing == 0 and 0 or 1)
end
