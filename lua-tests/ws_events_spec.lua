-- Seed 002's event-style WebSockets (net.ws.server / net.ws.client, src/lua/ws_events.lua):
-- handlers for connection, message, close, open and error, broadcast to every client, tables
-- sent as JSON, a raising handler reported without ending the connection, against net's own
-- clients and Python's `websockets`.
local helper = require("helper")
local net = helper.net

describe("net.ws.server / net.ws.client", function()
  it("delivers open, message and close, and broadcasts tables as JSON", function()
    helper.bounded(10, function()
      local server = net.ws.server("127.0.0.1:0")
      local joined, left = {}, {}
      server:on_connection(function(socket)
        joined[#joined + 1] = socket.id
        socket:send({ type = "welcome", id = socket.id })
        socket:on("message", function(data)
          if data == "boom" then error("handler broke") end
          server:broadcast({ from = socket.id, text = data })
        end)
        socket:on("close", function() left[#left + 1] = socket.id end)
      end)
      server:start()
      local url = "ws://127.0.0.1:" .. server.port .. "/"
      local got = { {}, {} }
      local clients = {}
      for i = 1, 2 do
        local c = net.ws.client(url)
        c:on("message", function(data) got[i][#got[i] + 1] = net.json.decode(data) end)
        c:on("open", function() if i == 2 then c:send("boom"); c:send("hello") end end)
        clients[i] = c
      end
      helper.wait_until(5, function() return #got[1] >= 2 and #got[2] >= 2 end)
      assert.equal("welcome", got[1][1].type)
      assert.same({ from = 2, text = "hello" }, got[1][2]) -- the raising handler did not end it
      assert.same({ from = 2, text = "hello" }, got[2][2])
      clients[1]:close()
      helper.wait_until(5, function() return #left == 1 end)
      assert.same({ 1, 2 }, joined)
      server:close()
      helper.wait_until(5, function() return #left == 2 end)
    end)
  end)

  it("reports a refused connection to the client's error handler", function()
    helper.bounded(5, function()
      local err
      local c = net.ws.client("ws://127.0.0.1:" .. helper.free_port() .. "/")
      c:on("error", function(e) err = e end)
      helper.wait_until(3, function() return err ~= nil end)
      assert.matches("^refused: ", err)
    end)
  end)

  it("serves a Python websockets client", function()
    -- Started from a task: on the main thread start() would arm the end-of-script run for the
    -- test runner itself (docs/api.md, "When the script ends").
    local server = helper.bounded(5, function()
      local server = net.ws.server("127.0.0.1:0")
      server:on_connection(function(socket)
        socket:on("message", function(data) socket:send("echo: " .. data) end)
      end)
      return server:start()
    end)
    local p = helper.python([[
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:" + sys.argv[1] + "/") as ws:
        await ws.send("hi")
        print(await ws.recv(), flush=True)
asyncio.run(main())
]], tostring(server.port))
    finally(function() p:kill(); server:close() end)
    helper.bounded(10, function()
      helper.wait_until(8, function() return #p:lines() > 0 end)
    end)
    assert.equal("echo: hi", p:lines()[1])
  end)

  it("refuses bad arguments", function()
    assert.matches("bad argument #1 to 'net.ws.server'", helper.err_of(net.ws.server, {}))
    assert.matches("bad argument #1 to 'net.ws.server'", helper.err_of(net.ws.server, "nohostport"))
    local s = net.ws.server("127.0.0.1:0")
    assert.matches("bad argument #1 to 'on_connection'", helper.err_of(s.on_connection, s, 5))
    helper.bounded(5, function()
      local c = net.ws.client("ws://127.0.0.1:1/")
      assert.matches("event expected", helper.err_of(c.on, c, "nope", function() end))
      c:on("error", function() end)
    end)
    assert.is_nil(debug.gethook()) -- nothing above armed the end-of-script run
  end)
end)
