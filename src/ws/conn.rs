//! One WebSocket connection after the handshake: frames in and out (RFC 6455 §5), messages
//! put together from fragments, automatic pongs, the close handshake, limits, and
//! permessage-deflate (RFC 7692) on data messages.
//!
//! Frame headers are written by tungstenite's `FrameHeader` and read (and checked) by `frame.rs`;
//! everything above that is here because tungstenite's own reader refuses compressed frames (RSV1).
//!
//! Reading and writing have separate state, each borrowed only inside one poll, so one task can
//! wait in `recv` while another sends (Lune #66). Writes go through a queue: a send from a task
//! is written at once, unless more frames from the peer are already buffered, in which case it
//! is written when the task yields (or by a small background flusher if the socket is full); an
//! echo loop that answers sixteen queued messages thus writes once instead of sixteen times.
//!
//! A peer that floods pings and never reads cannot grow the queue: only the latest automatic pong
//! waits (RFC 6455 §5.5.3 allows answering just the most recent ping), and while more than
//! `MAX_QUEUED` waits to be written, nothing more is read from the peer.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::deflate::{Deflater, InflateError, Inflater, Params};
use super::frame::{self, Rules};
use crate::io::Transport;
use crate::runtime::Waiters;

/// Close codes of RFC 6455 §7.4.1 used here.
pub const PROTOCOL_ERROR: u16 = 1002;
pub const NO_STATUS: u16 = 1005;
pub const ABNORMAL: u16 = 1006;
pub const INVALID_DATA: u16 = 1007;
pub const TOO_BIG: u16 = 1009;

/// A send queues at most this much before it waits for the socket.
const MAX_QUEUED: usize = 64 * 1024;
/// Read in steps of this.
const READ_CHUNK: usize = 4096;

pub enum Message {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close frame: its code and reason, if it gave one.
    Close(Option<(u16, String)>),
}

/// What went wrong on the connection; the close code it calls for comes from `code()`.
#[derive(Debug)]
pub enum Error {
    /// The peer broke the protocol (1002).
    Protocol(String),
    /// A message over the size limit (1009).
    TooBig(String),
    /// Text, or a close reason, that is not UTF-8 (1007).
    BadUtf8(String),
    Io(std::io::Error),
    /// The connection ended without a close frame.
    Eof,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Protocol(m) | Error::TooBig(m) | Error::BadUtf8(m) => f.write_str(m),
            Error::Io(e) => write!(f, "{e}"),
            Error::Eof => f.write_str("the connection ended without a close frame"),
        }
    }
}

impl Error {
    pub fn code(&self) -> u16 {
        match self {
            Error::Protocol(_) => PROTOCOL_ERROR,
            Error::TooBig(_) => TOO_BIG,
            Error::BadUtf8(_) => INVALID_DATA,
            Error::Io(_) | Error::Eof => ABNORMAL,
        }
    }
}

struct Reader {
    /// Unread bytes are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// The fragments of a message in progress, and whether it is text and compressed.
    frag: Vec<u8>,
    frag_kind: Option<(bool, bool)>,
    inflater: Option<Inflater>,
}

struct Writer {
    /// Bytes not written yet are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    deflater: Option<Deflater>,
    /// An error met by a background flush, reported to the next caller.
    failed: Option<std::io::ErrorKind>,
    /// Where the automatic pong waiting in `buf` starts, while none of it is written: a newer
    /// ping replaces it instead of adding another.
    pong_at: Option<usize>,
}

