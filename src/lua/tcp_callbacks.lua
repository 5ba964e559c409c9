-- The callback facade (docs/api.md, "Callback facade"): `net.TCPSocket()` and `net.TCPServer()`,
-- callback-driven TCP for scripts written in the style of callback runtimes. Thin Lua over
-- net.tcp and net.spawn: each connection is read by a task of its own, which calls the callbacks.
--
--   local server = net.TCPServer()
--   server:listen("127.0.0.1", 8888, {
--     started = function() print("listening") end,
--     connected = function(id) server:send(id, "hi\n") end,
--     data = function(id, data) server:send(id, "echo: " .. data) end,
--     disconnected = function(id) end,
--     error = function(err) print(err) end,
--   })
--
-- Nothing raises once the call has been accepted: a refused connect, a busy port, a reset
-- connection or a callback that raises calls `error` (printed to stderr when there is none or
-- when `error` itself raises). A script that ends with such work pending has the loop run for it
-- (`arm`, src/runtime/run_at_exit.rs), so it may skip `net.run()`.
local net, arm = ...
local spawn, tcp = net.spawn, net.tcp
local pairs, type, tostring, tonumber, setmetatable = pairs, type, tostring, tonumber, setmetatable
local pcall = net.pcall -- the built-in, except on Lua 5.1 (the calls inside wait)

local CHUNK = 65536

-- Calls callback `name` with the arguments; an error goes to the `error` callback, or stderr.
local function fire(callbacks, who, name, ...)
  local cb = callbacks[name]
  if cb == nil then return end
  local ok, err = pcall(cb, ...)
  if ok then return end
  local msg = ("%s %s callback failed: %s"):format(who, name, tostring(err))
  local on_error = callbacks.error
  if name ~= "error" and on_error ~= nil and pcall(on_error, msg) then return end
  io.stderr:write("net: ", msg, "\n")
end

-- Reports a failure of the connection itself (refused, reset, busy port...).
local function fail(callbacks, who, err, ...)
  if callbacks.error ~= nil then
    fire(callbacks, who, "error", tostring(err), ...)
  else
    io.stderr:write("net: ", who, " error: ", tostring(err), "\n")
  end
end

local function check_args(fname, host, port, callbacks)
  if type(host) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, type(host)), 3)
  end
  if type(port) ~= "number" and not (type(port) == "string" and tonumber(port)) then
    error(("bad argument #2 to '%s' (number expected, got %s)"):format(fname, type(port)), 3)
  end
  if callbacks ~= nil and type(callbacks) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)"):format(fname, type(callbacks)), 3)
  end
  for k, v in pairs(callbacks or {}) do
    if type(v) ~= "function" then
      error(("bad argument #3 to '%s' (callback %q: function expected, got %s)"):format(fname, tostring(k), type(v)), 3)
    end
  end
  return tonumber(port), callbacks or {}
end

-- Reads `conn._stream` until it ends: data per chunk (`data(id, chunk)` on a server,
-- `data(chunk)` on a client, where `id` is nil), and error when it broke while we did not close
-- it ourselves (`conn._closing`, set by disconnect()).
local function pump(conn, callbacks, who, id)
  local stream = conn._stream
  while true do
    local ok, data = pcall(stream.read, stream, CHUNK)
    if not ok then
      if not conn._closing then fail(callbacks, who, data, id) end
      return
    end
    if data == nil or conn._closing then return end
    if id ~= nil then fire(callbacks, who, "data", id, data) else fire(callbacks, who, "data", data) end
  end
end

------------------------------------------------------------------------------------------------
-- net.TCPSocket(): one outgoing connection.

local Socket = {}
Socket.__index = Socket

function net.TCPSocket()
  return setmetatable({ connected = false }, Socket)
end

