-- Hostile or extreme input to the smaller parts: JSON of a million keys, accept out of file
-- descriptors, URL user info and queries that decode to invalid UTF-8, Unix socket paths that
-- are not paths, and the memory a connect holds while in flight.
local helper = require("helper")
local net = helper.net
local json = net.json

local T = 3000
local scope = helper.scope(T)
after_each(scope.cleanup)
local err_of = helper.err_of

describe("net.json with large tables", function()
  -- mlua on LuaJIT caps live references near 8000: nothing may hold one per key or element
  it("encodes an object of 1,000,000 keys, sorted, and decodes it back", function()
    local N = 1000000
    local t = {}
    for i = 1, N do t[("k%07d"):format(i)] = i end
    local s = json.encode(t)
    assert.equal('{"k0000001":1,"k0000002":2,', s:sub(1, 27))
    assert.equal(',"k1000000":1000000}', s:sub(-20))
    t = nil
    local back = json.decode(s)
    local n = 0
    for _ in pairs(back) do n = n + 1 end
    assert.equal(N, n)
    assert.equal(777777, back.k0777777)
    assert.equal(s, json.encode(back))
  end)

  it("encodes and decodes an array of 1,000,000 elements", function()
    local N = 1000000
    local a = {}
    for i = 1, N do a[i] = (i % 2 == 0) and "x" or i end
    local s = json.encode(a)
    assert.equal('[1,"x",3,"x",', s:sub(1, 13))
    assert.equal(',999999,"x"]', s:sub(-12))
    local back = json.decode(s)
    assert.equal(N, #back)
    assert.equal(999999, back[999999])
    assert.equal("x", back[N])
    assert.equal(s, json.encode(back))
  end)

  it("encodes an object of 20,000 objects (nested tables in a wide object)", function()
    local t = {}
    for i = 1, 20000 do t["k" .. i] = { id = i, tags = { "a", "b" } } end
    local back = json.decode(json.encode(t))
    assert.equal(12345, back.k12345.id)
    assert.equal("b", back.k20000.tags[2])
  end)

  it("still names the path of a bad value or too deep a nest inside a wide object", function()
    local t = {}
    for i = 1, 20000 do t["k" .. i] = i end
    t.k12345 = { list = { 1, 2, print } }
    assert.matches("^bad argument #1 to 'net%.json%.encode' %(cannot encode a function at %.k12345%.list%[3%]%)$",
      err_of(json.encode, t))
    local deep = {}
    local cur = deep
    for _ = 1, 200 do cur[1] = {}; cur = cur[1] end
    t.k12345 = deep
    local e = err_of(json.encode, t)
    assert.matches("^bad argument #1 to 'net%.json%.encode' %(nested deeper than 128 levels", e)
    assert.matches(" at %.k12345%[1%]%[1%]", e)
    local cyc = {}
    cyc.self = cyc
    t.k12345 = cyc
    assert.matches("nested deeper than 128 levels %(is the table cyclic%?%) at %.k12345%.self%.self", err_of(json.encode, t))
    -- the failed calls left nothing behind: the same table encodes once fixed
    t.k12345 = "ok"
    assert.matches('"k12345":"ok"', json.encode(t))
  end)
end)
