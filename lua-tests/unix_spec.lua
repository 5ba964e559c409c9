-- net.unix: the stream and listener of net.tcp on Unix domain sockets.
local helper = require("helper")
local net = helper.net

local T = 3000
local tasks, objs, paths = {}, {}, {}
local function go(fn, ...)
  local t = net.spawn(fn, ...)
  tasks[#tasks + 1] = t
  return t
end
local function track(o) objs[#objs + 1] = o; return o end
after_each(function()
  for i = #tasks, 1, -1 do pcall(tasks[i].cancel, tasks[i]); tasks[i] = nil end
  for i = #objs, 1, -1 do pcall(objs[i].close, objs[i]); objs[i] = nil end
  for i = #paths, 1, -1 do os.remove(paths[i]); paths[i] = nil end
end)

local function tmp_path()
  local p = os.tmpname() -- creates a file: remove it, keep the unique name
  os.remove(p)
  p = p .. ".sock"
  paths[#paths + 1] = p
  return p
end

local function is_socket(path)
  local r = os.execute("test -S '" .. path .. "'")
  return r == true or r == 0
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return e
end

local function listen()
  local path = tmp_path()
  local l = track(net.unix.listen(path))
  l:set_timeout(T)
  return l, path
end

local function connect(path)
  local c = track(net.unix.connect(path, { timeout = T }))
  c:set_timeout(T)
  return c
end

local ALL_BYTES = {}
for i = 0, 255 do ALL_BYTES[#ALL_BYTES + 1] = string.char(i) end
ALL_BYTES = table.concat(ALL_BYTES)

describe("net.unix", function()
  it("listen creates the socket file, close removes it", function()
    local l, path = listen()
    assert.is_true(is_socket(path))
    assert.equal(path, l:local_addr())
    assert.equal("listener{" .. path .. "}", tostring(l))
    l:close()
    assert.is_false(is_socket(path))
  end)

  it("echoes all 256 byte values and supports line, exact and u32 reads", function()
    local l, path = listen()
    local t = go(function()
      local s = track(l:accept())
      s:set_timeout(T)
      local data = s:read_exact(256)
      s:write(data)
      s:write("line one\r\nline two\n")
      s:write_u32(#data)
      s:write(data)
      s:close()
    end)
    local c = connect(path)
    assert.equal("unix{" .. path .. "}", tostring(c))
    assert.equal(path, c:peer_addr())
    assert.equal(256, c:write(ALL_BYTES))
    assert.equal(ALL_BYTES, c:read_exact(256))
    assert.equal("line one", c:read_line())
    assert.equal("line two", c:read_line())
    assert.equal(256, c:read_u32())
    assert.equal(ALL_BYTES, c:read_all())
    t:join()
  end)

  it("half-close: shutdown('write') gives the peer EOF, the reply still arrives", function()
    local l, path = listen()
    local t = go(function()
      local s = track(l:accept())
      s:set_timeout(T)
      local req = s:read_all()
      s:write("len=" .. #req)
      s:close()
    end)
    local c = connect(path)
    c:write("twelve bytes")
    c:shutdown("write")
    assert.equal("len=12", c:read_all())
    t:join()
  end)

  it("read timeout and accept timeout", function()
    local l, path = listen()
    l:set_timeout(100)
    assert.equal("timeout: accept on " .. path .. " timed out after 100 ms", err_of(l.accept, l))
    l:set_timeout(T)
    local t = go(function() local s = track(l:accept()); s:set_timeout(T); s:read() end)
    local c = connect(path)
    c:set_timeout(100)
    assert.equal("timeout: read from " .. path .. " timed out after 100 ms", err_of(c.read, c))
    c:close()
    t:join()
  end)

  it("connecting to a missing path fails, a stale file makes listen raise addrinuse:", function()
    local path = tmp_path()
    assert.matches("^%a+: connect to " .. path:gsub("%p", "%%%0"), err_of(net.unix.connect, path))
    local f = assert(io.open(path, "w"))
    f:close()
    assert.matches("^addrinuse: ", err_of(net.unix.listen, path))
  end)

  it("TCP-only options raise on a Unix stream", function()
    local l, path = listen()
    local t = go(function() local s = track(l:accept()); s:set_timeout(T); s:read() end)
    local c = connect(path)
    assert.matches("^io: set_nodelay", err_of(c.set_nodelay, c, true))
    assert.matches("^io: set_ttl", err_of(c.set_ttl, c, 3))
    c:close()
    t:join()
  end)

  it("bad arguments", function()
    assert.matches("^bad argument #1 to 'net%.unix%.listen' %(string expected, got no value", err_of(net.unix.listen))
    assert.matches("^bad argument #1 to 'net%.unix%.connect' %(string expected, got table", err_of(net.unix.connect, {}))
    assert.matches("^bad argument #2 to 'net%.unix%.connect' %(table expected, got number", err_of(net.unix.connect, "/x", 1))
  end)
end)
