//! The WebSocket object that `net.ws.connect` and `server:accept()` return: `send`, `recv`,
//! `next`, `ping`, `pong`, `close`, `set_timeout`, addresses, and the fields `closeCode` and
//! `subprotocol`.
//!
//! tokio-tungstenite does the framing, masking, automatic pongs and the close handshake. The
//! stream is borrowed only inside one poll, so one task may `recv` while another `send`s.
//! Limits close the connection as RFC 6455 says: a message over `max_message_size` with 1009,
//! text that is not UTF-8 with 1007; `recv` then raises `limit: ...` / `protocol: ...`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{Sink, Stream as _};
use mlua::prelude::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::{Kind, NResult, NetError};
use crate::export::{async_func, func, register_type, Args};
use crate::runtime::Waiters;
use crate::tcp::stream::Transport;

/// Close codes of RFC 6455 used here.
const ABNORMAL: u16 = 1006;
const NO_STATUS: u16 = 1005;
const INVALID_DATA: u16 = 1007;
const TOO_BIG: u16 = 1009;

pub struct Inner {
    ws: RefCell<WebSocketStream<Transport>>,
    timeout: Cell<Option<Duration>>,
    peer: String,
    local: String,
    pub subprotocol: Option<String>,
    /// `closeCode`: ours after a local close, else the peer's, 1005 / 1006 as the spec says.
    close_code: Cell<Option<u16>>,
    /// We sent a close frame: `send` refuses from now on.
    closing: Cell<bool>,
    /// The stream ended: `recv` returns nil from now on.
    ended: Cell<bool>,
    waiters: Waiters,
}

pub struct WebSocket(pub Rc<Inner>);

impl WebSocket {
    pub fn new(ws: WebSocketStream<Transport>, peer: String, local: String, subprotocol: Option<String>) -> Self {
        WebSocket(Rc::new(Inner {
            ws: RefCell::new(ws),
            timeout: Cell::new(None),
            peer,
            local,
            subprotocol,
            close_code: Cell::new(None),
            closing: Cell::new(false),
            ended: Cell::new(false),
            waiters: Waiters::default(),
        }))
    }
}

fn this(a: &Args) -> NResult<Rc<Inner>> {
    Ok(a.this::<WebSocket>("websocket")?.0.clone())
}

impl Inner {
    fn error(&self, op: &str, e: WsError) -> NetError {
        match e {
            WsError::Io(io) => NetError::io(op, &self.peer, &io),
            WsError::ConnectionClosed | WsError::AlreadyClosed => NetError::closed(op, "websocket"),
            WsError::Capacity(c) => NetError::new(Kind::Limit, format!("{op} {}: {c}", self.peer)),
            WsError::Utf8(u) => {
                NetError::new(Kind::Protocol, format!("{op} {}: text is not valid UTF-8 ({u})", self.peer))
            }
            other => NetError::new(Kind::Protocol, format!("{op} {}: {other}", self.peer)),
        }
    }

