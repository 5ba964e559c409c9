-- net.capture: packet capture on "lo" of this test's own traffic (Linux, run as root). Other
-- programs use the loopback too, so every capture here filters on the ports this test made.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

local T = 2000 -- ms: socket timeouts in this file
local scope = helper.scope(T)
after_each(scope.cleanup)
local err_of, raises, bad_argument = helper.err_of, helper.raises, helper.bad_argument

-- A capture closed after the test.
local function open(iface, opts)
  return scope.track(net.capture.open(iface, opts))
end

-- Every packet that comes until none came for `quiet` seconds (or 3 s have passed in all: the
-- filter "udp" alone also sees other programs' traffic, which may never pause).
local function drain(cap, quiet)
  local got = {}
  local deadline = net.now() + 3
  while net.now() < deadline do
    local ok, p = pcall(cap.next, cap, quiet or 0.3)
    if not ok then
      assert.matches("^timeout:", p)
      break
    end
    got[#got + 1] = p
  end
  return got
end

-- A UDP port nobody sends to: bound (so no ICMP answers) and tracked.
local function quiet_port()
  return scope.bind("127.0.0.1", 0).port
end

describe("net.capture.open", function()
  it("gives a capture object with iface, filter, snaplen and __tostring", function()
    local port = quiet_port()
    local cap = open("lo", { filter = "udp port " .. port })
    assert.equal("lo", cap.iface)
    assert.equal("udp port " .. port, cap.filter)
    assert.equal(262144, cap.snaplen)
    assert.equal(('capture{lo, filter "udp port %d"}'):format(port), tostring(cap))
    cap:close()
    assert.equal(('capture{lo, filter "udp port %d", closed}'):format(port), tostring(cap))
    cap:close() -- twice is harmless
    raises("^closed: next on a closed capture$", cap.next, cap)
    raises("^closed: stats on a closed capture$", cap.stats, cap)
  end)

  it("an unknown interface raises io: naming it", function()
    assert.equal("io: capture on nosuch0: no such network interface", err_of(net.capture.open, "nosuch0"))
    assert.matches("^io: capture on .*: no such network interface$", err_of(net.capture.open, ("x"):rep(40)))
  end)

  it("checks its arguments", function()
    bad_argument(1, "net.capture.open", "interface name %(string%) expected, got number", net.capture.open, 42)
    bad_argument(2, "net.capture.open", "table expected, got number", net.capture.open, "lo", 5)
    bad_argument(2, "net.capture.open", "option 'filter': string expected, got number", net.capture.open, "lo", { filter = 1 })
    bad_argument(2, "net.capture.open", "option 'promiscuous': boolean expected", net.capture.open, "lo", { promiscuous = "yes" })
    bad_argument(2, "net.capture.open", "option 'snaplen': out of range: 10 is not in 64..262144", net.capture.open, "lo", { snaplen = 10 })
    bad_argument(2, "net.capture.open", "option 'recvbuf': integer expected", net.capture.open, "lo", { recvbuf = "big" })
    bad_argument(2, "net.capture.open", "option 'promiscuous': needs one interface, not \"any\"", net.capture.open, nil, { promiscuous = true })
  end)

  it("a bad filter raises at open, saying what is wrong", function()
    local e = err_of(net.capture.open, "lo", { filter = "tcp prot 80" })
    assert.equal("bad argument #2 to 'net.capture.open' (option 'filter': invalid filter \"tcp prot 80\": "
      .. "unexpected \"prot\" (join conditions with and / or))", e)
    bad_argument(2, "net.capture.open", "invalid filter \"bogus\": unknown word \"bogus\"", net.capture.open, "lo", { filter = "bogus" })
    bad_argument(2, "net.capture.open", "a port number %(0%-65535%) expected, got \"http\"", net.capture.open, "lo", { filter = "port http" })
    bad_argument(2, "net.capture.open", "host names are not resolved", net.capture.open, "lo", { filter = "host localhost" })
    bad_argument(2, "net.capture.open", "\"%)\" expected", net.capture.open, "lo", { filter = "(tcp or udp" })
  end)

  it("promiscuous mode can be asked for on one interface", function()
    local cap = open("lo", { promiscuous = true, filter = "udp port " .. quiet_port() })
    cap:close()
  end)
end)

describe("capture:next", function()
  it("returns a UDP datagram: addresses, ports, size, payload, data, time, iface, direction", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp and port " .. rx.port })
    local before = os.time()
    tx:send("hello capture", "127.0.0.1", rx.port)
    local p = cap:next(2000)
    assert.equal("UDP", p.protocol)
    assert.equal("127.0.0.1", p.src)
    assert.equal("127.0.0.1", p.dst)
    assert.equal(tx.port, p.src_port)
    assert.equal(rx.port, p.dst_port)
    assert.equal("hello capture", p.payload)
    assert.equal(13, p.length)
    assert.equal(14 + 20 + 8 + 13, p.size) -- loopback's Ethernet header, IPv4, UDP, data
    assert.equal(p.size, #p.data)
    assert.equal("hello capture", p.data:sub(-13))
    assert.equal(4, p.ip_version)
    assert.equal(17, p.ip_protocol)
    assert.equal("lo", p.iface)
    assert.equal("in", p.direction)
    assert.is_nil(p.flags)
    assert.is_true(p.time >= before - 1 and p.time <= os.time() + 1)
    if math.type then assert.equal("integer", math.type(p.size)) end
    assert.equal("hello capture", (rx:recv()))
  end)

  it("returns TCP packets: the SYN once (loopback's second copy is dropped), ports, flags, payload", function()
    local server = scope.listen()
    local cap = open("lo", { filter = "tcp port " .. server.port })
    scope.go(function()
      local conn = server:accept()
      conn:write(conn:read_line() .. "\n")
      conn:close()
    end)
    local c = scope.connect(server.port)
    c:write("ping over tcp\n")
    assert.equal("ping over tcp", c:read_line())
    c:close()
    local packets = drain(cap, 0.3)
    local syn, synack, data = 0, 0, nil
    for _, p in ipairs(packets) do
      assert.equal("TCP", p.protocol)
      assert.is_true(p.src_port == server.port or p.dst_port == server.port)
      if p.flags == "SYN" then syn = syn + 1 end
      if p.flags == "SYN,ACK" then synack = synack + 1 end
      if p.payload == "ping over tcp\n" and p.dst_port == server.port then data = p end -- not the echo
    end
    assert.equal(1, syn)
    assert.equal(1, synack)
    assert.is_table(data, "the data packet was not captured")
    assert.equal(server.port, data.dst_port)
    assert.equal(14, data.length)
    assert.matches("ACK", data.flags)
    assert.matches("PSH", data.flags)
    assert.equal("127.0.0.1", data.src)
    -- the client's packets all come from one port, the server answers to it
    local client_port = data.src_port
    for _, p in ipairs(packets) do
      assert.is_true(p.src_port == client_port or p.dst_port == client_port)
    end
  end)

  it("times out with timeout: like a UDP recv; milliseconds or a duration string", function()
    local cap = open("lo", { filter = "udp port " .. quiet_port() })
    local t0 = net.now()
    assert.equal("timeout: capture on lo timed out after 200 ms", err_of(cap.next, cap, 200))
    assert.is_true(net.now() - t0 >= 0.19)
    assert.equal("timeout: capture on lo timed out after 50 ms", err_of(cap.next, cap, "50ms"))
    assert.equal("timeout: capture on lo timed out after 0 ms", err_of(cap.next, cap, 0))
  end)

  it("checks its arguments", function()
    local cap = open("lo", { filter = "udp port " .. quiet_port() })
    bad_argument(2, "next", "timeout must be a non%-negative number of milliseconds", cap.next, cap, -1)
    bad_argument(2, "next", "invalid duration 'soon'", cap.next, cap, "soon")
    bad_argument(2, "next", "timeout expected %(milliseconds or duration string%), got table", cap.next, cap, {})
    bad_argument(1, "next", "capture expected", cap.next, 42)
    bad_argument(1, "on_packet", "capture expected, got string", cap.on_packet, "x", print)
    bad_argument(2, "on_packet", "function expected, got no value", cap.on_packet, cap)
    raises("^io: capture:start%(%) needs a callback", cap.start, cap)
    -- called from Lua code too: the message starts with its kind word, no position before it
    raises("^io: capture:start%(%) needs a callback", function() cap:start() end)
    raises("^bad argument #2 to 'on_packet'", function() cap:on_packet(5) end)
  end)

  it("waits inside a task while others run, and returns nil when the capture is closed under it", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp dst port " .. rx.port })
    local got = {}
    local reader = scope.go(function()
      while true do
        local p = cap:next()
        if p == nil then return "closed" end
        got[#got + 1] = p.payload
      end
    end)
    local ticks = 0
    scope.go(function() for _ = 1, 5 do net.sleep(0.01); ticks = ticks + 1 end end)
    assert.is_true(helper.wait_until(2, function() return ticks == 5 end)) -- while the reader waits
    tx:send("one", "127.0.0.1", rx.port)
    tx:send("two", "127.0.0.1", rx.port)
    assert.is_true(helper.wait_until(2, function() return #got == 2 end))
    cap:close()
    assert.equal("closed", reader:join())
    assert.same({ "one", "two" }, got)
  end)

  it("decodes IPv6: a UDP datagram over ::1", function()
    local ok, rx = pcall(net.udp.bind, "::1", 0)
    if not ok then return pending("no IPv6 loopback here: " .. tostring(rx)) end
    scope.track(rx)
    local tx = scope.bind("::1", 0)
    local cap = open("lo", { filter = "ip6 and udp dst port " .. rx.port })
    tx:send("over six", "::1", rx.port)
    local p = cap:next(2000)
    assert.equal("UDP", p.protocol)
    assert.equal(6, p.ip_version)
    assert.equal("::1", p.src)
    assert.equal("::1", p.dst)
    assert.equal(tx.port, p.src_port)
    assert.equal("over six", p.payload)
    assert.equal(14 + 40 + 8 + 8, p.size)
  end)

  it("captures on every interface with iface nil (or \"any\"), each loopback packet once", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    for _, iface in ipairs({ false, "any" }) do
      local cap = open(iface or nil, { filter = "udp dst port " .. rx.port })
      assert.equal("any", cap.iface)
      tx:send("everywhere", "127.0.0.1", rx.port)
      local ps = drain(cap, 0.3)
      assert.equal(1, #ps)
      assert.equal("lo", ps[1].iface)
      assert.equal("everywhere", ps[1].payload)
      cap:close()
    end
  end)

  it("snaplen cuts the captured bytes; size and length still tell the wire", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { snaplen = 64, filter = "udp dst port " .. rx.port })
    tx:send(("z"):rep(200), "127.0.0.1", rx.port)
    local p = cap:next(2000)
    assert.equal(64, #p.data)
    assert.equal(14 + 20 + 8 + 200, p.size)
    assert.equal(200, p.length)
    assert.equal(("z"):rep(64 - 42), p.payload)
  end)

  it("stats() counts what the kernel queued, dropped and what reached Lua", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp dst port " .. rx.port })
    for i = 1, 3 do tx:send("s" .. i, "127.0.0.1", rx.port) end
    for _ = 1, 3 do cap:next(2000) end
    local st = cap:stats()
    assert.equal(3, st.delivered)
    assert.is_true(st.received >= 3) -- everything on lo, both copies, before the filter
    assert.is_true(st.dropped >= 0)
    local again = cap:stats() -- the kernel resets its counters when read: ours add up
    assert.is_true(again.received >= st.received)
  end)
end)

describe("filters", function()
  it("\"udp\" keeps TCP out", function()
    local server = scope.listen()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp" })
    scope.go(function() server:accept():close() end)
    scope.connect(server.port):close()
    tx:send("udp only", "127.0.0.1", rx.port)
    local mine = false
    for _, p in ipairs(drain(cap, 0.3)) do
      assert.equal("UDP", p.protocol)
      if p.dst_port == rx.port then mine = true end
    end
    assert.is_true(mine)
  end)

  it("\"tcp port N\" keeps other ports and UDP to port N out", function()
    local a, b = scope.listen(), scope.listen()
    local tx = scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "tcp port " .. a.port })
    scope.go(function() a:accept():close() end)
    scope.go(function() b:accept():close() end)
    scope.connect(b.port):close()
    tx:send("not tcp", "127.0.0.1", a.port) -- UDP to the same port number
    scope.connect(a.port):close()
    local ps = drain(cap, 0.3)
    assert.is_true(#ps >= 3)
    for _, p in ipairs(ps) do
      assert.equal("TCP", p.protocol)
      assert.is_true(p.src_port == a.port or p.dst_port == a.port)
    end
  end)

  it("and / or / not / host / src / dst combine", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local f = ("udp and src port %d and dst host 127.0.0.1 and not dst port %d or udp dst port %d")
      :format(tx.port, 1, rx.port)
    local cap = open("lo", { filter = f })
    tx:send("x", "127.0.0.1", rx.port)
    rx:send("y", "127.0.0.1", tx.port) -- src port rx, dst port tx: matches neither side
    local ps = drain(cap, 0.3)
    assert.equal(1, #ps)
    assert.equal("x", ps[1].payload)
  end)
end)

describe("on_packet / start / stop", function()
  it("calls the function for each packet until stop(); then net.run() returns", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp dst port " .. rx.port })
    local got = {}
    local timed_out, guard = false, nil
    assert.equal(cap, cap:on_packet(function(p)
      got[#got + 1] = p.payload
      if #got == 3 then
        cap:stop()
        net.clearTimeout(guard) -- a pending timer would keep net.run() going too
      end
    end))
    assert.equal(cap, cap:start())
    assert.equal(cap, cap:start()) -- a second start while running does nothing
    guard = net.setTimeout(function() timed_out = true; cap:close() end, 5000)
    net.spawn(function()
      for i = 1, 3 do tx:send("p" .. i, "127.0.0.1", rx.port) end
    end)
    net.run()
    assert.is_false(timed_out)
    assert.same({ "p1", "p2", "p3" }, got)
    -- stopped, not closed: next() still works, and start() again
    tx:send("p4", "127.0.0.1", rx.port)
    assert.equal("p4", cap:next(2000).payload)
  end)

  it("stop() from outside the callback ends a started capture and net.run() returns", function()
    local cap = open("lo", { filter = "udp port " .. quiet_port() })
    cap:on_packet(function() end):start()
    local t0 = net.now()
    net.setTimeout(function() cap:stop() end, 100)
    net.run()
    assert.is_true(net.now() - t0 < 2)
    cap:stop() -- twice is harmless
  end)

  it("close() ends a started capture too", function()
    local cap = open("lo", { filter = "udp port " .. quiet_port() })
    cap:on_packet(function() end):start()
    net.setTimeout(function() cap:close() end, 50)
    local t0 = net.now()
    net.run()
    assert.is_true(net.now() - t0 < 2)
    raises("^closed:", cap.start, cap)
  end)

  it("a raising callback is reported on stderr and the capture goes on", function()
    local rc, out, err = helper.child([[
      local rx, tx = net.udp.bind("127.0.0.1", 0), net.udp.bind("127.0.0.1", 0)
      local cap = net.capture.open("lo", { filter = "udp dst port " .. rx.port })
      local n = 0
      local guard = net.setTimeout(function() cap:close() end, 4000)
      cap:on_packet(function(p)
        n = n + 1
        if n == 3 then cap:stop(); net.clearTimeout(guard) end
        if p.payload == "bad" then error("boom on " .. p.payload) end
      end)
      cap:start()
      net.spawn(function()
        tx:send("good", "127.0.0.1", rx.port)
        tx:send("bad", "127.0.0.1", rx.port)
        tx:send("good again", "127.0.0.1", rx.port)
      end)
      print("failed tasks", net.run())
      print("callbacks", n)
    ]], 10)
    assert.equal(0, rc, err)
    assert.matches("failed tasks\t0", out)
    assert.matches("callbacks\t3", out)
    assert.matches("net%.capture: on_packet callback failed: .*boom on bad", err)
  end)

  it("the callback may wait (it runs in the capture's task)", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    local cap = open("lo", { filter = "udp dst port " .. rx.port })
    local got = {}
    cap:on_packet(function(p)
      net.sleep(0.01)
      got[#got + 1] = p.payload
      if #got == 2 then cap:stop() end
    end)
    helper.bounded(2, cap.start, cap) -- from a task: nothing to run at the script's end
    tx:send("a", "127.0.0.1", rx.port)
    tx:send("b", "127.0.0.1", rx.port)
    assert.is_true(helper.wait_until(3, function() return #got == 2 end))
    assert.same({ "a", "b" }, got)
    assert.is_nil(debug.gethook()) -- nothing in this file left the end-of-script run armed
  end)

  it("a script that starts a capture and ends has the loop run at its end, until stop()", function()
    local rc, out, err = helper.child([[
      local rx, tx = net.udp.bind("127.0.0.1", 0), net.udp.bind("127.0.0.1", 0)
      local cap = net.capture.open("lo", { filter = "udp dst port " .. rx.port })
      cap:on_packet(function(p) print("got " .. p.payload); cap:stop() end)
      net.setTimeout(function() tx:send("late", "127.0.0.1", rx.port) end, 50)
      cap:start()
      print("script ends")
    ]], 10)
    assert.equal(0, rc, err)
    assert.equal("script ends\ngot late", out)
  end)
end)

describe("capture without CAP_NET_RAW", function()
  local tool = helper.have("setpriv") and "setpriv" or helper.have("capsh") and "capsh" or nil
  local test = tool and it or pending
  test("raises permission: at open (" .. (tool or "needs setpriv or capsh") .. ")", function()
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write('local ok, e = pcall(require("net").capture.open, "lo") print(e)')
    f:close()
    local argv
    if tool == "setpriv" then
      argv = { "setpriv", "--inh-caps=-all", "--bounding-set=-net_raw", helper.lua_bin(), file }
    else
      argv = { "capsh", "--drop=cap_net_raw", "--", "-c", "exec \"$0\" \"$1\"", helper.lua_bin(), file }
    end
    local p = helper.spawn(argv)
    local rc = p:wait(10)
    local out, err = table.concat(p:lines(), "\n"), p:stderr()
    p:kill()
    os.remove(file)
    assert.equal(0, rc, err)
    assert.equal("permission: packet capture needs root or CAP_NET_RAW (socket: operation not permitted)", out)
  end)
end)

describe("capture under load", function()
  it("5,000 packets in rounds with collectgarbage() between them: all seen, memory flat", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    rx:set_timeout(20)
    -- a roomy kernel buffer: other programs' loopback traffic queues there too between rounds
    local cap = open("lo", { filter = "udp dst port " .. rx.port, recvbuf = 32 * 1024 * 1024 })
    local ROUNDS, PER = 20, 250
    local seen, mem = 0, {}
    for round = 1, ROUNDS do
      for i = 1, PER do tx:send(("r%d-%d"):format(round, i), "127.0.0.1", rx.port) end
      for i = 1, PER do
        local p = cap:next(2000)
        assert.equal(("r%d-%d"):format(round, i), p.payload)
        seen = seen + 1
      end
      while pcall(rx.recv, rx) do end -- what its buffer kept (the capture saw them all anyway)
      collectgarbage()
      collectgarbage()
      mem[round] = collectgarbage("count")
    end
    assert.equal(ROUNDS * PER, seen)
    assert.equal(0, cap:stats().dropped)
    -- nothing kept per packet: the Lua heap after the last round is where it was after the second
    assert.is_true(mem[ROUNDS] - mem[2] < 256, ("Lua heap grew from %.0f KiB to %.0f KiB"):format(mem[2], mem[ROUNDS]))
  end)
end)

describe("a capture that is not read", function()
  it("holds at most recvbuf: the kernel drops the rest and stats() counts them", function()
    local rx, tx = scope.bind("127.0.0.1", 0), scope.bind("127.0.0.1", 0)
    rx:set_timeout(20)
    local cap = open("lo", { filter = "udp dst port " .. rx.port, recvbuf = 65536 })
    local N = 3000
    for i = 1, N do
      tx:send("d" .. i, "127.0.0.1", rx.port)
      if i % 100 == 0 then while pcall(rx.recv, rx) do end end
    end
    local st = cap:stats()
    assert.is_true(st.dropped > 0, "nothing was dropped")
    -- what the buffer held comes out in order, the first ones first; then nothing
    local first = cap:next(1000)
    assert.equal("d1", first.payload)
    local kept = 1 + #drain(cap, 0.2)
    assert.is_true(kept < N, ("all %d packets were kept"):format(N))
    assert.is_true(cap:stats().delivered == kept)
  end)
end)

describe("examples/sniffer.lua --selftest", function()
  it("prints the seed's TCP and UDP lines for its own loopback traffic and exits 0", function()
    local cmd = ("timeout 20 %s examples/sniffer.lua --selftest 2>&1; echo \"exit=$?\""):format(helper.lua_bin())
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    assert.matches("exit=0%s*$", out)
    assert.matches("TCP: 127%.0%.0%.1:%d+ %-> 127%.0%.0%.1:%d+\n", out)
    assert.matches("UDP: 127%.0%.0%.1 %-> 127%.0%.0%.1 %(%d+ bytes%)\n", out)
    assert.matches("selftest: %d+ TCP and 3 UDP packets", out)
  end)
end)
