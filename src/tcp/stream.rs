//! The stream object behind `net.tcp.connect`, `listener:accept()` and `net.unix.connect`.
//!
//! Reads go through one buffer per stream: a syscall reads as much as is there (at least 16 KiB
//! at a time), and `read`, `read_line`, `read_exact`, `read_u32` are served from it, so bytes
//! after a newline wait for the next call and a `read` whose data is already buffered makes no
//! syscall. Every method first tries synchronously with a no-op waker (`try_*`); only when it
//! would wait does the Lua wrapper (`src/lua/stream.lua`) call the async `wait_*` twin.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::hash::BuildHasherDefault;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mlua::prelude::*;

use crate::error::{Kind, NResult, NetError};
use crate::export::{func, register_type, Args};
use crate::io::{Connection, Transport};

use crate::io::read_buf::{self, Buffer, Step};
pub use crate::io::read_buf::{ReadOp, MAX_READ_ALL};

thread_local! {
    /// Live stream userdata by address, for the raw fast paths (`fast.rs`) that get only the
    /// userdata pointer from the Lua stack.
    static STREAMS: RefCell<HashMap<usize, Rc<Inner>, BuildHasherDefault<AddrHash>>> =
        RefCell::new(HashMap::default());
}

/// Hashes an address with one multiplication. The map above is looked up on every `read` and
/// `write`; SipHash cost 2 % of an echo server's CPU there, and addresses of live userdata are
/// distinct and not chosen by an attacker.
#[derive(Default)]
pub struct AddrHash(u64);

impl std::hash::Hasher for AddrHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // The fold brings the product's well-mixed high bits down to the low bits, which pick
        // the bucket (an address's own low bits are always zero).
        let x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
}

/// The stream whose userdata is at `addr`, if it is one.
#[inline]
pub fn lookup(addr: usize) -> Option<Rc<Inner>> {
    STREAMS.with(|m| m.borrow().get(&addr).cloned())
}

pub struct Inner {
    io: RefCell<Option<Transport>>,
    rbuf: RefCell<Buffer>,
    eof: Cell<bool>,
    timeout: Cell<Option<Duration>>,
    /// `127.0.0.1:8080`, or the socket path for Unix streams.
    pub peer: String,
    pub local: String,
    unix: bool,
    /// Protocol chosen by ALPN on a TLS stream; `tls` is whether the stream is one.
    tls: bool,
    alpn: Option<String>,
    waiters: crate::runtime::Waiters,
}

/// A connected stream (the userdata); the second field is its userdata address once made,
/// under which the fast paths (`fast.rs`) find it.
pub struct Stream(pub Rc<Inner>, Cell<usize>);

impl Drop for Stream {
    fn drop(&mut self) {
        if self.1.get() != 0 {
            // Tolerant of thread teardown (the table may be gone already).
            let _ = STREAMS.try_with(|m| m.borrow_mut().remove(&self.1.get()));
        }
    }
}

impl crate::runtime::Parkable for Inner {
    fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<()> {
        let io = self.io.borrow();
        let Some(t) = io.as_ref() else { return Poll::Ready(()) }; // closed: the retry reports it
                                                                   // TLS streams never park (see `parkable`): their readiness is not the socket's.
        let r = if write { t.poll_write_ready(cx) } else { t.poll_read_ready(cx) };
        drop(io);
        self.waiters.pending(cx, r.map(|_| ()))
    }
}

impl Inner {
    /// Whether a task may park on this stream's socket readiness. Not with a timeout (the async
    /// path applies it), nor on TLS, where bytes can wait inside the TLS layer and a read may need
    /// the socket to be writable.
    pub fn parkable(&self) -> bool {
        self.timeout.get().is_none() && !self.tls
    }
}

/// Makes the Lua object for a stream.
pub fn into_lua(lua: &Lua, s: Stream) -> NResult<LuaAnyUserData> {
    let inner = s.0.clone();
    let ud = lua.create_any_userdata(s).map_err(NetError::from)?;
    let addr = ud.to_pointer() as usize;
    ud.borrow::<Stream>().map_err(NetError::from)?.1.set(addr);
    STREAMS.with(|m| m.borrow_mut().insert(addr, inner));
    Ok(ud)
}

