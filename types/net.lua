---@meta net
-- Type annotations of `net` for lua-language-server (LuaLS) and EmmyLua: every function, object,
-- method, field and option table that `require("net")` gives a script. This file is never run;
-- editors read it (README, "Editor support"). docs/api.md says what each call does in full;
-- lua-tests/reference_spec.lua fails when this file, docs/api.md and the module drift apart.
--
-- Conventions: functions marked "waits" yield inside a `net.spawn` task and block (running the
-- loop) on the main thread. Failures raise a string that starts with a kind word (`timeout:`,
-- `refused:`, `closed:`, `protocol:`, `limit:`, `io:` ...); only the `net.websocket` facade and
-- the callback facade return `nil|false, err` instead, as noted on each function.

------------------------------------------------------------------------------------------------
-- Shared types

---A timeout or interval: milliseconds as a number, or a duration string such as `"250ms"`,
---`"5s"`, `"1m30s"` (units ns, us, ms, s, m, h).
---@alias net.Duration number|string

---What a task's `status()` reports.
---@alias net.TaskStatus "running"|"done"|"failed"|"cancelled"

---`shutdown`'s direction.
---@alias net.ShutdownHow "read"|"write"|"both"

---A WebSocket message kind.
---@alias net.WsMessageType "text"|"binary"|"ping"|"pong"|"close"

---A decoded query string: a key seen once maps to a string, a repeated key to a list.
---@alias net.Query table<string, string|string[]>

------------------------------------------------------------------------------------------------
-- The module

---@class net
---@field version string The module version string (`"0.1.0"`).
local net = {}

---Starts `fn(...)` as a task; it first runs at the loop's next turn. An error in a task is
---printed with its traceback unless someone joins it.
---@param fn fun(...: any): ...: any
---@param ... any arguments for `fn`
---@return net.Task
function net.spawn(fn, ...) end

---Runs the loop until no task or timer is left, or until `net.stop()`. Raises if the loop is
---already running (from a task).
---@return integer failed the number of tasks that failed during this run
function net.run() end

---Makes `net.run()` return after the current step; pending tasks stay.
function net.stop() end

---Waits `seconds` (fractions allowed). `net.sleep(0)` in a task lets every ready task run. (waits)
---@param seconds number
function net.sleep(seconds) end

---Monotonic time in seconds since the module was loaded.
---@return number seconds
function net.now() end

---Runs `fn()` once after `ms`, as a task.
---@param fn fun()
---@param ms net.Duration
---@return integer id for `net.clearTimeout`
function net.setTimeout(fn, ms) end

---Cancels a timer; an unknown or `nil` id does nothing.
---@param id integer?
function net.clearTimeout(id) end

---Runs `fn()` every `ms` (at least 1 ms), each time as a task; an error stops that interval.
---@param fn fun()
---@param ms net.Duration
---@return integer id for `net.clearInterval`
function net.setInterval(fn, ms) end

---Stops an interval; an unknown or `nil` id does nothing.
---@param id integer?
function net.clearInterval(id) end

---A queue between tasks: unbounded without `capacity`; with one (>= 1), `send` waits while full.
---@param capacity integer?
---@return net.Channel
function net.channel(capacity) end

---Like `coroutine.wrap`, but waits inside `fn` pass up to the enclosing task (generators that
---read from the network).
---@param fn async fun(...: any): ...: any
---@return fun(...: any): ...: any
function net.wrap(fn) end

---The built-in `pcall`, except on Lua 5.1, where a task cannot wait inside that one: there `fn`
---runs in a coroutine of its own that counts as the calling task.
---@param fn async fun(...: any): ...: any
---@param ... any
---@return boolean ok
---@return any ...
function net.pcall(fn, ...) end

---The built-in `xpcall` (with extra arguments, on 5.1 too), except on Lua 5.1 as `net.pcall`;
---there `handler` also gets `fn`'s coroutine, for `debug.traceback(co, msg)`.
---@param fn async fun(...: any): ...: any
---@param handler fun(err: any, co: thread?): any
---@param ... any
---@return boolean ok
---@return any ...
function net.xpcall(fn, handler, ...) end

---Resolves `host` to IPv4 and IPv6 address strings (`/etc/hosts`, `/etc/resolv.conf`), always
---bounded by a timeout (default 5 s). Raises `dns: ...` or `timeout: ...`. (waits)
---@param host string
---@param opts net.ResolveOptions?
---@return string[] addresses
function net.resolve(host, opts) end

---Whether a TCP connection to `host:port` succeeds within `ms` (default 1000). Never raises for
---network failures. (waits)
---@param host string
---@param port number
---@param ms net.Duration?
---@return boolean
function net.is_port_open(host, port, ms) end

---Alias of `net.ws.connect`. (waits)
---@param url string `ws://` or `wss://`
---@param opts net.WsConnectOptions?
---@return net.WebSocket
function net.socket(url, opts) end

---Lune's HTTP client: raises only when no response came (network, TLS, timeout, malformed
---response), never for a status. (waits)
---@param req string|net.RequestOptions a URL, or the options with `url`
---@return net.http.Response
function net.request(req) end

---Starts an HTTP/1.1 + HTTP/2 server and returns at once; each request runs `handler` as a task.
---@param port number 0 picks a free port (read `handle.port`)
---@param handler net.http.Handler|net.ServeConfig a handler function, or the config
---@return net.http.Handle
function net.serve(port, handler) end

---Percent-encodes everything but `A-Z a-z 0-9 - . _ ~`. Raises on invalid UTF-8 unless `binary`.
---@param s string
---@param binary boolean?
---@return string
function net.urlEncode(s, binary) end

---Decodes `%XX` once (`+` stays). Raises if the result is not UTF-8, unless `binary`.
---@param s string
---@param binary boolean?
---@return string
function net.urlDecode(s, binary) end

------------------------------------------------------------------------------------------------
-- Options shared by sockets

---@class net.ResolveOptions
---@field family? "inet"|"inet6" IPv4 only or IPv6 only
---@field timeout? net.Duration default 5 s

