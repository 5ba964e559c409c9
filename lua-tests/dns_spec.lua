-- net.resolve: literals, localhost, family filters and errors. No DNS server is needed (or used):
-- literals, localhost and *.invalid are answered without a query (RFC 6761).
local helper = require("helper")
local net = helper.net

local err_of = helper.err_of

describe("net.resolve", function()
  it("an IPv4 literal resolves to itself", function()
    assert.same({ "127.0.0.1" }, net.resolve("127.0.0.1"))
    assert.same({ "10.1.2.3" }, net.resolve("10.1.2.3"))
  end)

  it("an IPv6 literal resolves to itself, with or without brackets", function()
    assert.same({ "::1" }, net.resolve("::1"))
    assert.same({ "::1" }, net.resolve("[::1]"))
    assert.same({ "fe80::1" }, net.resolve("FE80::1"))
  end)

  it("localhost is 127.0.0.1 and ::1, in any case and as *.localhost", function()
    assert.same({ "127.0.0.1", "::1" }, net.resolve("localhost"))
    assert.same({ "127.0.0.1", "::1" }, net.resolve("LocalHost"))
    assert.same({ "127.0.0.1", "::1" }, net.resolve("app.localhost"))
  end)

  it("filters by family", function()
    assert.same({ "127.0.0.1" }, net.resolve("localhost", { family = "inet" }))
    assert.same({ "::1" }, net.resolve("localhost", { family = "inet6" }))
    assert.same({ "127.0.0.1" }, net.resolve("127.0.0.1", { family = "inet", timeout = 500 }))
  end)

  it("a literal of the other family raises dns:", function()
    assert.matches("^dns: 127%.0%.0%.1: ", err_of(net.resolve, "127.0.0.1", { family = "inet6" }))
    assert.matches("^dns: ::1: ", err_of(net.resolve, "::1", { family = "inet" }))
  end)

  it("*.invalid raises dns: NAME: host not found", function()
    assert.equal("dns: nothing.invalid: host not found", err_of(net.resolve, "nothing.invalid"))
    assert.matches("^dns: ", err_of(net.resolve, "invalid"))
    assert.matches("^dns: ", err_of(net.resolve, ""))
  end)

  it("connect to a *.invalid name raises dns: as well", function()
    assert.matches("^dns: x%.invalid: ", err_of(net.tcp.connect, "x.invalid", 80, { timeout = 1000 }))
  end)

  it("works from a task", function()
    local r = helper.bounded(5, function()
      return net.resolve("localhost", { family = "inet6" })
    end)
    assert.same({ "::1" }, r)
  end)

  it("bad arguments name the position and the expected type", function()
    assert.matches("^bad argument #1 to 'net%.resolve' %(string expected", err_of(net.resolve))
    assert.matches("^bad argument #1 to 'net%.resolve' %(string expected, got table", err_of(net.resolve, {}))
    assert.matches("^bad argument #2 to 'net%.resolve' %(table expected, got number", err_of(net.resolve, "localhost", 5))
    assert.matches("^bad argument #2 to 'net%.resolve' %(option 'family': \"inet\" or \"inet6\" expected, got \"ipx\"%)$",
      err_of(net.resolve, "localhost", { family = "ipx" }))
    assert.matches("^bad argument #2 to 'net%.resolve' %(option 'family': string expected, got number",
      err_of(net.resolve, "localhost", { family = 4 }))
    assert.matches("^bad argument #2 to 'net%.resolve' %(option 'timeout'", err_of(net.resolve, "localhost", { timeout = -1 }))
  end)
end)
