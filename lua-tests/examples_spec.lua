-- Every program in examples/ runs to completion under this interpreter and prints what it
-- promises. Each runs as a child process (its own loop), bounded by `timeout`; servers that a
-- companion client talks to run in the background with a client count, so they end by themselves.
-- The last test fails when a file in examples/ is not run by any test here.
local helper = require("helper")

local covered = {} -- example name -> true, filled as the tests below are declared
covered.sniffer = true -- packet capture needs root: lua-tests/capture_spec.lua runs it

local function run(name, ...)
  local args = table.concat({ ... }, " ")
  local cmd = ("timeout 20 %s examples/%s.lua %s 2>&1; echo \"exit=$?\""):format(helper.lua_bin(), name, args)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, (out:gsub("exit=%d+%s*$", "")) -- what the program printed
end

-- Asserts that each pattern is found in `out`, each after the previous one (so order counts).
local function in_order(out, patterns)
  local at = 1
  for _, pat in ipairs(patterns) do
    local s, e = out:find(pat, at)
    assert.is_truthy(s, ("missing %q (in order) in:\n%s"):format(pat, out))
    at = e + 1
  end
end

local function clean(out, allow_traceback)
  assert.is_falsy(out:find("task failed", 1, true), out)
  assert.is_falsy(out:find("handler failed", 1, true), out)
  if not allow_traceback then assert.is_falsy(out:find("stack traceback", 1, true), out) end
end

