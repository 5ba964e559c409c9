//! The WebSocket object that `net.ws.connect` and `server:accept()` return: `send`, `recv`,
//! `next`, `ping`, `pong`, `close`, `set_timeout`, addresses, and the fields `closeCode`,
//! `subprotocol` and `extensions`.
//!
//! The protocol is `conn.rs`; this file keeps the Lua-facing state (`closeCode`, whether the
//! connection ended) and turns protocol failures into the close codes RFC 6455 asks for: a
//! message over `max_message_size` closes with 1009, text that is not UTF-8 with 1007, other
//! violations with 1002; `recv` then raises `limit: ...` / `protocol: ...`.
//!
//! `close` finishes the close handshake in the background (bounded by `CLOSE_WAIT`), so the TCP
//! connection ends even when nobody calls `recv` afterwards; a `recv` after `close` still gets
//! the peer's reply, whoever read it off the socket, and data that arrives after our close is
//! dropped.
//!
//! `send`, `ping`, `pong`, `recv` and `next` first try synchronously (a message already
//! buffered, room in the send queue) and only take the async path when they must wait, like the
//! stream methods (`src/lua/stream.lua`).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mlua::prelude::*;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::conn::{self, Conn, Message};
use crate::error::{Kind, NResult, NetError};
use crate::export::{self, async_func, fail_tag, func, pending_tag, raw_async, register_type, Args};
use crate::runtime::Waiters;

/// A send from a task returns at once while less than this is queued.
const SEND_QUEUE: usize = 64 * 1024;
/// After our close frame, how long the background close waits for the peer's reply before it
/// closes the socket anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

pub struct Inner {
    conn: Rc<Conn>,
    /// TLS: a try that reads the socket could steal the wakeup of a writer waiting in OpenSSL.
    tls: bool,
    timeout: Cell<Option<Duration>>,
    peer: String,
    local: String,
    subprotocol: Option<String>,
    extensions: Option<String>,
    /// A server-side connection's upgrade request head, as received (parsed again on access of
    /// `path`, `query`, `headers`: keeping the bytes costs an idle connection less than fields).
    request: Option<Box<[u8]>>,
    /// `closeCode`: ours after a local close, else the peer's, 1005 / 1006 as the spec says.
    close_code: Cell<Option<u16>>,
    /// The connection is over: `recv` returns nil from now on.
    ended: Cell<bool>,
    /// Our `close()` was called: the methods but `recv`, `next`, `set_timeout` and `close` raise
    /// `closed: ...`, and a background task finishes the close handshake.
    closing: Cell<bool>,
    /// The peer's close reply, read by the background close, for the next `recv`.
    reply: RefCell<Option<Message>>,
    /// After `close()`, the tasks waiting in `recv` and the background close read the same
    /// socket, which wakes only the last to poll it: whoever ends the connection wakes the rest.
    readers: Waiters,
}

pub struct WebSocket(pub Rc<Inner>);

/// Where a new connection comes from: the pieces `WebSocket::new` needs.
pub struct Parts {
    pub conn: Conn,
    pub tls: bool,
    pub peer: String,
    pub local: String,
    pub subprotocol: Option<String>,
    pub extensions: Option<String>,
    /// The upgrade request head (server side).
    pub request: Option<Box<[u8]>>,
}

impl WebSocket {
    pub fn new(p: Parts) -> Self {
        WebSocket(Rc::new(Inner {
            conn: Rc::new(p.conn),
            tls: p.tls,
            timeout: Cell::new(None),
            peer: p.peer,
            local: p.local,
            subprotocol: p.subprotocol,
            extensions: p.extensions,
            request: p.request,
            close_code: Cell::new(None),
            ended: Cell::new(false),
            closing: Cell::new(false),
            reply: RefCell::new(None),
            readers: Waiters::default(),
        }))
    }
}

impl crate::runtime::Parkable for Inner {
    fn poll_ready(&self, cx: &mut Context<'_>, _write: bool) -> Poll<()> {
        if self.ended.get() {
            return Poll::Ready(());
        }
        let r = self.conn.poll_read_ready(cx);
        self.readers.pending(cx, r)
    }
}

