-- `net` HTTP hello-world server (net.serve), written the way a user would write it.
-- Usage: lua5.4|luajit net_http_hello.lua PORT [--reuseport]
--   (net.so must be on package.cpath; bench/http.sh sets it)
-- The handler returns the body as a string: status 200, Content-Length 13, keep-alive. The same
-- port answers HTTP/1.1 and HTTP/2 by prior knowledge (h2c), which is what bench/http.sh's h2
-- part sends. --reuseport lets several of these processes share the port, the kernel spreading
-- new connections over them (one process per core, the nginx model: the scale-out test).
local net = require("net")
local port = tonumber(arg[1])
local reuseport = arg[2] == "--reuseport"
assert(port, "usage: net_http_hello.lua PORT [--reuseport]")
net.serve(port, {
  address = "127.0.0.1",
  reuseport = reuseport,
  handleRequest = function(req)
    return "Hello, World!"
  end,
})
io.stderr:write(("net.serve hello (%s) on http://127.0.0.1:%d/%s\n"):format(
  jit and jit.version or _VERSION, port, reuseport and " (reuseport)" or ""))
net.run()