-- Programs that run against themselves and exit: `args` are passed as they are (a string), and
-- each of `patterns` must appear in the output (stdout and stderr) after the one before it.
local P = "127%.0%.0%.1:%d+"
local standalone = {
  tour = { patterns = {
    "main thread got  echo: hello from the main thread",
    "task 1 got        echo: client 1",
    "udp: 6 bytes from 127%.0%.0%.1:%d+, intact: true",
    "localhost is 127%.0%.0%.1 and ::1",
    "bad name:  dns: no%-such%-host%.invalid: host not found",
    "refused:   refused: connect to 127%.0%.0%.1:1 %(connection refused%)",
    "channel:  tick 3",
    "done: %d ticks, net%.run%(%) returned %(failed tasks: 0%)",
  } },
  port_scan = { patterns = {
    "  127%.0%.0%.1:%d+  OPEN\n", "  127%.0%.0%.1:%d+  OPEN\n",
    "scanned 9 ports; this script's own listeners are %d+ and %d+\n",
  } },
  framing = { patterns = {
    "sent 2 numbers, got result = 3\n", "sent 4 numbers, got result = 10\n", "sent 6 numbers, got result = 21\n",
  } },
  udp_discovery = { patterns = {
    "Found service:\t" .. P .. "\tservice%-%d here\n", "Found service:\t" .. P .. "\tservice%-%d here\n",
    "2 services found\n",
  } },
  wippy_client = { patterns = { "^Received ping\nReceived:\tHello\nConnection closed\ndone\n" } },
  lune_net = { patterns = { "^true\n200\tOK\ntext/html\n101\t%-\tCool Pencil\nEcho:\nhello\nHTTP/1.1 200 OK\ndone\n" } },
  multicore = { args = "--selftest", patterns = {
    "serving http://127%.0%.0%.1:%d+/ with 2 worker processes",
    "worker 1 answered [1-9]%d* requests", "worker 2 answered [1-9]%d* requests", "all workers stopped",
  } },
  tcp_get = { patterns = { "^HTTP/1%.0 200 OK\r\n\r\nHello!\n\n$" } },
  seed000_tcp = { patterns = {
    "^Connected to\t" .. P .. "\n",
    "read_line:\tline one\n", "read%(1024%):\tsome bytes\n", "write returned\t5\n", "flush returned\ttrue\n",
    "read_all:\t\\nthe rest, until close\\n\n",
    "read with a timeout:\tfalse\ttimeout: read from " .. P .. " timed out after 200 ms\n",
    "after set_timeout%(nil%), read waits for the close:\tnil\n",
    "net%.tcp%.listen%(0%) listens on\t0%.0%.0%.0\n",
    'net%.tcp%.listen%("127%.0%.0%.1", 0%) listens on\t127%.0%.0%.1\n',
  } },
  seed000_udp = { patterns = {
    "^echo: Hello!\tfrom\t" .. P .. "\n",
    "bound to a port:\t0%.0%.0%.0:(%d+)\n", "bound to an interface:\t127%.0%.0%.1:%d+\n", "OS picked a port:\ttrue\n",
    "echo: Hello\tfrom\t" .. P .. "\n",
    "echo: a long\tfrom\t" .. P .. "\n", -- recv(12) truncates "echo: a longer datagram"
    "connected:\techo: Hello\n",
    "broadcast listener 1 got\tDiscovery!\n", "broadcast listener 2 got\tDiscovery!\n",
  } },
  ws_client = { patterns = {
    "^text\tHello WebSocket!\nText:\tHello!\nBinary:\t4\tbytes\nClose:\t1000\t\nclose code\t1000\n$",
  } },
  seed000_websocket = { patterns = {
    "server: /chat from\tcoppermoon%-1\tBearer my%-token\n",
    "client: pong\t\n", "client: pong\theartbeat\n",
    "server: pong\tdata\n", "server: close\t1001\tGoing Away\n",
    "client: closeCode\t1001\n",
    "Recv timed out\ntimeout: recv from " .. P .. " timed out after 300 ms\n",
  } },
  seed000_dns_errors = { patterns = {
    "^127%.0%.0%.1\n::1\n",
    "Connection failed:\tdns: unreachable%.invalid: host not found\n",
    "refused:\trefused: connect to " .. P .. " %(connection refused%)\n",
    "timeout:\ttimeout: read from " .. P .. " timed out after 100 ms\n",
    "reset:\treset: read from " .. P .. " %(connection reset by peer%)\n",
    "upgrade rejected:\tprotocol: websocket upgrade to ws://" .. P .. "/chat refused %(HTTP 404%)\n",
  } },
  seed003_websocket = { patterns = {
    "^types:\ttext\tbinary\tping\tpong\tclose\n",
    "close codes:\t1000\t1001\t1009\t1015\n",
    "Received text:\tHello, WebSocket!\n",
    "Server closed connection:\t4000\tsee you\n",
    "send after the close:\tfalse\tclosed: the connection to " .. P .. " is closed %(code 4000%)\n",
    "close returned\ttrue\n",
    "send after close:\tfalse\tclosed: send on a closed websocket\n",
    "connect:\tnil\trefused: connect to " .. P .. " %(connection refused%)\n",
    "connect:\tnil\tbad argument #1 to 'websocket%.connect' %(ws:// or wss:// URL expected, got \"http://\"%)\n",
  } },
  seed004_net = { patterns = {
    "^true\t200\tOK\nEcho:\nhello\n",
    "you said hi\ncloseCode while open:\tnil\nnext after the close:\tnil\ncloseCode:\t4000\n",
    "send on a closed socket:\tfalse\tclosed: send on a closed websocket\n",
    "HTTP/1%.1 200 OK\n", "ttl:\t128\n",
    helper.have("openssl") and "shorthand:\tfalse\ttls: certificate verify failed for localhost: self[- ]signed certificate\n"
      or "TLS part skipped",
    helper.have("openssl") and "explicit:\tfalse\ttls: certificate verify failed for localhost: self[- ]signed certificate\ntls\thello over TLS\n"
      or "\n",
    "a%%20b%%26c%%2F%%C3%%BC\na b&c/\195\188\n%%FF%%00\n2\n$",
  } },
  http_client = { patterns = {
    "^Got 3 items\n", "created:\t201\t7\tAlice\n",
    "page 1, limit 100, agent Ruchy/1%.0, 2 items\n", "Error: 401 %- bad token\n",
    "Downloading: 100%.0%%\n", "downloaded 300000 bytes, status 200, file size 300000\n$",
  } },
  seed002_repl = { patterns = { "^Hello from /lua!\nTemperature: 11%.5°C\ntrue\nfalse\n$" } },
  ws_events = { args = "--selftest", patterns = {
    "WebSocket connected: 1\n", "alice: Connected to server\n", "WebSocket connected: 2\n",
    "Received: Hello, server!\n",
    'alice: Server says: {"message":"Hello, server!","type":"chat","user":2}\n',
    "Received: Hi bob, alice here\n",
    'bob: Server says: {"message":"Hi bob, alice here","type":"chat","user":1}\n',
    "selftest done: 2 clients, 2 messages, each broadcast to both\n",
  } },
  network_scanner = { args = "--selftest", patterns = {
    "^=== Network Scanner ===\n\nScanning %d+ ports on 127%.0%.0%.1%.%.%.\n",
    "  %+ Port %d+ open %- Unknown\n", "Scan complete in [%d.]+s\n", "Found %d+ open ports\n",
    "=== Open Services ===\n", "selftest passed: all 3 listeners found\n",
  } },
}

