-- Every program in examples/ runs to completion under this interpreter and prints what it
-- promises. Each runs as a child process (its own loop), bounded by `timeout`.
local helper = require("helper")

local function run(name, ...)
  local args = table.concat({ ... }, " ")
  local cmd = ("timeout 20 %s examples/%s.lua %s 2>&1; echo \"exit=$?\""):format(helper.lua_bin(), name, args)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, out
end

local expectations = {
  tour = {
    "main thread got  echo: hello from the main thread",
    "task 1 got        echo: client 1",
    "udp: 6 bytes from 127%.0%.0%.1:%d+, intact: true",
    "localhost is 127%.0%.0%.1 and ::1",
    "bad name:  dns: no%-such%-host%.invalid: host not found",
    "refused:   refused: connect to 127%.0%.0%.1:1 %(connection refused%)",
    "channel:  tick 3",
    "done: %d ticks, net%.run%(%) returned %(failed tasks: 0%)",
  },
  port_scan = { "scanned 50 ports on 127%.0%.0%.1, open: %d+ %d+\n" },
  framing = { "sent 2 numbers, got result = 3", "sent 6 numbers, got result = 21" },
  udp_discovery = { "found service%-1 at", "found service%-2 at", "2 services found" },
  wippy_client = { "Received ping\nReceived:\tHello\nConnection closed\ndone\n" },
  lune_net = { "^true\n200\tOK\ntext/html\n101\t%-\tCool Pencil\nEcho:\nhello\nHTTP/1.1 200 OK\ndone\n" },
  multicore = {
    "serving http://127%.0%.0%.1:%d+/ with 2 worker processes",
    "worker 1 answered [1-9]%d* requests", "worker 2 answered [1-9]%d* requests", "all workers stopped",
  },
}

describe("examples/", function()
  for name, patterns in pairs(expectations) do
    it(name .. ".lua runs and prints what it should", function()
      local code, out = run(name, name == "multicore" and "--selftest" or nil)
      assert.are.equal(0, code, out)
      for _, pat in ipairs(patterns) do
        assert.is_truthy(out:find(pat), ("missing %q in:\n%s"):format(pat, out))
      end
      assert.is_falsy(out:find("task failed"), out)
    end)
  end
end)

-- Seed 000's WebSocket pair: the chat server (in the background, told to stop after 2 clients)
-- and the JSON client, run twice against it.
describe("examples/ws_chat_server.lua with examples/ws_json_client.lua", function()
  it("serve two clients, each sending JSON and decoding the echoes", function()
    local server = helper.spawn({ helper.lua_bin(), "examples/ws_chat_server.lua", "0", "2" }, { max_life = 30 })
    finally(function() server:kill() end)
    local port = server:wait_line():match("^Chat server on\t127%.0%.0%.1:(%d+)$")
    assert.is_truthy(port, "the server's first line gives no port:\n" .. table.concat(server:lines(), "\n"))
    for _, target in ipairs({ port, "ws://127.0.0.1:" .. port .. "/api" }) do
      local code, out = run("ws_json_client", target)
      assert.are.equal(0, code, out)
      assert.are.equal(table.concat({
        "subscribed to\tprices", "ACME\t12.5", "INITECH\t3.25", "UMBRELLA\t99", "closed with code\t1000",
      }, "\n") .. "\n", (out:gsub("exit=0%s*$", "")))
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

-- Seed 002's HTTP examples (the router over net.serve) test themselves when given --selftest:
-- each serves on a free port of 127.0.0.1, requests every route over TCP and checks the answers.
describe("examples/ HTTP servers, --selftest", function()
  for name, checks in pairs({ web_server = 8, rest_api = 14 }) do
    it(name .. ".lua passes its own checks", function()
      local code, out = run(name, "--selftest")
      assert.are.equal(0, code, out)
      assert.is_truthy(out:find("\nselftest passed\n", 1, true), out)
      local _, passed = out:gsub("\nok   ", "")
      assert.are.equal(checks, passed, out)
      assert.is_falsy(out:find("FAIL", 1, true), out)
    end)
  end
  it("web_server.lua's logging middleware prints method, path, status and duration", function()
    local _, out = run("web_server", "--selftest")
    assert.is_truthy(out:find("\nPOST /api/users %- 201 %([%d.]+ms%)\n"), out)
    assert.is_truthy(out:find("\nGET /nope %- 404 %([%d.]+ms%)\n"), out)
  end)
end)