---`keepalive`'s table form: on, with these timers (an unset one keeps the system's value).
---@class net.KeepaliveOptions
---@field idle? net.Duration whole seconds, 1 s..32767 s: quiet time before the first probe
---@field interval? net.Duration whole seconds, 1 s..32767 s: between probes
---@field count? integer unanswered probes before the connection is dead, 1..127

---Socket options of `net.tcp.connect`, `net.tcp.listen`, `net.ws.connect` and `net.ws.listen`.
---@class net.SocketOptions
---@field keepalive? boolean|net.KeepaliveOptions `SO_KEEPALIVE` (system default: off)
---@field recvbuf? integer `SO_RCVBUF` in bytes (Linux doubles it)
---@field sendbuf? integer `SO_SNDBUF` in bytes
---@field linger? 0|false|string `0` (or `"0s"`): `close()` resets the connection; `false`: graceful

---The TLS client table (the `tls` option of `net.tcp.connect`, `net.ws.connect`, `net.request`).
---Unknown keys raise.
---@class net.TlsOptions
---@field verify? boolean check the chain and host name (default `true`)
---@field insecure? boolean the same as `verify = false`
---@field ca_file? string trust these CAs (PEM file) instead of the system store
---@field ca_dir? string trust these CAs (hashed directory)
---@field cert? string a client certificate (PEM)
---@field key? string its key (defaults to `cert`)
---@field server_name? string the name sent (SNI) and checked
---@field alpn? string[] protocols to offer, e.g. `{"h2", "http/1.1"}`

---The TLS server table (the `tls` option of `net.tcp.listen`, `net.ws.listen`, `net.serve`).
---@class net.TlsServerOptions
---@field cert string PEM chain file
---@field key string? its key (defaults to `cert`)
---@field ca_file? string clients must present a certificate signed by this CA
---@field alpn? string[] protocols accepted, the server's preference first

---@class net.ConnectOptions: net.SocketOptions
---@field timeout? net.Duration bounds the lookup and all attempts together
---@field nodelay? boolean `TCP_NODELAY` (default `true`)
---@field ttl? integer IP time-to-live / IPv6 hop limit, 1..255
---@field bind? string local address, `"ip"` or `"ip:port"`
---@field tls? boolean|net.TlsOptions TLS, verified unless told otherwise (default `false`)

---@class net.ListenOptions: net.SocketOptions
---@field reuseaddr? boolean default `true`
---@field reuseport? boolean default `false`
---@field backlog? integer default 1024
---@field tls? net.TlsServerOptions a TLS server
---@field max_connections? integer connections held in a handshake or waiting for `accept`

---What `stream:socket_options()` reports, in the shape the options take (durations in ms).
---@class net.SocketOptionsInfo
---@field nodelay boolean
---@field keepalive false|{idle: number, interval: number, count: integer}
---@field recvbuf integer
---@field sendbuf integer
---@field linger false|0
---@field ttl integer

------------------------------------------------------------------------------------------------
-- Tasks and channels

---A task handle (`net.spawn`).
---@class net.Task
local Task = {}

---Waits for the task and returns its results, or re-raises its error value unchanged. Joining a
---cancelled task raises `cancelled: ...`. (waits)
---@return any ...
function Task:join() end

---Stops the task at its current wait point.
---@return boolean was_running
function Task:cancel() end

---@return net.TaskStatus
function Task:status() end

---A queue between tasks (`net.channel`).
---@class net.Channel
local Channel = {}

---Queues `value`; waits only when the channel is full. Raises `closed: ...` after `close`. (waits)
---@param value any
---@return true
function Channel:send(value) end

---The next value and `true`; `nil, false` once closed and drained. (waits)
---@return any value
---@return boolean ok
function Channel:receive() end

---Closes the channel; values sent before are still delivered.
function Channel:close() end

---@return integer queued the number of queued values
function Channel:len() end

------------------------------------------------------------------------------------------------
-- TCP, TLS and Unix streams

---@class net.tcp
net.tcp = {}

---Resolves `host` and connects (TLS with `tls`). `net.tcp.connect(host, port, true)` is
---`{tls = true}` (Lune). (waits)
---@param host string a name, an IPv4 or IPv6 literal (`[::1]` accepted)
---@param port number
---@param opts net.ConnectOptions|boolean?
---@return net.Stream
function net.tcp.connect(host, port, opts) end

---`net.tcp.connect(host, port, {timeout = ms})`. (waits)
---@param host string
---@param port number
---@param ms net.Duration
---@return net.Stream
function net.tcp.connect_timeout(host, port, ms) end

---Listens on `host:port` (host default `"0.0.0.0"`; port 0 picks one: read `listener.port`).
---Raises `addrinuse: ...` for a busy port.
---@param host string
---@param port number
---@param opts net.ListenOptions?
---@return net.Listener
---@overload fun(port: number, opts?: net.ListenOptions): net.Listener
function net.tcp.listen(host, port, opts) end

---@class net.unix
net.unix = {}

---Connects to a Unix socket (the same stream type, without TCP socket options). (waits)
---@param path string at most 107 bytes on Linux
---@param opts {timeout?: net.Duration}?
---@return net.Stream
function net.unix.connect(path, opts) end

---Listens on a Unix socket path; the file is removed when the listener is closed or collected.
---@param path string
---@return net.Listener
function net.unix.listen(path) end

---A TCP, TLS or Unix stream. Reads take what is buffered first, then wait.
---@class net.Stream
---@field localIp string the local address (Lune; `nil` on a Unix stream)
---@field localPort integer the local port (Lune; `nil` on a Unix stream)
---@field remoteIp string the peer's address (Lune; `nil` on a Unix stream)
---@field remotePort integer the peer's port (Lune; `nil` on a Unix stream)
local Stream = {}

---Up to `n` bytes (default 4096) as soon as any are there; `nil` at end of stream. (waits)
---@param n integer?
---@return string|nil
function Stream:read(n) end

