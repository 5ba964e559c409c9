//! `net.url` (placeholder while it is written).
use mlua::prelude::*;
pub fn register(_lua: &Lua, _net: &LuaTable) -> LuaResult<()> { Ok(()) }
