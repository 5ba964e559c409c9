//! HTTP: the client (`net.request`, `net.http.get/post/...`, the `net.http.request` builder,
//! `net.http.download`), the server (`net.serve`) and the Express-style router
//! (`net.http.server()`, in Lua: `src/lua/router.lua`).
//!
//! Both sides are hyper 1.x low-level connections on the state's own single-threaded loop
//! (docs/internals.md, "HTTP"): `server.rs` accepts and serves connections, `service.rs`
//! turns one request into a call of the Lua handler, `io.rs` tracks a connection's phase for
//! its timeouts, `body.rs` and `stream.rs` carry bodies (streamed ones from Lua functions),
//! `router.rs` loads the router.

mod body;
mod io;
mod router;
mod server;
mod service;
mod stream;

use mlua::prelude::*;

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    server::register(lua, net)?;
    let http = lua.create_table()?;
    router::register(lua, net, &http)?;
    net.set("http", http)?;
    Ok(())
}
