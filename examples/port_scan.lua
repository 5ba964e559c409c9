-- A concurrent TCP port scanner (seeds 000 and 002), against this machine only.
-- It opens two listeners of its own so there is something to find, then checks a range of
-- ports, 50 at a time, each check bounded by a timeout.
local net = require("net")

local a = net.tcp.listen("127.0.0.1", 0)
local b = net.tcp.listen("127.0.0.1", 0)
local ports = { a.port, b.port }
for p = 1, 48 do ports[#ports + 1] = 20000 + p end -- very likely closed

local open, checks = {}, {}
for _, port in ipairs(ports) do
  checks[#checks + 1] = net.spawn(function()
    if net.is_port_open("127.0.0.1", port, 500) then open[#open + 1] = port end
  end)
end
for _, t in ipairs(checks) do t:join() end
table.sort(open)
print(("scanned %d ports on 127.0.0.1, open: %s"):format(#ports, table.concat(open, " ")))
assert(#open >= 2, "our own listeners should be open")
a:close(); b:close()
