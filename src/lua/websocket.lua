-- The Wippy-style WebSocket facade (docs/api.md, "WebSocket, Wippy facade"):
-- `require("net.websocket")`, also `net.websocket`.
--
-- Thin Lua over the core. `net.ws.connect` does the handshake, framing and automatic pongs; per
-- client, a reader task pushes every message into a `net.channel`, and a keeper task (only when
-- ping_interval or read_timeout is set) sends pings and ends a connection that went quiet.
-- Unlike the core, which raises (docs/api.md, "Errors"), this facade returns `nil, err` /
-- `false, err`, as its original API does; it raises only for arguments of the wrong Lua type,
-- which are bugs in the caller.
-- Loaded once per Lua state by src/lib.rs with `net` and the core's duration parser.
local net, duration_ms = ...
local error, type, tostring, setmetatable, rawget = error, type, tostring, setmetatable, rawget
local pcall = net.pcall -- the built-in, except on Lua 5.1 (the calls inside wait)
local pairs, ipairs, next = pairs, ipairs, next
local min, max, huge = math.min, math.max, math.huge
local now, sleep, spawn = net.now, net.sleep, net.spawn

local websocket = {
  TYPE_TEXT = "text",
  TYPE_BINARY = "binary",
  TYPE_PING = "ping",
  TYPE_PONG = "pong",
  TYPE_CLOSE = "close",
  CLOSE_CODES = {
    NORMAL = 1000,
    GOING_AWAY = 1001,
    PROTOCOL_ERROR = 1002,
    UNSUPPORTED_DATA = 1003,
    RESERVED = 1004,
    NO_STATUS = 1005,
    ABNORMAL_CLOSURE = 1006,
    INVALID_PAYLOAD = 1007,
    POLICY_VIOLATION = 1008,
    MESSAGE_TOO_BIG = 1009,
    MANDATORY_EXTENSION = 1010,
    INTERNAL_ERROR = 1011,
    SERVICE_RESTART = 1012,
    TRY_AGAIN_LATER = 1013,
    BAD_GATEWAY = 1014,
    TLS_HANDSHAKE = 1015,
  },
}

-- gorilla/websocket's DefaultDialer waits 45 s for a handshake; without a default a silent server
-- would hold connect() forever. dial_timeout = 0 means no limit (Go's convention for zero).
local DEFAULT_DIAL_MS = 45000
-- Bound on sending our close frame when no write_timeout was given: a peer that stopped reading
-- must not hang close() (or the keeper) forever. The core bounds its own limit-closes the same way.
local CLOSE_MS = 1000
-- Python websockets closes with 1011 when a keepalive ping goes unanswered; we do the same for
-- both of our liveness checks.
local TIMEOUT_CLOSE_CODE = 1011

local function got(v)
  return v == nil and "no value" or type(v)
end

local function bad_type(pos, fname, expected, v)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(pos, fname, expected, got(v)), 0)
end

local function fmt_ms(ms)
  return ("%g ms"):format(ms)
end