fn this(a: &Args) -> NResult<Rc<Inner>> {
    Ok(a.this::<WebSocket>("websocket")?.0.clone())
}

/// The websocket, or `closed: ...` once `close()` was called (for the methods that make no
/// sense then).
fn open(a: &Args, op: &str) -> NResult<Rc<Inner>> {
    let ws = this(a)?;
    if ws.closing.get() {
        return Err(NetError::closed(op, "websocket"));
    }
    Ok(ws)
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(futures_util::task::noop_waker_ref())
}

impl Inner {
    fn io_error(&self, op: &str, e: &std::io::Error) -> NetError {
        NetError::io(op, &self.peer, e)
    }

    async fn timed<T>(&self, op: &str, fut: impl std::future::Future<Output = NResult<T>>) -> NResult<T> {
        match self.timeout.get() {
            None => fut.await,
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| NetError::timeout(op, &self.peer, d))?,
        }
    }

    /// Registers a reader that has to wait. The socket remembers only the last task that waited
    /// on it, so readers are also kept here: one that gets a message wakes the others
    /// (`got_message`), and the end of the connection wakes them all.
    fn wait_as_reader(&self, cx: &Context<'_>) {
        let _ = self.readers.pending(cx, Poll::<()>::Pending);
    }

    /// A reader got a message (or the end): it leaves the readers, and any other reader is woken
    /// to wait on the socket again in its place.
    fn got_message(&self, cx: &Context<'_>) {
        let _ = self.readers.pending(cx, Poll::Ready(()));
        if !self.readers.is_empty() {
            self.readers.wake_all();
        }
    }

    fn end(&self, code: u16) {
        self.ended.set(true);
        if self.close_code.get().is_none() {
            self.close_code.set(Some(code));
        }
        self.readers.wake_all();
    }

    /// The next message (only data messages if `data_only`), or None once the connection is
    /// over. `read` false: only what is already buffered.
    fn poll_recv(&self, cx: &mut Context<'_>, data_only: bool, read: bool) -> Poll<NResult<Option<Message>>> {
        if !data_only {
            if let Some(m) = self.reply.borrow_mut().take() {
                return Poll::Ready(Ok(Some(m)));
            }
        }
        self.poll_message(cx, data_only, read)
    }

    /// `poll_recv` without the reply the background close kept (which that close itself uses).
    fn poll_message(&self, cx: &mut Context<'_>, data_only: bool, read: bool) -> Poll<NResult<Option<Message>>> {
        let r = self.poll_message_inner(cx, data_only, read);
        if r.is_ready() {
            self.got_message(cx);
        }
        r
    }

    fn poll_message_inner(&self, cx: &mut Context<'_>, data_only: bool, read: bool) -> Poll<NResult<Option<Message>>> {
        loop {
            if self.ended.get() {
                return Poll::Ready(Ok(None));
            }
            let r = match self.conn.poll_message(cx, read) {
                Poll::Pending => {
                    if read {
                        self.wait_as_reader(cx); // (a first try without reading waits on nothing)
                    }
                    return Poll::Pending;
                }
                Poll::Ready(r) => r,
            };
            match r {
                Ok(Message::Close(c)) => {
                    // The close handshake is complete (our reply is queued): later calls return
                    // nil at once rather than waiting for the peer to drop the TCP connection.
                    self.conn.flush_soon();
                    self.end(c.as_ref().map(|(code, _)| *code).unwrap_or(conn::NO_STATUS));
                    if !data_only {
                        return Poll::Ready(Ok(Some(Message::Close(c))));
                    }
                }
                Ok(Message::Ping(_) | Message::Pong(_)) if data_only => {}
                // After our close only the peer's reply matters: messages still on their way
                // are dropped, by `recv` and the background close alike, so what `recv` returns
                // does not depend on which of them read the socket first.
                Ok(_) if self.closing.get() => {}
                Ok(m) => return Poll::Ready(Ok(Some(m))),
                // The peer went away without a close frame: the end of the stream, not an error
                // (closeCode tells 1006), as docs/api.md says of recv.
                Err(conn::Error::Eof) => self.drop_connection(),
                Err(conn::Error::Io(e)) if is_drop(&e) => self.drop_connection(),
                Err(e) => return Poll::Ready(Err(self.fail(e))),
            }
        }
    }

    /// The peer vanished without a close frame: 1006, and the socket is closed now.
    fn drop_connection(&self) {
        self.end(conn::ABNORMAL);
        self.conn.release();
    }

    /// The background part of `close()`: reads until the peer's close reply (kept for `recv`),
    /// the end of the connection, or `CLOSE_WAIT`, then ends the TCP connection. Not a task of
    /// `net.run()`'s: a script that is done does not wait for it.
    fn finish_close(self: &Rc<Self>, lua: &Lua) {
        let ws = self.clone();
        crate::runtime::sched(lua).local.spawn_local(async move {
            let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
            let read_reply = poll_fn(|cx| match ws.poll_message(cx, false, true) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(Some(m))) => {
                    *ws.reply.borrow_mut() = Some(m);
                    Poll::Ready(())
                }
                Poll::Ready(_) => Poll::Ready(()),
            });
            let _ = tokio::time::timeout_at(deadline, read_reply).await;
            // Whatever came (or not), the TCP connection ends now: the queue (our close frame,
            // if it is still there) gets the rest of the time, then the socket is closed.
            ws.conn.finish();
            let _ = tokio::time::timeout_at(deadline, poll_fn(|cx| ws.conn.poll_flush(cx))).await;
            ws.conn.release();
            ws.end(conn::ABNORMAL);
            ws.readers.wake_all();
        });
    }

    /// Ends the connection after a failure; the peer's violations are answered with a close frame.
    fn fail(&self, e: conn::Error) -> NetError {
        let code = e.code();
        self.end(code);
        let (kind, msg) = match e {
            conn::Error::Io(io) => {
                self.conn.release();
                return self.io_error("recv from", &io);
            }
            conn::Error::Eof => unreachable!("handled by poll_recv"),
            conn::Error::TooBig(m) => (Kind::Limit, m),
            conn::Error::Protocol(m) | conn::Error::BadUtf8(m) => (Kind::Protocol, m),
        };
        if !self.conn.sent_close.get() {
            let reason: &[u8] = match code {
                conn::TOO_BIG => b"message too big",
                conn::INVALID_DATA => b"invalid UTF-8",
                _ => b"protocol error",
            };
            let payload = [&code.to_be_bytes()[..], reason].concat();
            let _ = self.conn.queue(OpCode::Control(Control::Close), &payload);
        }
        // RFC 6455 §7.1.7: failing the connection ends it, without waiting for the peer.
        self.conn.finish();
        self.conn.flush_soon();
        NetError::new(kind, format!("recv from {}: {msg} (closed with {code})", self.peer))
    }

    /// Queues a frame; true when the caller may return at once, false when it must wait for the
    /// queue to drain.
    fn queue(&self, op: &'static str, opcode: OpCode, payload: &[u8]) -> NResult<bool> {
        if self.conn.sent_close.get() || self.ended.get() {
            return Err(NetError::closed(op, "websocket"));
        }
        self.conn.queue(opcode, payload).map_err(|e| match e {
            conn::Error::Io(io) => self.io_error("send to", &io),
            other => NetError::new(Kind::Protocol, format!("send to {}: {other}", self.peer)),
        })?;
        if self.conn.queued() > SEND_QUEUE || !self.conn.defer_flush() {
            return Ok(false); // back-pressure, or outside a task: the caller waits for the write
        }
        // More messages are waiting to be read (and likely answered): write them all out together
        // when the task yields. Otherwise this one goes now.
        if !self.conn.input_pending() {
            self.conn.write_now();
        }
        Ok(true)
    }

    async fn flush(&self) -> NResult<()> {
        let r = self.timed("send to", async {
            poll_fn(|cx| self.conn.poll_flush(cx)).await.map_err(|e| self.io_error("send to", &e))
        });
        r.await
    }
}