impl Stream {
    pub fn new(c: Connection) -> Self {
        let Connection { transport: t, peer, local } = c;
        let (unix, tls, alpn) = (t.is_unix(), t.is_tls(), t.alpn());
        Stream(
            Rc::new(Inner {
                io: RefCell::new(Some(t)),
                rbuf: RefCell::new(Buffer::default()),
                eof: Cell::new(false),
                timeout: Cell::new(None),
                peer,
                local,
                unix,
                tls,
                alpn,
                waiters: Default::default(),
            }),
            Cell::new(0),
        )
    }
}

/// A finished read: take `len` bytes from the buffer as the result, then drop `skip` more (the
/// line ending); or end of stream.
pub enum Done {
    Take { len: usize, skip: usize },
    Eof,
}

impl Inner {
    fn closed_error(&self, op: &str) -> NetError {
        NetError::closed(op, "connection")
    }

    fn io_error(&self, op: &str, e: &io::Error) -> NetError {
        let what = match op {
            "read" | "read_line" | "read_all" | "read_exact" | "read_u32" => "read from",
            "accept" => "accept on",
            _ => "write to",
        };
        NetError::io(what, &self.peer, e)
    }

    /// Reads more bytes from the socket into the buffer. Ready(0) = end of stream.
    #[inline]
    fn poll_fill(&self, cx: &mut Context<'_>, want: usize, op: &str) -> Poll<NResult<usize>> {
        let mut io = self.io.borrow_mut();
        let Some(t) = io.as_mut() else { return Poll::Ready(Err(self.closed_error(op))) };
        match self.rbuf.borrow_mut().fill(want, |rb| t.poll_read(cx, rb)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_error(op, &e))),
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    self.eof.set(true);
                }
                Poll::Ready(Ok(n))
            }
        }
    }

    /// Advances a read as far as the buffer and the socket allow (the decisions are
    /// `read_buf::step`'s).
    pub fn poll_read_op(&self, cx: &mut Context<'_>, op: ReadOp, name: &str) -> Poll<NResult<Done>> {
        if self.io.borrow().is_none() {
            return Poll::Ready(Err(self.closed_error(name)));
        }
        loop {
            let step = read_buf::step(self.rbuf.borrow().available(), self.eof.get(), op);
            let want = match step {
                Step::Done { len, skip } => return Poll::Ready(Ok(Done::Take { len, skip })),
                Step::Eof => return Poll::Ready(Ok(Done::Eof)),
                Step::NeedMore { want } => want,
                Step::LineTooLong { limit } => {
                    return Poll::Ready(Err(NetError::new(
                        Kind::Limit,
                        format!("read_line from {}: line longer than {limit} bytes", self.peer),
                    )))
                }
                Step::TooMuch { limit } => {
                    return Poll::Ready(Err(NetError::new(
                        Kind::Limit,
                        format!(
                            "{name} from {}: more than {limit} bytes before the end of the stream \
                             (the bytes stay buffered; read_all(n) takes a larger limit)",
                            self.peer
                        ),
                    )))
                }
                Step::Torn { have, need } => {
                    return Poll::Ready(Err(NetError::new(
                        Kind::Closed,
                        format!("{name} from {}: connection closed after {have} of {need} bytes", self.peer),
                    )))
                }
            };
            match self.poll_fill(cx, want, name) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    /// Consumes `len` bytes (the result) plus `skip` (a line ending) from the buffer and hands the
    /// result to `f`, which must not call into Lua (a finalizer could use this stream meanwhile).
    pub fn take<R>(&self, len: usize, skip: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.rbuf.borrow_mut().take(len, skip))
    }

    /// Turns a finished read into its Lua value and consumes the bytes.
    fn finish(&self, lua: &Lua, op: ReadOp, d: Done) -> LuaResult<LuaValue> {
        let (len, skip) = match d {
            Done::Eof => return Ok(LuaValue::Nil),
            Done::Take { len, skip } => (len, skip),
        };
        if let ReadOp::U32 = op {
            return Ok(LuaValue::Integer(
                self.take(len, skip, |b| u32::from_be_bytes(b.try_into().expect("4 bytes"))).into(),
            ));
        }
        // Copied out first: creating the string may run finalizers that read this stream.
        let bytes = self.take(len, skip, <[u8]>::to_vec);
        Ok(LuaValue::String(lua.create_string(bytes)?))
    }

    /// Writes from `data[*off..]` until done or the socket is full.
    pub fn poll_write_all(&self, cx: &mut Context<'_>, data: &[u8], off: &mut usize) -> Poll<NResult<()>> {
        let mut io = self.io.borrow_mut();
        let Some(t) = io.as_mut() else { return Poll::Ready(Err(self.closed_error("write"))) };
        while *off < data.len() {
            match t.poll_write(cx, &data[*off..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(NetError::new(
                        Kind::Reset,
                        format!("write to {}: connection closed", self.peer),
                    )))
                }
                Poll::Ready(Ok(n)) => *off += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_error("write", &e))),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Bounds a slow-path operation by the stream's timeout.
    async fn timed<T>(&self, op: &str, fut: impl std::future::Future<Output = NResult<T>>) -> NResult<T> {
        match self.timeout.get() {
            None => fut.await,
            Some(d) => match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => {
                    let what = if op.starts_with("read") { "read from" } else { "write to" };
                    Err(NetError::timeout(what, &self.peer, d))
                }
            },
        }
    }

    pub fn close(&self) {
        drop(self.io.borrow_mut().take());
        self.waiters.wake_all();
    }

    fn with_sock<R>(&self, op: &str, f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>) -> NResult<R> {
        let io = self.io.borrow();
        let t = io.as_ref().ok_or_else(|| self.closed_error(op))?;
        f(t.sock_ref()).map_err(|e| NetError::io(op, &self.peer, &e))
    }

    /// Fails with `closed: ...` once the stream is closed (for methods that touch no socket).
    fn open(&self, op: &str) -> NResult<&Self> {
        if self.io.borrow().is_none() {
            return Err(self.closed_error(op));
        }
        Ok(self)
    }

    fn tcp_only(&self, op: &str) -> NResult<()> {
        if self.unix {
            return Err(NetError::new(Kind::Io, format!("{op}: not available on a Unix socket")));
        }
        Ok(())
    }
}

