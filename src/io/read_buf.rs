//! The read buffer of a stream and the codec of its read operations, with no socket in sight:
//! `step` looks at the buffered bytes and says whether a `read`, `read_line`, `read_all`,
//! `read_exact` or `read_u32` is done (take `len` bytes, then drop `skip` more: the line ending),
//! needs more input, or failed. `Buffer` owns the bytes and makes room for the next fill.
//!
//! Kept pure so that every edge (CRLF, limits, torn values, the end of the stream) is unit-tested
//! here, while `src/tcp/stream.rs` only moves bytes between the socket and this buffer.

use std::io;
use std::task::Poll;

use tokio::io::ReadBuf;

/// Smallest read a syscall is given room for.
pub const READ_CHUNK: usize = 16 * 1024;
/// Largest room one fill reserves.
pub const MAX_FILL: usize = 1024 * 1024;
/// A line longer than this makes `read_line` raise `limit: ...` (the bytes stay buffered).
pub const MAX_LINE: usize = 1024 * 1024;
/// `read_all()` without a limit raises `limit: ...` once more than this arrived before the end of
/// the stream (the bytes stay buffered); `read_all(n)` sets another limit for one call.
pub const MAX_READ_ALL: usize = 64 * 1024 * 1024;

/// What a read is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOp {
    /// Whatever is there, at most this many bytes (at least one).
    Some(usize),
    /// Up to a `\n` (a `\r` before it is dropped too); the rest at the end of the stream.
    Line,
    /// Everything up to the end of the stream, at most this many bytes.
    All(usize),
    Exact(usize),
    /// A big-endian 32-bit length (4 bytes).
    U32,
}

/// Where a read stands, given the buffered bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Done: take `len` bytes as the result, then drop `skip` more (a line ending).
    Done { len: usize, skip: usize },
    /// The stream ended cleanly before the read started (nil to the script).
    Eof,
    /// Read more from the socket, giving the syscall room for about `want` bytes.
    NeedMore { want: usize },
    /// `read_line`: no newline within `limit` bytes.
    LineTooLong { limit: usize },
    /// `read_all`: more than `limit` bytes before the end of the stream.
    TooMuch { limit: usize },
    /// The stream ended inside a value: `have` of the `need` bytes came.
    Torn { have: usize, need: usize },
}

/// `step_limited` with the default line limit.
#[inline]
pub fn step(data: &[u8], eof: bool, op: ReadOp) -> Step {
    step_limited(data, eof, op, MAX_LINE)
}

/// Decides a read over `data` (the buffered bytes); `eof` says the stream has ended, so no more
/// will come. A line of `max_line` bytes or more without its newline is refused.
#[inline]
pub fn step_limited(data: &[u8], eof: bool, op: ReadOp, max_line: usize) -> Step {
    let avail = data.len();
    match op {
        ReadOp::Some(n) if avail > 0 => return Step::Done { len: avail.min(n), skip: 0 },
        ReadOp::Line => {
            if let Some(i) = data.iter().position(|&b| b == b'\n') {
                let cr = usize::from(i > 0 && data[i - 1] == b'\r');
                return Step::Done { len: i - cr, skip: 1 + cr };
            }
            if eof && avail > 0 {
                return Step::Done { len: avail, skip: 0 };
            }
            if avail >= max_line {
                return Step::LineTooLong { limit: max_line };
            }
        }
        ReadOp::Exact(n) if avail >= n => return Step::Done { len: n, skip: 0 },
        ReadOp::U32 if avail >= 4 => return Step::Done { len: 4, skip: 0 },
        ReadOp::All(_) if eof => return Step::Done { len: avail, skip: 0 },
        ReadOp::All(limit) if avail > limit => return Step::TooMuch { limit },
        _ => {}
    }
    if eof {
        // read_u32 at a clean end of stream is nil, like read; a torn value is an error.
        return match op {
            ReadOp::Exact(n) => Step::Torn { have: avail, need: n },
            ReadOp::U32 if avail > 0 => Step::Torn { have: avail, need: 4 },
            _ => Step::Eof,
        };
    }
    let want = match op {
        ReadOp::Some(n) => n,
        ReadOp::Exact(n) => n - avail,
        _ => READ_CHUNK,
    };
    Step::NeedMore { want }
}

/// The bytes read from a socket and not consumed yet (`data[pos..]`).
#[derive(Default)]
pub struct Buffer {
    data: Vec<u8>,
    pos: usize,
}

