//! `net.serve`: an HTTP server that does not block (docs/api.md, "HTTP server"). It listens
//! with the shared acceptor (`io::acceptor`), whose per-connection step here serves the whole
//! connection: TLS first when `tls` is given, then HTTP/2 (by ALPN, or by its preface on plain
//! TCP: h2c prior knowledge) or HTTP/1.1 through hyper's low-level connections. Requests go to
//! `service.rs`; a WebSocket upgrade answered with 101 takes the transport back from hyper
//! (with the bytes it read ahead) and hands it to `handleWebSocket` as the same object
//! `net.ws.listen():accept()` gives.
//!
//! Limits (defaults in [`Limits::default`]): request head size (431), body size (413), time to
//! receive a head (408) or between body pieces (408), idle keep-alive time, and connections.
//! `stop()` stops listening at once, lets requests in flight finish (keep-alive ends; HTTP/2
//! sends GOAWAY), and closes what is left after `STOP_DEADLINE`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use mlua::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::io::{ConnState, HttpIo, Phase};
use super::service::{self, Peer, Upgrade};
use crate::error::{NResult, NetError};
use crate::export::{func, register_type, userdata, Args, Opts};
use crate::io::acceptor::{self, Acceptor, Mode};
use crate::io::{Connection, Transport};
use crate::runtime::{sched, task, Sched};
use crate::ws::handshake;

/// How long `stop()` lets requests in flight finish before closing their connections.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub struct Limits {
    /// Request line and headers, in bytes (431 above).
    pub header_bytes: usize,
    /// Request body in bytes (413 above); `None`: no limit.
    pub body_bytes: Option<usize>,
    /// From the first byte of a request to the end of its head (408), and the longest pause
    /// while a request body arrives (408).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub connections: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_bytes: 16 * 1024,
            body_bytes: Some(16 * 1024 * 1024),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            connections: Some(10_000),
        }
    }
}

const LIMIT_KEYS: &[&str] = &["header_bytes", "body_bytes", "header_timeout", "idle_timeout", "connections"];

fn limits(o: &Opts) -> NResult<Limits> {
    let mut l = Limits::default();
    let Some(t) = o.table("limits")? else { return Ok(l) };
    t.only(LIMIT_KEYS)?;
    if let Some(n) = t.int_in("header_bytes", 1024, 1 << 24)? {
        l.header_bytes = n as usize;
    }
    match t.value("body_bytes") {
        LuaValue::Boolean(false) => l.body_bytes = None,
        _ => {
            if let Some(n) = t.int_in("body_bytes", 0, i64::MAX)? {
                l.body_bytes = Some(n as usize);
            }
        }
    }
    let positive = |key: &str| -> NResult<Option<Duration>> {
        match t.timeout(key)? {
            Some(d) if d.is_zero() => Err(t.bad(key, "must be more than 0")),
            d => Ok(d),
        }
    };
    if let Some(d) = positive("header_timeout")? {
        l.header_timeout = d;
    }
    if let Some(d) = positive("idle_timeout")? {
        l.idle_timeout = d;
    }
    if let Some(n) = t.int_in("connections", 1, i64::from(u32::MAX))? {
        l.connections = Some(n as usize);
    }
    Ok(l)
}

/// What every connection of one server shares.
pub struct Server {
    pub handler: Option<LuaFunction>,
    pub ws_handler: Option<LuaFunction>,
    pub ws_config: handshake::ServerConfig,
    /// `max_message_size` of the WebSockets handed to `handleWebSocket`.
    pub ws_max: usize,
    pub limits: Limits,
    /// `stream = true`: handlers read request bodies themselves (`req:read()`).
    pub stream_body: bool,
    pub sched: Rc<Sched>,
    tls: Option<Rc<crate::tls::Server>>,
    /// Connections being served, to tell them about a graceful stop.
    conns: RefCell<HashMap<u64, Weak<ConnState>>>,
    next_conn: Cell<u64>,
    stopped: Cell<bool>,
}

/// Removes a connection from `Server::conns` when it ends.
struct Registered(Rc<Server>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.conns.borrow_mut().remove(&self.1);
    }
}