pub struct Conn {
    /// None once the connection is over and released (the socket is closed then, not at GC).
    io: RefCell<Option<Transport>>,
    rd: RefCell<Reader>,
    wr: RefCell<Writer>,
    /// Client side: frames we send are masked, frames we get must not be.
    client: bool,
    /// What the peer's frames must keep to (`frame.rs`).
    rules: Rules,
    max: usize,
    /// A flush is promised (by the task that queued, or a background flusher).
    flush_pending: Cell<bool>,
    /// We queued a close frame: no data may follow it.
    pub sent_close: Cell<bool>,
    /// The close handshake is over (or we failed the connection): once the queue is written the
    /// TCP connection is ended, the server first as RFC 6455 §7.1.1 wants.
    finished: Cell<bool>,
    /// Tasks waiting for the queue to be written. The socket wakes only the last one that
    /// polled it, and a sender, a background flusher and a reader held back by a full queue may
    /// all wait at once: whoever writes the queue out wakes the others.
    flush_waiters: Waiters,
}

thread_local! {
    /// The payload of the message being sent, compressed (shared: only one is built at a time).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn mask(buf: &mut [u8], key: [u8; 4]) {
    // Eight bytes at a time; LLVM turns this into vector XORs.
    let k = u32::from_ne_bytes(key) as u64;
    let k8 = (k | (k << 32)).to_ne_bytes();
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        for (b, m) in c.iter_mut().zip(k8) {
            *b ^= m;
        }
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(k8) {
        *b ^= m;
    }
}

fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Conn {
    pub fn new(io: Transport, client: bool, max: usize, deflate: Option<Params>, leftover: Vec<u8>) -> Self {
        Conn {
            io: RefCell::new(Some(io)),
            rd: RefCell::new(Reader {
                buf: leftover,
                pos: 0,
                frag: Vec::new(),
                frag_kind: None,
                inflater: deflate.map(Inflater::new),
            }),
            wr: RefCell::new(Writer {
                buf: Vec::new(),
                pos: 0,
                deflater: deflate.map(Deflater::new),
                failed: None,
                pong_at: None,
            }),
            client,
            rules: Rules { client, deflate: deflate.is_some(), max },
            max,
            flush_pending: Cell::new(false),
            sent_close: Cell::new(false),
            finished: Cell::new(false),
            flush_waiters: Waiters::default(),
        }
    }

    /// Queues one frame. Data messages are compressed when deflate was agreed and it pays.
    pub fn queue(&self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.queue_at(opcode, payload).map(|_| ())
    }

    /// Queues the automatic answer to a ping, replacing the previous one if none of it is
    /// written yet: a peer that pings faster than it reads gets one pong, for its latest ping.
    fn queue_pong(&self, payload: &[u8]) -> Result<(), Error> {
        {
            let mut wr = self.wr.borrow_mut();
            let wr = &mut *wr;
            if let Some(at) = wr.pong_at.take() {
                if at >= wr.pos && at < wr.buf.len() {
                    // A control frame: a 2-byte header, a 4-byte mask key from a client, at most
                    // 125 bytes of payload (no extended length).
                    let b1 = wr.buf[at + 1];
                    let len = 2 + if b1 & 0x80 != 0 { 4 } else { 0 } + usize::from(b1 & 0x7f);
                    wr.buf.drain(at..at + len);
                }
            }
        }
        let at = self.queue_at(OpCode::Control(Control::Pong), payload)?;
        self.wr.borrow_mut().pong_at = Some(at);
        Ok(())
    }

    /// Queues one frame; returns where it starts in the write buffer.
    fn queue_at(&self, opcode: OpCode, payload: &[u8]) -> Result<usize, Error> {
        let mut wr = self.wr.borrow_mut();
        let wr = &mut *wr;
        if let Some(kind) = wr.failed {
            return Err(Error::Io(kind.into()));
        }
        if wr.pos == wr.buf.len() {
            wr.buf.clear();
            wr.pos = 0;
            wr.pong_at = None;
        }
        let frame_start = wr.buf.len();
        if opcode == OpCode::Control(Control::Close) {
            self.sent_close.set(true);
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            let mut rsv1 = false;
            if let (OpCode::Data(_), Some(d)) = (opcode, wr.deflater.as_mut()) {
                rsv1 = d.compress(payload, &mut scratch).map_err(Error::Protocol)?;
            }
            let body: &[u8] = if rsv1 { &scratch } else { payload };
            let key = self.client.then(rand::random::<[u8; 4]>);
            let header = FrameHeader { is_final: true, rsv1, rsv2: false, rsv3: false, opcode, mask: key };
            header.format(body.len() as u64, &mut wr.buf).map_err(|e| Error::Protocol(e.to_string()))?;
            let start = wr.buf.len();
            wr.buf.extend_from_slice(body);
            if let Some(key) = key {
                mask(&mut wr.buf[start..], key);
            }
            if scratch.capacity() > MAX_QUEUED {
                *scratch = Vec::new();
            }
            Ok(frame_start)
        })
    }

    /// Bytes queued and not written yet.
    pub fn queued(&self) -> usize {
        let wr = self.wr.borrow();
        wr.buf.len() - wr.pos
    }

    /// Writes out what is queued.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = self.poll_write_queue(cx);
        if r.is_ready() {
            self.flush_waiters.wake_all();
        }
        self.flush_waiters.pending(cx, r)
    }

    fn poll_write_queue(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut wr = self.wr.borrow_mut();
        if let Some(kind) = wr.failed {
            return Poll::Ready(Err(kind.into()));
        }
        let mut io = self.io.borrow_mut();
        let Some(t) = io.as_mut() else {
            // Released: what is still queued can never go out.
            let r = if wr.pos < wr.buf.len() { Err(std::io::ErrorKind::NotConnected.into()) } else { Ok(()) };
            return Poll::Ready(r);
        };
        while wr.pos < wr.buf.len() {
            let r = t.poll_write(cx, &wr.buf[wr.pos..]);
            match r {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => wr.pos += n,
                Poll::Ready(Err(e)) => {
                    wr.failed = Some(e.kind());
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        wr.buf.clear();
        wr.pos = 0;
        wr.pong_at = None;
        if wr.buf.capacity() > MAX_QUEUED {
            wr.buf = Vec::new();
        }
        if self.finished.get() {
            // All is said: end the TCP connection and close the socket now, not at GC.
            if t.poll_shutdown(cx).is_ready() {
                *io = None;
            }
            return Poll::Ready(Ok(()));
        }
        t.poll_flush(cx)
    }

    /// Closes the socket (the connection ended without a close handshake, or the background
    /// close gave up); a task waiting to write finds it closed.
    pub fn release(&self) {
        let io = self.io.borrow_mut().take();
        drop(io);
        self.flush_waiters.wake_all();
    }

    /// A whole frame is buffered already: the next read will not wait.
    pub fn input_pending(&self) -> bool {
        let rd = self.rd.borrow();
        frame::complete(&rd.buf[rd.pos..])
    }

    /// Writes what is queued if the socket takes it now; what it does not take is left to the
    /// flush promised by `defer_flush`.
    pub fn write_now(&self) {
        let _ = self.poll_flush(&mut Context::from_waker(futures_util::task::noop_waker_ref()));
    }

    /// Ready when a read could make progress: a whole frame is buffered, or the socket is
    /// readable (always "ready" over TLS, whose readiness is not the socket's).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.input_pending() {
            return Poll::Ready(());
        }
        if self.queued() > MAX_QUEUED {
            // Held back (see `poll_message`): ready once the queue is written.
            return self.poll_flush(cx).map(|_| ());
        }
        let r = match &*self.io.borrow() {
            Some(t) => t.poll_read_ready(cx),
            None => Poll::Ready(Ok(())),
        };
        r.map(|_| ())
    }

    /// Ends the TCP connection once what is queued is written (after failing the connection).
    pub fn finish(&self) {
        self.finished.set(true);
    }

    /// Promises a flush when the task being polled yields; false outside a task (the caller
    /// then flushes itself). Errors surface at the next call.
    pub fn defer_flush(self: &Rc<Self>) -> bool {
        if self.flush_pending.get() {
            return true;
        }
        let deferred = crate::runtime::defer(self.clone());
        self.flush_pending.set(deferred);
        deferred
    }

    /// Flushes when the task being polled yields, or else now as far as the socket takes it;
    /// the rest is written by the next call that waits on this connection (`poll_message` and
    /// the send paths flush with their own waker).
    pub fn flush_soon(self: &Rc<Self>) {
        if !self.defer_flush() {
            self.write_now();
        }
    }

    /// The next message, answering pings and the peer's close on the way.
    /// `read` false: only what is buffered already (never touches the socket).
    pub fn poll_message(self: &Rc<Self>, cx: &mut Context<'_>, read: bool) -> Poll<Result<Message, Error>> {
        if read && !self.flush_pending.get() && self.queued() > 0 {
            // A pong or close reply queued outside a task: write it while we wait anyway.
            let _ = self.poll_flush(cx);
        }
        loop {
            if let Some(m) = self.next_frame()? {
                match &m {
                    Message::Ping(p) if !self.sent_close.get() => {
                        self.queue_pong(p)?;
                        self.flush_soon();
                    }
                    Message::Close(c) if !self.sent_close.get() => {
                        // Echo the code, as RFC 6455 §5.5.1 suggests; none for none.
                        let payload = c.as_ref().map(|(code, _)| code.to_be_bytes().to_vec()).unwrap_or_default();
                        self.queue(OpCode::Control(Control::Close), &payload)?;
                    }
                    _ => {}
                }
                return Poll::Ready(Ok(m));
            }
            if !read {
                return Poll::Pending;
            }
            if self.queued() > MAX_QUEUED {
                // Back-pressure: a peer that does not read what we owe it gets nothing more read
                // until it does, so it cannot make us queue without bound. Woken by the write.
                match self.poll_flush(cx) {
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                    _ if self.queued() > MAX_QUEUED => return Poll::Pending,
                    _ => {}
                }
            }
            let mut rd = self.rd.borrow_mut();
            let rd = &mut *rd;
            if rd.pos == rd.buf.len() {
                rd.buf.clear();
                rd.pos = 0;
            } else if rd.pos > 0 && rd.buf.capacity() - rd.buf.len() < READ_CHUNK / 2 {
                rd.buf.drain(..rd.pos);
                rd.pos = 0;
            }
            if rd.buf.capacity() - rd.buf.len() < READ_CHUNK / 2 {
                rd.buf.reserve(READ_CHUNK);
            }
            let n = {
                let spare = rd.buf.spare_capacity_mut();
                let mut rb = ReadBuf::uninit(spare);
                let mut io = self.io.borrow_mut();
                let Some(t) = io.as_mut() else { return Poll::Ready(Err(Error::Eof)) };
                match t.poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => rb.filled().len(),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                    Poll::Pending => {
                        // An idle connection keeps no read buffer: that is half of its memory.
                        if rd.buf.len() == rd.pos {
                            rd.buf = Vec::new();
                            rd.pos = 0;
                        }
                        return Poll::Pending;
                    }
                }
            };
            if n == 0 {
                return Poll::Ready(Err(Error::Eof));
            }
            // SAFETY: `poll_read` initialised the first `n` spare bytes.
            unsafe { rd.buf.set_len(rd.buf.len() + n) };
        }
    }

    /// Decodes the next whole message from the buffer, if it holds one.
    fn next_frame(&self) -> Result<Option<Message>, Error> {
        let mut rd = self.rd.borrow_mut();
        let rd = &mut *rd;
        loop {
            let avail = &rd.buf[rd.pos..];
            let Some(h) = frame::parse(avail, &self.rules, rd.frag.len())? else {
                return Ok(None);
            };
            let (head, len) = (h.head_len, h.payload_len);
            let total = h.total();
            if avail.len() < total {
                let missing = total - avail.len();
                // The frames before this one are read: drop them first, or a stream of small
                // frames that never ends on a frame boundary grows the buffer without end.
                if rd.pos > 0 {
                    rd.buf.drain(..rd.pos);
                    rd.pos = 0;
                }
                // Room for the rest, but not all at once on the word of a header: a peer that
                // announces 16 MiB and sends nothing must not make us allocate 16 MiB.
                rd.buf.reserve(missing.min(MAX_QUEUED));
                return Ok(None);
            }
            let start = rd.pos + head;
            rd.pos += total;
            let payload = &mut rd.buf[start..start + len];
            if let Some(key) = h.mask {
                mask(payload, key);
            }
            let payload = &rd.buf[start..start + len];
            let data = match h.opcode {
                OpCode::Control(Control::Ping) => return Ok(Some(Message::Ping(payload.to_vec()))),
                OpCode::Control(Control::Pong) => return Ok(Some(Message::Pong(payload.to_vec()))),
                OpCode::Control(Control::Close) => {
                    self.finished.set(true);
                    return close_frame(payload).map(Some);
                }
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    return Err(Error::Protocol("reserved opcode".into()))
                }
                OpCode::Data(Data::Continue) => {
                    if rd.frag_kind.is_none() {
                        return Err(Error::Protocol("continuation frame without a message".into()));
                    }
                    rd.frag.extend_from_slice(payload);
                    if !h.fin {
                        continue;
                    }
                    std::mem::take(&mut rd.frag)
                }
                OpCode::Data(d) => {
                    if rd.frag_kind.is_some() {
                        return Err(Error::Protocol("new message inside a fragmented one".into()));
                    }
                    rd.frag_kind = Some((d == Data::Text, h.rsv1));
                    if !h.fin {
                        rd.frag.extend_from_slice(payload);
                        continue;
                    }
                    payload.to_vec()
                }
            };
            let (text, compressed) = rd.frag_kind.take().expect("set above");
            let data = if compressed {
                let mut out = Vec::new();
                let inflater = rd.inflater.as_mut().expect("deflate agreed");
                match inflater.inflate(&data, self.max, &mut out) {
                    Ok(()) => out,
                    Err(InflateError::TooBig) => {
                        return Err(Error::TooBig(format!(
                            "message inflates to over max_message_size ({} bytes)",
                            self.max
                        )))
                    }
                    Err(InflateError::Corrupt(e)) => return Err(Error::Protocol(format!("bad compressed data: {e}"))),
                }
            } else {
                data
            };
            if rd.frag.capacity() > MAX_QUEUED {
                rd.frag = Vec::new();
            }
            if text {
                if let Err(e) = std::str::from_utf8(&data) {
                    return Err(Error::BadUtf8(format!("text is not valid UTF-8 ({e})")));
                }
                return Ok(Some(Message::Text(data)));
            }
            return Ok(Some(Message::Binary(data)));
        }
    }
}

