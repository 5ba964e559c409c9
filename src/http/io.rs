//! What the server knows about one connection while hyper serves it: the transport with any
//! bytes read ahead put back in front (`HttpIo`), and which phase the connection is in
//! (`ConnState`), from which its deadline follows: an idle keep-alive connection closes after
//! `idle_timeout`, a request head still arriving after `header_timeout` gets 408, and a
//! request being handled has no deadline (a slow handler holds only its own request).

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::io::Transport;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Waiting for the next request; nothing of it has come.
    Idle,
    /// Bytes of a request head have come, the head is not complete.
    Head,
    /// Requests are being handled or their responses sent.
    Busy,
}

pub struct ConnState {
    phase: Cell<Phase>,
    /// When the current phase's clock started (the last activity when idle).
    since: Cell<Instant>,
    /// Requests (h2: streams) being handled or answered.
    in_flight: Cell<usize>,
    /// The task serving the connection, woken when its deadline may have changed.
    driver: RefCell<Option<Waker>>,
    /// The server asked this connection to finish (graceful stop).
    pub stopping: Cell<bool>,
    /// Reads start a request head (HTTP/1; on HTTP/2 bytes come all the time: pings, windows).
    heads: bool,
}

impl ConnState {
    pub fn new(phase: Phase, heads: bool) -> Self {
        ConnState {
            heads,
            phase: Cell::new(phase),
            since: Cell::new(Instant::now()),
            in_flight: Cell::new(0),
            driver: RefCell::new(None),
            stopping: Cell::new(false),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// When the connection times out in its current phase, if it can.
    pub fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        match self.phase.get() {
            Phase::Idle => Some(self.since.get() + idle_timeout),
            Phase::Head => Some(self.since.get() + header_timeout),
            Phase::Busy => None,
        }
    }

    /// Bytes arrived: an idle connection starts a request head.
    fn on_read(&self) {
        if self.heads && self.phase.get() == Phase::Idle {
            self.phase.set(Phase::Head);
            self.since.set(Instant::now());
        }
    }

    /// A request reached its handler.
    pub fn begin(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.phase.set(Phase::Busy);
    }

    /// A response is sent (or abandoned): with none left the connection is idle again. An
    /// HTTP/1 connection's driver sees that after the poll it is in (the service runs inside
    /// it), so only HTTP/2's, whose streams are tasks of their own, is woken: a wake-up per
    /// request would cost another poll of the connection and a read that finds nothing.
    pub fn end(&self) {
        let n = self.in_flight.get().saturating_sub(1);
        self.in_flight.set(n);
        if n == 0 {
            self.phase.set(Phase::Idle);
            self.since.set(Instant::now());
            if !self.heads {
                self.wake();
            }
        }
    }

    pub fn register(&self, cx: &Context<'_>) {
        let mut d = self.driver.borrow_mut();
        if !d.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *d = Some(cx.waker().clone());
        }
    }

    pub fn wake(&self) {
        if let Some(w) = self.driver.borrow().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Counts a request as in flight until dropped (kept by the response body when it streams).
pub struct Busy(pub std::rc::Rc<ConnState>);

impl Busy {
    pub fn new(state: &std::rc::Rc<ConnState>) -> Self {
        state.begin();
        Busy(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The transport as hyper reads it: `prefix` (bytes read while telling HTTP/2 from HTTP/1)
/// comes first; reads tell `state` that a request is arriving.
pub struct HttpIo {
    prefix: Vec<u8>,
    at: usize,
    pub transport: Transport,
    state: std::rc::Rc<ConnState>,
}

impl HttpIo {
    pub fn new(prefix: Vec<u8>, transport: Transport, state: std::rc::Rc<ConnState>) -> Self {
        HttpIo { prefix, at: 0, transport, state }
    }

    /// The transport and the bytes of the prefix hyper has not read.
    pub fn into_parts(self) -> (Transport, Vec<u8>) {
        let rest = self.prefix[self.at..].to_vec();
        (self.transport, rest)
    }
}

impl AsyncRead for HttpIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.at < me.prefix.len() {
            let n = (me.prefix.len() - me.at).min(buf.remaining());
            buf.put_slice(&me.prefix[me.at..me.at + n]);
            me.at += n;
            if me.at == me.prefix.len() {
                me.prefix = Vec::new();
                me.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = me.transport.poll_read(cx, buf);
        if buf.filled().len() > before {
            me.state.on_read();
        }
        r
    }
}

impl AsyncWrite for HttpIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().transport.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().transport).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.transport.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport.poll_shutdown(cx)
    }
}