impl Buffer {
    /// A buffer that starts with `bytes` (e.g. what a handshake read past its end).
    pub fn with(bytes: Vec<u8>) -> Self {
        Buffer { data: bytes, pos: 0 }
    }

    /// The buffered bytes.
    #[inline]
    pub fn available(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Consumes `len + skip` bytes and returns the first `len` of them.
    #[inline]
    pub fn take(&mut self, len: usize, skip: usize) -> &[u8] {
        let at = self.pos;
        assert!(len + skip <= self.data.len() - at, "take past the buffered bytes");
        self.pos = at + len + skip;
        &self.data[at..at + len]
    }

    /// Reads once into the buffer through `read` (a socket's `poll_read`), after making room for
    /// about `want` bytes: at least `READ_CHUNK` (so small reads batch), at most `MAX_FILL` (so
    /// `read_exact(1e9)` does not reserve a gigabyte on the word of a script). Consumed bytes are
    /// dropped first when the buffer is empty or out of room. Ready(0) is the end of the stream.
    #[inline]
    pub fn fill(
        &mut self,
        want: usize,
        read: impl FnOnce(&mut ReadBuf<'_>) -> Poll<io::Result<()>>,
    ) -> Poll<io::Result<usize>> {
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.data.capacity() - self.data.len() < READ_CHUNK {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        self.data.reserve(want.clamp(READ_CHUNK, MAX_FILL));
        let len = self.data.len();
        let mut rb = ReadBuf::uninit(self.data.spare_capacity_mut());
        match read(&mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                // SAFETY: `ReadBuf` guarantees its first `filled().len()` bytes are initialised,
                // and it wraps exactly the spare capacity after `len`.
                unsafe { self.data.set_len(len + n) };
                Poll::Ready(Ok(n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(data: &[u8], eof: bool) -> Step {
        step_limited(data, eof, ReadOp::Line, 8)
    }

    #[test]
    fn lines_end_at_lf_or_crlf() {
        assert_eq!(line(b"ab\ncd", false), Step::Done { len: 2, skip: 1 });
        assert_eq!(line(b"ab\r\ncd", false), Step::Done { len: 2, skip: 2 });
        assert_eq!(line(b"\n", false), Step::Done { len: 0, skip: 1 });
        assert_eq!(line(b"\r\n", false), Step::Done { len: 0, skip: 2 });
        // A lone CR is data; only the one before LF goes.
        assert_eq!(line(b"a\rb\n", false), Step::Done { len: 3, skip: 1 });
        assert_eq!(line(b"a\r\r\n", false), Step::Done { len: 2, skip: 2 });
    }

    #[test]
    fn partial_lines_wait_and_end_at_eof() {
        assert_eq!(line(b"", false), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(line(b"abc", false), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(line(b"abc\r", false), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(line(b"abc", true), Step::Done { len: 3, skip: 0 });
        // A CR at the very end of the stream has no LF after it: it is data.
        assert_eq!(line(b"abc\r", true), Step::Done { len: 4, skip: 0 });
        assert_eq!(line(b"", true), Step::Eof);
    }

    #[test]
    fn line_limit() {
        assert_eq!(line(b"1234567", false), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(line(b"12345678", false), Step::LineTooLong { limit: 8 });
        // A newline within what is buffered wins over the limit.
        assert_eq!(line(b"12345678\n", false), Step::Done { len: 8, skip: 1 });
        assert_eq!(line(b"1234567\n", false), Step::Done { len: 7, skip: 1 });
        // At the end of the stream the rest is a line, however long.
        assert_eq!(line(b"123456789", true), Step::Done { len: 9, skip: 0 });
    }

    #[test]
    fn some_takes_what_is_there() {
        assert_eq!(step(b"abc", false, ReadOp::Some(2)), Step::Done { len: 2, skip: 0 });
        assert_eq!(step(b"abc", false, ReadOp::Some(10)), Step::Done { len: 3, skip: 0 });
        assert_eq!(step(b"", false, ReadOp::Some(10)), Step::NeedMore { want: 10 });
        assert_eq!(step(b"", true, ReadOp::Some(10)), Step::Eof);
        assert_eq!(step(b"a", true, ReadOp::Some(10)), Step::Done { len: 1, skip: 0 });
    }

    #[test]
    fn exact_waits_for_all_and_reports_torn() {
        assert_eq!(step(b"abc", false, ReadOp::Exact(3)), Step::Done { len: 3, skip: 0 });
        assert_eq!(step(b"abcd", false, ReadOp::Exact(3)), Step::Done { len: 3, skip: 0 });
        assert_eq!(step(b"ab", false, ReadOp::Exact(5)), Step::NeedMore { want: 3 });
        assert_eq!(step(b"ab", true, ReadOp::Exact(5)), Step::Torn { have: 2, need: 5 });
        assert_eq!(step(b"", true, ReadOp::Exact(5)), Step::Torn { have: 0, need: 5 });
        assert_eq!(step(b"", false, ReadOp::Exact(0)), Step::Done { len: 0, skip: 0 });
        assert_eq!(step(b"", true, ReadOp::Exact(0)), Step::Done { len: 0, skip: 0 });
    }

    #[test]
    fn u32_prefix() {
        assert_eq!(step(&[0, 0, 1, 0, 9], false, ReadOp::U32), Step::Done { len: 4, skip: 0 });
        assert_eq!(step(&[0, 0, 1], false, ReadOp::U32), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(step(&[0, 0, 1], true, ReadOp::U32), Step::Torn { have: 3, need: 4 });
        assert_eq!(step(b"", true, ReadOp::U32), Step::Eof);
    }

    #[test]
    fn all_until_eof_within_limit() {
        assert_eq!(step(b"abc", false, ReadOp::All(3)), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(step(b"abcd", false, ReadOp::All(3)), Step::TooMuch { limit: 3 });
        assert_eq!(step(b"abc", true, ReadOp::All(3)), Step::Done { len: 3, skip: 0 });
        // The end of the stream decides first: what came is the answer.
        assert_eq!(step(b"abcd", true, ReadOp::All(3)), Step::Done { len: 4, skip: 0 });
        assert_eq!(step(b"", true, ReadOp::All(3)), Step::Done { len: 0, skip: 0 });
        assert_eq!(step(b"", false, ReadOp::All(0)), Step::NeedMore { want: READ_CHUNK });
        assert_eq!(step(b"a", false, ReadOp::All(0)), Step::TooMuch { limit: 0 });
    }

    /// Every read, fed one byte at a time, finishes exactly when its input is complete.
    #[test]
    fn byte_by_byte_input() {
        let wire = b"hello\r\nworld\n\0\0\0\x05";
        let mut buf = Buffer::default();
        let mut out = Vec::new();
        let ops = [ReadOp::Line, ReadOp::Line, ReadOp::U32];
        let mut i = 0;
        for &b in wire {
            let _ = buf.fill(1, |rb| {
                rb.put_slice(&[b]);
                Poll::Ready(Ok(()))
            });
            while i < ops.len() {
                match step(buf.available(), false, ops[i]) {
                    Step::Done { len, skip } => {
                        out.push(buf.take(len, skip).to_vec());
                        i += 1;
                    }
                    Step::NeedMore { .. } => break,
                    s => panic!("unexpected {s:?}"),
                }
            }
        }
        assert_eq!(out, vec![b"hello".to_vec(), b"world".to_vec(), vec![0, 0, 0, 5]]);
        assert!(buf.available().is_empty());
    }

    #[test]
    fn fill_bounds_its_room_and_reuses_space() {
        let mut buf = Buffer::default();
        let mut room = 0;
        let _ = buf.fill(1 << 40, |rb| {
            room = rb.remaining();
            rb.put_slice(b"abc");
            Poll::Ready(Ok(()))
        });
        assert!((MAX_FILL..2 * MAX_FILL).contains(&room), "room {room}");
        assert_eq!(buf.take(3, 0), b"abc");
        // Empty again: the next fill starts at the front.
        let _ = buf.fill(1, |rb| {
            rb.put_slice(b"x");
            Poll::Ready(Ok(()))
        });
        assert_eq!(buf.pos, 0);
        assert_eq!(buf.available(), b"x");
        // A pending or failed read leaves the bytes alone; zero bytes is the end.
        assert!(buf.fill(1, |_| Poll::Pending).is_pending());
        assert!(matches!(buf.fill(1, |_| Poll::Ready(Err(io::ErrorKind::Other.into()))), Poll::Ready(Err(_))));
        assert!(matches!(buf.fill(1, |_| Poll::Ready(Ok(()))), Poll::Ready(Ok(0))));
        assert_eq!(buf.available(), b"x");
    }

    #[test]
    fn handshake_leftover_is_served_first() {
        let mut buf = Buffer::with(b"a\nb".to_vec());
        assert_eq!(step(buf.available(), false, ReadOp::Line), Step::Done { len: 1, skip: 1 });
        assert_eq!(buf.take(1, 1), b"a");
        assert_eq!(buf.available(), b"b");
    }
}
