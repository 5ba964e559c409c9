//! The Express-style router (`net.http.server()`, `net.http.Server.new(addr)`): thin Lua over
//! `net.serve`, in `src/lua/router.lua`.

use mlua::prelude::*;

pub fn register(_lua: &Lua, _net: &LuaTable, _http: &LuaTable) -> LuaResult<()> {
    Ok(())
}
