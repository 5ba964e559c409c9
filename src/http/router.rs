//! The Express-style router (`net.http.server()`, `net.http.Server.new(addr)`): thin Lua over
//! `net.serve`, in `src/lua/router.lua`. The chunk gets the `net` table and the private file
//! helpers of `files.rs` (for `app:static`), and returns the two entry points.

use mlua::prelude::*;

use super::files;

pub fn register(lua: &Lua, net: &LuaTable, http: &LuaTable) -> LuaResult<()> {
    let router: LuaTable = lua
        .load(include_str!("../lua/router.lua"))
        .set_name("=net.http.router")
        .call((net.clone(), files::helpers(lua)?))?;
    http.set("server", router.get::<LuaFunction>("server")?)?;
    http.set("Server", router.get::<LuaTable>("Server")?)?;
    Ok(())
}
