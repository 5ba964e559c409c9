-- Hostile or extreme input to the smaller parts: JSON of a million keys, accept out of file
-- descriptors, URL user info and queries that decode to invalid UTF-8, Unix socket paths that
-- are not paths, and the memory a connect holds while in flight.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)
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
    assert.matches("^bad argument #1 to 'net%.json%.encode' %(nested deeper than 127 levels", e)
    assert.matches(" at %.k12345%[1%]%[1%]", e)
    local cyc = {}
    cyc.self = cyc
    t.k12345 = cyc
    assert.matches("nested deeper than 127 levels %(is the table cyclic%?%) at %.k12345%.self%.self", err_of(json.encode, t))
    -- the failed calls left nothing behind: the same table encodes once fixed
    t.k12345 = "ok"
    assert.matches('"k12345":"ok"', json.encode(t))
  end)
end)

-- Runs `src` in a fresh interpreter whose descriptor limit is `nofile` (`ulimit -n` in the shell
-- that starts it: Lua cannot lower its own). Returns exit code, stdout lines, stderr.
local function child_with_fd_limit(nofile, src, seconds)
  local file = os.tmpname()
  local f = assert(io.open(file, "wb"))
  f:write('io.stdout:setvbuf("no")\nlocal net = require("net")\nlocal pcall = net.pcall\n', src)
  f:close()
  local p = helper.spawn({ "sh", "-c", ("ulimit -n %d && exec \"$0\" \"$1\""):format(nofile), helper.lua_bin(), file },
    { files = { file }, max_life = 30 })
  local ok, rc = pcall(p.wait, p, seconds)
  local out, err = p:lines(), p:stderr()
  p:kill()
  assert(ok, ("child did not finish in %g s; stdout:\n%s\nstderr:\n%s"):format(seconds, table.concat(out, "\n"), err))
  return rc, out, err
end