fn close_frame(payload: &[u8]) -> Result<Message, Error> {
    match payload.len() {
        0 => Ok(Message::Close(None)),
        1 => Err(Error::Protocol("close frame with a 1-byte payload".into())),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_code(code) {
                return Err(Error::Protocol(format!("invalid close code {code}")));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| Error::BadUtf8("close reason is not valid UTF-8".into()))?;
            Ok(Message::Close(Some((code, reason.to_string()))))
        }
    }
}

/// Run by the runtime when the task that queued yields (so inside the loop's `LocalSet`, where
/// a background flusher can be spawned).
impl crate::runtime::Deferred for Conn {
    fn run(self: Rc<Self>) {
        let waker = futures_util::task::noop_waker_ref();
        match self.poll_flush(&mut Context::from_waker(waker)) {
            Poll::Ready(_) => self.flush_pending.set(false),
            Poll::Pending => {
                // The socket is full: finish in the background.
                tokio::task::spawn_local(async move {
                    let _ = std::future::poll_fn(|cx| self.poll_flush(cx)).await;
                    self.flush_pending.set(false);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mask_matches_bytewise() {
        let key = [1, 2, 3, 4];
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).collect();
            let mut fast = data.clone();
            super::mask(&mut fast, key);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            assert_eq!(fast, slow);
        }
    }
}
