-- The module loads in this interpreter, from the build dir ci/test.sh put on package.cpath.
describe("require('net')", function()
  it("returns the module table", function()
    local net = require("net")
    assert.is_table(net)
  end)

  it("has a version string", function()
    local net = require("net")
    assert.is_string(net.version)
    assert.is_true(#net.version > 0)
  end)

  it("was loaded from this repository's build dir", function()
    -- guards against a stale net.so elsewhere on the cpath (a luarocks tree, ./net.so...)
    local path = package.searchpath and package.searchpath("net", package.cpath)
    if path then
      assert.truthy(path:match("build/[^/]+/net%.so$"), "net found at " .. path)
    end
  end)
end)