/// hyper's HTTP/2 spawns a task per stream: on our loop, not a thread pool.
#[derive(Clone, Copy)]
pub struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// The acceptor's step for one connection: serves it to the end (it hands nothing out).
async fn serve_connection(srv: Rc<Server>, conn: Connection) -> NResult<Infallible> {
    let conn = match &srv.tls {
        Some(t) => acceptor::tls_step(t, conn).await?,
        None => conn,
    };
    let Connection { mut transport, peer, local } = conn;
    let addr: Option<SocketAddr> = peer.parse().ok();
    let who = Rc::new(Peer {
        ip: addr.map(|a| a.ip().to_string()).unwrap_or_else(|| peer.clone()),
        port: addr.map_or(0, |a| a.port()),
    });
    let (h2, prefix) = if transport.is_tls() {
        (transport.alpn().as_deref() == Some("h2"), Vec::new())
    } else {
        let first = tokio::time::timeout(srv.limits.header_timeout, sniff(&mut transport)).await;
        match first {
            Ok(Ok(p)) if !p.is_empty() => (p.starts_with(H2_PREFACE), p),
            // Nothing came in time, or the peer left: nothing to answer.
            _ => return Err(NetError::closed("serve", &peer)),
        }
    };
    let state = Rc::new(ConnState::new(if prefix.is_empty() { Phase::Idle } else { Phase::Head }, !h2));
    let id = srv.next_conn.get();
    srv.next_conn.set(id + 1);
    srv.conns.borrow_mut().insert(id, Rc::downgrade(&state));
    let _registered = Registered(srv.clone(), id);
    if srv.stopped.get() {
        state.stopping.set(true);
    }
    let io = TokioIo::new(HttpIo::new(prefix, transport, state.clone()));
    if h2 {
        serve_h2(&srv, &state, who, io).await;
    } else {
        serve_h1(&srv, &state, who, io, &peer, &local).await;
    }
    Err(NetError::closed("serve", &peer))
}

/// Reads until the bytes tell HTTP/2's preface from anything else (usually the first read).
async fn sniff(t: &mut Transport) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        let got = t.read(&mut buf[n..]).await?;
        if got == 0 {
            buf.truncate(n);
            return Ok(buf);
        }
        n += got;
        let k = n.min(H2_PREFACE.len());
        if n >= H2_PREFACE.len() || buf[..k] != H2_PREFACE[..k] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// How a connection's serving ended.
enum End {
    Done(Result<(), hyper::Error>),
    TimedOut(Phase),
}

/// Polls `poll_conn` until the connection is done, or its phase's deadline passes (see
/// `io::ConnState`). A graceful stop calls `shutdown` once.
async fn drive(
    srv: &Server,
    state: &ConnState,
    mut poll_conn: impl FnMut(&mut std::task::Context<'_>) -> Poll<Result<(), hyper::Error>>,
    mut shutdown: impl FnMut(),
) -> End {
    let mut sleep = Box::pin(tokio::time::sleep(srv.limits.idle_timeout));
    let mut shut = false;
    poll_fn(|cx| {
        state.register(cx);
        if state.stopping.get() && !shut {
            shut = true;
            shutdown();
        }
        if let Poll::Ready(r) = poll_conn(cx) {
            return Poll::Ready(End::Done(r));
        }
        // After the poll: reads and finished responses may have moved the deadline. The timer
        // is moved only to an earlier time: a later deadline (the usual case, each request
        // pushing the idle time out) is noticed when the timer fires, so a busy connection
        // does not reset a timer per request.
        loop {
            let Some(at) = state.deadline(srv.limits.header_timeout, srv.limits.idle_timeout) else {
                return Poll::Pending;
            };
            if at < sleep.deadline() {
                sleep.as_mut().reset(at);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if tokio::time::Instant::now() >= at {
                return Poll::Ready(End::TimedOut(state.phase()));
            }
            sleep.as_mut().reset(at);
        }
    })
    .await
}

async fn serve_h1(
    srv: &Rc<Server>,
    state: &Rc<ConnState>,
    who: Rc<Peer>,
    io: TokioIo<HttpIo>,
    peer: &str,
    local: &str,
) {
    let slot: Rc<RefCell<Option<Upgrade>>> = Rc::default();
    let svc = {
        let (srv, state, slot) = (srv.clone(), state.clone(), slot.clone());
        service_fn(move |req| {
            let up = srv.ws_handler.as_ref().map(|_| slot.clone());
            Box::pin(service::handle(srv.clone(), state.clone(), who.clone(), up, req))
        })
    };
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(srv.limits.header_bytes)
        .serve_connection(io, svc);
    let end = {
        let conn = RefCell::new(&mut conn);
        let poll = |cx: &mut std::task::Context<'_>| conn.borrow_mut().poll_without_shutdown(cx);
        drive(srv, state, poll, || Pin::new(&mut **conn.borrow_mut()).graceful_shutdown()).await
    };
    match end {
        End::Done(Ok(())) => {
            let up = slot.borrow_mut().take();
            let parts = conn.into_parts();
            let (transport, rest) = parts.io.into_inner().into_parts();
            match up {
                Some(up) => hand_over(srv, transport, [&parts.read_buf[..], &rest[..]].concat(), up, peer, local),
                None => linger_close(transport).await,
            }
        }
        // hyper answered what it could not parse (400, 431) itself; the rest of that request
        // may still be unread.
        End::Done(Err(_)) => {
            let (transport, _) = conn.into_parts().io.into_inner().into_parts();
            linger_close(transport).await;
        }
        End::TimedOut(Phase::Head) => {
            let parts = conn.into_parts();
            let (mut transport, _) = parts.io.into_inner().into_parts();
            let answer = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            if tokio::time::timeout(LINGER, transport.write_all(answer)).await.is_ok_and(|r| r.is_ok()) {
                linger_close(transport).await;
            }
        }
        End::TimedOut(_) => {}
    }
}

async fn serve_h2(srv: &Rc<Server>, state: &Rc<ConnState>, who: Rc<Peer>, io: TokioIo<HttpIo>) {
    let svc = {
        let (srv, state) = (srv.clone(), state.clone());
        service_fn(move |req| {
            let head = req.method() == http::Method::HEAD;
            let answer = service::handle(srv.clone(), state.clone(), who.clone(), None, req);
            Box::pin(async move { Ok::<_, Infallible>(service::for_head(answer.await?, head)) })
        })
    };
    let mut conn = Box::pin(
        http2::Builder::new(LocalExec)
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(20)))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(256)
            .max_header_list_size(srv.limits.header_bytes as u32)
            .serve_connection(io, svc),
    );
    let conn = RefCell::new(&mut conn);
    let end =
        drive(srv, state, |cx| conn.borrow_mut().as_mut().poll(cx), || conn.borrow_mut().as_mut().graceful_shutdown())
            .await;
    if let End::TimedOut(_) = end {
        // Idle: say goodbye (GOAWAY) and give the peer a moment to read it.
        conn.borrow_mut().as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(1), poll_fn(|cx| conn.borrow_mut().as_mut().poll(cx))).await;
    }
}