---The next line without `\n` / `\r\n`; `nil` at the end. Over 1 MiB raises `limit: ...`. (waits)
---@return string|nil
function Stream:read_line() end

---Everything until the peer closes (`""` if nothing came); past `limit` (64 MiB) raises. (waits)
---@param limit integer?
---@return string
function Stream:read_all(limit) end

---Exactly `n` bytes; raises `closed: ...` if the stream ends first. (waits)
---@param n integer
---@return string
function Stream:read_exact(n) end

---A big-endian unsigned 32-bit integer; `nil` at a clean end of stream. (waits)
---@return integer|nil
function Stream:read_u32() end

---Writes all of `s`. (waits)
---@param s string
---@return integer written `#s`
function Stream:write(s) end

---The same as `write` (kept for CopperMoon scripts). (waits)
---@param s string
---@return integer written
function Stream:write_all(s) end

---Writes `n` (0..2^32-1) big-endian. (waits)
---@param n integer
---@return integer written 4
function Stream:write_u32(n) end

---Writes are not buffered in user space.
---@return true
function Stream:flush() end

---Bounds every later read and write; `nil` removes the bound.
---@param ms net.Duration?
function Stream:set_timeout(ms) end

---@return string addr `"ip:port"` (a Unix stream: the path)
function Stream:peer_addr() end

---@return string addr `"ip:port"`
function Stream:local_addr() end

---The protocol ALPN chose on a TLS stream, or `nil`.
---@return string|nil
function Stream:alpn() end

---Half-closes (`"write"`: the peer reads end of stream) or closes both ways.
---@param how net.ShutdownHow? default `"both"`
function Stream:shutdown(how) end

---`TCP_NODELAY` (TCP only).
---@param on boolean
function Stream:set_nodelay(on) end

---IP time-to-live (TCP only).
---@param n integer
function Stream:set_ttl(n) end

---`SO_KEEPALIVE` and its timers (TCP only).
---@param v boolean|net.KeepaliveOptions
function Stream:set_keepalive(v) end

---`SO_RCVBUF` in bytes (TCP only).
---@param bytes integer
function Stream:set_recvbuf(bytes) end

---`SO_SNDBUF` in bytes (TCP only).
---@param bytes integer
function Stream:set_sendbuf(bytes) end

---`0`: `close()` resets the connection; `false` or `nil`: graceful close (TCP only).
---@param v 0|false|nil
function Stream:set_linger(v) end

---What the kernel uses now (TCP only; a Unix stream raises `io: ...`).
---@return net.SocketOptionsInfo
function Stream:socket_options() end

---Closes; tasks waiting on the stream get `closed: ...`. Harmless twice.
function Stream:close() end

---A TCP, TLS or Unix listener.
---@class net.Listener
---@field ip string the address listened on (`nil` on a Unix listener)
---@field port integer the port listened on, the real one for port 0 (`nil` on a Unix listener)
local Listener = {}

---The next connection (TLS: its handshake done). Bounded by `set_timeout`. (waits)
---@return net.Stream
function Listener:accept() end

---@return string addr `"ip:port"`
function Listener:local_addr() end

---Bounds `accept`; `nil` removes the bound.
---@param ms net.Duration?
function Listener:set_timeout(ms) end

---Stops listening; tasks waiting in `accept` get `closed: ...`.
function Listener:close() end

------------------------------------------------------------------------------------------------
-- UDP

---@class net.udp
net.udp = {}

---@class net.UdpBindOptions
---@field reuseaddr? boolean default `false`
---@field reuseport? boolean
---@field broadcast? boolean

---Binds a UDP socket (host default `"0.0.0.0"`; port 0 picks one).
---@param host string
---@param port number
---@param opts net.UdpBindOptions?
---@return net.UdpSocket
---@overload fun(port: number, opts?: net.UdpBindOptions): net.UdpSocket
function net.udp.bind(host, port, opts) end

---@class net.UdpSocket
---@field ip string the bound address
---@field port integer the bound port
local UdpSocket = {}

---Sends one datagram; `host` may be a name. (waits)
---@param data string
---@param host string
---@param port number
---@return integer sent
function UdpSocket:send(data, host, port) end

---One datagram (truncated to `max`, default 65535) and its sender. (waits)
---@param max integer?
---@return string data
---@return string host
---@return integer port
function UdpSocket:recv(max) end

---Fixes the peer for `send_connected` / `recv_connected`. (waits)
---@param host string
---@param port number
function UdpSocket:connect(host, port) end

---(waits)
---@param data string
---@return integer sent
function UdpSocket:send_connected(data) end

---(waits)
---@param max integer?
---@return string data
function UdpSocket:recv_connected(max) end

---@param on boolean
function UdpSocket:set_broadcast(on) end

---Also sets the IPv4 multicast TTL.
---@param n integer
function UdpSocket:set_ttl(n) end

---IPv4: `iface` is the local interface address (default any); IPv6: the interface index.
---@param group string
---@param iface string|integer?
function UdpSocket:join_multicast(group, iface) end

---@param group string
---@param iface string|integer?
function UdpSocket:leave_multicast(group, iface) end

---Bounds later `recv` / `send`; `nil` removes the bound.
---@param ms net.Duration?
function UdpSocket:set_timeout(ms) end

---@return string addr `"ip:port"`
function UdpSocket:local_addr() end

function UdpSocket:close() end

------------------------------------------------------------------------------------------------
-- WebSocket (net.ws)

---@class net.ws
net.ws = {}

---@class net.WsConnectOptions: net.SocketOptions
---@field headers? table<string, string> extra request headers (`Host`, `User-Agent` can be overridden)
---@field protocols? string[] subprotocols to offer
---@field timeout? net.Duration covers connect, TLS and the upgrade
---@field max_message_size? integer default 16 MiB
---@field compress? boolean offer permessage-deflate (default `true`)
---@field tls? boolean|net.TlsOptions for `wss://`

