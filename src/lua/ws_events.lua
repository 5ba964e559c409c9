-- Event-style WebSockets (seed 002's `ws::Server` and `ws::connect`): thin Lua over net.ws and
-- net.spawn. Handlers are called from tasks, so they may wait; one that raises is reported on
-- stderr (or to the client's "error" handler) and the connection goes on.
--
--   local server = net.ws.server("127.0.0.1:8081")
--   server:on_connection(function(socket)
--     socket:on("message", function(data) server:broadcast({ from = socket.id, text = data }) end)
--     socket:on("close", function(code) print(socket.id, "left") end)
--   end)
--   server:listen()                      -- serves until server:close(); server:start() returns at once
--
--   local ws = net.ws.client("ws://127.0.0.1:8081/")
--   ws:on("open", function() ws:send("hi") end)
--   ws:on("message", function(data) print(data) end)
--   ws:on("close", function(code) end)
--   ws:on("error", function(err) print(err) end)
--   net.run()
local net, arm = ...
local pcall = net.pcall -- the built-in, except on Lua 5.1 (the calls inside wait)
local encode = net.json.encode

-- A table goes out as JSON (seed 002 broadcasts tables), anything else as a string.
local function payload(data)
  if type(data) == "table" then return encode(data) end
  return tostring(data)
end

-- Calls handler `name` of `o` with the arguments; an error goes to `report`.
local function fire(o, name, report, ...)
  local h = o._on[name]
  if h == nil then return end
  local ok, err = pcall(h, ...)
  if not ok then report(name, err) end
end

local function print_error(what)
  return function(event, err)
    io.stderr:write(("net.ws: %s %q handler failed: %s\n"):format(what, event, tostring(err)))
  end
end

local EVENTS = { message = true, close = true, open = true, error = true }

local function on(self, event, fn)
  if not EVENTS[event] then error(("bad argument #1 to 'on' (event expected: message, close, open, error; got %s)"):format(tostring(event)), 2) end
  if type(fn) ~= "function" then error("bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2) end
  self._on[event] = fn
  return self
end

-- Socket: one accepted connection, as the server's handlers see it.
local Socket = {}
Socket.__index = Socket
Socket.on = on
function Socket:send(data) return self.ws:send(payload(data)) end
function Socket:close(code, reason) return self.ws:close(code, reason) end

-- Reads a connection until it ends: "message" for each data message, "close" once.
local function pump(socket, report)
  local ws = socket.ws
  while true do
    local ok, msg = pcall(ws.recv, ws)
    if not ok or msg == nil or msg.type == "close" then break end
    if msg.type == "text" or msg.type == "binary" then fire(socket, "message", report, msg.data) end
  end
  pcall(ws.close, ws)
  fire(socket, "close", report, ws.closeCode)
end

local Server = {}
Server.__index = Server

-- "host:port", ":port", or a port number (host 127.0.0.1).
local function parse_addr(addr)
  if type(addr) == "number" then return "127.0.0.1", addr end
  if type(addr) ~= "string" then error("bad argument #1 to 'net.ws.server' (address expected, got " .. type(addr) .. ")", 3) end
  local host, port = addr:match("^%[?([^%]]*)%]?:(%d+)$")
  if not port then error("bad argument #1 to 'net.ws.server' (\"host:port\" expected, got \"" .. addr .. "\")", 3) end
  return host ~= "" and host or "127.0.0.1", tonumber(port)
end

function net.ws.server(addr, opts)
  local host, port = parse_addr(addr)
  return setmetatable({ host = host, port = port, _opts = opts, _sockets = {}, _next = 0 }, Server)
end

function Server:on_connection(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'on_connection' (function expected, got " .. type(fn) .. ")", 2) end
  self._on_connection = fn
  return self
end

-- Sends to every open connection (a table as JSON); returns how many it reached.
function Server:broadcast(data)
  local text, n = payload(data), 0
  for socket in pairs(self._sockets) do
    if pcall(socket.ws.send, socket.ws, text) then n = n + 1 end
  end
  return n
end

-- Starts listening and accepting without blocking; returns the server (`server.port` is the
-- port, useful with port 0).
function Server:start()
  if self._listener then return self end
  local l = net.ws.listen(self.host, self.port, self._opts)
  self._listener, self.port = l, l.port
  local report = print_error("server")
  self._task = net.spawn(function()
    while true do
      local ok, ws = pcall(l.accept, l)
      if not ok then return end
      self._next = self._next + 1
      local socket = setmetatable({ id = self._next, ws = ws, _on = {} }, Socket)
      net.spawn(function()
        self._sockets[socket] = true
        if self._on_connection then
          local okc, err = pcall(self._on_connection, socket)
          if not okc then report("connection", err) end
        end
        pump(socket, report)
        self._sockets[socket] = nil
      end)
    end
  end)
  arm()
  return self
end

-- Starts, then runs the loop until the server is closed (seed 002's `listen()`).
function Server:listen()
  self:start()
  net.run()
end

-- Stops accepting and closes every connection.
function Server:close()
  if self._listener then self._listener:close() end
  for socket in pairs(self._sockets) do pcall(socket.ws.close, socket.ws) end
end

-- Client: connects in a task of its own, so handlers set right after `client()` see "open".
local Client = {}
Client.__index = Client
Client.on = on

function Client:send(data)
  if not self.ws then error("closed: send on a WebSocket that is not open", 2) end
  return self.ws:send(payload(data))
end

function Client:close(code, reason)
  if self.ws then return self.ws:close(code, reason) end
  self._closing = true
end

function net.ws.client(url, opts)
  if type(url) ~= "string" then error("bad argument #1 to 'net.ws.client' (string expected, got " .. type(url) .. ")", 2) end
  local self = setmetatable({ url = url, _on = {} }, Client)
  local function report(event, err)
    if event ~= "error" and self._on.error then pcall(self._on.error, tostring(err)) else print_error("client")(event, err) end
  end
  net.spawn(function()
    local ok, ws = pcall(net.ws.connect, url, opts)
    if not ok then
      if self._on.error then fire(self, "error", print_error("client"), ws) else report("open", ws) end
      return
    end
    self.ws = ws
    if self._closing then ws:close() end
    fire(self, "open", report)
    pump(self, report)
  end)
  arm()
  return self
end
