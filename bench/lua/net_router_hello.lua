-- `net` HTTP hello-world through the router (net.http.server()), written the way a user would.
-- Usage: lua5.4|luajit net_router_hello.lua PORT   (net.so on package.cpath; bench/http.sh sets it)
-- The same reply as net_http_hello.lua (200, "Hello, World!", text/plain), so bench/http.sh's
-- router ÷ net.serve ratio is what routing, the request/response objects and res:text() cost.
local net = require("net")
local port = tonumber(arg[1])
assert(port, "usage: net_router_hello.lua PORT")
local app = net.http.server()
app:get("/", function(req, res)
  res:text("Hello, World!")
end)
app:listen("127.0.0.1:" .. port)
io.stderr:write(("net router hello (%s) on http://127.0.0.1:%d/\n"):format(jit and jit.version or _VERSION, port))
net.run()