/// Runs `f` on the socket of a TCP or TLS stream (`self` of method `op`): `closed: ...` once
/// closed, `io: ...` on a Unix stream or when the system refuses.
pub fn with_tcp_sock<R>(args: &Args, op: &str, f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>) -> NResult<R> {
    let s = this(args)?;
    s.tcp_only(op)?;
    s.with_sock(op, f)
}

fn this(args: &Args) -> NResult<Rc<Inner>> {
    Ok(args.this::<Stream>("stream")?.0.clone())
}

/// The read a method asks for. The fast path (`fast.rs`) has checked the arguments already; the
/// async path checks them again the ordinary way.
fn read_op(args: &Args, which: &str) -> NResult<ReadOp> {
    let max = i64::from(i32::MAX);
    Ok(match which {
        "read" => ReadOp::Some(args.opt_int_in(2, 1, max)?.unwrap_or(4096) as usize),
        "read_line" => ReadOp::Line,
        "read_all" => ReadOp::All(args.opt_int_in(2, 0, i64::MAX)?.map_or(MAX_READ_ALL, |n| n as usize)),
        "read_exact" => ReadOp::Exact(args.int_in(2, 0, max)? as usize),
        _ => ReadOp::U32,
    })
}

pub(super) fn wait_read(
    lua: &Lua,
    args: Args,
    which: &'static str,
) -> NResult<impl std::future::Future<Output = NResult<LuaValue>>> {
    let s = this(&args)?;
    let op = read_op(&args, which)?;
    let lua = lua.clone();
    Ok(async move {
        let d = s
            .timed(
                which,
                poll_fn(|cx| {
                    let r = s.poll_read_op(cx, op, which);
                    s.waiters.pending(cx, r)
                }),
            )
            .await?;
        s.finish(&lua, op, d).map_err(NetError::from)
    })
}

fn write_data(args: &Args, which: &str) -> NResult<Vec<u8>> {
    if which == "write_u32" {
        return Ok((args.int_in(2, 0, i64::from(u32::MAX))? as u32).to_be_bytes().to_vec());
    }
    args.bytes(2)
}