    async fn timed<T>(&self, op: &str, fut: impl std::future::Future<Output = NResult<T>>) -> NResult<T> {
        match self.timeout.get() {
            None => fut.await,
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| NetError::timeout(op, &self.peer, d))?,
        }
    }

    /// Sends one message and flushes it.
    async fn send(&self, op: &str, msg: Message) -> NResult<()> {
        let mut msg = Some(msg);
        poll_fn(|cx| {
            let mut ws = self.ws.borrow_mut();
            let mut ws = Pin::new(&mut *ws);
            if msg.is_some() {
                match ws.as_mut().poll_ready(cx) {
                    Poll::Pending => return self.waiters.pending(cx, Poll::Pending),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(self.error(op, e))),
                    Poll::Ready(Ok(())) => {}
                }
                if let Err(e) = ws.as_mut().start_send(msg.take().expect("checked")) {
                    return Poll::Ready(Err(self.error(op, e)));
                }
            }
            let r = ws.as_mut().poll_flush(cx).map_err(|e| self.error(op, e));
            self.waiters.pending(cx, r)
        })
        .await
    }

    async fn flush(&self) -> NResult<()> {
        poll_fn(|cx| {
            let r = Pin::new(&mut *self.ws.borrow_mut()).poll_flush(cx).map_err(|e| self.error("send to", e));
            self.waiters.pending(cx, r)
        })
        .await
    }

    /// Closes with `code` (best effort, bounded) after a limit was broken by the peer.
    async fn close_for(&self, code: u16, reason: &str) {
        if self.close_code.get().is_none() {
            self.close_code.set(Some(code));
        }
        if !self.closing.replace(true) {
            let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_string().into() };
            let _ = tokio::time::timeout(Duration::from_secs(1), self.send("close", Message::Close(Some(frame)))).await;
        }
        self.ended.set(true);
    }

    /// The next message of any kind, or None once the connection is over.
    async fn next_message(&self) -> NResult<Option<Message>> {
        if self.ended.get() {
            return Ok(None);
        }
        let next = poll_fn(|cx| {
            let r = Pin::new(&mut *self.ws.borrow_mut()).poll_next(cx);
            self.waiters.pending(cx, r).map(Ok)
        });
        let r = self.timed("recv from", next).await;
        match r? {
            None | Some(Err(WsError::ConnectionClosed)) | Some(Err(WsError::AlreadyClosed)) => {
                self.ended.set(true);
                if self.close_code.get().is_none() {
                    self.close_code.set(Some(ABNORMAL));
                }
                Ok(None)
            }
            Some(Ok(Message::Close(frame))) => {
                // tungstenite queued the close reply: send it now, the caller may never read again.
                let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
                // The close handshake is complete either way: later calls return nil at once
                // rather than waiting for the peer to drop the TCP connection.
                self.ended.set(true);
                if self.close_code.get().is_none() {
                    self.close_code.set(Some(frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(NO_STATUS)));
                }
                Ok(Some(Message::Close(frame)))
            }
            Some(Ok(m)) => Ok(Some(m)),
            Some(Err(WsError::Capacity(c))) => {
                self.close_for(TOO_BIG, "message too big").await;
                Err(NetError::new(Kind::Limit, format!("recv from {}: {c} (closed with 1009)", self.peer)))
            }
            Some(Err(e @ WsError::Utf8(_))) => {
                self.close_for(INVALID_DATA, "invalid UTF-8").await;
                Err(self.error("recv from", e))
            }
            Some(Err(e)) => {
                self.ended.set(true);
                if self.close_code.get().is_none() {
                    self.close_code.set(Some(ABNORMAL));
                }
                Err(self.error("recv from", e))
            }
        }
    }
}

/// `{type = "text" | "binary" | "ping" | "pong" | "close", data =, code =, reason =}`
fn message_table(lua: &Lua, m: Message) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    match m {
        Message::Text(s) => {
            t.set("type", "text")?;
            t.set("data", lua.create_string(s.as_bytes())?)?;
        }
        Message::Binary(b) => {
            t.set("type", "binary")?;
            t.set("data", lua.create_string(&b)?)?;
        }
        Message::Ping(b) => {
            t.set("type", "ping")?;
            t.set("data", lua.create_string(&b)?)?;
        }
        Message::Pong(b) => {
            t.set("type", "pong")?;
            t.set("data", lua.create_string(&b)?)?;
        }
        Message::Close(f) => {
            t.set("type", "close")?;
            let (code, reason) =
                f.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((NO_STATUS, String::new()));
            t.set("code", code)?;
            t.set("reason", reason.as_str())?;
            t.set("data", reason)?;
        }
        Message::Frame(_) => t.set("type", "frame")?,
    }
    Ok(t)
}

/// A payload argument for ping/pong (at most 125 bytes, RFC 6455 5.5).
fn control_payload(a: &Args) -> NResult<Vec<u8>> {
    let p = if a.is_nil(2) { Vec::new() } else { a.bytes(2)? };
    if p.len() > 125 {
        return Err(a.bad(2, format!("control frame payload is at most 125 bytes, got {}", p.len())));
    }
    Ok(p)
}