---@class net.WsListenOptions: net.ListenOptions
---@field protocols? string[] subprotocols accepted, the server's preference first
---@field max_message_size? integer default 16 MiB
---@field compress? boolean accept permessage-deflate (default `true`)

---Connects to `ws://` or `wss://`; a refused upgrade raises `protocol: ...`. (waits)
---@param url string
---@param opts net.WsConnectOptions?
---@return net.WebSocket
function net.ws.connect(url, opts) end

---Listens for WebSocket upgrades (host default `"0.0.0.0"`); upgrades run in the background.
---@param host string
---@param port number
---@param opts net.WsListenOptions?
---@return net.WsListener
---@overload fun(port: number, opts?: net.WsListenOptions): net.WsListener
function net.ws.listen(host, port, opts) end

---An event-style server (seed 002): `on_connection`, then `start` or `listen`.
---@param addr string|integer `"host:port"`, `":port"` or a port number (host 127.0.0.1)
---@param opts net.WsListenOptions?
---@return net.ws.Server
function net.ws.server(addr, opts) end

---An event-style client (seed 002); connects in a task of its own.
---@param url string
---@param opts net.WsConnectOptions?
---@return net.ws.Client
function net.ws.client(url, opts) end

---A message from `ws:recv()`.
---@class net.WsMessage
---@field type net.WsMessageType
---@field data string
---@field code? integer a close frame's code
---@field reason? string a close frame's reason

---A WebSocket connection (client or accepted).
---@class net.WebSocket
---@field closeCode integer? after `close(code)` that code, else the peer's; 1005 none given; 1006 dropped; `nil` while open
---@field subprotocol string? the negotiated subprotocol
---@field extensions string? the negotiated `Sec-WebSocket-Extensions`
---@field path string? accepted connections: the upgrade request's path (percent-encoded)
---@field query string? accepted connections: the raw query string
---@field headers table<string, string>? accepted connections: the request headers, lower-case names (a new table on each read)
---@field request {method: string, path: string, query: net.Query, headers: table<string, string>}? accepted connections: the upgrade request as a `net.serve` request
local WebSocket = {}

---Sends a message: `kind` `"text"` (default; must be UTF-8), `"binary"`, or `true` for binary
---(Lune); `"ping"` / `"pong"` send those control frames, so a message `recv` returned can be
---echoed with its own `type`. (waits)
---@param data string
---@param kind "text"|"binary"|"ping"|"pong"|boolean?
function WebSocket:send(data, kind) end

---The next frame, or `nil` once the connection is over. (waits)
---@return net.WsMessage|nil
function WebSocket:recv() end

---The next text or binary payload, skipping control frames; `nil` at the end. (waits)
---@return string|nil
function WebSocket:next() end

---A ping (payload at most 125 bytes). (waits)
---@param payload string?
function WebSocket:ping(payload) end

---A pong (payload at most 125 bytes). (waits)
---@param payload string?
function WebSocket:pong(payload) end

---Sends the close frame; the close handshake finishes in the background. (waits)
---@param code integer? default 1000; 1000-4999
---@param reason string?
function WebSocket:close(code, reason) end

---Bounds later `recv` / `send`; `nil` removes the bound.
---@param ms net.Duration?
function WebSocket:set_timeout(ms) end

---@return string addr `"ip:port"`
function WebSocket:peer_addr() end

---@return string addr `"ip:port"`
function WebSocket:local_addr() end

---A WebSocket server (`net.ws.listen`).
---@class net.WsListener
---@field port integer the port listened on
local WsListener = {}

---The next upgraded connection. (waits)
---@return net.WebSocket
function WsListener:accept() end

---@return string addr `"ip:port"`
function WsListener:local_addr() end

---Bounds `accept`; `nil` removes the bound.
---@param ms net.Duration?
function WsListener:set_timeout(ms) end

---Stops accepting; ends upgrades in progress and closes connections nobody accepted.
function WsListener:close() end

------------------------------------------------------------------------------------------------
-- Event-style WebSockets (net.ws.server, net.ws.client)

---@class net.ws.Server
---@field host string the host listened on
---@field port integer the port (the real one after `start()`, for port 0)
local WsEventServer = {}

---Sets the function called with each new connection (in a task of its own).
---@param fn fun(socket: net.ws.Socket)
---@return net.ws.Server
function WsEventServer:on_connection(fn) end

---Listens and accepts in a task, and returns at once.
---@return net.ws.Server
function WsEventServer:start() end

---`start()`, then runs the loop (`net.run()`) until the server is closed.
function WsEventServer:listen() end

---Sends to every open connection (a table as JSON).
---@param data string|table
---@return integer reached how many connections it reached
function WsEventServer:broadcast(data) end

---Stops accepting and closes every connection.
function WsEventServer:close() end

---One connection of an event-style server.
---@class net.ws.Socket
---@field id integer 1, 2, ... in order of arrival
---@field ws net.WebSocket the underlying connection
local WsEventSocket = {}

---@param event "message"|"close"
---@param fn fun(data: string)|fun(code: integer?)
---@return net.ws.Socket
---@overload fun(self: net.ws.Socket, event: "message", fn: fun(data: string)): net.ws.Socket
---@overload fun(self: net.ws.Socket, event: "close", fn: fun(code: integer?)): net.ws.Socket
function WsEventSocket:on(event, fn) end

---Sends `data` (a table as JSON). (waits)
---@param data string|table
function WsEventSocket:send(data) end

---@param code integer?
---@param reason string?
function WsEventSocket:close(code, reason) end

---An event-style client (`net.ws.client`).
---@class net.ws.Client
---@field url string the URL it connects to
---@field ws net.WebSocket? the underlying connection, once open
local WsEventClient = {}

---@param event "open"|"message"|"close"|"error"
---@param fn function
---@return net.ws.Client
---@overload fun(self: net.ws.Client, event: "open", fn: fun()): net.ws.Client
---@overload fun(self: net.ws.Client, event: "message", fn: fun(data: string)): net.ws.Client
---@overload fun(self: net.ws.Client, event: "close", fn: fun(code: integer?)): net.ws.Client
---@overload fun(self: net.ws.Client, event: "error", fn: fun(err: string)): net.ws.Client
function WsEventClient:on(event, fn) end

