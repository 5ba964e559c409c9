//! The listening side, written once for every server: accept connections (with the back-off
//! when the process is out of descriptors, and skipping clients that gave up), run each one's
//! handshake in the background (TLS, a WebSocket upgrade, later HTTP's), and hand out the ones
//! that finished. `net.tcp.listen`, `net.unix.listen` and `net.ws.listen` are built on it.
//!
//! A handshake is any async step `Connection -> NResult<T>`: it owns the connection while it runs,
//! a failure drops the connection (one bad client is not an error of the server), and closing
//! the acceptor ends every handshake at once, so peers see the connection end and nothing
//! finishes into a closed server's queue. `max_connections` bounds how many connections may be
//! in a handshake or waiting to be taken; past it the acceptor stops taking new ones off the
//! backlog until one frees. An HTTP server's "handshake" serves the whole connection and hands
//! nothing out (see `http::server`). See docs/internals.md, "Transport and acceptor".

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::task::AbortHandle;

use super::{Connection, Transport};
use crate::error::{NResult, NetError};
use crate::runtime::Waiters;

/// A listening socket.
pub enum Listening {
    Tcp(TcpListener),
    /// The path is removed from the file system when the acceptor closes.
    Unix(UnixListener, String),
}

/// A background handshake: takes the connection, gives what `accept` hands out.
pub type Handshake<T> = Rc<dyn Fn(Connection) -> Pin<Box<dyn Future<Output = NResult<T>>>>>;

/// What happens to a connection between the kernel's accept and the script's.
pub enum Mode<T> {
    /// Handed out at once (plain TCP and Unix streams): no task, no queue.
    Direct(fn(Connection) -> T),
    /// Handed out once its handshake finished.
    Background(Handshake<T>),
}

/// The handshakes in progress, shared with their tasks (which hold it weakly).
#[derive(Default)]
struct Running {
    next_id: Cell<u64>,
    /// The socket each one owns, and how to stop it.
    tasks: RefCell<HashMap<u64, (RawFd, AbortHandle)>>,
    /// The acceptor's waiters: a handshake that ends frees a place under `max_connections`.
    waiters: Waiters,
}

/// Removes a handshake from `Running` when its task ends or is dropped. A handshake future drops
/// its socket only as it ends (or hands it on), so between the socket closing and its entry going
/// no other code runs: an entry never names a descriptor that was closed and perhaps reused.
struct Entry {
    set: Weak<Running>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            set.tasks.borrow_mut().remove(&self.id);
            set.waiters.wake_all();
        }
    }
}

impl Running {
    fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Ends every handshake still running: the peers see the connection end now (the tasks
    /// are dropped when the loop next runs, which may be later).
    fn abort_all(&self) {
        let running: Vec<(RawFd, AbortHandle)> = self.tasks.borrow_mut().drain().map(|(_, v)| v).collect();
        for (fd, task) in running {
            // SAFETY: `fd` is open and still the handshake's socket: its entry was present a
            // moment ago, and an entry goes in the same synchronous step as its socket closes
            // (see `Entry`). abort() only schedules the task's drop, so it owns `fd` until then
            // and the socket stays valid; shutdown() touches no memory of ours.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            task.abort();
        }
    }
}

pub struct Acceptor<T: 'static> {
    sock: RefCell<Option<Listening>>,
    /// `0.0.0.0:8080`, or the socket path.
    pub local: String,
    timeout: Cell<Option<Duration>>,
    mode: Mode<T>,
    /// Connections through their handshake, waiting for `accept`.
    ready: RefCell<VecDeque<T>>,
    running: Rc<Running>,
    /// At most this many connections in `running` plus `ready`.
    max_connections: Option<usize>,
}

impl<T: 'static> Drop for Acceptor<T> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Why one accept attempt failed: the listener is closed, or the system said no.
enum AcceptError {
    Closed,
    Os(std::io::Error),
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
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    delay: Duration,
    /// The failure being waited out, named if the listener's timeout expires meanwhile.
    cause: Option<std::io::Error>,
}

