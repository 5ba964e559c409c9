//! Entry points for the fuzz targets in `fuzz/` (not part of the API, hidden from the docs): the
//! frame reader with permessage-deflate, and both sides of the upgrade, each driven by the real
//! code over real I/O so that nothing here re-implements what it tests.
//!
//! The frame reader runs over a Unix socket pair (a `Conn` owns a `Transport`), the handshakes
//! over `tokio::io::duplex`; all in one current-thread runtime kept per thread.

use std::future::poll_fn;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::{Conn, Message};
use super::deflate::Params;
use super::handshake::{self, ClientRequest, ServerConfig};
use crate::io::Transport;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_io().build().expect("a tokio runtime");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // A fuzz binary starts in libFuzzer's C `main`, not Rust's, so SIGPIPE is not ignored: a
    // write to a socket the reader already dropped would kill the process.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    RUNTIME.with(|rt| rt.block_on(f))
}

/// How the peer's bytes are offered to the frame reader.
#[derive(Clone, Copy, Debug)]
pub struct FrameSetup {
    /// This side is the client (frames from the server must not be masked).
    pub client: bool,
    /// `max_message_size`.
    pub max: usize,
    /// permessage-deflate was agreed; with the peer resetting its context after each message.
    pub deflate: Option<bool>,
    /// The peer writes in pieces of this many bytes (so headers and payloads arrive split).
    pub chunk: usize,
    /// This many bytes arrive with the handshake (the `leftover` of the upgrade).
    pub leftover: usize,
}

/// What one message or the end looked like: (kind, payload length); kind is "text", "binary",
/// "ping", "pong", "close", or "error" with the close code as the length.
pub type Event = (&'static str, usize);

/// Feeds `wire` to a connection's frame reader as the peer's bytes and collects what it makes
/// of them until it fails or the bytes end. Panics if a data message is over `max`.
pub fn read_frames(setup: FrameSetup, wire: &[u8]) -> Vec<Event> {
    let split = setup.leftover.min(wire.len());
    let (leftover, rest) = wire.split_at(split);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    block_on(async move {
        ours.set_nonblocking(true).expect("nonblocking");
        theirs.set_nonblocking(true).expect("nonblocking");
        let ours = tokio::net::UnixStream::from_std(ours).expect("tokio socket");
        let theirs = tokio::net::UnixStream::from_std(theirs).expect("tokio socket");
        let params =
            setup.deflate.map(|peer_no_takeover| Params { peer_no_takeover, own_no_takeover: true, own_window: 15 });
        let conn = Rc::new(Conn::new(Transport::unix(ours), setup.client, setup.max, params, leftover.to_vec()));
        let (mut peer_rd, mut peer_wr) = theirs.into_split();
        let peer_writes = async move {
            for piece in rest.chunks(setup.chunk.max(1)) {
                if peer_wr.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            let _ = peer_wr.shutdown().await;
        };
        // Our pongs and close replies go somewhere: the peer reads and drops them.
        let peer_reads = async move {
            let mut sink = [0u8; 4096];
            while matches!(peer_rd.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let reader = async move {
            let mut events = Vec::new();
            loop {
                let _ = conn.input_pending();
                match poll_fn(|cx| conn.poll_message(cx, true)).await {
                    Ok(m) => {
                        let event = match m {
                            Message::Text(d) => ("text", d.len()),
                            Message::Binary(d) => ("binary", d.len()),
                            Message::Ping(d) => ("ping", d.len()),
                            Message::Pong(d) => ("pong", d.len()),
                            Message::Close(_) => ("close", 0),
                        };
                        assert!(
                            event.1 <= setup.max,
                            "a {} message of {} bytes passed max {}",
                            event.0,
                            event.1,
                            setup.max
                        );
                        events.push(event);
                    }
                    Err(e) => {
                        events.push(("error", e.code() as usize));
                        break;
                    }
                }
            }
            conn.release();
            events
        };
        let (events, (), ()) = tokio::join!(reader, peer_writes, peer_reads);
        events
    })
}

/// What an upgrade agreed on: subprotocol, extensions, deflate on, bytes read past the head.
pub type Upgrade = (Option<String>, Option<String>, bool, usize);

/// The server side of the upgrade reading `request` (which arrives in pieces of `chunk` bytes).
/// Returns the server's answer and what was agreed (subprotocol, extensions, deflate, number of
/// leftover bytes) or the error.
pub fn server_handshake(
    request: &[u8],
    chunk: usize,
    protocols: Vec<String>,
    compress: bool,
) -> (Vec<u8>, Result<Upgrade, String>) {
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    let cfg = ServerConfig { protocols, compress };
    block_on(async move {
        let (mut peer_rd, mut peer_wr) = tokio::io::split(theirs);
        let peer_writes = async move {
            for piece in request.chunks(chunk.max(1)) {
                if peer_wr.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            let _ = peer_wr.shutdown().await;
        };
        let peer_reads = async move {
            let mut answer = Vec::new();
            let _ = peer_rd.read_to_end(&mut answer).await;
            answer
        };
        let server = async move {
            let r = handshake::server(&mut ours, &cfg, "fuzz").await;
            drop(ours);
            r.map(|u| (u.agreed.subprotocol, u.agreed.extensions, u.agreed.deflate.is_some(), u.agreed.leftover.len()))
                .map_err(|e| e.to_string())
        };
        let (agreed, (), answer) = tokio::join!(server, peer_writes, peer_reads);
        (answer, agreed)
    })
}

/// The client side of the upgrade against a server that answers `response`, in which every
/// `accept_marker` is replaced by the right `Sec-WebSocket-Accept` value for the client's key
/// (so that the fuzzer gets past that check). Returns what was agreed or the error.
pub fn client_handshake(
    response: &[u8],
    accept_marker: &[u8],
    protocols: Vec<String>,
    compress: bool,
) -> Result<Upgrade, String> {
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    let url = url::Url::parse("ws://127.0.0.1:9/fuzz?x=1").expect("a valid URL");
    block_on(async move {
        let (mut peer_rd, mut peer_wr) = tokio::io::split(theirs);
        let peer = async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match peer_rd.read(&mut buf).await {
                    Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let text = String::from_utf8_lossy(&request);
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .expect("the client sends a key")
                .trim()
                .to_string();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let response = replace_all(response, accept_marker, accept.as_bytes());
            let _ = peer_wr.write_all(&response).await;
            let _ = peer_wr.shutdown().await;
        };
        let client = async move {
            let req = ClientRequest { url: &url, protocols: &protocols, headers: &[], compress };
            let r = handshake::client(&mut ours, req).await;
            drop(ours);
            r.map(|a| (a.subprotocol, a.extensions, a.deflate.is_some(), a.leftover.len())).map_err(|e| e.to_string())
        };
        let (agreed, ()) = tokio::join!(client, peer);
        agreed
    })
}

fn replace_all(haystack: &[u8], marker: &[u8], with: &[u8]) -> Vec<u8> {
    if marker.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(marker) {
            out.extend_from_slice(with);
            i += marker.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}
