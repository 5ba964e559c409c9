//! The one connected-socket type under every stream-like object: TCP, TLS over TCP, and Unix
//! domain sockets. Streams (`src/tcp/stream.rs`), WebSocket connections (`src/ws/conn.rs`) and
//! anything written for tokio or hyper (`AsyncRead + AsyncWrite + Unpin`, e.g. through
//! `hyper_util::rt::TokioIo`) all use it.
//!
//! It stays an enum, not a `Box<dyn>`: reads and writes are the hottest paths there are, and a
//! `match` the compiler can inline costs nothing next to a virtual call. Only this file looks at
//! the variants (docs/internals.md, "Transport and acceptor").

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_openssl::SslStream;

/// A connected transport with its addresses: what a connect makes, an acceptor hands out, and
/// a protocol (a stream, a WebSocket) is built on.
pub struct Connection {
    pub transport: Transport,
    /// `127.0.0.1:50312`, or the socket path for Unix sockets.
    pub peer: String,
    pub local: String,
}

pub enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Boxed: the TLS state is large, and plain sockets should not carry its size.
    Tls(Box<SslStream<TcpStream>>),
}

impl Transport {
    pub fn tcp(s: TcpStream) -> Self {
        Transport::Tcp(s)
    }

    pub fn unix(s: UnixStream) -> Self {
        Transport::Unix(s)
    }

    pub fn tls(s: SslStream<TcpStream>) -> Self {
        Transport::Tls(Box::new(s))
    }

    /// The plain TCP socket under a connection that is about to start TLS, or the transport
    /// back when it is not plain TCP.
    pub fn into_tcp(self) -> Result<TcpStream, Self> {
        match self {
            Transport::Tcp(s) => Ok(s),
            other => Err(other),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Transport::Unix(_))
    }

    /// The protocol ALPN chose on a TLS connection.
    pub fn alpn(&self) -> Option<String> {
        match self {
            Transport::Tls(s) => s.ssl().selected_alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
            _ => None,
        }
    }

    /// The socket's descriptor (the acceptor shuts it down to end a handshake at once).
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Transport::Tcp(s) => s.as_raw_fd(),
            Transport::Unix(s) => s.as_raw_fd(),
            Transport::Tls(s) => s.get_ref().as_raw_fd(),
        }
    }

    /// The socket, for options (`set_nodelay`, `shutdown`, buffer sizes ...).
    pub fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Transport::Tcp(s) => socket2::SockRef::from(s),
            Transport::Unix(s) => socket2::SockRef::from(s),
            Transport::Tls(s) => socket2::SockRef::from(s.get_ref()),
        }
    }

    /// The local address as text (`127.0.0.1:8080`); empty for a Unix socket or when unknown.
    pub fn local_addr(&self) -> String {
        let a = match self {
            Transport::Tcp(s) => s.local_addr(),
            Transport::Tls(s) => s.get_ref().local_addr(),
            Transport::Unix(_) => return String::new(),
        };
        a.map(|a| a.to_string()).unwrap_or_default()
    }

    /// Whether a task may wait on the socket's readiness instead of on a read or write. Not over
    /// TLS: bytes can wait inside the TLS layer while the socket is idle, and a TLS read may need
    /// the socket to be writable (a renegotiation, a key update).
    #[inline]
    pub fn has_socket_readiness(&self) -> bool {
        !self.is_tls()
    }

    /// Ready when a read is worth trying. Over TLS always ready: the try itself (`poll_read`)
    /// registers the waker with whatever OpenSSL waits for, so "ready" means "try and see".
    #[inline]
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(s) => s.poll_read_ready(cx),
            Transport::Unix(s) => s.poll_read_ready(cx),
            Transport::Tls(_) => Poll::Ready(Ok(())),
        }
    }

    /// Ready when a write is worth trying; over TLS always ready, as for reads.
    #[inline]
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(s) => s.poll_write_ready(cx),
            Transport::Unix(s) => s.poll_write_ready(cx),
            Transport::Tls(_) => Poll::Ready(Ok(())),
        }
    }

    #[inline]
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }

    #[inline]
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Transport::Unix(s) => Pin::new(s).poll_write(cx, data),
            Transport::Tls(s) => Pin::new(&mut **s).poll_write(cx, data),
        }
    }

    #[inline]
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// The async traits, so protocols written for tokio (WebSocket, hyper) run over any transport.
impl AsyncRead for Transport {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Transport::poll_read(self.get_mut(), cx, buf)
    }
}

impl AsyncWrite for Transport {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Transport::poll_write(self.get_mut(), cx, data)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Transport::poll_flush(self.get_mut(), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Transport::poll_shutdown(self.get_mut(), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Transport;

    fn assert_io<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>() {}

    #[test]
    fn fits_tokio_and_hyper_adapters() {
        assert_io::<Transport>();
    }
}