---Sends `data` (a table as JSON); raises `closed: ...` before "open". (waits)
---@param data string|table
function WsEventClient:send(data) end

---@param code integer?
---@param reason string?
function WsEventClient:close(code, reason) end

------------------------------------------------------------------------------------------------
-- The Wippy facade (net.websocket, also require("net.websocket")): errors are returned

---@class net.websocket.CloseCodes
---@field NORMAL 1000
---@field GOING_AWAY 1001
---@field PROTOCOL_ERROR 1002
---@field UNSUPPORTED_DATA 1003
---@field RESERVED 1004
---@field NO_STATUS 1005
---@field ABNORMAL_CLOSURE 1006
---@field INVALID_PAYLOAD 1007
---@field POLICY_VIOLATION 1008
---@field MESSAGE_TOO_BIG 1009
---@field MANDATORY_EXTENSION 1010
---@field INTERNAL_ERROR 1011
---@field SERVICE_RESTART 1012
---@field TRY_AGAIN_LATER 1013
---@field BAD_GATEWAY 1014
---@field TLS_HANDSHAKE 1015

---@class net.websocket
---@field TYPE_TEXT "text"
---@field TYPE_BINARY "binary"
---@field TYPE_PING "ping"
---@field TYPE_PONG "pong"
---@field TYPE_CLOSE "close"
---@field CLOSE_CODES net.websocket.CloseCodes
net.websocket = {}

---@class net.websocket.Options
---@field headers? table<string, string> extra request headers
---@field protocols? string|string[] subprotocols to offer
---@field dial_timeout? net.Duration connect, TLS and upgrade together (default 45 s; 0: none)
---@field read_timeout? net.Duration end the connection (close 1011) after this long without a message
---@field write_timeout? net.Duration bounds each wait for the socket in `send`
---@field ping_interval? net.Duration a ping every interval
---@field pong_timeout? net.Duration with `ping_interval`: end the connection when no pong comes
---@field tls? boolean|net.TlsOptions for `wss://`
---@field max_message_size? integer default 16 MiB
---@field compress? boolean offer permessage-deflate (default `true`)

---Connects; returns `nil, err` instead of raising (wrong argument types still raise). (waits)
---@param url string `ws://` or `wss://`
---@param opts net.websocket.Options?
---@return net.websocket.Client|nil client
---@return string? err
function net.websocket.connect(url, opts) end

---@class net.websocket.Message
---@field type net.WsMessageType
---@field data string
---@field code? integer a close message's code
---@field reason? string a close message's reason (also in `data`)

---A facade client (`net.websocket.connect`).
---@class net.websocket.Client
---@field subprotocol string? the negotiated subprotocol
---@field extensions string? the negotiated extensions
local WebsocketClient = {}

---Sends a message (`type` default `"text"`; also binary, ping, pong). (waits)
---@param data string
---@param type net.WsMessageType?
---@return boolean ok
---@return string? err
function WebsocketClient:send(data, type) end

---Sends the close frame, stops the client's tasks and closes the receive channel. (waits)
---@param code integer? default 1000
---@param reason string?
---@return boolean ok
---@return string? err
function WebsocketClient:close(code, reason) end

---The receive channel: `ch:receive()` gives `net.websocket.Message, true`, then `nil, false`.
---@return net.Channel
function WebsocketClient:receive() end

------------------------------------------------------------------------------------------------
-- HTTP client

---@class net.http
net.http = {}

---A request body: a string, a function returning the next chunk (`nil` ends; sent chunked), or
---a file streamed with its length.
---@alias net.http.Body string|fun(): string?|{file: string}

---`net.request`'s options but `url`, `method` and `body` (which the helpers fill in).
---@class net.http.Options
---@field headers? table<string, string|number|string[]> a list value repeats the header
---@field query? table<string, string|number|string[]> form-encoded, appended to the URL's query
---@field timeout? net.Duration|false the whole request (default 30 s); `false`: none
---@field connect_timeout? net.Duration each connection attempt (default 10 s)
---@field tls? net.TlsOptions for `https`
---@field decompress? boolean gzip/deflate/br (default `true`)
---@field options? {decompress?: boolean} Lune's spelling of `decompress`
---@field redirects? integer|false how many redirects to follow (default 10)
---@field proxy? string|false `"http://[user:pass@]host:port"`, or `false` for none
---@field stream? boolean return at the head; read the body with `res:read()` / `res:lines()`

---@class net.RequestOptions: net.http.Options
---@field url string `http://` or `https://`
---@field method? string default `"GET"`
---@field body? net.http.Body

---@class net.http.DownloadOptions: net.http.Options
---@field on_progress? fun(done: integer, total: integer?) called after each piece
---@field progress? boolean draw a progress bar on stderr
---@field resume? boolean continue a partial file with `Range`

---A response of `net.request` (a table with methods).
---@class net.http.Response
---@field ok boolean status 200-299
---@field status integer
---@field statusCode integer the same as `status` (Lune)
---@field statusMessage string e.g. `"Not Found"`
---@field headers table<string, string> lower-case names; a header that came more than once (`set-cookie`) is a list of its values
---@field body string `""` when empty; absent (`nil`) with `stream = true`
---@field url string after redirects
---@field version "1.1"|"2"
---@field bytes integer? `net.http.download`: bytes written by this call
local Response = {}

---The body decoded by `net.json.decode`.
---@return any
function Response:json() end

---@return string? body
function Response:text() end

---@return boolean ok
function Response:is_success() end

---With `stream = true`: the next piece of the body (at most `n` bytes), `nil` at its end. (waits)
---@param n integer?
---@return string|nil
function Response:read(n) end

---With `stream = true`: an iterator over the body's lines (without `\n` / `\r\n`). (waits)
---@return fun(): string?
function Response:lines() end

