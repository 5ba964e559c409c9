-- Seed 000's TCP reference fragments, run in order against a server task on 127.0.0.1:
-- "Connecting", "Reading and Writing", "Timeouts" and the optional host of net.tcp.listen.
-- (Seed 000's complete TCP programs are examples/tcp_get.lua and examples/tcp_hello_server.lua.)
--
--   lua5.4 examples/seed000_tcp.lua
--
-- The seed connects to localhost:8080; the peer here is a task of this script on a free port that
-- sends a line, a chunk and a last line, waits for "Hello" twice, then stays silent for the
-- timeout fragment and closes.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- The local peer (its script is what the fragments below expect to read).
local listener = net.tcp.listen("127.0.0.1", 0)
local peer = net.spawn(function()
    local c = listener:accept()
    c:write("line one\nsome bytes")
    assert(c:read_exact(10) == "HelloHello") -- the two writes of "Reading and Writing"
    c:write("\nthe rest, until close\n")
    c:close()
    listener:close()
end)

-- Connecting
local conn = net.tcp.connect("localhost", listener.port)
print("Connected to", conn:peer_addr())

-- Reading and Writing
local line = conn:read_line()     -- "Read a single line (up to \n)"
print("read_line:", line)
local chunk = conn:read(1024)     -- "Read up to N bytes": what has arrived, at most 1024
print("read(1024):", chunk)
print("write returned", conn:write("Hello"))  -- returns bytes written
conn:write_all("Hello")           -- writes all bytes, errors if incomplete
print("flush returned", conn:flush())
local all = conn:read_all()       -- "Read everything until the connection closes"
print("read_all:", (all:gsub("\n", "\\n")))
conn:close()
peer:join()

-- Timeouts: a server that accepts and then says nothing.
local silent = net.tcp.listen("127.0.0.1", 0)
net.spawn(function()
    local c = silent:accept()
    net.sleep(1) -- longer than the client waits
    c:close()
end)
conn = net.tcp.connect("127.0.0.1", silent.port)
conn:set_timeout(200)  -- the seed uses 5000 (5 seconds); 200 ms keeps the example short
local ok, err = pcall(function()
    local data = conn:read()  -- will error after the timeout if no data
end)
print("read with a timeout:", ok, err)
conn:set_timeout(nil)  -- remove timeout (block indefinitely)
print("after set_timeout(nil), read waits for the close:", conn:read())
conn:close()
silent:close()

-- The host parameter is optional and defaults to "0.0.0.0" (all interfaces). Port 0 here (the
-- seed has 8080) so that nothing is taken; both are closed at once.
local server = net.tcp.listen(0)                   -- all interfaces
print("net.tcp.listen(0) listens on", server.ip)
server:close()
server = net.tcp.listen("127.0.0.1", 0)            -- localhost only
print('net.tcp.listen("127.0.0.1", 0) listens on', server.ip)
server:close()
