//! `net`: TCP, UDP, DNS (and soon TLS, WebSocket, HTTP) for stock Lua 5.4 and LuaJIT.
//!
//! `luaopen_net` assembles the module table from one area per file (design §6): the loop in
//! `runtime/`, sockets in `tcp/`, `udp.rs`, `unix.rs`, names in `dns.rs`, utilities in `json.rs`
//! and `url.rs`. `export.rs` is the glue that turns Rust functions into Lua functions.

pub mod dns;
pub mod error;
pub mod export;
pub mod json;
pub mod runtime;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;
pub mod url;
pub mod ws;

use mlua::prelude::*;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A write to a socket whose peer has gone raises SIGPIPE, which kills the process by default.
/// Rust programs ignore it at start-up, but a library loaded into `lua` gets no such start-up:
/// ignore it here unless the host installed a handler of its own.
fn ignore_sigpipe() {
    unsafe {
        let prev = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        if prev != libc::SIG_DFL && prev != libc::SIG_ERR {
            libc::signal(libc::SIGPIPE, prev);
        }
    }
}

#[mlua::lua_module(skip_memory_check)]
fn net(lua: &Lua) -> LuaResult<LuaTable> {
    ignore_sigpipe();
    runtime::install(lua)?;
    export::install(lua)?;
    let net = lua.create_table()?;
    net.set("version", VERSION)?;
    runtime::task::register(lua, &net)?;
    runtime::timer::register(lua, &net)?;
    runtime::channel::register(lua, &net)?;
    dns::register(lua, &net)?;
    tcp::register(lua, &net)?;
    unix::register(lua, &net)?;
    udp::register(lua, &net)?;
    json::register(lua, &net)?;
    url::register(lua, &net)?;
    ws::register(lua, &net)?;
    Ok(net)
}