---Drops the rest of a streamed body (the connection is not reused).
function Response:close() end

---GET `url`. (waits)
---@param url string
---@param opts net.http.Options?
---@return net.http.Response
function net.http.get(url, opts) end

---HEAD `url`. (waits)
---@param url string
---@param opts net.http.Options?
---@return net.http.Response
function net.http.head(url, opts) end

---DELETE `url`. (waits)
---@param url string
---@param opts net.http.Options?
---@return net.http.Response
function net.http.delete(url, opts) end

---POST `body` to `url` (waits); without a body, a builder (`net.http.post(url):json(t):send()`).
---@param url string
---@param body net.http.Body
---@param opts net.http.Options?
---@return net.http.Response
---@overload fun(url: string): net.http.Builder
function net.http.post(url, body, opts) end

---PUT `body` to `url` (waits); without a body, a builder.
---@param url string
---@param body net.http.Body
---@param opts net.http.Options?
---@return net.http.Response
---@overload fun(url: string): net.http.Builder
function net.http.put(url, body, opts) end

---PATCH `body` to `url` (waits); without a body, a builder.
---@param url string
---@param body net.http.Body
---@param opts net.http.Options?
---@return net.http.Response
---@overload fun(url: string): net.http.Builder
function net.http.patch(url, body, opts) end

---A request builder; every method but `send` returns the builder.
---@param url string
---@return net.http.Builder
function net.http.request(url) end

---Streams the body to `path`; returns the response without `body`, with `bytes`. (waits)
---@param url string
---@param path string
---@param opts net.http.DownloadOptions?
---@return net.http.Response
function net.http.download(url, path, opts) end

---@class net.http.Builder
---@field opts net.RequestOptions the `net.request` options built so far
local Builder = {}

---@param m string
---@return net.http.Builder
function Builder:method(m) end

---@param name string
---@param value string|number|string[]
---@return net.http.Builder
function Builder:header(name, value) end

---@param t table<string, string|number|string[]>
---@return net.http.Builder
function Builder:headers(t) end

---Adds a query parameter (repeatable).
---@param k string
---@param v string|number
---@return net.http.Builder
function Builder:query(k, v) end

---@param b net.http.Body
---@return net.http.Builder
function Builder:body(b) end

---Encodes `t` as the body, `content-type: application/json` unless set.
---@param t any
---@return net.http.Builder
function Builder:json(t) end

---@param ms net.Duration|false
---@return net.http.Builder
function Builder:timeout(ms) end

---@param t net.TlsOptions
---@return net.http.Builder
function Builder:tls(t) end

---Any other `net.request` option.
---@param k string
---@param v any
---@return net.http.Builder
function Builder:option(k, v) end

---Sends the request. (waits)
---@return net.http.Response
function Builder:send() end

------------------------------------------------------------------------------------------------
-- HTTP server (net.serve)

---@class net.ServeLimits
---@field header_bytes? integer request line and headers (default 16384; `431` above)
---@field body_bytes? integer|false default 16 MiB (`413` above); `false`: none
---@field header_timeout? net.Duration default 30 s (`408`)
---@field idle_timeout? net.Duration a keep-alive connection's wait for its next request (default 60 s)
---@field connections? integer served at once (default 10000)

---@class net.ServeWebSocketOptions
---@field protocols? string[]
---@field compress? boolean default `true`
---@field max_message_size? integer default 16 MiB

---@class net.ServeConfig: net.ListenOptions
---@field handleRequest? net.http.Handler
---@field handleWebSocket? fun(ws: net.WebSocket) upgrade requests (runs as a task)
---@field address? string default `"127.0.0.1"` (`"http://0.0.0.0"` works)
---@field limits? net.ServeLimits
---@field websocket? net.ServeWebSocketOptions
---@field stream? boolean handlers read bodies themselves (`req:read()`, `req:lines()`)

---What a handler returns: a string (200, text/plain), or a response table.
---@alias net.http.HandlerResult string|{status?: integer, headers?: table<string, string|number|string[]>, body?: string|fun(): string?}

---@alias net.http.Handler fun(req: net.http.Request): net.http.HandlerResult

---The request a `net.serve` handler gets (a table).
---@class net.http.Request
---@field method string upper case
---@field path string as sent, percent-encoded, without the query
---@field query net.Query decoded
---@field headers table<string, string> lower-case names; repeated ones joined with `", "`
---@field body string the whole body (`""` when none); absent (`nil`) with `stream = true`
---@field ip string the peer's address
---@field port integer the peer's port
---@field version "1.1"|"2"
local Request = {}

---With `stream = true`: the next piece of the body, `nil` at its end. (waits)
---@param n integer?
---@return string|nil
function Request:read(n) end

---With `stream = true`: an iterator over the body's lines. (waits)
---@return fun(): string?
function Request:lines() end

---With `stream = true`: drops the rest of the body.
function Request:close() end

---A running server (`net.serve`, `app:serve`).
---@class net.http.Handle
---@field ip string
---@field port integer
local Handle = {}

---Stops listening, lets requests in flight finish (10 s at most). A second call raises `closed: ...`.
function Handle:stop() end

---`stop()` that is harmless twice (and `<close>` on Lua 5.4).
function Handle:close() end

------------------------------------------------------------------------------------------------
-- Router (net.http.server)

---An Express-style app on `net.serve`.
---@param addr string|integer? `"host:port"`, `"[v6]:port"`, `":port"` or a port (default 127.0.0.1:8080)
---@param opts net.ServeConfig?
---@return net.http.App
function net.http.server(addr, opts) end

---@class net.http.ServerClass
net.http.Server = {}

---Seed 002's spelling of `net.http.server`.
---@param addr string|integer?
---@param opts net.ServeConfig?
---@return net.http.App
function net.http.Server.new(addr, opts) end

