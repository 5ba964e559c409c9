-- Seed 004's (Lune's) example flow, against servers this script starts itself on 127.0.0.1:
-- a web request, a JSON API, an echo server, and a raw HTTP request over a plain TCP stream.
--
--   lua5.4 examples/lune_net.lua
local net = require("net")

-- Stand-ins for the seed's public hosts: a page, and a JSON API that adds products.
local products = 0
local api = net.serve(0, function(request)
  if request.path == "/products/add" and request.method == "POST" then
    products = products + 1
    local product = net.json.decode(request.body)
    product.id = 100 + products
    return { status = 201, headers = { ["Content-Type"] = "application/json" }, body = net.json.encode(product) }
  end
  return { status = 200, headers = { ["Content-Type"] = "text/html" }, body = "<h1>Welcome</h1>" }
end)
local base = "http://127.0.0.1:" .. api.port

-- Sending a web request
local response = net.request(base .. "/")
print(response.ok)
print(response.statusCode, response.statusMessage)
print(response.headers["content-type"])

-- Using a JSON web API
response = net.request({
  url = base .. "/products/add",
  method = "POST",
  headers = { ["Content-Type"] = "application/json" },
  body = net.json.encode({ title = "Cool Pencil" }),
})
local product = net.json.decode(response.body)
print(product.id, "-", product.title)

-- Starting up an http server
local echo = net.serve(0, function(request)
  return {
    status = 200,
    body = "Echo:\n" .. request.body,
  }
end)
print(net.request({ url = "http://127.0.0.1:" .. echo.port, method = "POST", body = "hello" }).body)

-- Writing to a plain TCP stream
local conn = net.tcp.connect("127.0.0.1", echo.port)
conn:write("GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
print(conn:read_line())
conn:close()

api:stop()
echo:stop()
net.run() -- returns once both servers are done
print("done")