pub fn register(lua: &Lua) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "send",
        async_func(lua, "send", |_, a| {
            let ws = this(&a)?;
            let data = a.bytes(2)?;
            let binary = match a.get(3) {
                LuaValue::Nil => false,
                LuaValue::Boolean(b) => b,
                LuaValue::String(s) if s.as_bytes() == b"text" => false,
                LuaValue::String(s) if s.as_bytes() == b"binary" => true,
                _ => return Err(a.bad(3, "\"text\", \"binary\" or a boolean expected")),
            };
            let msg = if binary {
                Message::Binary(data.into())
            } else {
                let text =
                    String::from_utf8(data).map_err(|_| a.bad(2, "text is not valid UTF-8 (send it as \"binary\")"))?;
                Message::Text(text.into())
            };
            if ws.closing.get() || ws.ended.get() {
                return Err(NetError::closed("send", "websocket"));
            }
            Ok(async move { ws.timed("send to", ws.send("send to", msg)).await })
        })?,
    )?;
    methods.set(
        "recv",
        async_func(lua, "recv", |lua, a| {
            let ws = this(&a)?;
            let lua = lua.clone();
            Ok(async move {
                match ws.next_message().await? {
                    None => Ok(LuaValue::Nil),
                    Some(m) => Ok(LuaValue::Table(message_table(&lua, m)?)),
                }
            })
        })?,
    )?;
    methods.set(
        "next",
        async_func(lua, "next", |lua, a| {
            let ws = this(&a)?;
            let lua = lua.clone();
            Ok(async move {
                loop {
                    match ws.next_message().await? {
                        None => return Ok(LuaValue::Nil),
                        Some(Message::Text(s)) => return Ok(LuaValue::String(lua.create_string(s.as_bytes())?)),
                        Some(Message::Binary(b)) => return Ok(LuaValue::String(lua.create_string(&b)?)),
                        Some(_) => continue, // control frames are answered by the library
                    }
                }
            })
        })?,
    )?;
    for (name, ping) in [("ping", true), ("pong", false)] {
        methods.set(
            name,
            async_func(lua, name, move |_, a| {
                let ws = this(&a)?;
                let p = control_payload(&a)?;
                if ws.closing.get() || ws.ended.get() {
                    return Err(NetError::closed(if ping { "ping" } else { "pong" }, "websocket"));
                }
                let msg = if ping { Message::Ping(p.into()) } else { Message::Pong(p.into()) };
                Ok(async move { ws.timed("send to", ws.send("send to", msg)).await })
            })?,
        )?;
    }
    methods.set(
        "close",
        async_func(lua, "close", |_, a| {
            let ws = this(&a)?;
            let code = a.opt_int_in(2, 1000, 4999)?.unwrap_or(1000) as u16;
            let reason = a.opt_string(3)?.unwrap_or_default();
            if reason.len() > 123 {
                return Err(a.bad(3, "close reason is at most 123 bytes"));
            }
            let first = !ws.closing.replace(true) && !ws.ended.get();
            Ok(async move {
                if first {
                    ws.close_code.set(Some(code));
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    match ws.timed("close", ws.send("close", Message::Close(Some(frame)))).await {
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
    methods.set("peer_addr", func(lua, "peer_addr", |_, a| Ok(this(&a)?.peer.clone()))?)?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(this(&a)?.local.clone()))?)?;

    let getters = lua.create_table()?;
    getters.set(
        "closeCode",
        lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<WebSocket>()?.0.close_code.get()))?,
    )?;
    getters.set(
        "subprotocol",
        lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<WebSocket>()?.0.subprotocol.clone()))?,
    )?;
    register_type::<WebSocket>(lua, methods, Some(getters), |w| {
        let state = if w.0.ended.get() { ", closed" } else { "" };
        format!("ws{{{} -> {}{state}}}", w.0.local, w.0.peer)
    })
}
