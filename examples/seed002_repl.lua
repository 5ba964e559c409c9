-- Seed 002's "Try It Yourself" REPL session, in Lua: a quick HTTP server, a JSON API fetched
-- with one call, and a port check.
--
--   lua5.4 examples/seed002_repl.lua
--
-- The seed fetches api.weather.com and checks google.com:443; here the weather API is a route
-- of the quick server itself, on a free port of 127.0.0.1, and the port checked is that server's.
local net = require("net")

-- Quick HTTP server (the seed: http::serve(8080, |req, res| res.text(...)); net has no such
-- function: a router app with one catch-all route is the closest, or net.serve's Lune style,
-- function(req) return "Hello from " .. req.path .. "!" end)
local app = net.http.server("127.0.0.1:0")
app:get("/city/:name", function(req, res)
    res:json({ city = req.params.name, temp = 11.5 })
end)
app:all("*", function(req, res)
    res:text("Hello from " .. req.path .. "!")
end)
local server = app:serve()
local base = "http://127.0.0.1:" .. server.port
print(net.http.get(base .. "/lua").body)

-- Fetch data from API
local weather = net.http.get(base .. "/city/london"):json()
print(("Temperature: %s°C"):format(weather.temp))

-- Simple port check
print(net.is_port_open("127.0.0.1", server.port))

server:stop()
print(net.is_port_open("127.0.0.1", server.port, 500))
