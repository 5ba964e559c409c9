//! A response body being read: frame by frame from hyper, decompressed on the way, with the
//! connection going back to the pool once the body ended cleanly. `net.request` reads it whole;
//! with `stream = true` the script gets it as `res:read([n])`, `res:lines()`, `res:close()`
//! (server-sent events, bodies larger than memory), each read bounded by the request's timeout.
//! A server with `stream = true` hands request bodies to handlers the same way (`req:read()`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use mlua::prelude::*;

use super::body::Body;
use super::decode::Decoder;
use super::pool::{Key, Pool};
use crate::error::{Kind, NResult, NetError};
use crate::export::{async_func, func, register_type, Args};

pub struct Reader {
    body: Option<Incoming>,
    decoder: Option<Decoder>,
    /// Bytes decoded and not handed out yet.
    buf: BytesMut,
    /// `GET http://...`, for errors.
    what: String,
    /// The connection to give back to the pool at the end of the body.
    back: Option<(Key, http1::SendRequest<Body>)>,
    pool: Option<Rc<Pool>>,
    /// The longest wait for the next piece of a streamed body.
    gap: Option<Duration>,
    /// At most this many bytes (a server's `body_bytes` for a streamed request body).
    limit: Option<usize>,
    seen: usize,
}

impl Reader {
    pub fn new(
        body: Incoming,
        decoder: Option<Decoder>,
        what: String,
        back: Option<(Key, http1::SendRequest<Body>)>,
        pool: Option<Rc<Pool>>,
    ) -> Self {
        Reader { body: Some(body), decoder, buf: BytesMut::new(), what, back, pool, gap: None, limit: None, seen: 0 }
    }

    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
    }

    pub fn set_gap(&mut self, gap: Option<Duration>) {
        self.gap = gap;
    }

    fn decode_error(&self, e: std::io::Error) -> NetError {
        NetError::new(Kind::Protocol, format!("{} (cannot decompress the body: {e})", self.what))
    }

    /// Reads the next piece into `buf`; false once the body is over.
    async fn fill(&mut self) -> NResult<bool> {
        let Some(body) = self.body.as_mut() else { return Ok(false) };
        let next = match self.gap {
            None => body.frame().await,
            Some(d) => tokio::time::timeout(d, body.frame())
                .await
                .map_err(|_| NetError::timeout(&format!("reading the body of {}", self.what), "", d))?,
        };
        match next {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.seen += data.len();
                    if let Some(max) = self.limit.filter(|&m| self.seen > m) {
                        self.body = None;
                        return Err(NetError::new(Kind::Limit, format!("{}: the body is over {max} bytes", self.what)));
                    }
                    match self.decoder.as_mut() {
                        None => self.buf.extend_from_slice(&data),
                        Some(d) => {
                            let out = d.push(&data).map_err(|e| self.decode_error(e))?;
                            self.buf.extend_from_slice(&out);
                        }
                    }
                }
                Ok(true)
            }
            Some(Err(e)) => {
                self.body = None;
                Err(super::client::hyper_error(&format!("reading the body of {}", self.what), &e))
            }
            None => {
                self.body = None;
                if let Some(d) = self.decoder.as_mut() {
                    let out = d.finish().map_err(|e| self.decode_error(e))?;
                    self.buf.extend_from_slice(&out);
                }
                if let (Some((key, tx)), Some(pool)) = (self.back.take(), self.pool.as_ref()) {
                    pool.put_back(key, tx);
                }
                Ok(false)
            }
        }
    }

    /// The whole body.
    pub async fn read_all(mut self) -> NResult<Bytes> {
        while self.fill().await? {}
        Ok(self.buf.freeze())
    }

    /// At most `max` bytes as soon as any are there; `None` at the end.
    async fn read(&mut self, max: usize) -> NResult<Option<Bytes>> {
        while self.buf.is_empty() {
            // The last `fill` may still bring bytes: what the decoder held back until the end.
            if !self.fill().await? && self.buf.is_empty() {
                return Ok(None);
            }
        }
        let n = max.min(self.buf.len());
        Ok(Some(self.buf.split_to(n).freeze()))
    }

    /// The next line without its end (`\n` or `\r\n`); the last one may have none.
    async fn line(&mut self) -> NResult<Option<Bytes>> {
        let mut from = 0;
        loop {
            if let Some(i) = self.buf[from..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(from + i + 1);
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                return Ok(Some(line.freeze()));
            }
            from = self.buf.len();
            // At the end, the decoder's last bytes may hold more lines: look at them first.
            if !self.fill().await? && self.buf.len() == from {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return Ok(Some(rest.freeze()));
            }
        }
    }
}

/// The Lua object of a streamed body (`res.stream`), used through the response's methods.
pub struct Stream {
    /// Taken out while a read waits: a second task reading at the same time is told so.
    reader: RefCell<Option<Reader>>,
    closed: std::cell::Cell<bool>,
}

impl Stream {
    pub fn new(r: Reader) -> Self {
        Stream { reader: RefCell::new(Some(r)), closed: std::cell::Cell::new(false) }
    }
}

/// Runs `op` on the reader, taken out of the object while it waits.
async fn with_reader<T>(
    s: Rc<Stream>,
    op: impl for<'a> FnOnce(&'a mut Reader) -> std::pin::Pin<Box<dyn std::future::Future<Output = NResult<T>> + 'a>>,
) -> NResult<T> {
    if s.closed.get() {
        return Err(NetError::closed("read", "response"));
    }
    let Some(mut r) = s.reader.borrow_mut().take() else {
        return Err(NetError::new(Kind::Io, "read: another task is reading this response"));
    };
    let out = op(&mut r).await;
    if !s.closed.get() {
        *s.reader.borrow_mut() = Some(r);
    }
    out
}

/// A piece of the body for Lua; `nil` at its end.
fn string_or_nil(lua: &Lua, got: Option<Bytes>) -> NResult<LuaValue> {
    Ok(match got {
        Some(b) => LuaValue::String(lua.create_string(&b)?),
        None => LuaValue::Nil,
    })
}

fn this(a: &Args) -> NResult<Rc<Stream>> {
    Ok(a.this::<Rc<Stream>>("response stream")?.clone())
}

pub fn register(lua: &Lua) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "read",
        async_func(lua, "read", |lua, a| {
            let s = this(&a)?;
            let max = a.opt_int_in(2, 1, i64::from(u32::MAX))?.map_or(usize::MAX, |n| n as usize);
            let lua = lua.clone();
            Ok(async move { string_or_nil(&lua, with_reader(s, |r| Box::pin(r.read(max))).await?) })
        })?,
    )?;
    methods.set(
        "line",
        async_func(lua, "line", |lua, a| {
            let s = this(&a)?;
            let lua = lua.clone();
            Ok(async move { string_or_nil(&lua, with_reader(s, |r| Box::pin(r.line())).await?) })
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            let s = this(&a)?;
            s.closed.set(true);
            // Dropping an unfinished body closes its connection (it cannot be reused).
            s.reader.borrow_mut().take();
            Ok(())
        })?,
    )?;
    register_type::<Rc<Stream>>(lua, methods, None, |s| {
        let state = if s.closed.get() { "closed" } else { "open" };
        format!("http.body{{{state}}}")
    })
}
