-- The reference cannot drift: every name the module exports (functions, sub-tables, constants,
-- and the methods and fields of each object type, made here on 127.0.0.1) must be documented in
-- docs/api.md and annotated in types/ (the LuaLS / EmmyLua meta files), and every `net.x.y`
-- name that docs/api.md documents and every function or method types/ annotates must exist.
-- When emmylua_check is installed it also type-checks examples/ against types/.
local helper = require("helper")
local net = helper.net
local pcall, xpcall = net.pcall, net.xpcall -- the built-ins; on Lua 5.1 ones a task can wait inside (docs/api.md)

-- Names annotated in types/ whose code is being written now (packet capture). While one is
-- missing from the module, it and everything under it are skipped instead of failing. The
-- engineer who merges the code empties this list.
local LANDING_SOON = {
}

-- Members that exist but are no part of the reference, each for its reason.
-- (Members whose names start with "_" are private and never checked; nor are metamethods.)
local NOT_REFERENCE = {
  -- the body reader userdata behind res:read() / res:lines() (and a streamed request's)
  ["net.http.Response.stream"] = true,
  ["net.http.Request.stream"] = true,
}

-- `net.x` tokens in docs/api.md's headings, tables and lists that are not module names.
local DOC_NOT_NAMES = {
  ["net.core.rmem_max"] = true, -- a Linux sysctl
  ["net.so"] = true,            -- the library file
}

------------------------------------------------------------------------------------------------
-- Reading the reference

local function root_dir()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/lua%-tests/[^/]*$")
  if dir then return dir end
  if src:match("^lua%-tests/") then return "." end
  return ".."
end
local ROOT = root_dir()

local function read(path)
  local s = helper.read_file(ROOT .. "/" .. path)
  assert(s, "cannot read " .. ROOT .. "/" .. path)
  return s
end

local function type_files()
  local files, p = {}, io.popen('ls "' .. ROOT .. '/types" "' .. ROOT .. '/types/net" 2>/dev/null')
  local dir = "types"
  for line in p:lines() do
    local d = line:match("/(types/?[%w_]*):$")
    if d then dir = d:gsub("/$", "")
    elseif line:match("%.lua$") then files[#files + 1] = dir .. "/" .. line end
  end
  p:close()
  table.sort(files)
  return files
end

-- types/: classes with their fields (and field types) and methods, and which class each table
-- expression (`net.tcp`, a local like `Stream`) stands for.
local function parse_types()
  local classes, bind = {}, {}
  local function class(name)
    local c = classes[name]
    if not c then
      c = { name = name, fields = {}, field_type = {}, methods = {}, parents = {} }
      classes[name] = c
    end
    return c
  end
  for _, file in ipairs(type_files()) do
    local current, pending = nil, nil
    local n = 0
    for line in (read(file) .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      local cname, parents = line:match("^%-%-%-@class%s+([%w_%.]+)%s*:?%s*(.*)$")
      local fname, ftype = line:match("^%-%-%-@field%s+([%w_]+)%??%s+(%S+)")
      local tname = line:match("^%-%-%-@type%s+([%w_%.]+)")
      if cname then
        current, pending = class(cname), cname
        for p in parents:gmatch("[%w_%.]+") do current.parents[#current.parents + 1] = p end
      elseif fname then
        assert(current, file .. ":" .. n .. ": @field outside a @class")
        current.fields[fname] = true
        current.field_type[fname] = ftype:gsub("%?$", "")
      elseif tname then
        pending = tname
      elseif not line:match("^%-%-") and line:match("%S") then
        local var = line:match("^local%s+([%w_]+)%s*=") or line:match("^([%w_%.]+)%s*=")
        if var and pending then bind[var] = pending end
        local owner, name = line:match("^function%s+([%w_%.]+)[%.:]([%w_]+)%s*%(")
        if owner then
          assert(bind[owner], file .. ":" .. n .. ": function on '" .. owner .. "', which is no @class")
          class(bind[owner]).methods[name] = true
        end
        current, pending = nil, nil
      end
    end
  end
  return { classes = classes, bind = bind }
end

-- All members (fields and methods) of a class, its parents' included.
local function members(types, cname, out)
  out = out or { fields = {}, methods = {} }
  local c = types.classes[cname]
  if not c then return out end
  for k in pairs(c.fields) do out.fields[k] = true end
  for k in pairs(c.methods) do out.methods[k] = true end
  for _, p in ipairs(c.parents) do members(types, p, out) end
  return out
end

-- The class a dotted module path is annotated as: bound directly (`net.tcp = {}` after
-- `---@class net.tcp`), or a field of its parent typed with a class (`CLOSE_CODES`).
local function class_of(types, path)
  if types.bind[path] then return types.bind[path] end
  local parent, last = path:match("^(.*)%.([%w_]+)$")
  if not parent then return nil end
  local pc = class_of(types, parent)
  if not pc then return nil end
  local function field_type(cname)
    local c = types.classes[cname]
    if not c then return nil end
    if c.field_type[last] and types.classes[c.field_type[last]] then return c.field_type[last] end
    for _, p in ipairs(c.parents) do
      local t = field_type(p)
      if t then return t end
    end
  end
  return field_type(pc)
end

local function annotated(types, path)
  if types.bind[path] then return true end -- a sub-table: `net.tcp = {}` after `---@class net.tcp`
  local parent, last = path:match("^(.*)%.([%w_]+)$")
  local pc = parent and class_of(types, parent)
  if not pc then return false end
  local m = members(types, pc)
  return m.fields[last] or m.methods[last] or false
end

local function escape(s) return (s:gsub("%p", "%%%0")) end

-- docs/api.md names `net.a.b` (or, for the Wippy facade, `websocket.X` as the docs write it).
local function documented(doc, path)
  local function has(name)
    local pat = "%f[%w_.]" .. escape(name) .. "%f[^%w_]"
    return doc:find(pat) ~= nil
  end
  if has(path) then return true end
  local rest = path:match("^net%.(websocket%..+)$")
  return rest ~= nil and has(rest)
end

-- The text of the doc section under each heading that contains `title`, down to the next heading
-- of the same or a higher level.
local function section(doc, title)
  local lines, out, level = {}, {}, nil
  for line in (doc .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for _, line in ipairs(lines) do
    local hashes = line:match("^(#+) ")
    if hashes and level and #hashes <= level then level = nil end
    if hashes and not level and line:find(title, 1, true) then level = #hashes end
    if level then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

-- A member is mentioned in a section as `name`, :name or .name (or in a list of fields written
-- `{a, b, c}`).
local function mentions(text, name)
  for _, pre in ipairs({ "`", ":", "%.", "{", ", " }) do
    if text:find(pre .. escape(name) .. "%f[^%w_]") then return true end
  end
  return false
end

------------------------------------------------------------------------------------------------
-- Reading the module

-- Every dotted name under `net` (tables recursed, each once), sorted.
local function module_names()
  local names, seen = {}, {}
  local function walk(t, prefix)
    if seen[t] then return end
    seen[t] = true
    for k, v in pairs(t) do
      if type(k) == "string" then
        local path = prefix .. "." .. k
        names[#names + 1] = path
        if type(v) == "table" then walk(v, path) end
      end
    end
  end
  walk(net, "net")
  table.sort(names)
  return names
end

local function lookup(path)
  local v = net
  for part in path:gmatch("[^%.]+") do
    if part ~= "net" or v ~= net then
      if type(v) ~= "table" then return nil end
      v = v[part]
    end
  end
  return v
end

local function landing(path)
  for name in pairs(LANDING_SOON) do
    if path == name or path:sub(1, #name + 1) == name .. "." then return true end
  end
  return false
end

-- What an object offers: methods (its metatable's __index table, or the `methods` upvalue of
-- the glue's __index function, src/lua/prelude.lua) and fields (the `getters` upvalue, or a
-- table's own keys). Private names (`_x`) and metamethods are left out.
local function object_members(obj)
  local methods, fields, enumerable_fields = {}, {}, false
  local function public(k) return type(k) == "string" and not k:match("^_") end
  local mt = debug.getmetatable(obj)
  local index = mt and rawget(mt, "__index")
  if type(index) == "table" then
    for k in pairs(index) do if public(k) then methods[k] = true end end
  elseif type(index) == "function" then
    for i = 1, 10 do
      local name, up = debug.getupvalue(index, i)
      if name == nil then break end
      if type(up) == "table" and (name == "methods" or name == "getters") then
        for k in pairs(up) do if public(k) then (name == "methods" and methods or fields)[k] = true end end
        if name == "getters" then enumerable_fields = true end
      end
    end
  end
  if type(obj) == "table" then
    for k, v in pairs(obj) do
      if public(k) then (type(v) == "function" and methods or fields)[k] = true end
    end
  end
  return methods, fields, enumerable_fields
end

local function sorted(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return t
end

local function report(problems, what)
  assert(#problems == 0, what .. ":\n  " .. table.concat(problems, "\n  "))
end

------------------------------------------------------------------------------------------------

describe("the reference (docs/api.md, types/)", function()
  local doc, types

  setup(function()
    doc = read("docs/api.md")
    types = parse_types()
  end)

  it("reads types/ (a sanity check of the parser itself)", function()
    assert.equal("net", types.bind.net)
    assert.equal("net.tcp", class_of(types, "net.tcp"))
    assert.equal("net.websocket.CloseCodes", class_of(types, "net.websocket.CLOSE_CODES"))
    assert.is_true(annotated(types, "net.tcp.connect"))
    assert.is_true(annotated(types, "net.websocket.CLOSE_CODES.NORMAL"))
    assert.is_false(annotated(types, "net.tcp.no_such_function"))
    assert.is_true(members(types, "net.Stream").methods.read_line)
    assert.is_true(members(types, "net.ConnectOptions").fields.recvbuf) -- inherited
    assert.is_true(documented("x `net.tcp.connect(host`", "net.tcp.connect"))
    assert.is_false(documented("x `net.tcp.connect_timeout(`", "net.tcp.connect"))
    assert.is_true(documented("`websocket.CLOSE_CODES.NORMAL`", "net.websocket.CLOSE_CODES.NORMAL"))
    assert.is_true(mentions("| `read([n])` |", "read"))
    assert.is_false(mentions("| `read_line()` |", "read"))
  end)

  it("documents and annotates every name of the module", function()
    local problems = {}
    for _, path in ipairs(module_names()) do
      if not documented(doc, path) then problems[#problems + 1] = path .. ": not in docs/api.md" end
      if not annotated(types, path) then problems[#problems + 1] = path .. ": not annotated in types/" end
    end
    report(problems, "exported but not in the reference")
  end)

  it("has every annotated module name in the module", function()
    local problems, seen = {}, {}
    local function walk(path)
      local cname = class_of(types, path)
      if not cname or seen[path] then return end
      seen[path] = true
      local m = members(types, cname)
      for _, set in ipairs({ m.fields, m.methods }) do
        for _, name in ipairs(sorted(set)) do
          local sub = path .. "." .. name
          if lookup(sub) == nil then
            if not landing(sub) then problems[#problems + 1] = sub .. ": annotated, but the module has no such name" end
          else
            walk(sub)
          end
        end
      end
    end
    -- from the root, and from every table types/ binds to a class (`net.tcp = {}`)
    local roots = { "net" }
    for expr in pairs(types.bind) do
      if expr:match("^net%.") then roots[#roots + 1] = expr end
    end
    table.sort(roots)
    for _, path in ipairs(roots) do
      if lookup(path) == nil then
        if not landing(path) then problems[#problems + 1] = path .. ": annotated, but the module has no such name" end
      else
        walk(path)
      end
    end
    report(problems, "annotated but missing")
  end)

  it("has every net.x name that docs/api.md's headings, tables and lists document", function()
    local problems, seen = {}, {}
    for line in (doc .. "\n"):gmatch("([^\n]*)\n") do
      if line:match("^#") or line:match("^|") or line:match("^%s*%- ") then
        for name in line:gmatch("%f[%w_.]net%.[%a_][%w_%.]*") do
          name = name:gsub("%.+$", "")
          if not seen[name] and not DOC_NOT_NAMES[name] then
            seen[name] = true
            if lookup(name) == nil and not landing(name) then
              problems[#problems + 1] = name .. ": documented, but the module has no such name"
            end
          end
        end
      end
    end
    report(problems, "documented but missing")
    assert.is_true(seen["net.tcp.connect"] and seen["net.http.Server.new"] and true or false)
  end)

  describe("objects", function()
    local s = helper.scope(5000)
    after_each(function() s.cleanup() end)

    -- Makes every object type on 127.0.0.1 -> list of {class, object, doc sections}.
    local function make_objects()
      local out = {}
      local function add(class, obj, ...) out[#out + 1] = { class = class, obj = obj, sections = { ... } } end
      -- an object of which only part of its class is present (no reverse check of methods)
      local function add_part(class, obj, ...) add(class, obj, ...); out[#out].part = true end

      local l = s.track(net.tcp.listen("127.0.0.1", 0))
      add("net.Listener", l, "### listener")
      l:set_timeout(5000)
      local c = s.track(net.tcp.connect("127.0.0.1", l.port, { timeout = 5000 }))
      add("net.Stream", c, "### stream", "### Socket options")
      s.track(l:accept())
      add("net.UdpSocket", s.track(net.udp.bind("127.0.0.1", 0)), "## UDP")

      local wl = s.track(net.ws.listen("127.0.0.1", 0))
      add("net.WsListener", wl, "### `net.ws.listen(")
      local accepted
      s.go(function() accepted = wl:accept() end)
      local ws = s.track(net.ws.connect("ws://127.0.0.1:" .. wl.port .. "/p?q=1", { timeout = 5000 }))
      add("net.WebSocket", ws, "### ws")
      helper.wait_until(5, function() return accepted end)
      s.track(accepted)
      add("net.WebSocket", accepted, "### ws")

      add("net.Task", net.spawn(function() end), "### `net.spawn(")
      add("net.Channel", net.channel(), "### `net.channel(")

      local req, sreq
      local h = net.serve(0, function(r) req = r; return "ok" end)
      local hs = net.serve(0, { stream = true, handleRequest = function(r) sreq = r; return "ok" end })
      local res = net.request({ url = "http://127.0.0.1:" .. h.port .. "/a?b=1", timeout = 5000 })
      net.request({ url = "http://127.0.0.1:" .. hs.port .. "/", method = "POST", body = "x", timeout = 5000 })
      local streamed = net.request({ url = "http://127.0.0.1:" .. h.port .. "/", stream = true, timeout = 5000 })
      streamed:close()
      h:stop(); hs:stop()
      add("net.http.Handle", h, "## HTTP server")
      add("net.http.Response", res, "### `net.request(")
      add("net.http.Response", streamed, "### `net.request(")
      add_part("net.http.Request", req, "## HTTP server") -- read, lines, close: only with stream = true
      add("net.http.Request", sreq, "## HTTP server")
      add("net.http.Builder", net.http.request("http://127.0.0.1:1/"), "### `net.http.request(")

      local app = net.http.server("127.0.0.1:0")
      local rreq, rres
      app:get("/u/:id", function(q, r) rreq, rres = q, r; r:send("x") end)
      app:handler()({ method = "GET", path = "/u/1" })
      add("net.http.App", app, "## Router")
      add("net.http.Req", rreq, "### req", "## HTTP server")
      add("net.http.Res", rres, "### res")

      local es = net.ws.server("127.0.0.1:0")
      local socket
      es:on_connection(function(so) socket = so end)
      es:start()
      local ec = net.ws.client("ws://127.0.0.1:" .. es.port .. "/", { timeout = 5000 })
      local open = false
      ec:on("open", function() open = true end)
      helper.wait_until(5, function() return socket and open end)
      add("net.ws.Server", es, "## WebSocket, event style")
      add("net.ws.Socket", socket, "## WebSocket, event style")
      add("net.ws.Client", ec, "## WebSocket, event style")

      local client = assert(net.websocket.connect("ws://127.0.0.1:" .. es.port .. "/", { dial_timeout = 5000 }))
      add("net.websocket.Client", client, "## WebSocket, Wippy facade")
      add("net.Channel", client:receive(), "### `net.channel(")
      add("net.url.Parts", net.url.parse("http://u:p@h:1/p?q#f"), "## URLs")

      add("net.TCPSocket", net.TCPSocket(), "## Callback facade")
      add("net.TCPServer", net.TCPServer(), "## Callback facade")
      if net.capture then -- landing soon; opening needs root or CAP_NET_RAW
        local ok, cap = pcall(net.capture.open, "lo")
        if ok then s.track(cap); add("net.capture.Capture", cap, "## Packet capture") end
      end

      local cleanup = function()
        client:close(); ec:close(); es:close()
      end
      return out, cleanup
    end

    it("are documented and annotated, method by method and field by field, and back", function()
      local objects, cleanup = make_objects()
      finally(cleanup)
      local problems, covered = {}, {}
      for _, o in ipairs(objects) do
        covered[o.class] = true
        assert(types.classes[o.class], o.class .. " is not a @class in types/")
        local text = {}
        for _, title in ipairs(o.sections) do
          local t = section(doc, title)
          assert(t ~= "", "docs/api.md has no heading containing " .. title)
          text[#text + 1] = t
        end
        text = table.concat(text, "\n")
        local want = members(types, o.class)
        local methods, fields, enumerable = object_members(o.obj)
        for _, kind in ipairs({ { "method", methods }, { "field", fields } }) do
          for _, name in ipairs(sorted(kind[2])) do
            local id = o.class .. "." .. name
            if not NOT_REFERENCE[id] then
              if not (want.methods[name] or want.fields[name]) then
                problems[#problems + 1] = id .. ": a " .. kind[1] .. " the object has, not annotated in types/"
              end
              if not mentions(text, name) then
                problems[#problems + 1] = id .. ": a " .. kind[1] .. " the object has, not in docs/api.md (" ..
                  table.concat(o.sections, ", ") .. ")"
              end
            end
          end
        end
        for _, name in ipairs(o.part and {} or sorted(want.methods)) do
          if not methods[name] then problems[#problems + 1] = o.class .. ":" .. name .. "(): annotated, but the object has no such method" end
        end
        -- Fields can be listed only where they are getters (userdata); a table's optional
        -- fields may be absent, so there only the forward direction is checked.
        if enumerable then
          for _, name in ipairs(sorted(want.fields)) do
            if not fields[name] then problems[#problems + 1] = o.class .. "." .. name .. ": annotated, but the object has no such field" end
          end
        end
      end
      report(problems, "objects")
      -- every object class of types/ was made above (or is landing soon)
      local pending = { ["net.capture.Capture"] = "net.capture" }
      for cname, c in pairs(types.classes) do
        if next(c.methods) and not cname:match("^net%.[%l_]+$") and cname ~= "net" and cname ~= "net.http.ServerClass"
          and not covered[cname] and not (pending[cname] and lookup(pending[cname]) == nil) then
          problems[#problems + 1] = cname .. ": an object class with methods that no test object checks"
        end
      end
      report(problems, "object classes not checked")
    end)
  end)

  describe("emmylua_check", function()
    -- EmmyLua's checker reads LuaLS annotations (`cargo install emmylua_check`);
    -- lua-language-server itself cannot be installed here (no package in the registries this
    -- project uses). Without the checker these tests are pending.
    local function check(dir, strict)
      local pwd = io.popen('cd "' .. ROOT .. '" && pwd')
      local abs = pwd:read("*l")
      pwd:close()
      local cfg = os.tmpname()
      local f = assert(io.open(cfg, "w"))
      f:write('{ "runtime": { "version": "Lua 5.4" }, "workspace": { "library": ["', abs,
        '/types"] }, "diagnostics": { "globals": ["jit"] } }\n')
      f:close()
      local p = io.popen('timeout 120 emmylua_check -c "' .. cfg .. '" ' .. (strict and "--warnings-as-errors " or "") ..
        '"' .. abs .. "/" .. dir .. '" 2>&1; echo "exit=$?"')
      local out = p:read("*a")
      p:close()
      os.remove(cfg)
      -- "warning: MESSAGE [code]" then "  --> file:line:col"
      local found = {}
      for code, file, line in out:gmatch("%[([%w%-]+)%]%s*\n%s*%-%->%s*([^:%s]+):(%d+):") do
        found[#found + 1] = file .. ":" .. line .. " " .. code
      end
      return tonumber(out:match("exit=(%d+)%s*$")), found, out
    end

    local function need_checker()
      if helper.have("emmylua_check") then return true end
      pending("emmylua_check is not installed (cargo install emmylua_check)")
      return false
    end

    it("finds nothing wrong in types/ itself (every type named there exists)", function()
      if not need_checker() then return end
      local rc, found, out = check("types", true)
      assert(rc == 0 and #found == 0, "emmylua_check on types/:\n" .. out)
    end)

    it("finds no diagnostic, warnings included, in typical use of the whole API", function()
      if not need_checker() then return end
      local rc, found, out = check("lua-tests/fixtures/types_ok", true)
      assert(rc == 0 and #found == 0, "emmylua_check on lua-tests/fixtures/types_ok:\n" .. out)
    end)

    it("reports misuse (so it does see the annotations)", function()
      if not need_checker() then return end
      local _, found, out = check("lua-tests/fixtures/types_bad", false)
      table.sort(found)
      assert.same({
        "misuse.lua:4 param-type-mismatch", -- a port given as a string
        "misuse.lua:5 undefined-field",     -- c:reed()
        "misuse.lua:6 undefined-field",     -- net.tcp.conect
        "misuse.lua:7 redundant-parameter", -- c:read_line(5)
      }, found, out)
    end)

    it("finds no type error in examples/", function()
      -- Errors only: the examples' own code draws warnings the annotations have no part in
      -- (`arg[0]` may be nil, tables filled after they are made).
      if not need_checker() then return end
      local rc, _, out = check("examples", false)
      assert(rc == 0, "emmylua_check on examples/:\n" .. out)
    end)
  end)
end)