fn is_drop(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
}

/// `{type = "text" | "binary" | "ping" | "pong" | "close", data =, code =, reason =}`
/// `{type = ..., data = ...}` (and `code`, `reason` for a close). Built by raw pushes inside one
/// protected call: every mlua allocation is protected on its own, which costs about a microsecond
/// apiece on LuaJIT, and a message would take five.
fn message_table(lua: &Lua, m: Message) -> LuaResult<LuaTable> {
    let (kind, data, close) = match m {
        Message::Text(d) => ("text", d, None),
        Message::Binary(d) => ("binary", d, None),
        Message::Ping(d) => ("ping", d, None),
        Message::Pong(d) => ("pong", d, None),
        Message::Close(c) => {
            let (code, reason) = c.unwrap_or((conn::NO_STATUS, String::new()));
            ("close", reason.into_bytes(), Some(code))
        }
    };
    let set = |state: *mut mlua::ffi::lua_State, key: &std::ffi::CStr, bytes: &[u8]| {
        // SAFETY: runs inside `exec_raw`'s protected call, with the table on top of the stack.
        unsafe {
            mlua::ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
            mlua::ffi::lua_setfield(state, -2, key.as_ptr());
        }
    };
    // SAFETY: the closure only pushes a table and sets string and integer fields on it; `kind`
    // and `data` outlive the call.
    unsafe {
        lua.exec_raw((), |state| {
            mlua::ffi::lua_createtable(state, 0, if close.is_some() { 4 } else { 2 });
            set(state, c"type", kind.as_bytes());
            set(state, c"data", &data);
            if let Some(code) = close {
                set(state, c"reason", &data);
                mlua::ffi::lua_pushinteger(state, code.into());
                mlua::ffi::lua_setfield(state, -2, c"code".as_ptr());
            }
        })
    }
}