pub(super) fn wait_write(
    args: Args,
    which: &'static str,
) -> NResult<impl std::future::Future<Output = NResult<usize>>> {
    let s = this(&args)?;
    let data = write_data(&args, which)?;
    let mut off = args.opt_int_in(3, 0, data.len() as i64)?.unwrap_or(0) as usize;
    Ok(async move {
        s.timed(
            which,
            poll_fn(|cx| {
                let r = s.poll_write_all(cx, &data, &mut off);
                s.waiters.pending(cx, r)
            }),
        )
        .await?;
        Ok(data.len())
    })
}

fn addr_parts(addr: &str) -> (String, Option<u16>) {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => (a.ip().to_string(), Some(a.port())),
        Err(_) => (addr.to_string(), None),
    }
}

/// Registers the stream type: `methods` holds the read and write methods already (`fast.rs`
/// builds them); the plain methods and Lune's fields are added here.
pub fn register(lua: &Lua, methods: LuaTable) -> LuaResult<()> {
    methods.set(
        "flush",
        func(lua, "flush", |_, a| {
            this(&a)?.open("flush")?;
            Ok(true)
        })?,
    )?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            this(&a)?.open("set_timeout")?.timeout.set(t);
            Ok(())
        })?,
    )?;
    methods.set("alpn", func(lua, "alpn", |_, a| Ok(this(&a)?.open("alpn")?.alpn.clone()))?)?;
    methods.set("peer_addr", func(lua, "peer_addr", |_, a| Ok(this(&a)?.open("peer_addr")?.peer.clone()))?)?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(this(&a)?.open("local_addr")?.local.clone()))?)?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            this(&a)?.close();
            Ok(())
        })?,
    )?;
    methods.set(
        "shutdown",
        func(lua, "shutdown", |_, a| {
            let s = this(&a)?;
            let how = match a.opt_string(2)?.as_deref() {
                None | Some("both") => std::net::Shutdown::Both,
                Some("read") => std::net::Shutdown::Read,
                Some("write") => std::net::Shutdown::Write,
                Some(o) => return Err(a.bad(2, format!("\"read\", \"write\" or \"both\" expected, got \"{o}\""))),
            };
            s.with_sock("shutdown", |k| match k.shutdown(how) {
                // A peer that already went away leaves nothing to shut down.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                r => r,
            })
        })?,
    )?;
    methods.set(
        "set_nodelay",
        func(lua, "set_nodelay", |_, a| {
            let s = this(&a)?;
            s.tcp_only("set_nodelay")?;
            let on = a.boolean(2)?;
            s.with_sock("set_nodelay", |k| k.set_tcp_nodelay(on))
        })?,
    )?;
    super::sockopt::register_methods(lua, &methods)?;
    methods.set(
        "set_ttl",
        func(lua, "set_ttl", |_, a| {
            let s = this(&a)?;
            s.tcp_only("set_ttl")?;
            let ttl = a.int_in(2, 1, 255)? as u32;
            s.with_sock("set_ttl", |k| match k.set_ttl_v4(ttl) {
                Err(_) => k.set_unicast_hops_v6(ttl),
                ok => ok,
            })
        })?,
    )?;

    // Lune's fields: localIp, localPort, remoteIp, remotePort.
    let getters = lua.create_table()?;
    let field = |name: &'static str, remote: bool, port: bool| -> LuaResult<()> {
        let f = lua.create_function(move |lua, ud: LuaAnyUserData| {
            let s = ud.borrow::<Stream>()?;
            let (ip, p) = addr_parts(if remote { &s.0.peer } else { &s.0.local });
            if port {
                p.into_lua(lua)
            } else {
                ip.into_lua(lua)
            }
        })?;
        getters.set(name, f)
    };
    field("localIp", false, false)?;
    field("localPort", false, true)?;
    field("remoteIp", true, false)?;
    field("remotePort", true, true)?;

    register_type::<Stream>(lua, methods, Some(getters), |s| {
        let kind = if s.0.unix {
            "unix"
        } else if s.0.tls {
            "tls"
        } else {
            "tcp"
        };
        if s.0.io.borrow().is_none() {
            format!("{kind}{{closed}}")
        } else if s.0.unix {
            format!("{kind}{{{}}}", s.0.peer)
        } else {
            format!("{kind}{{{} -> {}}}", s.0.local, s.0.peer)
        }
    })
}
