//! `net`: TCP, UDP, DNS, TLS and WebSocket (and soon HTTP) for stock Lua 5.4 and LuaJIT.
//!
//! `luaopen_net` assembles the module table from one area per file (README, "Layout"): the loop in
//! `runtime/`, sockets in `tcp/` over the transport and acceptor of `io/`, `udp.rs`, `unix.rs`,
//! names in `dns.rs`, utilities in `json.rs` and `url.rs`, WebSocket in `ws/` with its Wippy
//! facade in `lua/websocket.lua`, packet capture in `capture/`. `export.rs` is the glue that
//! turns Rust functions into Lua functions, `options.rs` reads option tables.
//! `luaopen_net_websocket` is the second entry point of the same library, for
//! `require("net.websocket")`.

pub mod capture;
pub mod dns;
pub mod error;
pub mod export;
pub mod http;
pub mod io;
pub mod json;
pub mod options;
pub mod runtime;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;
pub mod url;
pub mod ws;

#[cfg(feature = "module")]
use mlua::prelude::*;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A write to a socket whose peer has gone raises SIGPIPE, which kills the process by default.
/// Rust programs ignore it at start-up, but a library loaded into `lua` gets no such start-up:
/// ignore it here unless the host installed a handler of its own.
#[cfg(feature = "module")]
fn ignore_sigpipe() {
    // SAFETY: `signal` with SIG_IGN or a disposition it returned itself installs no Rust code.
    unsafe {
        let prev = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        if prev != libc::SIG_DFL && prev != libc::SIG_ERR {
            libc::signal(libc::SIGPIPE, prev);
        }
    }
}

// Not `skip_memory_check`: that lets mlua create strings and tables without protection, but an
// allocation can run a finalizer, and on LuaJIT (and Lua 5.1-5.3) a finalizer's error is raised
// from the allocation, straight through mlua's Rust frames (an abort on LuaJIT).
#[cfg(feature = "module")]
#[mlua::lua_module]
fn net(lua: &Lua) -> LuaResult<LuaTable> {
    ignore_sigpipe();
    runtime::install(lua)?;
    export::install(lua)?;
    let net = lua.create_table()?;
    net.set("version", VERSION)?;
    runtime::register_tasks(lua, &net)?;
    runtime::timer::register(lua, &net)?;
    runtime::channel::register(lua, &net)?;
    dns::register(lua, &net)?;
    tcp::register(lua, &net)?;
    unix::register(lua, &net)?;
    udp::register(lua, &net)?;
    json::register(lua, &net)?;
    url::register(lua, &net)?;
    ws::register(lua, &net)?;
    http::register(lua, &net)?;
    capture::register(lua, &net)?;
    net.set("websocket", websocket_facade(lua, &net)?)?;
    Ok(net)
}

/// The Wippy-style WebSocket facade (docs/api.md, "WebSocket, Wippy facade"): thin Lua over
/// `net.ws`, `net.spawn` and `net.channel`.
/// It is built with the module so that `net.websocket` and `require("net.websocket")` are one
/// table. The chunk also gets `duration_ms`, the core's own parser of timeouts (milliseconds or
/// `"1m30s"`), so the facade reads durations exactly as every other `net` call does.
#[cfg(feature = "module")]
fn websocket_facade(lua: &Lua, net: &LuaTable) -> LuaResult<LuaTable> {
    let duration_ms = lua.create_function(|_, v: LuaValue| {
        Ok(match export::timeout_value(&v) {
            Ok(d) => (d.map(|d| d.as_secs_f64() * 1000.0), None),
            Err(e) => (None, Some(e)),
        })
    })?;
    lua.load(include_str!("lua/websocket.lua")).set_name("=net.websocket").call((net.clone(), duration_ms))
}

/// `require("net.websocket")`: Lua's all-in-one C loader finds `net.so` for the root name `net`
/// and calls this. It goes through `require("net")` so that there is one `net` per Lua state
/// (one loop, types registered once), whichever of the two is required first.
#[cfg(feature = "module")]
#[mlua::lua_module(name = "net_websocket")]
fn net_websocket(lua: &Lua) -> LuaResult<LuaTable> {
    let require: LuaFunction = lua.globals().get("require")?;
    let net: LuaTable = require.call("net")?;
    net.get("websocket")
}
