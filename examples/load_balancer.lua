-- Seed 002's "Load Balancer", in Lua: an HTTP front server (the router, net.http.server) that
-- forwards every request round-robin to the healthy backends, and a task that checks each
-- backend's /health every 10 seconds.
--
--   lua5.4 examples/load_balancer.lua [port]      balance on 127.0.0.1:port (default 8080) until Ctrl-C
--   lua5.4 examples/load_balancer.lua --selftest  free ports; check the rotation, a backend going
--                                                 down, and no backend left; exit
--
-- The seed balances http://server1..3:8080 from port 80 on every interface. Here the three
-- backends are net.serve servers this script starts on free ports of 127.0.0.1 (each answers
-- "backend N: METHOD PATH"), and the balancer listens on 127.0.0.1. Try:
--   curl http://127.0.0.1:8080/hello
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line")

local selftest = arg[1] == "--selftest"

-- The local backends (the seed's server1..3). Each can be marked sick: /health then says 503.
local servers = {}
local function start_backend(n)
    local sick = false
    local handle = net.serve(0, function(req)
        if req.path == "/health" then
            return { status = sick and 503 or 200, body = sick and "sick" or "ok" }
        end
        return {
            status = 200,
            headers = { ["Content-Type"] = "text/plain", ["X-Backend"] = tostring(n) },
            body = ("backend %d: %s %s%s"):format(n, req.method, req.path, req.body ~= "" and (" " .. req.body) or ""),
        }
    end)
    servers[n] = { handle = handle, set_sick = function(v) sick = v end }
    return "http://127.0.0.1:" .. handle.port
end

local backends = {
    { url = start_backend(1), weight = 1, healthy = true },
    { url = start_backend(2), weight = 2, healthy = true },
    { url = start_backend(3), weight = 1, healthy = true }
}

local current_backend = 0

local function select_backend()
    -- Weighted round-robin selection
    local healthy_backends = {}
    for _, b in ipairs(backends) do
        if b.healthy then healthy_backends[#healthy_backends + 1] = b end
    end

    if #healthy_backends == 0 then
        error("No healthy backends available")
    end

    -- Simple round-robin for now
    current_backend = current_backend % #healthy_backends + 1
    return healthy_backends[current_backend]
end

local function health_check()
    for _, backend in ipairs(backends) do
        local ok, response = pcall(function()
            return net.http.request(backend.url .. "/health")
                :timeout(2000)
                :send()
        end)
        backend.healthy = ok and response.status == 200

        local status = backend.healthy and "up" or "DOWN"
        print(("Health check %s: %s"):format(backend.url, status))
    end
end

-- Start health check timer
local checker = net.spawn(function()
    while true do
        health_check()
        net.sleep(10)  -- Check every 10 seconds
    end
end)

-- Create load balancer server
local balancer = net.http.server(selftest and "127.0.0.1:0" or ("127.0.0.1:" .. (tonumber(arg[1]) or 8080)))

balancer:all("*", function(req, res)
    local backend = select_backend()

    print(("Routing %s %s -> %s"):format(req.method, req.path, backend.url))

    -- Forward request
    local backend_response = net.http.request(backend.url .. req.path)
        :method(req.method)
        :headers(req.headers)
        :body(req.body)
        :send()

    -- Return response
    res:status(backend_response.status)
        :headers(backend_response.headers)
        :send(backend_response.body)
end)

if not selftest then
    balancer:listen(function(handle)
        print(("Load balancer running on port %d"):format(handle.port))
        print(("Backends: %d"):format(#backends))
    end)
    return
end

-- Self-test: requests through the balancer, with all backends up, one down, and none.
local handle = balancer:serve()
local base = "http://127.0.0.1:" .. handle.port
print(("Load balancer running on port %d"):format(handle.port))
print(("Backends: %d"):format(#backends))
local failures = 0
local function check(what, ok)
    print(("%s %s"):format(ok and "ok  " or "FAIL", what))
    if not ok then failures = failures + 1 end
end
local function who_answers(n)
    local seen = {}
    for i = 1, n do
        local r = net.http.get(base .. "/item/" .. i)
        seen[#seen + 1] = r.headers["x-backend"] or r.status
    end
    return table.concat(seen, " ")
end

local test = net.spawn(function()
    net.sleep(0.1) -- let the first health check pass
    check("round-robin over 3 healthy backends", who_answers(6) == "1 2 3 1 2 3")
    local r = net.http.post(base .. "/orders", "3 pencils", { headers = { ["Content-Type"] = "text/plain" } })
    check("a POST is forwarded with its method, path and body",
        r.status == 200 and r.body == "backend 1: POST /orders 3 pencils" and r.headers["content-type"] == "text/plain")

    servers[2].set_sick(true)
    health_check()
    check("backend 2 sick: the rotation skips it", who_answers(4) == "3 1 3 1")

    servers[1].handle:stop()
    servers[3].handle:stop()
    health_check()
    print("(the router prints the next error, with its traceback: the seed's throw becomes a 500)")
    r = net.http.get(base .. "/")
    check("no healthy backend left: 500", r.status == 500)

    checker:cancel()
    handle:stop()
    servers[2].handle:stop()
end)
net.run()
test:join()
print(failures == 0 and "selftest passed" or ("selftest: %d checks failed"):format(failures))
os.exit(failures == 0 and 0 or 1)
