//! The listener object behind `net.tcp.listen` and `net.unix.listen`: `accept`, `local_addr`,
//! `set_timeout`, `close`, and the fields `ip` and `port`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use mlua::prelude::*;
use tokio::net::{TcpListener, UnixListener};

use super::handshakes::Handshakes;
use super::stream::Stream;
use crate::io::Transport;
use crate::error::{NResult, NetError};
use crate::export::{async_func, func, register_type, Args};

pub enum Socket {
    Tcp(TcpListener),
    /// Connections are accepted and their handshakes run in the background; `accept` hands out
    /// the ones that finished (failed handshakes are dropped: one bad client is not an error
    /// of the server).
    Tls(TcpListener, Rc<crate::tls::Server>),
    /// The path is removed from the file system when the listener closes.
    Unix(UnixListener, String),
}

pub struct Inner {
    sock: RefCell<Option<Socket>>,
    timeout: Cell<Option<Duration>>,
    /// `0.0.0.0:8080`, or the socket path.
    pub local: String,
    waiters: crate::runtime::Waiters,
    /// TLS streams whose handshake finished, waiting for `accept`.
    handshaken: RefCell<std::collections::VecDeque<Stream>>,
    /// TLS handshakes in progress: closing the listener ends them.
    handshakes: Rc<Handshakes>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        close(&self.sock);
        self.handshakes.abort_all();
    }
}

fn close(sock: &RefCell<Option<Socket>>) {
    if let Some(Socket::Unix(_, path)) = sock.borrow_mut().take() {
        let _ = std::fs::remove_file(path);
    }
}

pub struct Listener(pub Rc<Inner>);

impl Listener {
    pub fn new(sock: Socket, local: String) -> Self {
        Listener(Rc::new(Inner {
            sock: RefCell::new(Some(sock)),
            timeout: Cell::new(None),
            local,
            waiters: Default::default(),
            handshaken: Default::default(),
            handshakes: Default::default(),
        }))
    }
}

fn this(args: &Args) -> NResult<Rc<Inner>> {
    Ok(args.this::<Listener>("listener")?.0.clone())
}

/// The listener, or `closed: ...` once it is closed.
fn open(args: &Args, op: &str) -> NResult<Rc<Inner>> {
    let l = this(args)?;
    if l.is_closed() {
        return Err(NetError::closed(op, "listener"));
    }
    Ok(l)
}

/// Starts the TLS handshake of a new connection in the background; the finished stream goes
/// to the listener's queue.
fn start_handshake(l: &Rc<Inner>, server: &Rc<crate::tls::Server>, tcp: tokio::net::TcpStream, peer: String) {
    use std::os::fd::AsRawFd;
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let (listener, server, fd) = (Rc::downgrade(l), server.clone(), tcp.as_raw_fd());
    l.handshakes.spawn(fd, async move {
        if let Ok(tls) = crate::tls::accept(&server, &peer, tcp).await {
            if let Some(l) = listener.upgrade().filter(|l| !l.is_closed()) {
                l.handshaken.borrow_mut().push_back(Stream::new(Transport::tls(tls), peer, local));
                l.waiters.wake_all();
            }
        }
    });
}

/// Why one accept attempt failed: the listener is closed, or the system said no.
enum AcceptError {
    Closed,
    Os(std::io::Error),
}

fn accept_once(l: &Rc<Inner>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<Stream, AcceptError>> {
    use std::task::Poll;
    let sock = l.sock.borrow();
    let Some(sock) = sock.as_ref() else {
        return Poll::Ready(Err(AcceptError::Closed));
    };
    let r = match sock {
        Socket::Tls(t, server) => loop {
            if let Some(s) = l.handshaken.borrow_mut().pop_front() {
                return Poll::Ready(Ok(s));
            }
            match t.poll_accept(cx) {
                Poll::Ready(Ok((tcp, peer))) => start_handshake(l, server, tcp, peer.to_string()),
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        },
        Socket::Tcp(t) => t.poll_accept(cx).map_ok(|(s, peer)| {
            let _ = s.set_nodelay(true);
            let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
            Stream::new(Transport::tcp(s), peer.to_string(), local)
        }),
        Socket::Unix(u, path) => {
            u.poll_accept(cx).map_ok(|(s, _)| Stream::new(Transport::unix(s), path.clone(), path.clone()))
        }
    };
    r.map_err(AcceptError::Os)
}

/// The first pause after `accept` finds no descriptor (or buffer memory) for a waiting
/// connection; each failure in a row doubles it, up to `MAX_BACKOFF` (the schedule Go's HTTP
/// server uses).
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether an accept failure means the process or system is out of a resource that frees up
/// by itself when connections close. The connection stays in the backlog, so failing again at
/// once would spin: these are waited out instead.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Whether an accept failure belongs to one connection (reset or aborted before it was
/// accepted, or refused by a firewall rule) rather than to the listener: the next one is taken.
fn client_gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EPROTO | libc::EPERM | libc::EINTR))
}