-- Allowed Lua types per option: anything else raises. Values of the right type that are still
-- wrong (an unparsable duration, an invalid header name) are returned as errors.
local DURATION = { number = true, string = true }
local OPTION_TYPES = {
  headers = { table = true },
  protocols = { table = true, string = true },
  dial_timeout = DURATION,
  read_timeout = DURATION,
  write_timeout = DURATION,
  ping_interval = DURATION,
  pong_timeout = DURATION,
  tls = { boolean = true, table = true }, -- extension: passed to net.ws.connect (wss://)
  max_message_size = { number = true },   -- extension: passed to net.ws.connect
  compress = { boolean = true },          -- extension: passed to net.ws.connect
}
local DURATIONS = { "dial_timeout", "read_timeout", "write_timeout", "ping_interval", "pong_timeout" }

-- Client -------------------------------------------------------------------------------------

local Client = {}
Client.__index = Client

-- Per-client state, shared with the reader and keeper tasks (never the client table itself, so
-- the tasks do not keep it reachable):
--   ws, ch              the core WebSocket and the receive channel
--   peer                "ip:port", for messages
--   done, err           the connection is over for the facade; err = what send reports then
--   reader, keeper      task handles (nil once stopped)
--   write_ms            write_timeout (ms) or nil
--   read_timeout, ping_interval, pong_timeout   seconds or nil
--   last_read           net.now() when the reader last got a message
--   next_ping           net.now() when the keeper pings next
--   unanswered          net.now() of the oldest ping not followed by a pong, or nil

-- Ends the connection for the facade, once: stops our tasks (except `self_task`, the caller) so
-- they do not keep net.run() alive, and closes the channel (queued messages stay readable).
-- Returns true if this call did it.
local function finish(st, err, self_task)
  if st.done then return false end
  st.done, st.err = true, err
  for _, k in ipairs({ "reader", "keeper" }) do
    local t = st[k]
    st[k] = nil
    if t and k ~= self_task then t:cancel() end
  end
  st.ch:close()
  return true
end

-- Ends the connection from the keeper, then tells the peer why (bounded: it may not be reading).
local function fail(st, err, reason)
  if not finish(st, err, "keeper") then return end
  local ws = st.ws
  if not st.write_ms then pcall(ws.set_timeout, ws, CLOSE_MS) end
  pcall(ws.close, ws, TIMEOUT_CLOSE_CODE, reason)
end

-- The reader task: every message, control frames included (users may observe them), goes to the
-- channel, which is unbounded so that a slow consumer never delays pongs or the close handshake.
local function read_loop(st)
  local ws, ch = st.ws, st.ch
  while true do
    local ok, m = pcall(ws.recv, ws)
    if ok then
      if m == nil then
        return finish(st, ("closed: the connection to %s is closed (code %s)"):format(st.peer, tostring(ws.closeCode)), "reader")
      end
      st.last_read = now()
      if m.type == "pong" then st.unanswered = nil end
      pcall(ch.send, ch, m) -- fails only if the user closed the channel: then nobody listens
    elseif not (type(m) == "string" and m:find("^timeout:")) then
      return finish(st, tostring(m), "reader")
    end
    -- A "timeout:" is the core's per-call timeout, which is write_timeout here (the core has one
    -- timeout for both directions); read_timeout is the keeper's job, so just read on.
  end
end

-- The keeper task: pings every ping_interval; ends the connection when no message came for
-- read_timeout, or when a ping got no pong for pong_timeout.
local function keep_loop(st)
  local ws = st.ws
  while not st.done do
    local t = now()
    local wake = huge
    if st.read_timeout then
      local due = st.last_read + st.read_timeout
      if t >= due then
        return fail(st, ("timeout: no message from %s within %s (read_timeout)"):format(st.peer, fmt_ms(st.read_timeout * 1000)), "read timeout")
      end
      wake = due
    end
    if st.ping_interval then
      if t >= st.next_ping then
        -- Noted before the ping leaves: its pong may be read before this task resumes.
        st.unanswered = st.unanswered or t
        local ok, e = pcall(ws.ping, ws)
        if st.done then return end
        if not ok then return fail(st, tostring(e), "ping failed") end
        st.next_ping = t + st.ping_interval
      end
      wake = min(wake, st.next_ping)
      if st.unanswered and st.pong_timeout then
        local due = st.unanswered + st.pong_timeout
        if now() >= due then
          return fail(st, ("timeout: no pong from %s within %s of a ping (pong_timeout)"):format(st.peer, fmt_ms(st.pong_timeout * 1000)), "pong timeout")
        end
        wake = min(wake, due)
      end
    end
    if wake == huge then return end
    sleep(max(wake - now(), 0.001))
  end
end

local function state(self, fname)
  local st = type(self) == "table" and rawget(self, "_state")
  if not st then bad_type(1, fname, "websocket client", self) end
  return st
end

--- client:send(data[, type = "text"]) -> true | false, err
--- type: "text", "binary", or the control frames "ping" / "pong" (payload at most 125 bytes).
function Client:send(data, kind)
  local st = state(self, "send")
  local td = type(data)
  if td ~= "string" and td ~= "number" then bad_type(2, "send", "string", data) end
  if kind ~= nil and type(kind) ~= "string" then bad_type(3, "send", "string", kind) end
  if st.done then return false, st.err end
  local ws, ok, err = st.ws, nil, nil
  if kind == nil or kind == "text" or kind == "binary" then
    ok, err = pcall(ws.send, ws, data, kind)
  elseif kind == "ping" then
    ok, err = pcall(ws.ping, ws, data)
  elseif kind == "pong" then
    ok, err = pcall(ws.pong, ws, data)
  else
    return false, ("bad argument #3 to 'send' (\"text\", \"binary\", \"ping\" or \"pong\" expected, got \"%s\"%s)")
      :format(kind, kind == "close" and "; use client:close(code, reason)" or "")
  end
  if ok then return true end
  return false, tostring(err)
