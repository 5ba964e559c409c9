---@meta net.websocket
-- `require("net.websocket")`: the same table as `require("net").websocket` (types/net.lua has
-- its functions, constants and the client class).

---@type net.websocket
local websocket

return websocket
