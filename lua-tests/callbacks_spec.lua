-- The callback facade (net.TCPSocket / net.TCPServer, src/lua/tcp_callbacks.lua) and the loop
-- run at the end of a script that never calls net.run() (src/runtime/run_at_exit.rs): callback
-- order, errors through `error` (refused, busy port, raising callbacks, resets), stop(), bad
-- arguments, many short-lived connections with GC between rounds, foreign peers (Python), and
-- seed-style scripts in child interpreters with only the prelude.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

-- Facade calls in the busted process are made inside tasks (helper.bounded): from the main
-- thread they would arm the end-of-script run for the test runner itself.
local function echo_server(events)
  local server = net.TCPServer()
  server:listen("127.0.0.1", 0, {
    started = function() events[#events + 1] = "started" end,
    connected = function(id) events[#events + 1] = "connected " .. id end,
    data = function(id, data)
      events[#events + 1] = "data " .. id .. " " .. data
      server:send(id, "echo: " .. data)
    end,
    disconnected = function(id) events[#events + 1] = "disconnected " .. id end,
    error = function(err, id) events[#events + 1] = "error " .. tostring(id) .. " " .. err end,
  })
  helper.wait_until(3, function() return server.port ~= nil end)
  assert.is_number(server.port)
  return server
end

describe("net.TCPSocket / net.TCPServer", function()
  it("call connected, data, disconnected in order on both sides", function()
    helper.bounded(10, function()
      local sev, cev = {}, {}
      local server = echo_server(sev)
      local client = net.TCPSocket()
      client:connect("127.0.0.1", server.port, {
        connected = function()
          cev[#cev + 1] = "connected"
          assert.is_true(client.connected)
          assert.is_true(client:send("one"))
        end,
        data = function(data)
          cev[#cev + 1] = "data " .. data
          if data == "echo: one" then client:disconnect() end
        end,
        disconnected = function() cev[#cev + 1] = "disconnected" end,
        error = function(err) cev[#cev + 1] = "error " .. err end,
      })
      helper.wait_until(5, function() return #sev >= 4 and #cev >= 3 end)
      assert.same({ "connected", "data echo: one", "disconnected" }, cev)
      assert.same({ "started", "connected 1", "data 1 one", "disconnected 1" }, sev)
      assert.is_false(client.connected)
      local ok, err = client:send("late")
      assert.is_false(ok)
      assert.matches("^closed: ", err)
      server:stop()
      server:stop() -- harmless twice
    end)
  end)

  it("connect again on the same TCPSocket once its connection has ended", function()
    helper.bounded(10, function()
      local server = echo_server({})
      local client, got, rounds = net.TCPSocket(), {}, 0
      local callbacks
      callbacks = {
        connected = function() client:send("round " .. rounds) end,
        data = function(d) got[#got + 1] = d; client:disconnect() end,
        disconnected = function()
          rounds = rounds + 1
          if rounds < 3 then client:connect("127.0.0.1", server.port, callbacks) end
        end,
      }
      client:connect("127.0.0.1", server.port, callbacks)
      helper.bad_argument(0, "connect", "already connecting or connected", client.connect, client, "127.0.0.1", server.port)
      helper.wait_until(5, function() return rounds == 3 end)
      assert.same({ "echo: round 0", "echo: round 1", "echo: round 2" }, got)
      server:stop()
    end)
  end)

  it("queues what send() is given before the connection is open", function()
    helper.bounded(10, function()
      local sev, got = {}, {}
      local server = echo_server(sev)
      local client = net.TCPSocket()
      client:connect("127.0.0.1", server.port, { data = function(d) got[#got + 1] = d end })
      assert.is_true(client:send("early"))
      helper.wait_until(5, function() return table.concat(got):find("echo: early", 1, true) ~= nil end)
      assert.equal("echo: early", table.concat(got))
      client:disconnect()
      server:stop()
    end)
  end)

  it("report a refused connection and a busy port through error, not by raising", function()
    helper.bounded(10, function()
      local events = {}
      local client = net.TCPSocket()
      client:connect("127.0.0.1", helper.free_port(), {
        connected = function() events[#events + 1] = "connected" end,
        disconnected = function() events[#events + 1] = "disconnected" end,
        error = function(err) events[#events + 1] = err end,
      })
      helper.wait_until(5, function() return #events >= 1 end)
      net.sleep(0.05)
      assert.equal(1, #events)
      assert.matches("^refused: ", events[1])
      local sent, err = client:send("after the failure")
      assert.is_false(sent)
      assert.matches("^closed: ", err)

      local first = echo_server({})
      local second, errs = net.TCPServer(), {}
      second:listen("127.0.0.1", first.port, {
        started = function() errs[#errs + 1] = "started" end,
        error = function(err) errs[#errs + 1] = err end,
      })
      helper.wait_until(5, function() return #errs >= 1 end)
      assert.equal(1, #errs)
      assert.matches("^addrinuse: ", errs[1])
      first:stop()
    end)
  end)

  it("report a raising callback through error and keep the connection", function()
    helper.bounded(10, function()
      local errs, got = {}, {}
      local server = net.TCPServer()
      server:listen("127.0.0.1", 0, {
        data = function(id, data)
          if data:find("boom", 1, true) then error("handler broke") end
          server:send(id, "ok " .. data)
        end,
        error = function(err, id) errs[#errs + 1] = { err, id } end,
      })
      helper.wait_until(3, function() return server.port ~= nil end)
      local c = net.tcp.connect("127.0.0.1", server.port)
      c:write("boom")
      helper.wait_until(3, function() return #errs == 1 end)
      c:write("after")
      assert.equal("ok after", c:read())
      assert.matches("TCPServer data callback failed: .*handler broke", errs[1][1])
      c:close()
      server:stop()
    end)
  end)

  it("server: send/disconnect by id, unknown ids, stop() disconnects everyone", function()
    helper.bounded(10, function()
      local events = {}
      local server = echo_server(events)
      local conns = {}
      for i = 1, 3 do conns[i] = net.tcp.connect("127.0.0.1", server.port) end
      helper.wait_until(3, function() return #events >= 4 end)
      assert.is_true(server:send(2, "to two"))
      assert.equal("to two", conns[2]:read())
      local ok, err = server:send(99, "x")
      assert.is_false(ok)
      assert.matches("^closed: no connected client 99", err)
      assert.is_true(server:disconnect(1))
      assert.is_nil(conns[1]:read()) -- end of stream
      assert.is_false(server:disconnect(1))
      server:stop()
      for i = 2, 3 do assert.is_nil(conns[i]:read()) end
      helper.wait_until(3, function() return #events >= 7 end)
      local gone = {}
      for _, e in ipairs(events) do
        local id = e:match("^disconnected (%d+)$")
        if id then gone[#gone + 1] = tonumber(id) end
      end
      table.sort(gone)
      assert.same({ 1, 2, 3 }, gone)
      assert.is_false(net.is_port_open("127.0.0.1", server.port, 200))
    end)
  end)

  it("client: a reset by the peer calls error, then disconnected", function()
    helper.bounded(10, function()
      local l = net.tcp.listen("127.0.0.1", 0)
      local events = {}
      local client = net.TCPSocket()
      client:connect("127.0.0.1", l.port, {
        connected = function() client:send("hello") end,
        error = function(err) events[#events + 1] = "error " .. err end,
        disconnected = function() events[#events + 1] = "disconnected" end,
      })
      local s = l:accept()
      assert.equal("hello", s:read())
      s:set_linger(0) -- close with RST
      s:close()
      helper.wait_until(5, function() return #events >= 2 end)
      assert.equal(2, #events)
      assert.matches("^error [%a]+: ", events[1])
      assert.equal("disconnected", events[2])
      l:close()
    end)
  end)

  it("raise on bad arguments", function()
    helper.bounded(5, function()
      local c = net.TCPSocket()
      helper.bad_argument(1, "connect", "string expected", c.connect, c, 1, 2)
      helper.bad_argument(2, "connect", "number expected", c.connect, c, "127.0.0.1", {})
      helper.bad_argument(3, "connect", "table expected", c.connect, c, "127.0.0.1", 1, "x")
      helper.bad_argument(3, "connect", "function expected", c.connect, c, "127.0.0.1", 1, { data = 1 })
      helper.bad_argument(1, "send", "string expected", c.send, c, {})
      local s = net.TCPServer()
      helper.bad_argument(2, "listen", "number expected", s.listen, s, "127.0.0.1", "x")
      helper.bad_argument(2, "send", "string expected", s.send, s, 1, nil)
    end)
  end)

  it("serve 600 short-lived clients in rounds with collectgarbage() between", function()
    helper.bounded(30, function()
      local connected, gone, bytes = 0, 0, 0
      local server = net.TCPServer()
      server:listen("127.0.0.1", 0, {
        connected = function() connected = connected + 1 end,
        data = function(id, data) server:send(id, data) end,
        disconnected = function() gone = gone + 1 end,
      })
      helper.wait_until(3, function() return server.port ~= nil end)
      for round = 1, 6 do
        local done = 0
        for i = 1, 100 do
          local c = net.TCPSocket()
          c:connect("127.0.0.1", server.port, {
            connected = function() c:send("msg " .. i) end,
            data = function(d) bytes = bytes + #d; c:disconnect() end,
            disconnected = function() done = done + 1 end,
          })
        end
        helper.wait_until(10, function() return done == 100 end)
        assert.equal(100, done, "round " .. round)
        collectgarbage()
        collectgarbage()
      end
      helper.wait_until(5, function() return gone == 600 end)
      assert.equal(600, connected)
      assert.equal(600, gone)
      server:stop()
    end)
  end)

  it("talk to Python peers: a client that sends and waits for us to close, a server that echoes", function()
    helper.bounded(15, function()
      local server = net.TCPServer()
      local seen = {}
      server:listen("127.0.0.1", 0, {
        data = function(id, data)
          seen[#seen + 1] = data
          server:send(id, "bye " .. data)
          server:disconnect(id)
        end,
      })
      helper.wait_until(3, function() return server.port ~= nil end)
      local py = helper.python([[
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"from python")
print(c.recv(100).decode(), flush=True)
print("eof" if c.recv(100) == b"" else "more", flush=True)
]], tostring(server.port))
      finally(function() py:kill() end)
      assert.equal("bye from python", py:wait_line())
      helper.wait_until(5, function() return #py:lines() >= 2 end)
      assert.same({ "bye from python", "eof" }, py:lines())
      server:stop()

      local echo = helper.python([[
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
while True:
    d = c.recv(100)
    if not d: break
    c.sendall(d.upper())
print("closed by lua", flush=True)
]])
      finally(function() echo:kill() end)
      local port = tonumber(echo:wait_line())
      local got, ended = nil, false
      local client = net.TCPSocket()
      client:connect("127.0.0.1", port, {
        connected = function() client:send("shout") end,
        data = function(d) got = d; client:disconnect() end,
        disconnected = function() ended = true end,
      })
      helper.wait_until(5, function() return ended end)
      assert.equal("SHOUT", got)
      helper.wait_until(5, function() return #echo:lines() >= 2 end)
      assert.equal("closed by lua", echo:lines()[2])
    end)
  end)
end)

describe("facade calls from tasks", function()
  it("leave the end-of-script run unarmed (the loop is already running)", function()
    helper.bounded(5, function()
      local server = net.TCPServer()
      server:listen("127.0.0.1", 0, {})
      net.TCPSocket():connect("127.0.0.1", 1, { error = function() end })
      helper.wait_until(3, function() return server.port ~= nil end)
      server:stop()
    end)
    assert.is_nil(debug.gethook())
  end)
end)

-- Scripts as users write them: only the prelude, no net.run(); the loop runs when the script ends.
local PRELUDE = 'local net = require("net"); setTimeout = net.setTimeout; json = net.json\n'

local function script(src, seconds)
  local p = helper.lua(PRELUDE .. src)
  local ok, rc = pcall(p.wait, p, seconds or 10)
  local out, err = table.concat(p:lines(), "\n"), p:stderr()
  p:kill()
  assert(ok, "the script did not finish:\n" .. out .. "\n" .. err)
  return rc, out, err
end

describe("a script that ends with callbacks pending", function()
  it("has the loop run for it: the seed's test example, verbatim", function()
    local port = helper.free_port()
    local rc, out, err = script(([[
local server = net.TCPServer()
server:listen("localhost", PORT, {
    connected = function(client_id) print("Test client connected") end,
    data = function(client_id, data) server:send(client_id, "Echo: " .. data) end,
    started = function()
        print("Test server ready")
        local client = net.TCPSocket()
        client:connect("localhost", PORT, {
            connected = function()
                print("Test client connected")
                client:send("Hello, test!")
            end,
            data = function(data)
                print("Received:", data)
                client:disconnect()
            end,
            disconnected = function()
                print("Test completed")
                server:stop()
            end
        })
    end
})
]]):gsub("PORT", tostring(port)))
    assert.equal(0, rc, err)
    assert.equal("", err)
    assert.matches("^Test server ready\n", out)
    assert.matches("Received:\tEcho: Hello, test!\nTest completed$", out)
  end)

  it("runs setTimeout callbacks and ends when nothing is pending", function()
    local rc, out = script([[
local n = 0
local client = net.TCPSocket()
client:connect("127.0.0.1", 1, { error = function(e) print("error", (e:match("^%a+"))) end })
setTimeout(function() print("timeout fired"); print(json.encode({ ok = true })) end, 50)
print("end of script")
]])
    assert.equal(0, rc)
    assert.equal('end of script\nerror\trefused\ntimeout fired\n{"ok":true}', out)
  end)

  it("is not armed when the script runs the loop itself, and an error before the end skips it", function()
    local rc, out = script([[
local server = net.TCPServer()
server:listen("127.0.0.1", 0, { started = function()
  print("hook during run:", debug.gethook() ~= nil)
  server:stop()
end })
print("armed:", debug.gethook() ~= nil)
net.run()
print("after run:", debug.gethook() ~= nil)
]])
    assert.equal(0, rc)
    assert.equal("armed:\ttrue\nhook during run:\tfalse\nafter run:\tfalse", out)

    -- A debug hook already set (a debugger's) wins: nothing is armed, the script just ends.
    local rc3, out3 = script([[
debug.sethook(function() end, "c")
local server = net.TCPServer()
server:listen("127.0.0.1", 0, { started = function() print("started") end })
print("ends")
]])
    assert.equal(0, rc3)
    assert.equal("ends", out3)

    local rc2, out2, err2 = script([[
local server = net.TCPServer()
server:listen("127.0.0.1", 0, { started = function() print("started") end })
error("the script fails")
]])
    assert.equal(1, rc2)
    assert.equal("", out2)
    assert.matches("the script fails", err2)
  end)

  it("ends with interrupted: on Ctrl-C while it serves", function()
    local p = helper.lua(PRELUDE .. [[
io.stdout:setvbuf("no")
local server = net.TCPServer()
server:listen("127.0.0.1", 0, { started = function() print("serving") end })
]])
    finally(function() p:kill() end)
    assert.equal("serving", p:wait_line())
    os.execute("kill -INT " .. p.pid)
    local rc = p:wait(5)
    assert.equal(1, rc)
    assert.matches("interrupted: ", p:stderr())
  end)
end)

-- Seed 001's examples (examples/callbacks/), as users run them: a server in the background, the
-- clients in the foreground, each on a free port.
describe("examples/callbacks/", function()
  local function example(name, ...)
    return helper.spawn({ helper.lua_bin(), "examples/callbacks/" .. name .. ".lua", ... }, { max_life = 30 })
  end
  local function run(name, ...)
    local p = example(name, ...)
    local ok, rc = pcall(p.wait, p, 10)
    local out, err = table.concat(p:lines(), "\n"), p:stderr()
    p:kill()
    assert(ok, name .. " did not finish:\n" .. out .. "\n" .. err)
    assert.equal(0, rc, out .. "\n" .. err)
    return out
  end
  local function serving(name, port)
    local p = example(name, tostring(port))
    assert.matches("listening on localhost:" .. port .. "$", p:wait_line())
    return p
  end

  it("selftest.lua and patterns.lua run and end by themselves", function()
    assert.equal(table.concat({
      "✓ Test server ready", "✓ Test client connected", "Test client connected",
      "✓ Received:\tEcho: Hello, test!", "✓ Test completed" }, "\n"), run("selftest", tostring(helper.free_port())))
    assert.equal(table.concat({
      "✗ Connection failed (attempt 1/3): refused", "✓ Connected successfully",
      "line:\tfirst line", "line:\tsecond line", "line:\tthird line",
      "Client 1: session lasted 0 seconds, 7 bytes in, 34 bytes out" }, "\n"), run("patterns", tostring(helper.free_port())))
  end)

  it("echo_client.lua talks to echo_server.lua", function()
    local port = helper.free_port()
    local server = serving("echo_server", port)
    finally(function() server:kill() end)
    local client = example("echo_client", tostring(port))
    finally(function() client:kill() end)
    helper.wait_until(8, function() return table.concat(client:lines(), "\n"):find("Goodbye!", 1, true) ~= nil end)
    local out = table.concat(client:lines(), "\n")
    assert.matches("^✓ Connected to echo server\nEcho received:\tWelcome to echo server!\n", out)
    -- The greeting and the first echo may arrive in one read (TCP is a byte stream).
    assert.matches("Echo: Hello, server!\nEcho received:\tEcho: This is message 2\nEcho received:\tEcho: Goodbye!$", out)
    client:kill()
    helper.wait_until(3, function() return #server:lines() >= 6 end)
    local log = table.concat(server:lines(), "\n")
    assert.matches("✓ Client connected:\t1\nClient 1 sent: Hello, server!\nClient 1 sent: This is message 2\nClient 1 sent: Goodbye!\n✓ Client disconnected:\t1", log)
  end)

  it("chat_server.lua: names, then lines to everyone else", function()
    local port = helper.free_port()
    local server = serving("chat_server", port)
    finally(function() server:kill() end)
    helper.bounded(10, function()
      local a = net.tcp.connect("127.0.0.1", port)
      local b = net.tcp.connect("127.0.0.1", port)
      a:set_timeout(3000); b:set_timeout(3000)
      assert.equal("Welcome to plua2 chat! Enter your name: ", a:read())
      assert.equal("Welcome to plua2 chat! Enter your name: ", b:read())
      a:write("alice\r\n")
      assert.equal("Hello alice! You can now chat.", a:read_line())
      assert.equal("alice joined the chat", b:read_line())
      b:write("bob\n")
      assert.equal("Hello bob! You can now chat.", b:read_line())
      assert.equal("bob joined the chat", a:read_line())
      b:write("hi alice\n")
      assert.equal("bob: hi alice", a:read_line())
      b:close()
      assert.equal("bob left the chat", a:read_line())
      a:close()
    end)
    helper.wait_until(3, function() return table.concat(server:lines(), "\n"):find("disconnected:\t1", 1, true) ~= nil end)
    assert.matches("Chat:\tbob: hi alice\n", table.concat(server:lines(), "\n"))
  end)

  it("http_server.lua answers http_client.lua, basic_client.lua and curl", function()
    local port = helper.free_port()
    local server = serving("http_server", port)
    finally(function() server:kill() end)
    local out = run("http_client", tostring(port), "/time")
    assert.matches("^HTTP Status:\t200\nResponse Body:\t{", out)
    local body = net.json.decode(out:match("Response Body:\t(.*)$"))
    assert.equal("plua2-tcp", body.server)
    assert.is_number(body.timestamp)
    assert.matches("^HTTP Status:\t404\nResponse Body:\tNot Found$", run("http_client", tostring(port), "/nope"))
    out = run("basic_client", "localhost", tostring(port))
    assert.matches("^✓ Connected to server\nReceived:\t%d+\tbytes\nHTTP/1.1 200 OK\r?\nContent%-Type: text/html", out)
    assert.matches("\n✓ Disconnected from server$", out)
    if helper.have("curl") then
      local p = assert(io.popen(("curl -s -m 5 http://127.0.0.1:%d/"):format(port)))
      local html = p:read("*a")
      p:close()
      assert.matches("<h1>Hello from plua2!</h1>", html)
    end
  end)

  it("perf_server.lua counts and echoes what a Python client sends", function()
    local port = helper.free_port()
    local server = example("perf_server", tostring(port))
    finally(function() server:kill() end)
    assert.equal("✓ Performance test server ready on localhost:" .. port, server:wait_line())
    local py = helper.python([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(2000):
    s.sendall(b"x")
    assert s.recv(10) == b"x"
print("2000 echoes", flush=True)
]], tostring(port))
    finally(function() py:kill() end)
    assert.equal("2000 echoes", py:wait_line(10))
    helper.wait_until(3, function() return #server:lines() >= 3 end)
    assert.matches("^Processed 1000 messages in %d+ seconds", server:lines()[2])
    assert.matches("^Processed 2000 messages in %d+ seconds", server:lines()[3])
  end)
end)
