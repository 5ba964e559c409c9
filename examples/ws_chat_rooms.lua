-- Seed 002's "Real-time Chat Application", in Lua: a multi-room WebSocket chat server with
-- history, private messages and typing notices, on the event-style net.ws.server. Clients send
-- JSON: {"type":"join","name":"ann","room":"lua"}, {"type":"message","text":"hi"},
-- {"type":"private","to":"bob","text":"psst"}, {"type":"typing"}.
--
--   lua5.4 examples/ws_chat_rooms.lua [port]      serve on 127.0.0.1:port (default 8080) until Ctrl-C
--   lua5.4 examples/ws_chat_rooms.lua --selftest  a free port; four scripted clients check it, exit
--
-- The seed serves on 0.0.0.0:8080; this server listens on 127.0.0.1 only. Its peers are the
-- self-test's clients, or any WebSocket client at ws://127.0.0.1:PORT/.
local net = require("net")
local pcall = net.pcall -- the built-in pcall, except on Lua 5.1, whose pcall a task cannot wait in
io.stdout:setvbuf("line") -- each line at once, even into a pipe

local selftest = arg[1] == "--selftest"
local port = selftest and 0 or tonumber(arg[1]) or 8080
local json, parse_json = net.json.encode, net.json.decode
local function current_datetime() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

local server = net.ws.server("127.0.0.1:" .. port)
local rooms = {}
local users = {}

-- The seed's get_room_history and save_message: the last 50 messages of each room, in memory.
local histories = {}
local function get_room_history(room_id)
    return histories[room_id] or net.json.array()
end
local function save_message(room_id, message)
    local h = histories[room_id] or net.json.array()
    histories[room_id] = h
    h[#h + 1] = message
    if #h > 50 then table.remove(h, 1) end
end

local function find_user_by_name(name)
    for _, user in pairs(users) do
        if user.name == name then return user end
    end
end

local function broadcast_to_room(room_id, message, exclude_user)
    if rooms[room_id] then
        for _, user_id in ipairs(rooms[room_id]) do
            if user_id ~= exclude_user then
                -- pcall (not in the seed): a member whose connection is closing, and whose "close"
                -- handler has not run yet, raises `closed: ...`, and the rest must still get it
                local socket = users[user_id].socket
                pcall(socket.send, socket, message)
            end
        end
    end
end

server:on_connection(function(socket)
    local user = {
        id = socket.id, -- the seed's generate_id(): the server numbers its connections
        socket = socket,
        name = nil,
        room = nil,
        joined_at = current_datetime()
    }

    users[user.id] = user

    socket:send(json({
        type = "welcome",
        user_id = user.id,
        message = "Welcome to chat! Send /help for commands"
    }))

    socket:on("message", function(data)
        local msg = parse_json(data)

        if msg.type == "join" then
            user.name = msg.name
            user.room = msg.room

            -- Add user to room
            if not rooms[msg.room] then
                rooms[msg.room] = {}
            end
            table.insert(rooms[msg.room], user.id)
            print(user.name .. " joined " .. msg.room)

            -- Notify room
            broadcast_to_room(msg.room, json({
                type = "user_joined",
                user = user.name,
                time = current_datetime()
            }))

            -- Send room history
            local history = get_room_history(msg.room)
            socket:send(json({
                type = "history",
                messages = history
            }))

        elseif msg.type == "message" then
            local chat_msg = {
                type = "message",
                user = user.name,
                text = msg.text,
                time = current_datetime()
            }

            -- Save to history
            save_message(user.room, chat_msg)

            -- Broadcast to room
            broadcast_to_room(user.room, json(chat_msg))

        elseif msg.type == "private" then
            local target = find_user_by_name(msg.to)
            if target then
                target.socket:send(json({
                    type = "private",
                    from = user.name,
                    text = msg.text,
                    time = current_datetime()
                }))
            end

        elseif msg.type == "typing" then
            broadcast_to_room(user.room, json({
                type = "typing",
                user = user.name
            }), user.id)
        end
    end)

    socket:on("close", function()
        -- Remove from room
        if user.room and rooms[user.room] then
            local others = {}
            for _, id in ipairs(rooms[user.room]) do
                if id ~= user.id then others[#others + 1] = id end
            end
            rooms[user.room] = others

            broadcast_to_room(user.room, json({
                type = "user_left",
                user = user.name,
                time = current_datetime()
            }))
            print(tostring(user.name) .. " left " .. user.room)
        end

        users[user.id] = nil
    end)
end)

if not selftest then
    server:start()
    print(("Chat server running on ws://127.0.0.1:%d"):format(server.port))
    server:listen()
    return
end

-- Self-test: scripted clients (plain net.ws connections) walk through every message type.
server:start()
local url = ("ws://127.0.0.1:%d/"):format(server.port)
print("Chat server running on " .. url)
local failures = 0
local function check(what, ok)
    print(("%s %s"):format(ok and "ok  " or "FAIL", what))
    if not ok then failures = failures + 1 end
end
local function recv_json(ws)
    local msg = ws:recv()
    return msg and msg.type == "text" and parse_json(msg.data) or {}
end
local function join(name, room)
    local ws = net.ws.connect(url, { timeout = 5000 })
    ws:set_timeout(5000)
    local welcome = recv_json(ws)
    ws:send(json({ type = "join", name = name, room = room }))
    local joined = recv_json(ws)
    local history = recv_json(ws)
    check(name .. " is welcomed, sees their own join in " .. room .. " and the history",
        welcome.type == "welcome" and joined.type == "user_joined" and joined.user == name
        and history.type == "history")
    return ws, history.messages
end

local test = net.spawn(function()
    local alice = join("alice", "lua")
    local bob = join("bob", "lua")
    local m = recv_json(alice)
    check("alice hears that bob joined", m.type == "user_joined" and m.user == "bob")
    local carol = join("carol", "rust")

    alice:send(json({ type = "message", text = "hello lua" }))
    m = recv_json(alice)
    check("alice gets her own message", m.type == "message" and m.user == "alice" and m.text == "hello lua")
    m = recv_json(bob)
    check("bob gets alice's message", m.type == "message" and m.user == "alice")

    bob:send(json({ type = "typing" }))
    m = recv_json(alice)
    check("alice sees bob typing", m.type == "typing" and m.user == "bob")

    carol:send(json({ type = "private", to = "alice", text = "psst" }))
    m = recv_json(alice)
    check("alice gets carol's private message", m.type == "private" and m.from == "carol" and m.text == "psst")
    carol:set_timeout(200)
    check("carol (another room) got nothing of lua's", not pcall(carol.recv, carol))

    bob:close()
    while bob:recv() do end
    m = recv_json(alice)
    check("alice hears that bob left", m.type == "user_left" and m.user == "bob")

    local dave, history = join("dave", "lua")
    check("dave gets lua's history", #history == 1 and history[1].text == "hello lua" and history[1].user == "alice")
    m = recv_json(alice)
    check("alice hears that dave joined", m.type == "user_joined" and m.user == "dave")

    for _, ws in ipairs({ alice, carol, dave }) do ws:close() end
    server:close()
end)
server:listen() -- runs the loop until the test closed the server and every connection ended
test:join()
print(failures == 0 and "selftest passed" or ("selftest: %d checks failed"):format(failures))
os.exit(failures == 0 and 0 or 1)