fn message_data(lua: &Lua, m: Message) -> LuaResult<LuaValue> {
    match m {
        Message::Text(d) | Message::Binary(d) => Ok(LuaValue::String(lua.create_string(&d)?)),
        _ => unreachable!("data_only"),
    }
}

/// The frame a `send(data[, kind])` or `ping`/`pong([payload])` call asks for.
/// `send(data, "ping" | "pong")` is `ping(data)` / `pong(data)`: an echo loop can send back each
/// message `recv` gives with its own `type` (seed 000's example does).
fn outgoing(a: &Args, op: &'static str) -> NResult<(OpCode, Vec<u8>)> {
    match op {
        "send" => {
            let data = a.bytes(2)?;
            let binary = match a.get(3) {
                LuaValue::Nil => false,
                LuaValue::Boolean(b) => b,
                LuaValue::String(s) if s.as_bytes() == b"text" => false,
                LuaValue::String(s) if s.as_bytes() == b"binary" => true,
                LuaValue::String(s) if s.as_bytes() == b"ping" => return control(a, Control::Ping, data),
                LuaValue::String(s) if s.as_bytes() == b"pong" => return control(a, Control::Pong, data),
                _ => return Err(a.bad(3, "\"text\", \"binary\", \"ping\", \"pong\" or a boolean expected")),
            };
            if !binary && std::str::from_utf8(&data).is_err() {
                return Err(a.bad(2, "text is not valid UTF-8 (send it as \"binary\")"));
            }
            Ok((OpCode::Data(if binary { Data::Binary } else { Data::Text }), data))
        }
        _ => {
            let p = if a.is_nil(2) { Vec::new() } else { a.bytes(2)? };
            control(a, if op == "ping" { Control::Ping } else { Control::Pong }, p)
        }
    }
}

/// A ping or pong frame: at most 125 bytes of payload (RFC 6455 §5.5).
fn control(a: &Args, c: Control, payload: Vec<u8>) -> NResult<(OpCode, Vec<u8>)> {
    if payload.len() > 125 {
        return Err(a.bad(2, format!("control frame payload is at most 125 bytes, got {}", payload.len())));
    }
    Ok((OpCode::Control(c), payload))
}