end

--- client:close([code = 1000[, reason]]) -> true | false, err
--- Sends the close frame and closes the receive channel at once (messages already queued stay
--- readable); does not wait for the peer's reply. Closing an ended client returns true.
function Client:close(code, reason)
  local st = state(self, "close")
  if code ~= nil and type(code) ~= "number" then bad_type(2, "close", "number", code) end
  local tr = type(reason)
  if reason ~= nil and tr ~= "string" and tr ~= "number" then bad_type(3, "close", "string", reason) end
  if st.done then return true end
  local ws = st.ws
  if not st.write_ms then ws:set_timeout(CLOSE_MS) end
  local ok, err = pcall(ws.close, ws, code, reason)
  if not ok and tostring(err):find("^bad argument") then
    -- nothing was sent (e.g. a code outside 1000-4999): the connection stays as it was
    if not st.write_ms then ws:set_timeout(nil) end
    return false, err
  end
  finish(st, "closed: send on a closed websocket")
  if ok then return true end
  return false, tostring(err)
end

--- client:receive() -> the client's channel (the same one every call); ch:receive() -> msg, ok
--- with msg = {type =, data =, code =, reason =}; nil, false once the connection has ended.
function Client:receive()
  return state(self, "receive").ch
end

function Client:__tostring()
  local st = rawget(self, "_state")
  return ("websocket.client{%s -> %s%s}"):format(st.localaddr, st.peer, st.done and ", closed" or "")
end

-- Lua 5.4 `local c <close> = websocket.connect(...)`; the error object must not become a code.
function Client:__close()
  self:close()
end

-- connect --------------------------------------------------------------------------------------

--- websocket.connect(url[, options]) -> client | nil, err
function websocket.connect(url, opts)
  if type(url) ~= "string" then bad_type(1, "websocket.connect", "string", url) end
  if opts ~= nil and type(opts) ~= "table" then bad_type(2, "websocket.connect", "table", opts) end
  opts = opts or {}
  for key, types in pairs(OPTION_TYPES) do
    local v = opts[key]
    if v ~= nil and not types[type(v)] then
      local want = key == "protocols" and "table or string" or key == "tls" and "boolean or table"
        or DURATION == types and "number (ms) or duration string" or next(types)
      error(("bad argument #2 to 'websocket.connect' (option '%s': %s expected, got %s)"):format(key, want, type(v)), 0)
    end
  end
  local ms = {}
  for _, key in ipairs(DURATIONS) do
    local n, e = duration_ms(opts[key])
    if e then return nil, ("bad argument #2 to 'websocket.connect' (option '%s': %s)"):format(key, e) end
    if n and n > 0 then ms[key] = n end -- 0 = no limit / disabled
  end
  local dial = ms.dial_timeout
  if opts.dial_timeout == nil then dial = DEFAULT_DIAL_MS end

  local ok, ws = pcall(net.ws.connect, url, {
    headers = opts.headers,
    protocols = opts.protocols,
    tls = opts.tls,
    max_message_size = opts.max_message_size,
    compress = opts.compress,
    timeout = dial,
  })
  if not ok then
    -- The core names itself in argument errors (an invalid URL); name the facade instead.
    return nil, (tostring(ws):gsub("^(bad argument #%d+ to ')net%.ws%.connect'", "%1websocket.connect'"))
  end
  if ms.write_timeout then ws:set_timeout(ms.write_timeout) end

  local t = now()
  local st = {
    ws = ws,
    ch = net.channel(),
    peer = ws:peer_addr(),
    localaddr = ws:local_addr(),
    done = false,
    write_ms = ms.write_timeout,
    read_timeout = ms.read_timeout and ms.read_timeout / 1000,
    ping_interval = ms.ping_interval and ms.ping_interval / 1000,
    pong_timeout = ms.pong_timeout and ms.pong_timeout / 1000,
    last_read = t,
  }
  if st.ping_interval then st.next_ping = t + st.ping_interval end
  st.reader = spawn(read_loop, st)
  if st.read_timeout or st.ping_interval then st.keeper = spawn(keep_loop, st) end
  return setmetatable({ _state = st, subprotocol = ws.subprotocol, extensions = ws.extensions }, Client)
end

return websocket
