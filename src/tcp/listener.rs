//! The listener object behind `net.tcp.listen` and `net.unix.listen`: `accept`, `local_addr`,
//! `set_timeout`, `close`, and the fields `ip` and `port`. Accepting (and the TLS handshakes of a
//! TLS listener) is `io::acceptor`'s work.

use std::rc::Rc;

use mlua::prelude::*;

use super::stream::Stream;
use crate::error::{NResult, NetError};
use crate::export::{async_func, func, register_type, Args};
use crate::io::acceptor::{self, Acceptor, Listening, Mode};
use crate::io::Connection;

pub struct Listener(pub Rc<Acceptor<Connection>>);

impl Listener {
    /// A plain listener (connections are handed out as accepted), or with `tls` one whose
    /// connections go through the TLS handshake in the background first (a client that fails
    /// it is dropped: one bad client is not an error of the server).
    pub fn new(
        sock: Listening,
        local: String,
        tls: Option<Rc<crate::tls::Server>>,
        max_connections: Option<usize>,
    ) -> Self {
        let mode = match tls {
            None => Mode::Direct(std::convert::identity),
            Some(server) => Mode::Background(Rc::new(move |conn| {
                let server = server.clone();
                Box::pin(async move { acceptor::tls_step(&server, conn).await })
            })),
        };
        Listener(Acceptor::new(sock, local, mode, max_connections))
    }
}

fn this(args: &Args) -> NResult<Rc<Acceptor<Connection>>> {
    Ok(args.this::<Listener>("listener")?.0.clone())
}

/// The listener, or `closed: ...` once it is closed.
fn open(args: &Args, op: &str) -> NResult<Rc<Acceptor<Connection>>> {
    let l = this(args)?;
    if l.is_closed() {
        return Err(NetError::closed(op, "listener"));
    }
    Ok(l)
}

pub fn register(lua: &Lua) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "accept",
        async_func(lua, "accept", |lua, a| {
            let l = this(&a)?;
            let lua = lua.clone();
            Ok(async move { super::stream::into_lua(&lua, Stream::new(l.accept().await?)) })
        })?,
    )?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(open(&a, "local_addr")?.local.clone()))?)?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            open(&a, "set_timeout")?.set_timeout(t);
            Ok(())
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            this(&a)?.close();
            Ok(())
        })?,
    )?;
    let getters = lua.create_table()?;
    getters.set(
        "ip",
        lua.create_function(|_, ud: LuaAnyUserData| {
            let l = ud.borrow::<Listener>()?;
            Ok(l.0.local.parse::<std::net::SocketAddr>().map(|a| a.ip().to_string()).ok())
        })?,
    )?;
    getters.set(
        "port",
        lua.create_function(|_, ud: LuaAnyUserData| {
            let l = ud.borrow::<Listener>()?;
            Ok(l.0.local.parse::<std::net::SocketAddr>().map(|a| a.port()).ok())
        })?,
    )?;
    register_type::<Listener>(lua, methods, Some(getters), |l| {
        let closed = l.0.is_closed();
        format!("listener{{{}{}}}", l.0.local, if closed { ", closed" } else { "" })
    })
}