fn try_send(lua: &Lua, a: Args, op: &'static str) -> LuaResult<LuaMultiValue> {
    let r = (|| {
        let ws = this(&a)?;
        let (opcode, data) = outgoing(&a, op)?;
        ws.queue(op, opcode, &data)
    })();
    match r {
        Ok(true) => Ok(LuaMultiValue::new()),
        Ok(false) => pending_tag().into_lua_multi(lua),
        Err(e) => export::to_lua::<()>(lua, Err(e)),
    }
}

fn try_recv(lua: &Lua, a: Args, data_only: bool) -> LuaResult<LuaMultiValue> {
    let ws = match this(&a) {
        Ok(ws) => ws,
        Err(e) => return export::to_lua::<()>(lua, Err(e)),
    };
    let read = !ws.tls;
    match ws.poll_recv(&mut noop_cx(), data_only, read) {
        Poll::Pending => pending_tag().into_lua_multi(lua),
        Poll::Ready(Ok(None)) => LuaValue::Nil.into_lua_multi(lua),
        Poll::Ready(Ok(Some(m))) if data_only => message_data(lua, m)?.into_lua_multi(lua),
        Poll::Ready(Ok(Some(m))) => message_table(lua, m)?.into_lua_multi(lua),
        Poll::Ready(Err(e)) => (fail_tag(), e.to_string()).into_lua_multi(lua),
    }
}

/// Request headers as a table: lower-case names, a repeated header's values joined by ", "
/// (RFC 9110 §5.3).
fn header_table(lua: &Lua, headers: &[(&str, &[u8])]) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let joined = match t.raw_get::<Option<LuaString>>(name.as_str())? {
            None => lua.create_string(value)?,
            Some(prev) => lua.create_string([&prev.as_bytes()[..], b", ", value].concat())?,
        };
        t.raw_set(name, joined)?;
    }
    Ok(t)
}