impl AcceptState {
    /// Schedules the next try after a resource failure. A wake-up that comes before the pause
    /// is over (a closed listener, a finished handshake) keeps the current pause.
    fn back_off(&mut self, cx: &mut Context<'_>, e: std::io::Error) {
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

impl<T: 'static> Acceptor<T> {
    pub fn new(sock: Listening, local: String, mode: Mode<T>, max_connections: Option<usize>) -> Rc<Self> {
        Rc::new(Acceptor {
            sock: RefCell::new(Some(sock)),
            local,
            timeout: Cell::new(None),
            mode,
            ready: RefCell::default(),
            running: Rc::default(),
            max_connections,
        })
    }

    pub fn set_timeout(&self, d: Option<Duration>) {
        self.timeout.set(d);
    }

    pub fn is_closed(&self) -> bool {
        self.sock.borrow().is_none()
    }

    /// Closes the socket; tasks waiting in `accept` get `closed: ...`. Handshakes in progress
    /// are ended and finished ones not accepted yet are closed: their peers see the connection
    /// end now, not when the collector gets to the acceptor.
    pub fn close(&self) {
        self.stop_listening();
        self.running.abort_all();
        let finished = std::mem::take(&mut *self.ready.borrow_mut());
        drop(finished);
        self.running.waiters.wake_all();
    }

    /// Closes the listening socket only: no new connection is taken (the port is free at
    /// once), but handshakes in progress go on. An HTTP server's graceful stop.
    pub fn stop_listening(&self) {
        let sock = self.sock.borrow_mut().take();
        if let Some(Listening::Unix(_, path)) = &sock {
            let _ = std::fs::remove_file(path);
        }
        drop(sock);
        self.running.waiters.wake_all();
    }

    /// How many connections are in their handshake (for an HTTP server: being served).
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Waits until no handshake is running.
    pub async fn drained(&self) {
        poll_fn(|cx| {
            let r = if self.running.len() == 0 { Poll::Ready(()) } else { Poll::Pending };
            self.running.waiters.pending(cx, r)
        })
        .await
    }

    /// Whether `max_connections` connections are in a handshake or waiting to be taken.
    fn full(&self) -> bool {
        self.max_connections.is_some_and(|m| self.running.len() + self.ready.borrow().len() >= m)
    }

    /// Starts `handshake` on a new connection in the background; what it makes goes to `ready`.
    /// The task holds the acceptor weakly: a handshake does not keep a dropped server alive.
    fn start(self: &Rc<Self>, handshake: &Handshake<T>, conn: Connection) {
        let fd = conn.transport.raw_fd();
        let id = self.running.next_id.get();
        self.running.next_id.set(id + 1);
        let entry = Entry { set: Rc::downgrade(&self.running), id };
        let me = Rc::downgrade(self);
        let work = handshake(conn);
        let task = tokio::task::spawn_local(async move {
            let _entry = entry;
            let Ok(done) = work.await else { return };
            if let Some(me) = me.upgrade().filter(|a| !a.is_closed()) {
                me.ready.borrow_mut().push_back(done);
                me.running.waiters.wake_all();
            }
        });
        self.running.tasks.borrow_mut().insert(id, (fd, task.abort_handle()));
    }

    fn accept_once(&self, cx: &mut Context<'_>) -> Poll<Result<Connection, AcceptError>> {
        let sock = self.sock.borrow();
        let Some(sock) = sock.as_ref() else {
            return Poll::Ready(Err(AcceptError::Closed));
        };
        let r = match sock {
            Listening::Tcp(t) => t.poll_accept(cx).map_ok(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                Connection { transport: Transport::tcp(s), peer: peer.to_string(), local }
            }),
            Listening::Unix(u, path) => u.poll_accept(cx).map_ok(|(s, _)| Connection {
                transport: Transport::unix(s),
                peer: path.clone(),
                local: path.clone(),
            }),
        };
        r.map_err(AcceptError::Os)
    }

    /// One attempt at the next connection; the task is woken when one comes, a handshake ends
    /// or the acceptor closes. While the process is out of descriptors it stays pending and
    /// tries again after a pause (see `AcceptState`), so neither a waiting task nor a script's
    /// retry loop spins.
    pub fn poll_accept(self: &Rc<Self>, cx: &mut Context<'_>, st: &mut AcceptState) -> Poll<NResult<T>> {
        let r = loop {
            if self.is_closed() {
                break Poll::Ready(Err(NetError::closed("accept", "listener")));
            }
            if let Some(done) = self.ready.borrow_mut().pop_front() {
                break Poll::Ready(Ok(done));
            }
            if self.full() {
                // The backlog keeps the next connections until a handshake ends (which wakes us).
                break Poll::Pending;
            }
            break match self.accept_once(cx) {
                Poll::Ready(Ok(conn)) => {
                    *st = AcceptState::default();
                    match &self.mode {
                        Mode::Direct(f) => Poll::Ready(Ok(f(conn))),
                        Mode::Background(h) => {
                            self.start(h, conn);
                            continue;
                        }
                    }
                }
                Poll::Ready(Err(AcceptError::Closed)) => Poll::Ready(Err(NetError::closed("accept", "listener"))),
                Poll::Ready(Err(AcceptError::Os(e))) if out_of_resources(&e) => {
                    st.back_off(cx, e);
                    Poll::Pending
                }
                // One client that gave up before we accepted it is not the server's failure.
                Poll::Ready(Err(AcceptError::Os(e))) if client_gone(&e) => continue,
                Poll::Ready(Err(AcceptError::Os(e))) => Poll::Ready(Err(NetError::io("accept on", &self.local, &e))),
                Poll::Pending => Poll::Pending,
            };
        };
        self.running.waiters.pending(cx, r)
    }

    /// Waits for the next connection, bounded by the acceptor's timeout. A timeout that expires
    /// while out of descriptors says so:
    /// `timeout: accept on ... timed out after 50 ms (too many open files)`.
    pub async fn accept(self: &Rc<Self>) -> NResult<T> {
        let mut st = AcceptState::default();
        let Some(limit) = self.timeout.get() else {
            return poll_fn(|cx| self.poll_accept(cx, &mut st)).await;
        };
        let r = tokio::time::timeout(limit, poll_fn(|cx| self.poll_accept(cx, &mut st))).await;
        r.unwrap_or_else(|_| {
            let mut e = NetError::timeout("accept on", &self.local, limit);
            if let Some(cause) = &st.cause {
                e.msg = format!("{} ({})", e.msg, crate::error::describe(cause));
            }
            Err(e)
        })
    }
}

/// The TLS server handshake as an acceptor step (bounded by `tls::HANDSHAKE_TIMEOUT`).
pub async fn tls_step(server: &crate::tls::Server, conn: Connection) -> NResult<Connection> {
    let Connection { transport, peer, local } = conn;
    let tcp = transport.into_tcp().map_err(|_| NetError::new(crate::error::Kind::Tls, "TLS needs a TCP connection"))?;
    let tls = crate::tls::accept(server, &peer, tcp).await?;
    Ok(Connection { transport: Transport::tls(tls), peer, local })
}

/// Runs `step`, ending it with `timeout: ...` after `limit`.
pub async fn bounded<T>(limit: Duration, what: &str, peer: &str, step: impl Future<Output = NResult<T>>) -> NResult<T> {
    tokio::time::timeout(limit, step).await.map_err(|_| NetError::timeout(what, peer, limit))?
}
