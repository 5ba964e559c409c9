-- Shared helpers for the busted specs in lua-tests/ (`local helper = require("helper")`).
-- ci/test.sh puts lua-tests/ on package.path and the right build/<flavour>/ on package.cpath.
--
--   helper.net                      the loaded module (require("net"))
--   helper.free_port()              a TCP port on 127.0.0.1 that was free a moment ago
--   helper.bounded(seconds, fn, ...) run fn(...) as a net task; error if it is not done in time
--   helper.python(src, ...)         start `python3 -u <src as a file> ...` as a background peer
--   helper.lua(src, ...)            the same with this very interpreter (lua5.4 or luajit)
--   helper.spawn(argv)              the same for any command (argv: array of strings)
--   helper.python_ws_echo()         a Python `websockets` echo server -> peer, port
--   helper.python_ws_dropper()      a server that upgrades, then hangs up without a close frame
--   helper.lua_bin()                path of the running interpreter
--   helper.have(cmd)                whether a command is on PATH (a peer that may be missing)
--   helper.sleep(seconds)           net.sleep when available (keeps tasks and servers running)
--   helper.pki()                    the test PKI (lua-tests/fixtures/make-certs.sh: a CA, a server
--                                   certificate for localhost and 127.0.0.1 ...), made once per run
--                                   and removed at exit -> pem(name), the path of one of its files
--
-- Plumbing shared by the spec files (see each function below):
--   helper.pack(...), helper.unpack  table.pack with n, and table.unpack (5.4) / unpack (LuaJIT)
--   helper.ALL_BYTES                the 256 byte values 0..255 as one string
--   helper.read_file(path)          a file's contents, or nil
--   helper.err_of(fn, ...)          the error fn(...) raises (fails if it does not raise)
--   helper.raises(pattern, fn, ...) assert that fn(...) raises a string matching pattern
--   helper.bad_argument(pos, fname, expected, fn, ...)   assert a "bad argument #pos to ..." error
--   helper.wait_until(seconds, cond[, step])  drive the loop until cond() is truthy or time is up
--   helper.child(src[, seconds])    run src in a fresh interpreter -> exit code, stdout, stderr
--                                   (src may use gc_object, eager_gc, proc_kib: see CHILD_PRELUDE)
--   helper.scope(timeout_ms)        tasks/sockets/paths of one spec file, cleaned up after each test
--                                   (s.go, s.track, s.listen, s.connect, s.bind, s.ws_serve, s.ws_echo,
--                                   s.ws_connect)
--
-- A peer handle p: p.pid, p:wait_line([timeout=10]) -> first line the peer printed on stdout (errors
-- with the peer's stderr if none came in time or it exited), p:lines() -> all stdout lines so far,
-- p:stderr() -> its stderr so far, p:wait([timeout=10]) -> exit code (error if still running),
-- p:kill() (TERM, then KILL; harmless twice; removes its temp files, so read output before).
-- A peer is killed after `max_life` seconds whatever happens (default 120; helper.spawn(argv,
-- {max_life = 300})), and when the helper module is collected. Kill peers in `finally`:
--   local p = helper.python(src); finally(function() p:kill() end)

local net = require("net")
local luassert = require("luassert") -- busted's `assert` (the same table the specs see)
local helper = { net = net }

local unpack = table.unpack or unpack
local pcall = net.pcall -- the built-in, except on Lua 5.1 (bounded may run inside a task)
local function pack(...) return { n = select('#', ...), ... } end

local function q(s) -- shell quoting
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, 'wb'))
  f:write(data)
  f:close()
end

function helper.sleep(seconds)
  if type(net.sleep) == 'function' then
    net.sleep(seconds)
  else
    os.execute('sleep ' .. tostring(seconds))
  end
end

local function now()
  if type(net.now) == 'function' then return net.now() end
  return os.time() -- coarse fallback while the module is young
end

-- Poll cond() every 20 ms until it returns a truthy value or `timeout` seconds pass.
local function poll(timeout, cond)
  local deadline = now() + timeout
  repeat
    local v = cond()
    if v then return v end
    helper.sleep(0.02)
  until now() > deadline
  return cond()
end

--- Path of the running interpreter (arg[-1] under `lua5.4 /usr/bin/busted`, else /proc).
function helper.lua_bin()
  if type(arg) == 'table' then
    local i = 0
    while arg[i - 1] ~= nil do i = i - 1 end
    if i < 0 and arg[i] then return arg[i] end
  end
  local p = io.popen('readlink /proc/$PPID/exe 2>/dev/null')
  local exe = p and p:read('*l')
  if p then p:close() end
  if exe and exe ~= '' then return exe end
  return jit and 'luajit' or ('lua' .. _VERSION:match('%d+%.%d+'))
