-- A tour of net: a TCP echo server and its clients, a UDP exchange, DNS, timers and channels.
-- Run: lua5.4 examples/tour.lua   (or luajit, lua5.1 ... lua5.3), with net.so on package.cpath.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
print(("net %s on %s"):format(net.version, jit and jit.version or _VERSION))

-- 1. A TCP echo server, running as a task. Port 0 lets the system pick a free port.
local server = net.tcp.listen("127.0.0.1", 0)
print("echo server listening on " .. server:local_addr())
net.spawn(function()
  while true do
    local ok, conn = pcall(server.accept, server)
    if not ok then print("server: " .. conn); break end -- "closed: accept on a closed listener"
    net.spawn(function() -- one task per connection
      local line = conn:read_line() -- a `while` loop: Lua 5.1 cannot wait inside a for iterator
      while line do
        conn:write("echo: " .. line .. "\n")
        line = conn:read_line()
      end
      conn:close()
    end)
  end
end)

-- 2. A blocking client on the main thread: the server task keeps running while we wait.
local conn = net.tcp.connect("127.0.0.1", server.port)
conn:write("hello from the main thread\n")
print("main thread got  " .. conn:read_line())
conn:close()

-- 3. Three clients at once, each in its own task; they finish in any order.
local clients = {}
for i = 1, 3 do
  clients[i] = net.spawn(function()
    local c = net.tcp.connect("localhost", server.port)
    net.sleep(0.01 * (4 - i)) -- the last one started answers first
    c:write("client " .. i .. "\n")
    local reply = c:read_line()
    c:close()
    print("task " .. i .. " got        " .. reply)
    return #reply
  end)
end
for i = 1, 3 do clients[i]:join() end

-- 4. UDP: two sockets talk; binary data round-trips exactly.
local a, b = net.udp.bind("127.0.0.1", 0), net.udp.bind("127.0.0.1", 0)
a:send("ping\0\255", "127.0.0.1", b.port)
local data, host, port = b:recv()
print(("udp: %d bytes from %s:%d, intact: %s"):format(#data, host, port, tostring(data == "ping\0\255")))
a:close(); b:close()

-- 5. DNS, bounded by a timeout; errors are plain strings that start with a kind word.
print("localhost is " .. table.concat(net.resolve("localhost"), " and "))
print("bad name:  " .. select(2, pcall(net.resolve, "no-such-host.invalid")))
print("refused:   " .. select(2, pcall(net.tcp.connect, "127.0.0.1", 1)))

-- 6. Timers and a channel, driven by net.run().
local ch = net.channel()
local ticks = 0
local iv = net.setInterval(function() ticks = ticks + 1; ch:send("tick " .. ticks) end, 20)
net.setTimeout(function() net.clearInterval(iv); ch:close() end, 70)
net.spawn(function()
  while true do
    local msg, ok = ch:receive()
    if not ok then break end
    print("channel:  " .. msg)
  end
  server:close() -- ends the accept loop, so nothing is left and net.run() returns
end)
local failed = net.run()
print(("done: %d ticks, net.run() returned (failed tasks: %d)"):format(ticks, failed))
