-- Seed 002's "HTTP Client", in Lua: a GET decoded as JSON, a POST built with :json(), a request
-- built step by step (method, headers, query, timeout) with its success check, and a download
-- with a progress callback.
--
--   lua5.4 examples/http_client.lua
--
-- The seed talks to api.example.com and example.com; the peer here is a small API this script
-- serves itself with net.serve on a free port of 127.0.0.1. The download goes to a temporary
-- file, removed at the end.
local net = require("net")

-- The local peer: the seed's api.example.com in a few lines.
local token = "s3cret"
local api = net.serve(0, function(req)
	local function json(status, value)
		return { status = status, headers = { ["Content-Type"] = "application/json" }, body = net.json.encode(value) }
	end
	if req.path == "/data" and req.headers["authorization"] == nil then
		return json(200, { items = { "a", "b", "c" } })
	elseif req.path == "/data" then
		if req.headers["authorization"] ~= "Bearer " .. token then
			return { status = 401, body = "bad token" }
		end
		return json(200, { page = tonumber(req.query.page), limit = tonumber(req.query.limit),
			agent = req.headers["user-agent"], items = { "x", "y" } })
	elseif req.path == "/users" and req.method == "POST" then
		local user = net.json.decode(req.body)
		user.id = 7
		return json(201, user)
	elseif req.path == "/big-file.zip" then
		return { status = 200, headers = { ["Content-Type"] = "application/zip" }, body = ("z"):rep(300000) }
	end
	return { status = 404, body = "not found" }
end)
local base = "http://127.0.0.1:" .. api.port

-- Simple GET request
local response = net.http.get(base .. "/data")
local data = response:json()
print(("Got %d items"):format(#data.items))

-- POST with JSON
local user = {
	name = "Alice",
	email = "alice@example.com"
}
local response = net.http.post(base .. "/users")
	:json(user)
	:send()
print("created:", response.status, response:json().id, response:json().name)

-- Advanced requests
local function process_data(data)
	print(("page %d, limit %d, agent %s, %d items"):format(data.page, data.limit, data.agent, #data.items))
end
for _, t in ipairs({ token, "wrong" }) do
	local response = net.http.request(base .. "/data")
		:method("GET")
		:header("Authorization", "Bearer " .. t)
		:header("User-Agent", "Ruchy/1.0")
		:query("page", 1)
		:query("limit", 100)
		:timeout(5000)
		:send()

	if response:is_success() then
		local data = response:json()
		process_data(data)
	else
		print(("Error: %d - %s"):format(response.status, response:text()))
	end
end

-- Download file with progress (the seed: download(url, path).on_progress(fn).await())
local path = os.tmpname()
local last = -1
local result = net.http.download(base .. "/big-file.zip", path, {
	on_progress = function(downloaded, total)
		local percent = (downloaded / total) * 100
		if percent - last >= 25 or downloaded == total then -- a few updates, not one per piece
			last = percent
			io.write(("\rDownloading: %.1f%%"):format(percent))
		end
	end,
})
print()
local f = assert(io.open(path, "rb"))
local size = #f:read("*a")
f:close()
os.remove(path)
print(("downloaded %d bytes, status %d, file size %d"):format(result.bytes, result.status, size))

api:stop()
