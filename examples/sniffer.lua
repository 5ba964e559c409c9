-- A packet monitor (seed: `net::PacketCapture::new("eth0")` with `on_packet` and `start`): one
-- line per TCP or UDP packet on an interface. Linux only; needs root or CAP_NET_RAW.
--
--   sudo lua5.4 examples/sniffer.lua [iface [filter]]   capture until Ctrl-C (default: "lo", everything)
--   sudo lua5.4 examples/sniffer.lua eth0 "tcp port 443"
--   sudo lua5.4 examples/sniffer.lua --selftest         capture its own loopback TCP and UDP traffic, exit 0
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line")

local selftest = arg[1] == "--selftest"

-- The seed's monitor. `seen` counts what was printed (the self-test checks it).
local seen = { TCP = 0, UDP = 0 }
local function monitor(iface, filter)
  local cap = net.capture.open(iface, { filter = filter })
  cap:on_packet(function(packet)
    if packet.protocol == "TCP" then
      print(("TCP: %s:%d -> %s:%d"):format(packet.src, packet.src_port, packet.dst, packet.dst_port))
    elseif packet.protocol == "UDP" then
      print(("UDP: %s -> %s (%d bytes)"):format(packet.src, packet.dst, packet.size))
    else
      return
    end
    seen[packet.protocol] = seen[packet.protocol] + 1
  end)
  cap:start()
  return cap
end

if not selftest then
  local iface = arg[1] or "lo"
  local ok, err = pcall(monitor, iface, arg[2])
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  print(("capturing on %s (Ctrl-C to stop)"):format(iface))
  pcall(net.run) -- Ctrl-C raises interrupted: and ends the capture
  return
end

-- Self-test: an echo server and a UDP socket on 127.0.0.1, and a capture that sees only their
-- ports (other programs may be using the loopback too).
local server = net.tcp.listen("127.0.0.1", 0)
local udp_in = net.udp.bind("127.0.0.1", 0)
local cap = monitor("lo", ("tcp port %d or udp port %d"):format(server.port, udp_in.port))

net.spawn(function()
  local conn = server:accept()
  local line = conn:read_line()
  conn:write(line .. "\n")
  conn:close()
end)

local DATAGRAMS = 3
net.spawn(function()
  local c = net.tcp.connect("127.0.0.1", server.port, { timeout = 2000 })
  c:write("hello sniffer\n")
  c:read_line()
  c:close()
  local out = net.udp.bind("127.0.0.1", 0)
  for i = 1, DATAGRAMS do out:send("datagram " .. i, "127.0.0.1", udp_in.port) end
  out:close()
  -- Wait until the capture has printed the datagrams (and the TCP exchange before them), at most 3 s.
  local deadline = net.now() + 3
  while seen.UDP < DATAGRAMS and net.now() < deadline do net.sleep(0.01) end
  cap:stop()
end)

net.run()
cap:close()
server:close()
udp_in:close()
print(("selftest: %d TCP and %d UDP packets"):format(seen.TCP, seen.UDP))
-- A TCP exchange is at least 3 handshake packets, the data, its echo and the closing ones.
os.exit((seen.TCP >= 6 and seen.UDP == DATAGRAMS) and 0 or 1)