/// What one accept call remembers between polls: the back-off while the process is out of
/// descriptors.
#[derive(Default)]
pub struct AcceptState {
    /// Wakes the task for the next try; `None` when not backing off.
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    delay: Duration,
    /// The failure being waited out, named if the listener's timeout expires meanwhile.
    cause: Option<std::io::Error>,
}

impl AcceptState {
    /// Schedules the next try after a resource failure. A wake-up that comes before the pause
    /// is over (a closed listener, a finished TLS handshake) keeps the current pause.
    fn back_off(&mut self, cx: &mut std::task::Context<'_>, e: std::io::Error) {
        use std::future::Future;
        if self.pause.as_ref().is_none_or(|p| p.is_elapsed()) {
            self.delay = if self.delay.is_zero() { FIRST_BACKOFF } else { (self.delay * 2).min(MAX_BACKOFF) };
            self.pause = Some(Box::pin(tokio::time::sleep(self.delay)));
        }
        self.cause = Some(e);
        if let Some(p) = self.pause.as_mut() {
            // Registers this task with the timer; it cannot be ready yet (just set, or not elapsed).
            let _ = p.as_mut().poll(cx);
        }
    }
}

impl Inner {
    pub fn set_timeout(&self, d: Option<Duration>) {
        self.timeout.set(d);
    }

    pub fn is_closed(&self) -> bool {
        self.sock.borrow().is_none()
    }

    /// Closes the socket; tasks waiting in `accept` get `closed: ...`. TLS handshakes in
    /// progress are ended and finished ones not accepted yet are closed: their peers see the
    /// connection end now, not when the collector gets to the listener.
    pub fn close(&self) {
        close(&self.sock);
        self.handshakes.abort_all();
        let finished = std::mem::take(&mut *self.handshaken.borrow_mut());
        drop(finished);
        self.waiters.wake_all();
    }
}

/// One attempt at the next connection; the task is woken when one comes or the listener closes.
/// While the process is out of descriptors it stays pending and tries again after a pause
/// (see `AcceptState`), so neither a waiting task nor a script's retry loop spins.
pub fn poll_accept(
    l: &Rc<Inner>,
    cx: &mut std::task::Context<'_>,
    st: &mut AcceptState,
) -> std::task::Poll<NResult<Stream>> {
    use std::task::Poll;
    let r = loop {
        break match accept_once(l, cx) {
            Poll::Ready(Ok(s)) => {
                *st = AcceptState::default();
                Poll::Ready(Ok(s))
            }
            Poll::Ready(Err(AcceptError::Closed)) => Poll::Ready(Err(NetError::closed("accept", "listener"))),
            Poll::Ready(Err(AcceptError::Os(e))) if out_of_resources(&e) => {
                st.back_off(cx, e);
                Poll::Pending
            }
            // One client that gave up before we accepted it is not the server's failure.
            Poll::Ready(Err(AcceptError::Os(e))) if client_gone(&e) => continue,
            Poll::Ready(Err(AcceptError::Os(e))) => Poll::Ready(Err(NetError::io("accept on", &l.local, &e))),
            Poll::Pending => Poll::Pending,
        };
    };
    l.waiters.pending(cx, r)
}

/// Runs an accept (`poll` gets the call's `AcceptState`) bounded by the listener's timeout. A
/// timeout that expires while out of descriptors says so:
/// `timeout: accept on ... timed out after 50 ms (too many open files)`.
pub async fn accept_with<T>(
    l: &Inner,
    mut poll: impl FnMut(&mut std::task::Context<'_>, &mut AcceptState) -> std::task::Poll<NResult<T>>,
) -> NResult<T> {
    let mut st = AcceptState::default();
    let Some(limit) = l.timeout.get() else {
        return poll_fn(|cx| poll(cx, &mut st)).await;
    };
    let r = tokio::time::timeout(limit, poll_fn(|cx| poll(cx, &mut st))).await;
    r.unwrap_or_else(|_| {
        let mut e = NetError::timeout("accept on", &l.local, limit);
        if let Some(cause) = &st.cause {
            e.msg = format!("{} ({})", e.msg, crate::error::describe(cause));
        }
        Err(e)
    })
}

/// Waits for the next connection, bounded by the listener's timeout.
pub async fn accept(l: &Rc<Inner>) -> NResult<Stream> {
    accept_with(l, |cx, st| poll_accept(l, cx, st)).await
}

pub fn register(lua: &Lua) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "accept",
        async_func(lua, "accept", |lua, a| {
            let l = this(&a)?;
            let lua = lua.clone();
            Ok(async move { super::stream::into_lua(&lua, accept(&l).await?) })
        })?,
    )?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(open(&a, "local_addr")?.local.clone()))?)?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            open(&a, "set_timeout")?.timeout.set(t);
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
        let closed = l.0.sock.borrow().is_none();
        format!("listener{{{}{}}}", l.0.local, if closed { ", closed" } else { "" })
    })
}