/// How long a closing connection may take to say goodbye (see `linger_close`).
const LINGER: Duration = Duration::from_secs(1);

/// Closes a connection after its last response: FIN first, then read and drop what the client
/// still sends until it closes too (or `LINGER` passes). Closing a socket with unread bytes in
/// it sends a reset, and a reset makes the client's kernel drop the response it has not read
/// yet: a 413 or 431 answered before the whole request came would never reach the client
/// (nginx's "lingering close").
async fn linger_close(mut t: Transport) {
    let _ = tokio::time::timeout(LINGER, async {
        t.shutdown().await?;
        // On the heap: an array here would be part of every connection's future, lingering or
        // not (16 KiB more per idle connection).
        let mut sink = vec![0u8; 8 * 1024];
        while t.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Gives an upgraded connection to `handleWebSocket`, as a task of its own.
fn hand_over(srv: &Server, transport: Transport, leftover: Vec<u8>, up: Upgrade, peer: &str, local: &str) {
    let (Some(lua), Some(h)) = (srv.sched.lua(), &srv.ws_handler) else { return };
    let mut agreed = up.agreed;
    agreed.leftover = leftover;
    let conn = Connection { transport, peer: peer.to_string(), local: local.to_string() };
    let ws = crate::ws::upgraded(conn, false, srv.ws_max, agreed, Some(up.head));
    let started = userdata(&lua, ws)
        .map_err(|e| LuaError::runtime(e.msg))
        .and_then(|ud| task::spawn(&lua, h.clone(), ud.into_lua_multi(&lua)?));
    if let Err(e) = started {
        eprintln!("net.serve: cannot run handleWebSocket: {e}");
    }
}

/// What `net.serve` returns: `ip`, `port`, `stop()`.
pub struct Handle {
    srv: Rc<Server>,
    acceptor: Rc<Acceptor<Infallible>>,
    ip: String,
    port: u16,
}

/// `address` as Lune writes it (`"http://0.0.0.0"`), or a bare host.
fn host_of(address: &str) -> &str {
    let a = address.strip_prefix("http://").or_else(|| address.strip_prefix("https://")).unwrap_or(address);
    let a = a.trim_end_matches('/');
    a.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(a)
}

/// `net.serve(port, handler | config)`.
fn serve(lua: &Lua, a: Args) -> NResult<LuaAnyUserData> {
    let port = a.port(1)?;
    let (o, handler, ws_handler) = match a.get(2) {
        LuaValue::Function(f) => (Opts::new("net.serve", 2, None), Some(f), None),
        LuaValue::Table(t) => {
            let o = Opts::new("net.serve", 2, Some(t));
            let get = |key: &str| -> NResult<Option<LuaFunction>> {
                match o.value(key) {
                    LuaValue::Nil => Ok(None),
                    LuaValue::Function(f) => Ok(Some(f)),
                    v => Err(o.expected(key, "function", &v)),
                }
            };
            let (h, w) = (get("handleRequest")?, get("handleWebSocket")?);
            if h.is_none() && w.is_none() {
                return Err(a.bad(2, "handleRequest or handleWebSocket expected"));
            }
            (o, h, w)
        }
        v => return Err(a.bad(2, format!("function or table expected, got {}", crate::export::type_name(&v)))),
    };
    let address = o.string("address")?.unwrap_or_else(|| "127.0.0.1".into());
    let host = host_of(&address).to_string();
    let limits = limits(&o)?;
    let ws_opts = o.table("websocket")?;
    let (protocols, compress, ws_max) = match &ws_opts {
        None => (Vec::new(), true, crate::ws::DEFAULT_MAX_MESSAGE),
        Some(w) => {
            w.only(&["protocols", "compress", "max_message_size"])?;
            let max = w.int_in("max_message_size", 1, i64::from(u32::MAX))?.map(|n| n as usize);
            (
                w.strings("protocols")?,
                w.boolean("compress")?.unwrap_or(true),
                max.unwrap_or(crate::ws::DEFAULT_MAX_MESSAGE),
            )
        }
    };
    let stream_body = o.boolean("stream")?.unwrap_or(false);
    raise_fd_limit();
    let b = crate::tcp::bind(lua, &host, port, o, &["h2", "http/1.1"])?;
    let local: SocketAddr = b.local.parse().map_err(|_| NetError::new(crate::error::Kind::Io, "no local address"))?;
    let s = sched(lua);
    let srv = Rc::new(Server {
        handler,
        ws_handler,
        ws_config: handshake::ServerConfig { protocols, compress },
        ws_max,
        limits,
        stream_body,
        sched: s.clone(),
        tls: b.tls,
        conns: RefCell::default(),
        next_conn: Cell::new(0),
        stopped: Cell::new(false),
    });
    let step_srv = srv.clone();
    let step: acceptor::Handshake<Infallible> = Rc::new(move |conn| Box::pin(serve_connection(step_srv.clone(), conn)));
    let connections = srv.limits.connections;
    let acceptor = Acceptor::new(b.sock, b.local.clone(), Mode::Background(step), connections);
    // The accept loop: it ends when the listener closes (`stop()`).
    let accepting = acceptor.clone();
    s.retain();
    s.local.spawn_local(async move {
        loop {
            match accepting.accept().await {
                Err(_) if accepting.is_closed() => break,
                Err(e) => {
                    eprintln!("net.serve: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    userdata(lua, Handle { srv, acceptor, ip: local.ip().to_string(), port: local.port() })
}

impl Handle {
    fn stop(&self) -> NResult<()> {
        if self.srv.stopped.replace(true) {
            return Err(NetError::closed("stop", "server (already stopped)"));
        }
        self.acceptor.stop_listening();
        let conns: Vec<Rc<ConnState>> = self.srv.conns.borrow().values().filter_map(Weak::upgrade).collect();
        for c in conns {
            c.stopping.set(true);
            c.wake();
        }
        let (acceptor, s) = (self.acceptor.clone(), self.srv.sched.clone());
        self.srv.sched.local.spawn_local(async move {
            let _ = tokio::time::timeout(STOP_DEADLINE, acceptor.drained()).await;
            acceptor.close();
            s.release();
        });
        Ok(())
    }
}

/// A server holding thousands of connections needs as many descriptors: raise the soft limit
/// to the hard one, as Go's runtime and nginx (`worker_rlimit_nofile`) do.
fn raise_fd_limit() {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "stop",
        func(lua, "stop", |_, a| {
            let h = a.this::<Handle>("server handle")?;
            h.stop()
        })?,
    )?;
    let getters = lua.create_table()?;
    getters.set("ip", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Handle>()?.ip.clone()))?)?;
    getters.set("port", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Handle>()?.port))?)?;
    // `close()`: `stop()` that is harmless twice (and `<close>` on Lua 5.4), like every other
    // object of the module.
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            let h = a.this::<Handle>("server handle")?;
            if !h.srv.stopped.get() {
                h.stop()?;
            }
            Ok(())
        })?,
    )?;
    register_type::<Handle>(lua, methods, Some(getters), |h| {
        let stopped = if h.srv.stopped.get() { ", stopped" } else { "" };
        format!("http.server{{{}{stopped}}}", crate::tcp::host_port(&h.ip, h.port))
    })?;
    net.set("serve", func(lua, "net.serve", serve)?)?;
    Ok(())
}
