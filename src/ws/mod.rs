//! `net.ws`: WebSocket clients (`net.ws.connect`, alias `net.socket`) and servers
//! (`net.ws.listen` + `accept`), over TCP or TLS (`wss://`).
//!
//! `handshake.rs` does the HTTP upgrade, `conn.rs` the protocol, `deflate.rs` permessage-deflate
//! (offered and accepted by default; `compress = false` turns it off), `socket.rs` the Lua
//! object. Everything runs over this crate's own transports, so `wss://` uses the same verified
//! TLS as `net.tcp.connect`. Messages are limited to `max_message_size` (default 16 MiB); a
//! server accepts the first of its own `protocols` that the client also offers.

mod conn;
mod deflate;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod socket;

use std::rc::Rc;
use std::time::Duration;

use mlua::prelude::*;

use crate::error::{NResult, NetError};
use crate::export::{async_func, func, register_type, userdata, Args, Opts};
use crate::io::acceptor::{self, Acceptor, Handshake, Mode};
use crate::io::Connection;
use crate::tcp::{self as tcp, ConnectOpts};
use handshake::Agreed;
use socket::{Parts, WebSocket};

pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// A client that has not finished its upgrade request by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The options shared by `connect` and `listen`.
struct Limits {
    max: usize,
    compress: bool,
}

fn limits(o: &Opts) -> NResult<Limits> {
    let max = o.int_in("max_message_size", 1, i64::from(u32::MAX))?.map(|n| n as usize).unwrap_or(DEFAULT_MAX_MESSAGE);
    Ok(Limits { max, compress: o.boolean("compress")?.unwrap_or(true) })
}

fn connect(lua: &Lua, a: Args) -> NResult<impl std::future::Future<Output = NResult<LuaAnyUserData>>> {
    let url = a.string(1)?;
    let o = a.opts(2)?;
    let parsed = url::Url::parse(&url).map_err(|e| a.bad(1, format!("invalid URL \"{url}\": {e}")))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        s => return Err(a.bad(1, format!("ws:// or wss:// URL expected, got \"{s}://\""))),
    };
    let host = parsed.host_str().ok_or_else(|| a.bad(1, format!("URL without a host: \"{url}\"")))?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(if secure { 443 } else { 80 });
    let mut headers = Vec::new();
    match o.value("headers") {
        LuaValue::Nil => {}
        LuaValue::Table(h) => {
            for pair in h.pairs::<String, String>() {
                let (k, v) = pair.map_err(|_| a.bad(2, "option 'headers': a table of strings expected"))?;
                if !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') || k.is_empty() {
                    return Err(a.bad(2, format!("option 'headers': invalid header name \"{k}\"")));
                }
                if v.bytes().any(|b| b == b'\r' || b == b'\n') {
                    return Err(a.bad(2, format!("option 'headers': invalid value for \"{k}\"")));
                }
                headers.push((k, v));
            }
        }
        v => return Err(a.bad(2, format!("option 'headers': a table expected, got {}", v.type_name()))),
    }
    let protocols = o.strings("protocols")?;
    if protocols.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic() && b != b',')) {
        return Err(a.bad(2, "option 'protocols': invalid name"));
    }
    let lim = limits(&o)?;
    let timeout = o.timeout("timeout")?;
    let mut copts = ConnectOpts::default();
    copts.timeout = timeout;
    copts.sock = crate::tcp::sockopt::SockOpts::from_opts(&o)?;
    if secure {
        // wss:// verifies with the defaults unless told otherwise.
        copts.tls = match o.value("tls") {
            LuaValue::Nil => Some(crate::tls::ClientOpts::default()),
            _ => crate::tls::client_opts(&o, "tls")?,
        };
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let connecting = tcp::connect(lua, host, port, copts)?;
    let lua = lua.clone();
    let handshake = async move {
        let Connection { transport: mut io, peer, local } = connecting.await?;
        let req =
            handshake::ClientRequest { url: &parsed, protocols: &protocols, headers: &headers, compress: lim.compress };
        let agreed = handshake::client(&mut io, req).await?;
        userdata(&lua, upgraded(Connection { transport: io, peer, local }, true, lim.max, agreed, None))
    };
    Ok(async move {
        match timeout {
            None => handshake.await,
            Some(d) => tokio::time::timeout(d, handshake)
                .await
                .map_err(|_| NetError::timeout("websocket connect to", &url, d))?,
        }
    })
}

