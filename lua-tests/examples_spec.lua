-- Every program in examples/ runs to completion under this interpreter and prints what it
-- promises. Each runs as a child process (its own loop), bounded by `timeout`.
local helper = require("helper")

local function run(name)
  local cmd = ("timeout 20 %s examples/%s.lua 2>&1; echo \"exit=$?\""):format(helper.lua_bin(), name)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, out
end

local expectations = {
  tour = {
    "main thread got  echo: hello from the main thread",
    "task 1 got        echo: client 1",
    "udp: 6 bytes from 127%.0%.0%.1:%d+, intact: true",
    "localhost is 127%.0%.0%.1 and ::1",
    "bad name:  dns: no%-such%-host%.invalid: host not found",
    "refused:   refused: connect to 127%.0%.0%.1:1 %(connection refused%)",
    "channel:  tick 3",
    "done: %d ticks, net%.run%(%) returned %(failed tasks: 0%)",
  },
  port_scan = { "scanned 50 ports on 127%.0%.0%.1, open: %d+ %d+\n" },
  framing = { "sent 2 numbers, got result = 3", "sent 6 numbers, got result = 21" },
  udp_discovery = { "found service%-1 at", "found service%-2 at", "2 services found" },
}

describe("examples/", function()
  for name, patterns in pairs(expectations) do
    it(name .. ".lua runs and prints what it should", function()
      local code, out = run(name)
      assert.are.equal(0, code, out)
      for _, pat in ipairs(patterns) do
        assert.is_truthy(out:find(pat), ("missing %q in:\n%s"):format(pat, out))
      end
      assert.is_falsy(out:find("task failed"), out)
    end)
  end
end)