-- Connects in a task: connected() when open, data(data) per chunk read, disconnected() once
-- when it ends; error(msg) when it cannot connect (then no disconnected()) or breaks. Once the
-- connection has ended (or failed), the same TCPSocket may connect again.
function Socket:connect(host, port, callbacks)
  local p, cbs = check_args("connect", host, port, callbacks)
  if self._stream or self._connecting then
    error("bad argument #0 to 'connect' (this TCPSocket is already connecting or connected)", 2)
  end
  self._connecting, self._closing, self._queue = true, false, {}
  spawn(function()
    local ok, stream = pcall(tcp.connect, host, p)
    self._connecting = false
    if not ok or self._closing then
      self._queue = nil -- send() from now on says "closed"
      if not ok then return fail(cbs, "TCPSocket", stream) end
      return stream:close()
    end
    self._stream, self.connected = stream, true
    -- What send() queued before the connection was open goes out first.
    local queue = self._queue
    self._queue = nil
    for i = 1, #queue do
      if not pcall(stream.write, stream, queue[i]) then break end
    end
    fire(cbs, "TCPSocket", "connected")
    if not self._closing then pump(self, cbs, "TCPSocket") end
    self.connected, self._stream = false, nil
    pcall(stream.close, stream)
    fire(cbs, "TCPSocket", "disconnected")
  end)
  arm()
  return self
end

-- Sends `data` (waits only while the kernel's buffer is full). Before the connection is open the
-- data is queued; on a closed socket returns false and the error.
function Socket:send(data)
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2) end
  if self._queue then
    self._queue[#self._queue + 1] = data
    return true
  end
  local stream = self._stream
  if not stream or not self.connected then return false, "closed: send on a TCPSocket that is not connected" end
  local ok, err = pcall(stream.write, stream, data)
  if not ok then return false, err end
  return true
end

-- Closes the connection; disconnected() follows (from the reading task).
function Socket:disconnect()
  self._closing = true
  if self._stream then pcall(self._stream.close, self._stream) end
end

------------------------------------------------------------------------------------------------
-- net.TCPServer(): a listening socket and its clients, known by number (1, 2, 3... per server).

local Server = {}
Server.__index = Server

function net.TCPServer()
  return setmetatable({ _clients = {}, _next = 0 }, Server)
end

-- Listens in a task: started() once bound (server.port is the port, useful with port 0), then
-- for each client connected(id), data(id, data) per chunk, disconnected(id) once. error(msg)
-- when it cannot listen (busy port...), or error(msg, id) when a client's connection breaks.
function Server:listen(host, port, callbacks)
  local p, cbs = check_args("listen", host, port, callbacks)
  if self._listening then error("bad argument #0 to 'listen' (this TCPServer is already listening; make a new one)", 2) end
  self._listening = true
  spawn(function()
    local ok, listener = pcall(tcp.listen, host, p)
    if not ok then return fail(cbs, "TCPServer", listener) end
    if self._stopped then return listener:close() end
    self._listener, self.port = listener, listener.port
    fire(cbs, "TCPServer", "started")
    while true do
      local accepted, stream = pcall(listener.accept, listener)
      if not accepted then
        if not self._stopped then fail(cbs, "TCPServer", stream) end
        return
      end
      self._next = self._next + 1
      local id, conn = self._next, { _stream = stream, _closing = false }
      self._clients[id] = conn
      spawn(function()
        fire(cbs, "TCPServer", "connected", id)
        if not conn._closing then pump(conn, cbs, "TCPServer", id) end
        self._clients[id] = nil
        pcall(stream.close, stream)
        fire(cbs, "TCPServer", "disconnected", id)
      end)
    end
  end)
  arm()
  return self
end

-- Sends to client `id` (waits only while the kernel's buffer is full); false and the error when
-- there is no such client (any more).
function Server:send(id, data)
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then error("bad argument #2 to 'send' (string expected, got " .. type(data) .. ")", 2) end
  local conn = self._clients[id]
  if conn == nil or conn._closing then return false, "closed: no connected client " .. tostring(id) end
  local ok, err = pcall(conn._stream.write, conn._stream, data)
  if not ok then return false, err end
  return true
end

-- Closes client `id`'s connection; disconnected(id) follows. False when there is no such client.
function Server:disconnect(id)
  local conn = self._clients[id]
  if conn == nil or conn._closing then return false end
  conn._closing = true
  pcall(conn._stream.close, conn._stream)
  return true
end

-- Stops listening and disconnects every client (each gets disconnected(id)). Harmless twice.
function Server:stop()
  self._stopped = true
  if self._listener then pcall(self._listener.close, self._listener) end
  for id in pairs(self._clients) do self:disconnect(id) end
end

return net