end

--- A free TCP port on 127.0.0.1: net's own listener on port 0, or python3 as a fallback.
function helper.free_port()
  local tcp = net.tcp
  if type(tcp) == 'table' and type(tcp.listen) == 'function' then
    local l = tcp.listen('127.0.0.1', 0)
    local port = tonumber(l.port)
    if not port and l.local_addr then port = tonumber(tostring(l:local_addr()):match(':(%d+)$')) end
    l:close()
    if port then return port end
  end
  local p = assert(io.popen([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
  local port = tonumber(p:read('*l'))
  p:close()
  return assert(port, 'free_port: could not find a free port')
end

--- Run fn(...) as a net task; raise if it does not finish within `seconds`. Returns fn's results.
function helper.bounded(seconds, fn, ...)
  assert(type(seconds) == 'number' and seconds > 0, 'bounded: seconds must be a positive number')
  local args = pack(...)
  local task = net.spawn(function() return fn(unpack(args, 1, args.n)) end)
  local timed_out = false
  local id = net.setTimeout(function()
    timed_out = true
    task:cancel()
  end, math.floor(seconds * 1000))
  local res = pack(pcall(task.join, task))
  net.clearTimeout(id)
  if timed_out then error(('timed out after %g s'):format(seconds), 2) end
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

-- Plumbing shared by the spec files ----------------------------------------------------------

helper.pack, helper.unpack = pack, unpack
helper.read_file = read_file

--- All 256 byte values, "\0" to "\255" in order, as one string.
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  helper.ALL_BYTES = table.concat(t)
end

--- The error that fn(...) raises; fails if fn(...) returns instead.
function helper.err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return e
end

--- Assert that fn(...) raises a string error matching the Lua pattern `pattern`.
function helper.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  luassert.is_false(ok)
  luassert.is_string(err)
  luassert.matches(pattern, err)
end

--- Assert that fn(...) raises "bad argument #<pos> to '<...fname>' (<...expected>": `fname` and
--- `expected` are Lua patterns; any module prefix before fname and any text before expected pass.
function helper.bad_argument(pos, fname, expected, fn, ...)
  local e = helper.err_of(fn, ...)
  luassert.matches("^bad argument #" .. pos .. " to '[%w_.:]*" .. fname .. "' %(.*" .. expected, e)
end

--- Drive the loop from the main thread (net.sleep(step), step 0.002 s unless given) until cond()
--- is truthy or `seconds` pass. Returns cond()'s last value.
function helper.wait_until(seconds, cond, step)
  step = step or 0.002
  local deadline = net.now() + seconds
  while not cond() and net.now() < deadline do net.sleep(step) end
  return cond()
end

--- What the tests of one spec file make, undone after each test. `timeout` (ms) is given to every
--- socket the wrappers below make. Register the cleanup once per file:
---   local s = helper.scope(3000); after_each(s.cleanup)
---   s.go(fn, ...)                   net.spawn(fn, ...), cancelled at cleanup
---   s.track(o)                      o:close() at cleanup; returns o
---   s.tmp_path()                    a fresh "<tmpname>.sock" path (nothing there), removed at cleanup
---   s.listen([host], [port], [opts]) tracked net.tcp.listen, 127.0.0.1 and port 0 by default
---   s.connect(port, [host], [opts])  tracked net.tcp.connect to 127.0.0.1 by default; opts default
---                                    to { timeout = timeout } (the connect timeout)
---   s.bind(...)                     tracked net.udp.bind(...)
function helper.scope(timeout)
  assert(type(timeout) == 'number', 'scope: timeout (ms) expected')
  local tasks, objs, paths = {}, {}, {}
  local s = {}
  function s.go(fn, ...)
    local t = net.spawn(fn, ...)
    tasks[#tasks + 1] = t
    return t
  end
  function s.track(o) objs[#objs + 1] = o; return o end
  function s.tmp_path()
    local p = os.tmpname() -- creates a file: remove it, keep the unique name
    os.remove(p)
    p = p .. '.sock'
    paths[#paths + 1] = p
    return p
  end
  function s.cleanup()
    for i = #tasks, 1, -1 do pcall(tasks[i].cancel, tasks[i]); tasks[i] = nil end
    for i = #objs, 1, -1 do pcall(objs[i].close, objs[i]); objs[i] = nil end
    for i = #paths, 1, -1 do os.remove(paths[i]); paths[i] = nil end
  end
  function s.listen(host, port, opts)
    local l = s.track(net.tcp.listen(host or '127.0.0.1', port or 0, opts))
    l:set_timeout(timeout)
    return l
  end
  function s.connect(port, host, opts)
    local c = s.track(net.tcp.connect(host or '127.0.0.1', port, opts or { timeout = timeout }))
    c:set_timeout(timeout)
    return c
  end
  function s.bind(...)
    local u = s.track(net.udp.bind(...))
    u:set_timeout(timeout)
    return u
  end
  -- A net WebSocket server (net.ws.listen opts) running handler(conn) as a task per connection
  -- (conn's timeout set to the scope's). Returns the server.
  function s.ws_serve(opts, handler)
    local server = s.track(net.ws.listen('127.0.0.1', 0, opts))
    s.go(function()
      while true do
        local ok, conn = pcall(server.accept, server)
        if not ok then return end
        s.track(conn)
        conn:set_timeout(timeout)
        s.go(handler, conn)
      end
    end)
    return server
  end
  -- A WebSocket echo server: every data message goes back with its type until the peer closes.
  function s.ws_echo(opts)
    return s.ws_serve(opts, function(conn)
      while true do
        local ok, msg = pcall(conn.recv, conn)
        if not ok or msg == nil or msg.type == 'close' then return end
        if msg.type == 'text' or msg.type == 'binary' then conn:send(msg.data, msg.type) end
      end
    end)
  end
  -- A WebSocket client of ws://127.0.0.1:port/ (net.ws.connect opts; timeout defaults to the scope's).
  function s.ws_connect(port, opts)
    opts = opts or {}
    opts.timeout = opts.timeout or timeout
    local ws = s.track(net.ws.connect('ws://127.0.0.1:' .. port .. '/', opts))
    ws:set_timeout(timeout)
    return ws
  end
  return s
end

-- Background peers ---------------------------------------------------------------------------

local Peer = {}
Peer.__index = Peer
local live = {} -- peers not killed yet: killed when this module is collected or Lua closes

-- a finalizer sentinel (newproxy on 5.1/LuaJIT, where tables have no __gc)
local function on_collect(fn)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = fn
    return u
  end
  return setmetatable({}, { __gc = fn })
end
-- no waiting here (this can run inside lua_close, when net may already be gone): TERM and forget
helper._sentinel = on_collect(function()
  for p in pairs(live) do os.execute('kill -TERM ' .. p.pid .. ' 2>/dev/null') end
end)

function helper.have(cmd)
  local r = os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
  return r == true or r == 0
end

local pki_dir
function helper.pki()
  if not pki_dir then
    local dir = os.tmpname() -- creates a file: remove it, keep the unique name
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && bash lua-tests/fixtures/make-certs.sh " .. dir .. " >/dev/null"))
    pki_dir = dir
    helper._pki_sentinel = on_collect(function() os.execute("rm -rf " .. dir) end)
  end
  return function(name) return pki_dir .. "/" .. name end
end

--- Start argv (array of strings) in the background; stdout/stderr go to temp files.
function helper.spawn(argv, opts)
  opts = opts or {}
  local base = os.tmpname() -- creates the file; we use it as a prefix
  local self = setmetatable({
    out = base .. '.out', err = base .. '.err', pidf = base .. '.pid', rcf = base .. '.rc',
    base = base, files = opts.files or {},
  }, Peer)
  local cmd = {}
  for i, a in ipairs(argv) do cmd[i] = q(a) end
  -- timeout bounds the peer's life; the subshell records its pid and, once it ends, its exit code
  local line = ('(timeout -k 5 %d %s >%s 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &')
    :format(opts.max_life or 120, table.concat(cmd, ' '), q(self.out), q(self.err), q(self.pidf), q(self.rcf))
  os.execute(line)
  local pid = poll(5, function()
    local s = read_file(self.pidf)
    return s and tonumber(s:match('%d+'))
  end)
  self.pid = assert(pid, 'spawn: the peer did not start: ' .. argv[1])
  live[self] = true
  return self
end

--- Start a Python peer: `python3 -u <file with src> ...`.
function helper.python(src, ...)
  local base = os.tmpname() -- creates the file: keep it to remove it with the script
  local file = base .. '.py'
  write_file(file, src)
  return helper.spawn({ 'python3', '-u', file, ... }, { files = { base, file } })
end

--- Start a second Lua process with this same interpreter (it inherits LUA_PATH/LUA_CPATH*).
-- A Python `websockets` echo server on 127.0.0.1 (its defaults: permessage-deflate with window
-- bits 12) -> the peer, its port. Kill the peer in `finally`.
function helper.python_ws_echo()
  local p = helper.python([[
import asyncio, websockets
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as srv:
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
]])
  return p, tonumber(p:wait_line())
end

-- Python source of `ws_upgrade(c)`: reads an HTTP upgrade request from socket c, answers 101 with
-- the right accept key, and returns the bytes that came after the request (None if c closed
-- first). For raw WebSocket peers: `helper.python(helper.PY_WS_UPGRADE .. [[ ... ]])`.
helper.PY_WS_UPGRADE = [[
import base64, hashlib, re
def ws_upgrade(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            return None
        buf += d
    key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", buf).group(1)
    acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")
    return buf[buf.index(b"\r\n\r\n") + 4:]
]]

-- A Python server that completes each WebSocket upgrade correctly, reads a little and hangs up
-- without a close frame (a peer that vanishes) -> the peer, its port. Kill the peer in `finally`.
function helper.python_ws_dropper()
  local p = helper.python(helper.PY_WS_UPGRADE .. [[
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    ws_upgrade(c)
    c.settimeout(0.2)
    try:
        c.recv(100)
    except OSError:
        pass
    c.close()
]])
  return p, tonumber(p:wait_line())
end

function helper.lua(src, ...)
  local base = os.tmpname()
  local file = base .. '.lua'
  write_file(file, src)
  return helper.spawn({ helper.lua_bin(), file, ... }, { files = { base, file } })
end

-- What every helper.child script starts with: `net`, unbuffered stdout, and three tools:
--   gc_object(fn)   an object whose finalizer is fn (newproxy on LuaJIT and 5.1, where tables have no __gc)
--   eager_gc()       the collector at its most eager: a step, and finalizers, at every allocation
--   proc_kib(field)  a /proc/self/status figure in KiB, e.g. proc_kib("VmRSS"), proc_kib("VmHWM")
local CHILD_PRELUDE = [[
io.stdout:setvbuf("no")
local net = require("net")
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside
local function gc_object(fn)
  if newproxy then local u = newproxy(true); getmetatable(u).__gc = fn; return u end
  return setmetatable({}, { __gc = fn })
end
local function eager_gc()
  if _VERSION == "Lua 5.4" and not jit then collectgarbage("incremental", 0, 1000)
  else collectgarbage("setpause", 0); collectgarbage("setstepmul", 1000) end -- LuaJIT, 5.1 to 5.3
end
local function proc_kib(field)
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^" .. field .. ":%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
]]

--- Run `src` in a fresh interpreter of this kind (its own loop), after CHILD_PRELUDE above;
--- bounded by `seconds` (default 5). Returns exit code, stdout (lines joined with "\n") and
--- stderr; raises with both outputs if it did not finish in time.
function helper.child(src, seconds)
  local p = helper.lua(CHILD_PRELUDE .. src)
  local ok, rc = pcall(p.wait, p, seconds or 5)
  local out, err = table.concat(p:lines(), '\n'), p:stderr()
  p:kill()
  if not ok then error(('child did not finish in %g s; stdout:\n%s\nstderr:\n%s'):format(seconds or 5, out, err), 2) end
  return rc, out, err
end

function Peer:exit_code()
  local s = read_file(self.rcf)
  return s and tonumber(s:match('%d+'))
end

function Peer:lines()
  local t = {}
  for l in (read_file(self.out) or ''):gmatch('([^\n]*)\n') do t[#t + 1] = l end
  return t
end

function Peer:stderr()
  return read_file(self.err) or ''
end

function Peer:wait_line(timeout)
  timeout = timeout or 10
  local r = poll(timeout, function()
    local s = read_file(self.out)
    local l = s and s:match('^([^\n]*)\n')
    if l then return { line = l } end
    if self:exit_code() then return { exited = true } end
  end)
  if r and r.line then return (r.line:gsub('\r$', '')) end
  local rc = self:exit_code()
  error(('peer %d printed no line %s; stderr:\n%s'):format(self.pid,
    rc and ('(exited with ' .. rc .. ')') or ('within ' .. timeout .. ' s'), self:stderr()), 2)
end

function Peer:wait(timeout)
  local rc = poll(timeout or 10, function() return self:exit_code() end)
  if not rc then error(('peer %d still running after %g s'):format(self.pid, timeout or 10), 2) end
  return rc
end

function Peer:kill()
  if self.killed then return end
  self.killed = true
  live[self] = nil
  if not self:exit_code() then
    os.execute('kill -TERM ' .. self.pid .. ' 2>/dev/null')
    if not poll(2, function() return self:exit_code() end) then
      os.execute('kill -KILL ' .. self.pid .. ' 2>/dev/null')
      poll(2, function() return self:exit_code() end)
    end
  end
  for _, f in ipairs({ self.out, self.err, self.pidf, self.rcf, self.base }) do os.remove(f) end
  for _, f in ipairs(self.files) do os.remove(f) end
end

return helper
