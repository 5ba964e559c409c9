-- Tests of the test helpers themselves (lua-tests/helper.lua).
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

describe("helper", function()
  it("lua_bin() is the running interpreter", function()
    local bin = helper.lua_bin()
    local p = assert(io.popen("'" .. bin .. "' -e 'io.write(_VERSION, type(jit))'"))
    local out = p:read("*a")
    p:close()
    assert.are.equal(_VERSION .. type(jit), out)
  end)

  it("free_port() gives a usable port number", function()
    local port = helper.free_port()
    assert.is_number(port)
    assert.is_true(port > 0 and port < 65536)
  end)

  it("python() starts a peer, wait_line() reads its first line, wait() its exit code", function()
    local p = helper.python([[
import sys
print("ready", sys.argv[1])
sys.stderr.write("to stderr\n")
sys.exit(3)
]], "arg1")
    finally(function() p:kill() end)
    assert.are.equal("ready arg1", p:wait_line(10))
    assert.are.equal(3, p:wait(10))
    assert.are.same({ "ready arg1" }, p:lines())
    assert.are.equal("to stderr\n", p:stderr())
  end)

  it("wait_line() reports a peer that exits without a line, with its stderr", function()
    local p = helper.python("import sys; sys.stderr.write('no luck'); sys.exit(1)")
    finally(function() p:kill() end)
    local ok, err = pcall(p.wait_line, p, 10)
    assert.is_false(ok)
    assert.truthy(err:match("exited with 1"), err)
    assert.truthy(err:match("no luck"), err)
  end)

  it("kill() stops a peer that runs forever", function()
    local p = helper.python("import time\nprint('up')\nwhile True: time.sleep(1)")
    assert.are.equal("up", p:wait_line(10))
    p:kill()
    p:kill() -- harmless twice
    local r = os.execute("kill -0 " .. p.pid .. " 2>/dev/null") -- true/0 while it exists
    assert.is_false(r == true or r == 0, "peer still alive")
  end)

  it("lua() runs a second interpreter that can load net too", function()
    local p = helper.lua("local net = require('net'); print(type(net.version))")
    finally(function() p:kill() end)
    assert.are.equal("string", p:wait_line(10))
  end)

  it("bounded() returns fn's results, and fails when time runs out", function()
    if not (net.spawn and net.setTimeout and net.sleep) then
      pending("net.spawn / net.setTimeout / net.sleep not implemented yet")
      return
    end
    assert.are.same({ 1, 2 }, { helper.bounded(5, function(a, b) return a, b end, 1, 2) })
    local t0 = net.now()
    local ok, err = pcall(helper.bounded, 0.2, function() net.sleep(30) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):match("timed out after 0.2 s"), tostring(err))
    assert.is_true(net.now() - t0 < 5)
  end)
end)