/// A WebSocket over a connection whose upgrade is done: `agreed` says what the handshake
/// negotiated (its `leftover` are bytes read past the HTTP head: the first frames), `request` is
/// a server's kept request head (`ws.path`, `ws.query`, `ws.headers`). Whoever did the upgrade
/// (our own `handshake.rs`, or an HTTP server answering 101 itself) hands the raw transport here.
pub fn upgraded(c: Connection, client: bool, max: usize, agreed: Agreed, request: Option<Box<[u8]>>) -> WebSocket {
    let tls = c.transport.is_tls();
    let conn = conn::Conn::new(c.transport, client, max, agreed.deflate, agreed.leftover);
    WebSocket::new(Parts {
        conn,
        tls,
        peer: c.peer,
        local: c.local,
        subprotocol: agreed.subprotocol,
        extensions: agreed.extensions,
        request,
    })
}

/// A WebSocket server: a TCP (or TLS) acceptor whose connections are upgraded in the
/// background; `accept` hands out the ones that finished (a client that fails its handshake is
/// dropped: one bad client is not an error of the server, nor does a slow one hold up others).
pub struct Server(Rc<Acceptor<WebSocket>>);

fn server_this(a: &Args, op: &str) -> NResult<Rc<Acceptor<WebSocket>>> {
    let s = a.this::<Server>("websocket server")?.0.clone();
    if s.is_closed() && op != "close" {
        return Err(NetError::closed(op, "websocket server"));
    }
    Ok(s)
}

/// The server's handshake: TLS first on a `wss` server, then the upgrade, each with its bound.
fn upgrade_step(
    tls: Option<Rc<crate::tls::Server>>,
    config: Rc<handshake::ServerConfig>,
    max: usize,
) -> Handshake<WebSocket> {
    Rc::new(move |conn: Connection| {
        let (tls, config) = (tls.clone(), config.clone());
        Box::pin(async move {
            let conn = match &tls {
                Some(server) => acceptor::tls_step(server, conn).await?,
                None => conn,
            };
            let mut conn = conn;
            let hs = handshake::server(&mut conn.transport, &config, &conn.peer);
            let up = acceptor::bounded(HANDSHAKE_TIMEOUT, "websocket handshake from", &conn.peer, hs).await?;
            Ok(upgraded(conn, false, max, up.agreed, Some(up.head)))
        })
    })
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    socket::register(lua)?;
    let methods = lua.create_table()?;
    methods.set(
        "accept",
        async_func(lua, "accept", |lua, a| {
            let s = server_this(&a, "accept")?;
            let lua = lua.clone();
            Ok(async move { userdata(&lua, s.accept().await?) })
        })?,
    )?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(server_this(&a, "local_addr")?.local.clone()))?)?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            server_this(&a, "set_timeout")?.set_timeout(t);
            Ok(())
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            server_this(&a, "close")?.close();
            Ok(())
        })?,
    )?;
    let getters = lua.create_table()?;
    getters.set(
        "port",
        lua.create_function(|_, ud: LuaAnyUserData| {
            let s = ud.borrow::<Server>()?;
            Ok(s.0.local.parse::<std::net::SocketAddr>().map(|a| a.port()).ok())
        })?,
    )?;
    register_type::<Server>(lua, methods, Some(getters), |s| {
        let closed = if s.0.is_closed() { ", closed" } else { "" };
        format!("ws.server{{{}{closed}}}", s.0.local)
    })?;

    let ws = lua.create_table()?;
    let connect_fn = async_func(lua, "net.ws.connect", connect)?;
    ws.set("connect", connect_fn.clone())?;
    net.set("socket", connect_fn)?;
    ws.set(
        "listen",
        func(lua, "net.ws.listen", |lua, a| {
            let b = tcp::bind_listener(lua, &a)?;
            let protocols = b.opts.strings("protocols")?;
            let lim = limits(&b.opts)?;
            let config = Rc::new(handshake::ServerConfig { protocols, compress: lim.compress });
            let mode = Mode::Background(upgrade_step(b.tls, config, lim.max));
            userdata(lua, Server(Acceptor::new(b.sock, b.local, mode, b.max_connections)))
        })?,
    )?;
    net.set("ws", ws)?;
    // Seed 002's event style (`net.ws.server`, `net.ws.client`): thin Lua over the above.
    let arm = crate::runtime::run_at_exit::arm_function(lua)?;
    lua.load(include_str!("../lua/ws_events.lua")).set_name("=net.ws.events").call::<()>((net.clone(), arm))?;
    Ok(())
}
