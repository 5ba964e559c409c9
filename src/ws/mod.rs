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
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
pub mod socket;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use mlua::prelude::*;

use crate::error::{NResult, NetError};
use crate::export::{async_func, func, register_type, userdata, Args, Opts};
use crate::runtime::Waiters;
use crate::tcp::handshakes::Handshakes;
use crate::tcp::listener;
use crate::tcp::stream::Stream;
use crate::tcp::{self as tcp, ConnectOpts};
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
        let stream = connecting.await?;
        let (peer, local) = (stream.0.peer.clone(), stream.0.local.clone());
        let mut io = stream.0.take_transport().ok_or_else(|| NetError::closed("connect", "connection"))?;
        let req =
            handshake::ClientRequest { url: &parsed, protocols: &protocols, headers: &headers, compress: lim.compress };
        let agreed = handshake::client(&mut io, req).await?;
        let conn = conn::Conn::new(io, true, lim.max, agreed.deflate, agreed.leftover);
        let parts =
            Parts { conn, tls: secure, peer, local, subprotocol: agreed.subprotocol, extensions: agreed.extensions };
        userdata(&lua, WebSocket::new(parts))
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

/// A WebSocket server: a TCP (or TLS) listener whose connections are upgraded in the
/// background; `accept` hands out the ones that finished (a client that fails its handshake is
/// dropped: one bad client is not an error of the server, nor does a slow one hold up others).
pub struct Server(Rc<ServerInner>);

struct ServerInner {
    listener: Rc<listener::Inner>,
    config: Rc<handshake::ServerConfig>,
    max: usize,
    ready: RefCell<VecDeque<WebSocket>>,
    waiters: Waiters,
    /// Upgrades in progress: closing the server (or collecting it) ends them.
    upgrades: Rc<Handshakes>,
}

impl Drop for ServerInner {
    fn drop(&mut self) {
        self.upgrades.abort_all();
    }
}

fn server_this(a: &Args, op: &str) -> NResult<Rc<ServerInner>> {
    let s = a.this::<Server>("websocket server")?.0.clone();
    if s.listener.is_closed() && op != "close" {
        return Err(NetError::closed(op, "websocket server"));
    }
    Ok(s)
}

/// Upgrades one accepted connection in the background; the result goes to `ready`. The task
/// holds the server weakly: an upgrade in progress does not keep a dropped server alive.
fn start_upgrade(server: &Rc<ServerInner>, stream: Stream) {
    let (peer, local) = (stream.0.peer.clone(), stream.0.local.clone());
    let tls = stream.0.is_tls();
    let Some(mut io) = stream.0.take_transport() else { return };
    let weak: Weak<ServerInner> = Rc::downgrade(server);
    let (config, max) = (server.config.clone(), server.max);
    server.upgrades.spawn(io.raw_fd(), async move {
        let hs = handshake::server(&mut io, &config, &peer);
        let Ok(Ok(agreed)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, hs).await else { return };
        let Some(s) = weak.upgrade().filter(|s| !s.listener.is_closed()) else { return };
        let conn = conn::Conn::new(io, false, max, agreed.deflate, agreed.leftover);
        let parts = Parts { conn, tls, peer, local, subprotocol: agreed.subprotocol, extensions: agreed.extensions };
        s.ready.borrow_mut().push_back(WebSocket::new(parts));
        s.waiters.wake_all();
    });
}

async fn accept(lua: Lua, s: Rc<ServerInner>) -> NResult<LuaAnyUserData> {
    let next = |cx: &mut std::task::Context<'_>, st: &mut listener::AcceptState| loop {
        if let Some(ws) = s.ready.borrow_mut().pop_front() {
            return Poll::Ready(Ok(ws));
        }
        match listener::poll_accept(&s.listener, cx, st) {
            Poll::Ready(Ok(stream)) => start_upgrade(&s, stream),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return s.waiters.pending(cx, Poll::Pending),
        }
    };
    let ws = listener::accept_with(&s.listener, next).await?;
    userdata(&lua, ws)
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    socket::register(lua)?;
    let methods = lua.create_table()?;
    methods.set("accept", async_func(lua, "accept", |lua, a| Ok(accept(lua.clone(), server_this(&a, "accept")?)))?)?;
    methods.set(
        "local_addr",
        func(lua, "local_addr", |_, a| Ok(server_this(&a, "local_addr")?.listener.local.clone()))?,
    )?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            server_this(&a, "set_timeout")?.listener.set_timeout(t);
            Ok(())
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            let s = server_this(&a, "close")?;
            s.listener.close();
            s.upgrades.abort_all();
            let upgraded = std::mem::take(&mut *s.ready.borrow_mut());
            drop(upgraded);
            s.waiters.wake_all();
            Ok(())
        })?,
    )?;
    let getters = lua.create_table()?;
    getters.set(
        "port",
        lua.create_function(|_, ud: LuaAnyUserData| {
            let s = ud.borrow::<Server>()?;
            Ok(s.0.listener.local.parse::<std::net::SocketAddr>().map(|a| a.port()).ok())
        })?,
    )?;
    register_type::<Server>(lua, methods, Some(getters), |s| {
        let closed = if s.0.listener.is_closed() { ", closed" } else { "" };
        format!("ws.server{{{}{closed}}}", s.0.listener.local)
    })?;

    let ws = lua.create_table()?;
    let connect_fn = async_func(lua, "net.ws.connect", connect)?;
    ws.set("connect", connect_fn.clone())?;
    net.set("socket", connect_fn)?;
    ws.set(
        "listen",
        func(lua, "net.ws.listen", |lua, a| {
            let (l, o) = tcp::bind_listener(lua, &a)?;
            let protocols = o.strings("protocols")?;
            let lim = limits(&o)?;
            let server = ServerInner {
                listener: l.0.clone(),
                config: Rc::new(handshake::ServerConfig { protocols, compress: lim.compress }),
                max: lim.max,
                ready: RefCell::default(),
                waiters: Waiters::default(),
                upgrades: Rc::default(),
            };
            userdata(lua, Server(Rc::new(server)))
        })?,
    )?;
    net.set("ws", ws)?;
    Ok(())
}