---`next()` runs the next matching layer; `next(err)` skips to error middleware; `next("route")`
---skips the rest of the route's handlers.
---@alias net.http.Next fun(err?: any)
---A handler or middleware (what it returns is ignored).
---@alias net.http.Middleware fun(req: net.http.Req, res: net.http.Res, next: net.http.Next): any
---Error middleware: declared with exactly four parameters (or given to `app:catch`).
---@alias net.http.ErrorMiddleware fun(err: any, req: net.http.Req, res: net.http.Res, next: net.http.Next): any

---@class net.http.StaticOptions
---@field index? string|false the file served for a directory (default `"index.html"`)
---@field dotfiles? boolean serve names that start with `.` (default `false`)
---@field max_age? integer whole seconds: `Cache-Control: public, max-age=N`

---@class net.http.App
local App = {}

---Middleware for every method, optionally under a path prefix; a function of exactly four
---parameters is error middleware.
---@param prefix string
---@param fn net.http.Middleware|net.http.ErrorMiddleware
---@param ... net.http.Middleware|net.http.ErrorMiddleware
---@return net.http.App
---@overload fun(self: net.http.App, fn: net.http.Middleware|net.http.ErrorMiddleware, ...: net.http.Middleware|net.http.ErrorMiddleware): net.http.App
function App:use(prefix, fn, ...) end

---Error middleware, whatever its shape.
---@param prefix string
---@param fn net.http.ErrorMiddleware
---@param ... net.http.ErrorMiddleware
---@return net.http.App
---@overload fun(self: net.http.App, fn: net.http.ErrorMiddleware, ...: net.http.ErrorMiddleware): net.http.App
function App:catch(prefix, fn, ...) end