-- The child fills its descriptor table with connections to its own listener, which leaves
-- them waiting in the backlog: every accept then finds a connection but no descriptor for it.
local FILL = [[
local l = net.tcp.listen("127.0.0.1", 0)
local clients = {}
while true do
  local ok, c = pcall(net.tcp.connect, "127.0.0.1", l.port, { timeout = 2000 })
  if not ok then
    assert(c:match("too many open files"), c)
    break
  end
  clients[#clients + 1] = c
end
assert(#clients > 10, "only " .. #clients .. " connections before the limit")
]]

describe("accept out of file descriptors", function()
  it("backs off instead of failing at once, so a retry loop cannot spin", function()
    local rc, out, err = child_with_fd_limit(64, FILL .. [[
l:set_timeout(50)
local attempts, last, t0 = 0, nil, net.now()
while net.now() - t0 < 1 do
  attempts = attempts + 1
  local ok, e = pcall(l.accept, l)
  assert(not ok, "accepted with no descriptor free")
  last = e
end
print(attempts)
print(last)
]], 15)
    assert.equal(0, rc, err)
    -- a 50 ms timeout allows about 20 attempts in a second; failing at once allowed ~350,000
    assert.is_true(tonumber(out[1]) <= 40, "accept attempts in one second: " .. tostring(out[1]))
    assert.matches("^timeout: accept on 127%.0%.0%.1:%d+ timed out after 50 ms %(too many open files%)$", out[2])
  end)

  it("resumes by itself once a descriptor is free, and ends at once when the listener closes", function()
    local rc, out, err = child_with_fd_limit(64, FILL .. [[
local waiting = net.spawn(function() return l:accept() end)
net.sleep(0.3)
assert(waiting:status() == "running", "accept returned while no descriptor was free")
local t0 = net.now()
clients[#clients]:close()
local s = waiting:join()
print(("%.2f"):format(net.now() - t0))
print(tostring(s))
-- a server loop goes on: each accept after the first takes the descriptor the last one freed
for i = 1, 3 do clients[i]:close(); s:close(); s = l:accept() end
print("served")
-- out of descriptors again: closing the listener ends an accept that is backing off at once
while pcall(function() clients[#clients + 1] = net.tcp.connect("127.0.0.1", l.port, { timeout = 2000 }) end) do end
local closing = net.spawn(function() return select(2, pcall(l.accept, l)) end)
net.sleep(0.3)
t0 = net.now()
l:close()
print(closing:join())
print(("%.2f"):format(net.now() - t0))
]], 15)
    assert.equal(0, rc, err)
    assert.is_true(tonumber(out[1]) < 1.5, "accept resumed after " .. tostring(out[1]) .. " s")
    assert.matches("^tcp{", out[2])
    assert.equal("served", out[3])
    assert.equal("closed: accept on a closed listener", out[4])
    assert.is_true(tonumber(out[5]) < 0.1, "closed accept returned after " .. tostring(out[5]) .. " s")
  end)
end)

-- net.urlDecode's rule everywhere: a decoded string that is not UTF-8 raises, unless the
-- caller asks for raw bytes with `binary = true`
describe("URL decoding follows net.urlDecode's UTF-8 rule", function()
  it("url.parse raises on user info that decodes to invalid UTF-8, gives raw bytes with binary", function()
    assert.matches("^bad argument #1 to 'net%.url%.parse' %(user name is not valid UTF%-8 once decoded %(pass binary = true",
      err_of(net.url.parse, "http://%FF@h.localhost/"))
    assert.matches("^bad argument #1 to 'net%.url%.parse' %(password is not valid UTF%-8 once decoded",
      err_of(net.url.parse, "http://u:%C3%28@h.localhost/"))
    local u = net.url.parse("http://%FF:%C3%28@h.localhost/", true)
    assert.equal("\255", u.user)
    assert.equal("\195(", u.password)
    -- valid UTF-8 decodes in both modes
    u = net.url.parse("http://%C3%A9:p%40ss@h.localhost/")
    assert.equal("é", u.user)
    assert.equal("p@ss", u.password)
    assert.matches("^bad argument #2 to 'net%.url%.parse' %(boolean expected", err_of(net.url.parse, "http://h/", "yes"))
  end)

  it("url.query raises on keys or values that decode to invalid UTF-8, gives raw bytes with binary", function()
    assert.matches("^bad argument #1 to 'net%.url%.query' %(.*not valid UTF%-8.*pass binary = true",
      err_of(net.url.query, "a=%FF"))
    assert.matches("^bad argument #1 to 'net%.url%.query' %(.*not valid UTF%-8", err_of(net.url.query, "%FE=1"))
    assert.matches("^bad argument #1 to 'net%.url%.query' %(.*not valid UTF%-8", err_of(net.url.query, "a=\255"))
    assert.same({ a = "\255", ["\254"] = { "1", "x y" } }, net.url.query("a=%FF&%FE=1&%FE=x+y", true))
    assert.same({ a = "\255" }, net.url.query("a=\255", true))
    assert.same({ e = "é", s = "a b+c" }, net.url.query("e=%C3%A9&s=a+b%2Bc"))
    assert.matches("^bad argument #2 to 'net%.url%.query' %(boolean expected", err_of(net.url.query, "a", 1))
  end)
end)

describe("net.unix paths", function()
  local function cwd_has_socket_named(name)
    local r = os.execute("test -S '" .. name .. "'")
    return r == true or r == 0
  end

  it("refuse a number, an empty string, a NUL byte and a path longer than a socket address holds", function()
    for _, f in ipairs({ "listen", "connect" }) do
      local fn = net.unix[f]
      local name = "'net%.unix%." .. f .. "'"
      assert.matches("^bad argument #1 to " .. name .. " %(string expected, got number%)", err_of(fn, 8080))
      assert.matches("^bad argument #1 to " .. name .. " %(string expected, got number%)", err_of(fn, 1.5))
      assert.matches("^bad argument #1 to " .. name .. " %(socket path is empty%)", err_of(fn, ""))
      assert.matches("^bad argument #1 to " .. name .. " %(socket path contains a NUL byte%)", err_of(fn, "/tmp/a\0b"))
      assert.matches("^bad argument #1 to " .. name .. " %(socket path is 200 bytes long; at most 107 fit",
        err_of(fn, "/tmp/" .. ("x"):rep(195)))
    end
    assert.is_false(cwd_has_socket_named("8080"))
    assert.is_false(cwd_has_socket_named("1.5"))
  end)

  it("take a path of exactly 107 bytes", function()
    local dir = scope.tmp_path() -- unique; made a directory so the long name fits under it
    assert(os.execute("mkdir '" .. dir .. "'"))
    local path = dir .. "/" .. ("s"):rep(107 - #dir - 1)
    assert.equal(107, #path)
    local l = scope.track(net.unix.listen(path))
    local c = scope.track(net.unix.connect(path, { timeout = T }))
    l:set_timeout(T)
    scope.track(l:accept())
    c:close(); l:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("net.tcp.connect in flight", function()
  -- Each async wrapper takes room for the future it awaits twice, so an unboxed connect future
  -- of ~6 KB grew to ~28 KB per call: 100,000 connects at once peaked at 2.7 GB.
  it("holds a few KB per call, not tens (8,000 at once to a closed port, peak RSS in a child)", function()
    local rc, out, err = helper.child([[
local function peak_kb() return proc_kib("VmHWM") end
local l = net.tcp.listen("127.0.0.1", 0)
local port = l.port
l:close()
local N, refused, other = 8000, 0, nil
collectgarbage(); collectgarbage()
local base = peak_kb()
for _ = 1, N do
  net.spawn(function()
    local ok, e = pcall(net.tcp.connect, "127.0.0.1", port, { timeout = 10000 })
    if not ok and e:match("^refused:") then refused = refused + 1 else other = other or tostring(e) end
  end)
end
net.run()
assert(refused == N, "not all refused: " .. tostring(other))
print(("%.1f"):format((peak_kb() - base) / N))
]], 30)
    assert.equal(0, rc, err)
    -- a spawned task alone costs ~3 KB; a connect in flight adds about 2 more
    assert.is_true(tonumber(out) < 12, "KB per connect in flight: " .. tostring(out))
  end)
end)
