-- Seed 002's "Protocol Implementation" (a custom protocol over TCP), in Lua: each packet is a
-- big-endian u32 length followed by that many bytes of JSON. The seed's send_packet and
-- receive_packet, then a server task that answers "add" packets with their sum, and a client.
--
--   lua5.4 examples/framing.lua
--
-- The peer is the server task of this script, on a free port of 127.0.0.1.
local net = require("net")
local json = net.json

local function send_packet(conn, kind, data)
  local body = json.encode({ version = 1, type = kind, timestamp = os.time() * 1000, data = data }) -- ms, whole seconds
  conn:write_u32(#body)
  conn:write(body)
end

local function receive_packet(conn)
  local length = conn:read_u32()
  if not length then return nil end -- the peer closed cleanly between packets
  return json.decode(conn:read_exact(length)) -- the seed's read(length) may return fewer bytes
end

local server = net.tcp.listen("127.0.0.1", 0)
net.spawn(function() -- a server that answers every "add" packet with the sum
  local conn = server:accept()
  while true do
    local p = receive_packet(conn)
    if not p then break end
    local sum = 0
    for _, n in ipairs(p.data) do sum = sum + n end
    send_packet(conn, "result", { sum = sum })
  end
  conn:close()
end)

local conn = net.tcp.connect("127.0.0.1", server.port)
conn:set_timeout(2000)
for i = 1, 3 do
  local numbers = {}
  for k = 1, i * 2 do numbers[k] = k end
  send_packet(conn, "add", numbers)
  local reply = receive_packet(conn)
  print(("sent %d numbers, got %s = %d"):format(#numbers, reply.type, reply.data.sum))
end
conn:close()
server:close()