/// A field read from the kept upgrade request; nil on a client-side connection.
fn request_field(
    lua: &Lua,
    ud: &LuaAnyUserData,
    f: impl FnOnce(&Lua, super::handshake::RequestView<'_>) -> LuaResult<LuaValue>,
) -> LuaResult<LuaValue> {
    let ws = ud.borrow::<WebSocket>()?.0.clone();
    let Some(head) = &ws.request else { return Ok(LuaValue::Nil) };
    let mut out = Ok(LuaValue::Nil);
    super::handshake::view_request(head, |v| out = f(lua, v));
    out
}

pub fn register(lua: &Lua) -> LuaResult<()> {
    let fast: LuaTable = crate::export::fast_paths(lua)?;
    let varargs: LuaFunction = fast.get("varargs")?;
    let methods = lua.create_table()?;
    for op in ["send", "ping", "pong"] {
        let t = lua.create_function(move |lua, a: LuaMultiValue| try_send(lua, Args::new(op, a), op))?;
        // The frame is queued already: waiting means writing the queue out.
        let w = raw_async(lua, op, |_, a| {
            let ws = this(&a)?;
            Ok(async move { ws.flush().await })
        })?;
        methods.set(op, varargs.call::<LuaFunction>((t, w))?)?;
    }
    // A task waiting for a message parks on the socket's readiness (cheap) rather than making an
    // async call; with a timeout, or over TLS (whose readiness is not the socket's), it cannot.
    let method: LuaFunction = fast.get("method")?;
    let park = lua.create_function(|lua, ud: LuaAnyUserData| {
        let ws = ud.borrow::<WebSocket>()?.0.clone();
        if ws.tls || ws.timeout.get().is_some() {
            return Ok(false);
        }
        Ok(crate::runtime::park_here(lua.current_thread().to_pointer(), ws, false))
    })?;
    for (op, data_only) in [("recv", false), ("next", true)] {
        let t = lua.create_function(move |lua, a: LuaMultiValue| try_recv(lua, Args::new(op, a), data_only))?;
        let w = raw_async(lua, op, move |lua, a| {
            let ws = this(&a)?;
            let lua = lua.clone();
            Ok(async move {
                let m = ws.timed("recv from", poll_fn(|cx| ws.poll_recv(cx, data_only, true))).await?;
                Ok(match m {
                    None => LuaValue::Nil,
                    Some(m) if data_only => message_data(&lua, m)?,
                    Some(m) => LuaValue::Table(message_table(&lua, m)?),
                })
            })
        })?;
        methods.set(op, method.call::<LuaFunction>((t, w, park.clone()))?)?;
    }
    methods.set(
        "close",
        async_func(lua, "close", |lua, a| {
            let ws = this(&a)?;
            let code = a.opt_int_in(2, 1000, 4999)?.unwrap_or(1000) as u16;
            let reason = a.opt_string(3)?.unwrap_or_default();
            if reason.len() > 123 {
                return Err(a.bad(3, "close reason is at most 123 bytes"));
            }
            let first = !ws.conn.sent_close.get() && !ws.ended.get();
            ws.closing.set(true);
            if first {
                ws.close_code.set(Some(code));
                let payload = [&code.to_be_bytes()[..], reason.as_bytes()].concat();
                let _ = ws.conn.queue(OpCode::Control(Control::Close), &payload);
                ws.finish_close(lua);
            }
            Ok(async move {
                if first {
                    match ws.flush().await {
                        Ok(()) | Err(NetError { kind: Kind::Closed, .. }) => {}
                        Err(e) if e.kind == Kind::Reset => ws.ended.set(true),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        })?,
    )?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            this(&a)?.timeout.set(a.timeout(2)?);
            Ok(())
        })?,
    )?;
    methods.set("peer_addr", func(lua, "peer_addr", |_, a| Ok(open(&a, "peer_addr")?.peer.clone()))?)?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(open(&a, "local_addr")?.local.clone()))?)?;

    let getters = lua.create_table()?;
    getters.set(
        "closeCode",
        lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<WebSocket>()?.0.close_code.get()))?,
    )?;
    getters.set(
        "subprotocol",
        lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<WebSocket>()?.0.subprotocol.clone()))?,
    )?;
    getters.set(
        "extensions",
        lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<WebSocket>()?.0.extensions.clone()))?,
    )?;
    // The upgrade request of a server-side connection (nil on a client).
    getters.set(
        "path",
        lua.create_function(|lua, ud: LuaAnyUserData| {
            request_field(lua, &ud, |lua, v| Ok(LuaValue::String(lua.create_string(v.path)?)))
        })?,
    )?;
    getters.set(
        "query",
        lua.create_function(|lua, ud: LuaAnyUserData| {
            request_field(lua, &ud, |lua, v| match v.query {
                Some(q) => Ok(LuaValue::String(lua.create_string(q)?)),
                None => Ok(LuaValue::Nil),
            })
        })?,
    )?;
    getters.set(
        "headers",
        lua.create_function(|lua, ud: LuaAnyUserData| {
            request_field(lua, &ud, |lua, v| Ok(LuaValue::Table(header_table(lua, &v.headers)?)))
        })?,
    )?;
    // The same as one table shaped like a `net.serve` request: the query decoded.
    getters.set(
        "request",
        lua.create_function(|lua, ud: LuaAnyUserData| {
            request_field(lua, &ud, |lua, v| {
                let t = lua.create_table()?;
                t.raw_set("method", "GET")?;
                t.raw_set("path", lua.create_string(v.path)?)?;
                t.raw_set(
                    "query",
                    crate::url::pairs_table(lua, crate::url::form_pairs(v.query.unwrap_or("").as_bytes()))?,
                )?;
                t.raw_set("headers", header_table(lua, &v.headers)?)?;
                Ok(LuaValue::Table(t))
            })
        })?,
    )?;
    register_type::<WebSocket>(lua, methods, Some(getters), |w| {
        let state = if w.0.ended.get() || w.0.closing.get() { ", closed" } else { "" };
        format!("ws{{{} -> {}{state}}}", w.0.local, w.0.peer)
    })
}