describe("examples/", function()
  for name, t in pairs(standalone) do
    covered[name] = true
    it(name .. ".lua runs and prints what it should", function()
      local code, out = run(name, t.args)
      assert.are.equal(0, code, out)
      in_order(out, t.patterns)
      clean(out)
    end)
  end

  it("ws_events.lua: bob hears both messages too, and both leave", function()
    local _, out = run("ws_events", "--selftest")
    assert.is_truthy(out:find('bob: Server says: {"message":"Hello, server!","type":"chat","user":2}\n', 1, true), out)
    assert.is_truthy(out:find('alice: Server says: {"message":"Hi bob, alice here","type":"chat","user":1}\n', 1, true), out)
    assert.is_truthy(out:find("WebSocket disconnected: 1\n", 1, true), out)
    assert.is_truthy(out:find("WebSocket disconnected: 2\n", 1, true), out)
  end)

  it("port_scan.lua finds its own two listeners open", function()
    local _, out = run("port_scan")
    local a, b = out:match("this script's own listeners are (%d+) and (%d+)")
    assert.is_truthy(a, out)
    assert.is_truthy(out:find("  127.0.0.1:" .. a .. "  OPEN\n", 1, true), out)
    assert.is_truthy(out:find("  127.0.0.1:" .. b .. "  OPEN\n", 1, true), out)
  end)

  it("network_scanner.lua's report lists at least its 3 listeners", function()
    local _, out = run("network_scanner", "--selftest")
    local _, n = out:gsub("\n%s*%d+ %- Unknown", "")
    assert.is_true(n >= 3, out)
  end)
end)

-- Servers run by the spec in the background (told how many clients to serve), with their
-- companion clients: the pairs the seeds show as a server and a client.
local function background(name, ...)
  local argv = { helper.lua_bin(), "examples/" .. name .. ".lua", ... }
  local server = helper.spawn(argv, { max_life = 30 })
  return server
end

describe("examples/ servers with their clients", function()
  covered.tcp_hello_server = true
  it("tcp_hello_server.lua answers tcp_get.lua (seed 000's TCP server and client)", function()
    local server = background("tcp_hello_server", "0", "1")
    finally(function() server:kill() end)
    local port = server:wait_line():match("^Listening on\t127%.0%.0%.1:(%d+)$")
    assert.is_truthy(port, table.concat(server:lines(), "\n"))
    local code, out = run("tcp_get", "127.0.0.1", port)
    assert.are.equal(0, code, out)
    assert.are.equal("HTTP/1.0 200 OK\r\n\r\nHello!\n\n", out)
    assert.are.equal(0, server:wait(10), server:stderr())
    in_order(table.concat(server:lines(), "\n"),
      { "Client:\t127%.0%.0%.1:%d+", "Request:\tGET / HTTP/1%.0", "served 1 clients, bye" })
  end)

  covered.ws_echo_server = true
  it("ws_echo_server.lua echoes ws_client.lua's text and binary messages", function()
    local server = background("ws_echo_server", "0", "1")
    finally(function() server:kill() end)
    local port = server:wait_line():match("^WebSocket server on\t127%.0%.0%.1:(%d+)$")
    assert.is_truthy(port, table.concat(server:lines(), "\n"))
    local code, out = run("ws_client", "ws://127.0.0.1:" .. port)
    assert.are.equal(0, code, out)
    assert.are.equal("text\tHello WebSocket!\nText:\tHello!\nBinary:\t4\tbytes\nClose:\t1000\t\nclose code\t1000\n",
      out)
    assert.are.equal(0, server:wait(10), server:stderr())
    in_order(table.concat(server:lines(), "\n"), { "Client:\t127%.0%.0%.1:%d+", "served 1 clients, bye" })
  end)

  covered.tcp_echo_server, covered.tcp_echo_client = true, true
  it("tcp_echo_server.lua serves two tcp_echo_client.lua runs (seed 002's TCP pair)", function()
    local server = background("tcp_echo_server", "0", "2")
    finally(function() server:kill() end)
    local port = server:wait_line():match("^Server listening on port (%d+)$")
    assert.is_truthy(port, table.concat(server:lines(), "\n"))
    local code, out = run("tcp_echo_client", port)
    assert.are.equal(0, code, out)
    assert.are.equal("Server replied: Echo: Hello, server!\n", out)
    code, out = run("tcp_echo_client", port, "'second client'")
    assert.are.equal(0, code, out)
    assert.are.equal("Server replied: Echo: second client\n", out)
    assert.are.equal(0, server:wait(10), server:stderr())
    local log = table.concat(server:lines(), "\n")
    in_order(log, { "Client connected: 127%.0%.0%.1:%d+", "Received: Hello, server!", "Client disconnected",
      "Received: second client", "served 2 clients, bye" })
  end)

  -- Seed 000's WebSocket pair: the chat server (told to stop after 2 clients) and the JSON
  -- client, run twice against it.
  covered.ws_chat_server, covered.ws_json_client = true, true
  it("ws_chat_server.lua serves two ws_json_client.lua runs, each sending JSON and decoding the echoes", function()
    local server = background("ws_chat_server", "0", "2")
    finally(function() server:kill() end)
    local port = server:wait_line():match("^Chat server on\t127%.0%.0%.1:(%d+)$")
    assert.is_truthy(port, "the server's first line gives no port:\n" .. table.concat(server:lines(), "\n"))
    for _, target in ipairs({ port, "ws://127.0.0.1:" .. port .. "/api" }) do
      local code, out = run("ws_json_client", target)
      assert.are.equal(0, code, out)
      assert.are.equal(table.concat({
        "subscribed to\tprices", "ACME\t12.5", "INITECH\t3.25", "UMBRELLA\t99", "closed with code\t1000",
      }, "\n") .. "\n", out)
    end
    assert.are.equal(0, server:wait(10), server:stderr())
    local out = table.concat(server:lines(), "\n")
    local _, clients = out:gsub("New client:\t127%.0%.0%.1:%d+", "")
    local _, gone = out:gsub("Client disconnected:\t127%.0%.0%.1:%d+", "")
    assert.are.equal(2, clients, out)
    assert.are.equal(2, gone, out)
    assert.is_truthy(out:find('] {"price":12.5,"symbol":"ACME"}', 1, true), out)
    assert.is_truthy(out:find("served 2 clients, bye", 1, true), out)
  end)
end)

