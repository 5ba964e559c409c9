//! HTTP: the client (`net.request`, `net.http.get/post/...`, the `net.http.request` builder,
//! `net.http.download`), the server (`net.serve`) and the Express-style router
//! (`net.http.server()`, in Lua: `src/lua/router.lua`).
//!
//! Both sides are hyper 1.x low-level connections on the state's own single-threaded loop
//! (docs/internals.md, "HTTP"): `server.rs` accepts and serves connections, `service.rs`
//! turns one request into a call of the Lua handler, `io.rs` tracks a connection's phase for
//! its timeouts, `body.rs` and `stream.rs` carry bodies (streamed ones from Lua functions),
//! `router.rs` loads the router, `files.rs` gives it safe access to static files.

mod body;
mod client;
mod decode;
mod files;
mod io;
mod pool;
mod proxy;
mod raw;
mod reader;
mod router;
mod server;
mod service;
mod stream;

use std::rc::Rc;

use mlua::prelude::*;

use crate::error::NetError;
use crate::export::async_func;

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    server::register(lua, net)?;
    reader::register(lua)?;
    let pool = Rc::new(pool::Pool::default());
    let http = lua.create_table()?;
    // SAFETY: `isatty` reads one integer argument and pushes a boolean.
    let isatty = lua.create_function(|_, fd: i32| Ok(unsafe { libc::isatty(fd) } == 1))?;
    let helpers: LuaTable =
        lua.load(include_str!("../lua/http.lua")).set_name("=net.http").call((net.clone(), http.clone(), isatty))?;
    let methods: LuaTable = helpers.get("response")?;
    lua.set_named_registry_value("net.http.request", helpers.get::<LuaTable>("request")?)?;
    let request = async_func(lua, "net.request", move |lua, a| {
        let spec = client::prepare(lua, &a)?;
        let (lua, pool, methods) = (lua.clone(), pool.clone(), methods.clone());
        Ok(async move {
            let what = format!("{} {}", spec.method, spec.url);
            let fetched = match spec.timeout {
                Some(d) => tokio::time::timeout(d, client::fetch(&lua, &pool, spec))
                    .await
                    .map_err(|_| NetError::timeout(&what, "", d))??,
                None => client::fetch(&lua, &pool, spec).await?,
            };
            Ok(client::response_table(&lua, fetched, &methods)?)
        })
    })?;
    net.set("request", request)?;
    router::register(lua, net, &http)?;
    net.set("http", http)?;
    Ok(())
}
