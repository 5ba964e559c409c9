//! The body type both sides of HTTP hand to hyper: nothing, one buffer, or chunks that a Lua
//! function produces (a streamed response, an upload from a function or a file). Single-threaded
//! like everything else here, so no `Send` is asked of it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// A body error (the producer failed); hyper ends the message with it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// Chunks pushed by a producer (see [`Pipe`]).
    Stream(Rc<Pipe>, Option<Box<dyn std::any::Any>>),
    /// A file uploaded as it is read (`body = {file = path}`).
    File(std::fs::File),
}

/// How much of a file one body frame carries.
const FILE_CHUNK: usize = 64 * 1024;

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(b))
        }
    }

    /// Attaches `guard` to a streamed body: it is dropped when the body is done or dropped
    /// (the server counts a connection busy until its response is sent).
    pub fn with_guard(mut self, guard: Box<dyn std::any::Any>) -> Body {
        if let Body::Stream(_, g) = &mut self {
            *g = Some(guard);
        }
        self
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(p, guard) => {
                let r = p.poll_next(cx);
                if matches!(r, Poll::Ready(None | Some(Err(_)))) {
                    guard.take();
                }
                r.map(|o| o.map(|r| r.map(Frame::data)))
            }
            // A local file read is quick enough to do in the poll (no thread hop).
            Body::File(f) => {
                use std::io::Read;
                let mut buf = vec![0u8; FILE_CHUNK];
                match f.read(&mut buf) {
                    Ok(0) => Poll::Ready(None),
                    Ok(n) => {
                        buf.truncate(n);
                        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
                    }
                    Err(e) => Poll::Ready(Some(Err(e.into()))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(..) | Body::File(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(..) | Body::File(_) => SizeHint::default(),
        }
    }
}

/// A bounded hand-over of chunks from a producer (a Lua task) to hyper. The producer waits
/// while `LIMIT` bytes are queued, so a fast producer on a slow peer holds little memory.
#[derive(Default)]
pub struct Pipe {
    state: RefCell<PipeState>,
}

#[derive(Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// The producer finished (`Ok`) or failed (`Err` with its message).
    end: Option<Result<(), String>>,
    /// The consumer is gone (the peer left): the producer should stop.
    dropped: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Run when the consumer goes away (stops the producer).
    on_drop: Option<Box<dyn FnOnce()>>,
}

/// How many bytes may wait in a pipe before the producer waits.
const LIMIT: usize = 256 * 1024;

impl Pipe {
    /// Queues a chunk; pending while the pipe is full. `Err(())` when the consumer is gone.
    pub fn poll_push(&self, cx: &mut Context<'_>, chunk: &mut Option<Bytes>) -> Poll<Result<(), ()>> {
        let mut st = self.state.borrow_mut();
        if st.dropped {
            return Poll::Ready(Err(()));
        }
        if st.queued >= LIMIT {
            st.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(c) = chunk.take() {
            st.queued += c.len();
            st.chunks.push_back(c);
        }
        if let Some(w) = st.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    pub async fn push(&self, chunk: Bytes) -> Result<(), ()> {
        let mut chunk = Some(chunk);
        std::future::poll_fn(|cx| self.poll_push(cx, &mut chunk)).await
    }

    /// Ends the body: `Ok` after the last chunk, `Err` to abort it (the peer sees the message
    /// cut short, never a complete-looking one).
    pub fn finish(&self, r: Result<(), String>) {
        let mut st = self.state.borrow_mut();
        st.end.get_or_insert(r);
        if let Some(w) = st.reader.take() {
            w.wake();
        }
    }

    pub fn on_drop(&self, f: Box<dyn FnOnce()>) {
        self.state.borrow_mut().on_drop = Some(f);
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let mut st = self.state.borrow_mut();
        if let Some(c) = st.chunks.pop_front() {
            st.queued -= c.len();
            if let Some(w) = st.writer.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(c)));
        }
        match &st.end {
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.clone().into()))),
            None => {
                st.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The consumer side went away.
    pub fn drop_reader(&self) {
        let mut st = self.state.borrow_mut();
        st.dropped = true;
        st.chunks.clear();
        let (writer, on_drop) = (st.writer.take(), st.on_drop.take());
        let ended = st.end.is_some();
        drop(st);
        if let Some(w) = writer {
            w.wake();
        }
        if let Some(f) = on_drop.filter(|_| !ended) {
            f();
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Body::Stream(p, _) = self {
            p.drop_reader();
        }
    }
}
