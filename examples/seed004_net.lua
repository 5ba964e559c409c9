-- Seed 004's (Lune's) reference fragments, run in order against peers this script starts on
-- 127.0.0.1: ServeConfig (an address and handleWebSocket), net.socket, FetchParams (query,
-- options), TcpConfig (TLS shorthand, TLS table, TTL), the TcpStream example, urlEncode and
-- urlDecode. (Seed 004's example flow is examples/lune_net.lua.)
--
--   lua5.4 examples/seed004_net.lua
--
-- The seed talks to example.com and 192.168.1.100. The TLS part needs the `openssl` command to
-- make a throw-away certificate for localhost; without it that part is skipped.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in

-- ServeConfig: an address (Lune's URL form), handleRequest and handleWebSocket.
local server = net.serve(0, {
	address = "http://127.0.0.1", -- the seed serves on "http://0.0.0.0" (every interface)
	handleRequest = function(request)
		return {
			status = 200,
			body = "Echo:\n" .. request.body,
		}
	end,
	handleWebSocket = function(socket)
		-- Lune's WebSocket: next() until nil, send(), close()
		while true do
			local message = socket:next()
			if message == nil then break end
			if message == "bye" then socket:close(4000); break end
			socket:send("you said " .. message)
		end
	end,
})
local base = "http://127.0.0.1:" .. server.port

-- net.request with FetchParams: method, body, query and options
local response = net.request({
	url = base .. "/echo",
	method = "POST",
	body = "hello",
	query = { page = "1", q = "lua net" },
	options = { decompress = true },
})
print(response.ok, response.statusCode, response.statusMessage)
print(response.body)

-- net.socket: the WebSocket handle
local socket = net.socket("ws://127.0.0.1:" .. server.port .. "/ws")
socket:send("hi")
print(socket:next())
print("closeCode while open:", socket.closeCode)
socket:send("bye") -- the server closes with 4000
print("next after the close:", socket:next())
print("closeCode:", socket.closeCode)
print("send on a closed socket:", pcall(socket.send, socket, "late"))

-- TcpStream: the plain TCP example, against the HTTP server above
local conn = net.tcp.connect("127.0.0.1", server.port)
conn:write("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
local response = conn:read()
print((response:match("^[^\r]*"))) -- the status line of what read() returned
conn:close()

-- TcpConfig: connection with custom TTL (a plain connection, tls = false)
local stream = net.tcp.connect("127.0.0.1", server.port, {
	tls = false,
	ttl = 128
})
print("ttl:", stream:socket_options().ttl)
stream:close()

-- TcpConfig: TLS, against a local TLS server with a throw-away self-signed certificate.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
	.. " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
	.. " -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1"):format(dir, dir))
local cert = io.open(dir .. "/cert.pem")
if not cert then
	print("TLS part skipped: the openssl command made no certificate")
else
	cert:close()
	local tls_server = net.tcp.listen("127.0.0.1", 0, { tls = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" } })
	net.spawn(function()
		while true do
			local ok, c = pcall(tls_server.accept, tls_server)
			if not ok then break end
			c:write("hello over TLS\n")
			c:close()
		end
	end)
	-- TLS connection (shorthand) and (explicit config): verified against the system's CAs, which
	-- do not know this certificate, so both fail. That verification is the point of TLS.
	print("shorthand:", pcall(net.tcp.connect, "localhost", tls_server.port, true))
	print("explicit:", pcall(net.tcp.connect, "localhost", tls_server.port, { tls = true }))
	-- Trusting the certificate (an extension of net: the TLS table) makes it work.
	local secure = net.tcp.connect("localhost", tls_server.port, { tls = { ca_file = dir .. "/cert.pem" } })
	print(tostring(secure):match("^%a+"), secure:read_line())
	secure:close()
	tls_server:close()
end
os.remove(dir .. "/cert.pem")
os.remove(dir .. "/key.pem")
os.remove(dir)

-- urlEncode / urlDecode
print(net.urlEncode("a b&c/ü"))
print(net.urlDecode("a%20b%26c%2F%C3%BC"))
print(net.urlEncode("\255\0", true)) -- binary: bytes that are not UTF-8
print(#net.urlDecode("%FF%00", true))

server:stop()