-- Seed 002's servers test themselves when given --selftest: each serves on a free port of
-- 127.0.0.1, runs scripted clients against itself, prints "ok   ..." or "FAIL ..." per check.
describe("examples/ servers, --selftest", function()
  for name, checks in pairs({ web_server = 8, rest_api = 14, ws_chat_rooms = 13, load_balancer = 4 }) do
    covered[name] = true
    it(name .. ".lua passes its own checks", function()
      local code, out = run(name, "--selftest")
      assert.are.equal(0, code, out)
      assert.is_truthy(out:find("\nselftest passed\n", 1, true), out)
      local _, passed = out:gsub("\nok   ", "")
      assert.are.equal(checks, passed, out)
      assert.is_falsy(out:find("FAIL", 1, true), out)
      clean(out, name == "load_balancer") -- its last check shows the router's 500, with a traceback
    end)
  end
  it("web_server.lua's logging middleware prints method, path, status and duration", function()
    local _, out = run("web_server", "--selftest")
    assert.is_truthy(out:find("\nPOST /api/users %- 201 %([%d.]+ms%)\n"), out)
    assert.is_truthy(out:find("\nGET /nope %- 404 %([%d.]+ms%)\n"), out)
  end)
  it("load_balancer.lua logs each routing decision and health check", function()
    local _, out = run("load_balancer", "--selftest")
    local routed, checked = 0, 0
    for _ in out:gmatch("Routing GET /item/%d %-> http://127%.0%.0%.1:%d+\n") do routed = routed + 1 end
    for _ in out:gmatch("Health check http://127%.0%.0%.1:%d+: [UPDOWNup]+\n") do checked = checked + 1 end
    assert.are.equal(10, routed, out) -- 6 with three backends, 4 with two
    assert.are.equal(9, checked, out) -- 3 health checks of 3 backends
    assert.is_truthy(out:find("Routing POST /orders -> http://127.0.0.1:", 1, true), out)
  end)
  it("ws_chat_rooms.lua's server logs joins and leaves", function()
    local _, out = run("ws_chat_rooms", "--selftest")
    in_order(out, { "alice joined lua\n", "bob joined lua\n", "carol joined rust\n", "bob left lua\n",
      "dave joined lua\n" })
  end)
end)

describe("examples/", function()
  it("every example is run by a test of this file", function()
    local p = assert(io.popen("ls examples/*.lua"))
    local missing = {}
    for path in p:lines() do
      local name = path:match("([^/]+)%.lua$")
      if not covered[name] then missing[#missing + 1] = name end
    end
    p:close()
    assert.are.same({}, missing)
  end)
end)