---@param path string `/users/:id`, `/static/*`, `*`
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:get(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:post(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:put(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:patch(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:delete(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:head(path, fn, ...) end

---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:options(path, fn, ...) end

---A route for every method.
---@param path string
---@param fn net.http.Middleware
---@param ... net.http.Middleware
---@return net.http.App
function App:all(path, fn, ...) end

---Serves the files under `dir` at `prefix` (GET and HEAD).
---@param prefix string
---@param dir string
---@param opts net.http.StaticOptions?
---@return net.http.App
function App:static(prefix, dir, opts) end

---The request handler the app gives `net.serve` (also callable with a request table, to test).
---@return fun(req: table): {status: integer, headers: table, body: any}
function App:handler() end

---Starts serving and returns at once.
---@param addr string|integer?
---@param opts net.ServeConfig?
---@return net.http.Handle
function App:serve(addr, opts) end

---Serves, calls `fn(handle)` once listening, then runs the loop (`net.run()`).
---@param addr string|integer?
---@param opts net.ServeConfig?
---@param fn fun(handle: net.http.Handle)?
---@return net.http.Handle
---@overload fun(self: net.http.App, fn?: fun(handle: net.http.Handle)): net.http.Handle
---@overload fun(self: net.http.App, addr: string|integer, fn?: fun(handle: net.http.Handle)): net.http.Handle
function App:listen(addr, opts, fn) end

---The router's request: `net.serve`'s request fields, with `params`, `header` and `json` (and,
---with `stream = true`, `read`, `lines` and `close` as on `net.http.Request`).
---@class net.http.Req
---@field method string upper case
---@field path string as sent, percent-encoded, without the query
---@field query net.Query decoded
---@field headers table<string, string> lower-case names
---@field body string the whole body; absent (`nil`) with `stream = true`
---@field ip string the peer's address
---@field port integer the peer's port
---@field version "1.1"|"2"
---@field params table<string|integer, string> the matched route's parameters (`:name`; `*` as 1, 2, ...; `nil` before a route matched)
---@field read? fun(self: net.http.Req, n?: integer): string? with `stream = true`: the next piece of the body
---@field lines? fun(self: net.http.Req): fun(): string? with `stream = true`: the body's lines
---@field close? fun(self: net.http.Req) with `stream = true`: drops the rest of the body
---@field [string] any handlers may add their own fields (`req.user`)
local Req = {}

---A request header, any case of `name`.
---@param name string
---@return string|nil
function Req:header(name) end

---The body decoded as JSON, once; an invalid body raises `protocol: ...` (unhandled: 400).
---@return any
function Req:json() end

---The router's response; methods return `res`, so they chain.
---@class net.http.Res
---@field statusCode integer the status so far (200 until set)
---@field sent boolean `true` once a body was chosen
local Res = {}

---@param code integer 100-599
---@return net.http.Res
function Res:status(code) end

---Sets a header (`nil` removes it; a list repeats it).
---@param name string
---@param value string|number|string[]|nil
---@return net.http.Res
function Res:header(name, value) end

---`res:header(k, v)` for each pair of `t`.
---@param t table<string, string|number|string[]>
---@return net.http.Res
function Res:headers(t) end

---A header set so far.
---@param name string
---@return string|number|string[]|nil
function Res:get(name) end

---The body `net.json.encode(value)` as `application/json`.
---@param value any
---@return net.http.Res
function Res:json(value) end

---@param s string
---@return net.http.Res
function Res:html(s) end

---@param s string
---@return net.http.Res
function Res:text(s) end

---A string (text/html unless set), a table (as JSON), a chunk function, or nothing (empty body).
---@param body string|table|fun(): string?|nil
---@return net.http.Res
function Res:send(body) end

---`Location: url` with a 302 (or `status`); `res:redirect(301, url)` works too.
---@param url string
---@param status integer?
---@return net.http.Res
---@overload fun(self: net.http.Res, status: integer, url: string): net.http.Res
function Res:redirect(url, status) end

------------------------------------------------------------------------------------------------
-- JSON and URLs

---@class net.json
---@field null lightuserdata the JSON null sentinel (`nil` and `null` encode as `null`)
net.json = {}

---Encodes a value; tables with keys exactly 1..n are arrays, others objects (keys sorted).
---@param value any
---@return string
function net.json.encode(value) end

---Decodes JSON; `null` is `net.json.null`, `[]` an empty table marked as an array. Raises
---`protocol: invalid JSON: ...`.
---@param s string
---@return any
function net.json.decode(s) end

---Marks `t` (or a new table) as an array, so an empty one encodes as `[]`.
---@generic T: table
---@param t T?
---@return T
function net.json.array(t) end

---@class net.url
net.url = {}

---@class net.url.Parts
---@field scheme string
---@field host string lower-cased; IPv6 without brackets
---@field port integer? the scheme's default when absent
---@field path string percent-encoded
---@field query string? raw, without `?`
---@field fragment string?
---@field user string? percent-decoded
---@field password string? percent-decoded

---Parses a URL by the WHATWG rules; raises `protocol: invalid URL ...`.
---@param url string
---@param binary boolean?
---@return net.url.Parts
function net.url.parse(url, binary) end

---A form-encoded query string as a table (`+` is a space; repeated keys give lists).
---@param q string
---@param binary boolean?
---@return net.Query
function net.url.query(q, binary) end

------------------------------------------------------------------------------------------------
-- Callback facade (net.TCPSocket, net.TCPServer)

---@class net.TCPSocketCallbacks
---@field connected? fun() the connection is open
---@field data? fun(data: string) a chunk read (up to 64 KiB)
---@field disconnected? fun() the connection ended (once)
---@field error? fun(err: string) it could not connect, or broke

---@class net.TCPServerCallbacks
---@field started? fun() listening (`server.port` is set)
---@field connected? fun(client_id: integer) a client connected
---@field data? fun(client_id: integer, data: string) a chunk from a client
---@field disconnected? fun(client_id: integer) a client left
---@field error? fun(err: string, client_id: integer?) it could not listen, or a client's connection broke

---A callback-driven TCP client, not connected yet.
---@return net.TCPSocket
function net.TCPSocket() end

---A callback-driven TCP server, not listening yet.
---@return net.TCPServer
function net.TCPServer() end

---@class net.TCPSocket
---@field connected boolean `true` while the connection is open
local TCPSocket = {}

---Connects in a task; nothing raises afterwards (failures go to `callbacks.error`).
---@param host string
---@param port number
---@param callbacks net.TCPSocketCallbacks?
---@return net.TCPSocket
function TCPSocket:connect(host, port, callbacks) end

---Writes `data` (queued until connected); `false, err` on a closed socket.
---@param data string|number
---@return boolean ok
---@return string? err
function TCPSocket:send(data) end

---Closes; `disconnected()` follows.
function TCPSocket:disconnect() end

---@class net.TCPServer
---@field port integer? the port, once `started()` ran
local TCPServer = {}

---Listens in a task; nothing raises afterwards (failures go to `callbacks.error`).
---@param host string
---@param port number 0 picks one
---@param callbacks net.TCPServerCallbacks?
---@return net.TCPServer
function TCPServer:listen(host, port, callbacks) end

---Writes to client `client_id`; `false, err` for an unknown or gone client.
---@param client_id integer
---@param data string|number
---@return boolean ok
---@return string? err
function TCPServer:send(client_id, data) end

---Closes that client's connection; `false` if there is no such client.
---@param client_id integer
---@return boolean
function TCPServer:disconnect(client_id) end

---Stops listening and disconnects every client.
function TCPServer:stop() end

------------------------------------------------------------------------------------------------
-- Packet capture (net.capture)

---@class net.capture
net.capture = {}

---@class net.capture.OpenOptions
---@field filter? string a tcpdump-style filter, e.g. `"tcp port 80"`
---@field promiscuous? boolean also see traffic for other hosts (one interface, not `"any"`)
---@field snaplen? integer bytes kept of each frame, 64..262144 (default 262144)
---@field recvbuf? integer the kernel's buffer in bytes (default 2 MiB)

---Opens a capture on `iface` (`"lo"`, `"eth0"`; `nil` or `"any"`: every interface). Raises
---`permission: ...` without root or CAP_NET_RAW, `unsupported: ...` off Linux.
---@param iface string?
---@param opts net.capture.OpenOptions?
---@return net.capture.Capture
function net.capture.open(iface, opts) end

---A captured packet.
---@class net.capture.Packet
---@field protocol string `"TCP"`, `"UDP"`, `"ICMP"`, `"ICMPv6"`, `"ARP"`, `"IPv4"`, `"IPv6"`, `"other"`
---@field src string? source IP address
---@field dst string? destination IP address
---@field src_port integer? TCP and UDP only
---@field dst_port integer? TCP and UDP only
---@field size integer the frame's length on the wire
---@field data string the captured frame, link header included (at most `snaplen` bytes)
---@field time number when the kernel received it, seconds since the Unix epoch
---@field iface string the interface name
---@field flags string? TCP only: the set flags, comma-separated (`"SYN,ACK"`)
---@field payload string? what TCP, UDP or ICMP carries, as captured
---@field length integer? the payload's length on the wire
---@field direction "in"|"out"
---@field ip_version integer? 4 or 6
---@field ip_protocol integer? the IP protocol number
---@field icmp_type integer? ICMP and ICMPv6 only
---@field icmp_code integer? ICMP and ICMPv6 only

---@class net.capture.Stats
---@field received integer
---@field dropped integer
---@field delivered integer

---@class net.capture.Capture
---@field iface string
---@field filter string?
---@field snaplen integer
local Capture = {}

---Sets the callback `fn(packet)` for `start`.
---@param fn fun(p: net.capture.Packet)
---@return net.capture.Capture
function Capture:on_packet(fn) end

---Starts a task that calls the `on_packet` function for each packet; returns at once.
---@return net.capture.Capture
function Capture:start() end

---Ends that task; the capture stays open.
---@return net.capture.Capture
function Capture:stop() end

---The next packet; `nil` if the capture is closed while waiting. `timeout` in milliseconds (or a
---duration string); when it expires it raises `timeout: ...`. (waits)
---@param timeout net.Duration?
---@return net.capture.Packet|nil
function Capture:next(timeout) end

---Closes the capture.
function Capture:close() end

---@return net.capture.Stats
function Capture:stats() end

return net
