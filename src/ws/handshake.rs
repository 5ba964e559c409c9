//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4): the client's request and the
//! check of the server's answer, the server's check of a request and its 101 answer, with the
//! subprotocol and permessage-deflate negotiated on the way.
//!
//! Done here rather than by tungstenite's handshake so the bytes that follow the HTTP head stay
//! in our buffer, and so the deflate offer and answer are ours (see `deflate.rs`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use super::deflate::{self, Params};
use crate::error::{Kind, NResult, NetError};

/// An HTTP head longer than this is refused.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// What both sides agreed on.
#[derive(Default)]
pub struct Agreed {
    pub subprotocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` in force, as the server answered it.
    pub extensions: Option<String>,
    pub deflate: Option<Params>,
    /// Bytes read past the HTTP head: the first frames.
    pub leftover: Vec<u8>,
}

/// Reads until the end of an HTTP head (`\r\n\r\n`); returns everything read so far.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, what: &str, peer: &str) -> NResult<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD {
            return Err(NetError::new(Kind::Protocol, format!("{what} from {peer}: HTTP head over {MAX_HEAD} bytes")));
        }
        buf.reserve(1024);
        let n = io.read_buf(&mut buf).await.map_err(|e| NetError::io(what, peer, &e))?;
        if n == 0 {
            return Err(NetError::closed(what, "connection (the peer hung up during the handshake)"));
        }
        let from = buf.len().saturating_sub(n + 3);
        if buf[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
    }
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok())
}

/// All values of a header that may repeat, joined by commas as HTTP allows.
fn header_list(headers: &[httparse::Header<'_>], name: &str) -> String {
    let values =
        headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).filter_map(|h| std::str::from_utf8(h.value).ok());
    values.collect::<Vec<_>>().join(", ")
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The client side: what to ask for.
pub struct ClientRequest<'a> {
    pub url: &'a url::Url,
    pub protocols: &'a [String],
    pub headers: &'a [(String, String)],
    pub compress: bool,
}

/// Sends the upgrade request over `io` and checks the answer.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, req: ClientRequest<'_>) -> NResult<Agreed> {
    let url = req.url;
    let key = generate_key();
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    let user_has = |name: &str| req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    if !user_has("host") {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    head.push_str(&format!(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    ));
    if !req.protocols.is_empty() {
        head.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", req.protocols.join(", ")));
    }
    if req.compress {
        head.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", deflate::CLIENT_OFFER));
    }
    if !user_has("user-agent") {
        head.push_str(concat!("User-Agent: lua-net/", env!("CARGO_PKG_VERSION"), "\r\n"));
    }
    for (k, v) in req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let what = "websocket handshake with";
    io.write_all(head.as_bytes()).await.map_err(|e| NetError::io(what, url.as_str(), &e))?;
    io.flush().await.map_err(|e| NetError::io(what, url.as_str(), &e))?;

    let buf = read_head(io, what, url.as_str()).await?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let bad = |why: String| NetError::new(Kind::Protocol, format!("websocket handshake with {url} failed: {why}"));
    let used = match resp.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("incomplete HTTP answer".into())),
        Err(e) => return Err(bad(format!("malformed HTTP answer ({e})"))),
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(NetError::new(Kind::Protocol, format!("websocket upgrade to {url} refused (HTTP {status})")));
    }
    let h = resp.headers;
    if !has_token(header(h, "upgrade"), "websocket") {
        return Err(bad("no \"Upgrade: websocket\" in the answer".into()));
    }
    if !has_token(header(h, "connection"), "upgrade") {
        return Err(bad("no \"Connection: upgrade\" in the answer".into()));
    }
    if header(h, "sec-websocket-accept").map(str::trim) != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(bad("wrong Sec-WebSocket-Accept".into()));
    }
    let subprotocol = header(h, "sec-websocket-protocol").map(|p| p.trim().to_string());
    if let Some(p) = &subprotocol {
        if !req.protocols.contains(p) {
            return Err(bad(format!("the server chose subprotocol \"{p}\", which was not offered")));
        }
    }
    let ext = header_list(h, "sec-websocket-extensions");
    let deflate = if ext.is_empty() {
        None
    } else if !req.compress {
        return Err(bad(format!("the server answered extensions that were not offered ({ext})")));
    } else {
        deflate::accept_answer(&ext).map_err(|e| bad(format!("bad permessage-deflate answer: {e}")))?
    };
    if deflate.is_none() && !ext.is_empty() {
        return Err(bad(format!("unknown extension in the answer ({ext})")));
    }
    Ok(Agreed { subprotocol, extensions: (!ext.is_empty()).then_some(ext), deflate, leftover: buf[used..].to_vec() })
}

/// The server side: what it offers.
pub struct ServerConfig {
    pub protocols: Vec<String>,
    pub compress: bool,
}

/// Reads an upgrade request from `io`, answers it, and returns what was agreed; a request that
/// is not a valid upgrade gets a 400 (or 426 for another WebSocket version) and an error.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, cfg: &ServerConfig, peer: &str) -> NResult<Agreed> {
    let what = "websocket handshake from";
    let buf = read_head(io, what, peer).await?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(&buf);
    let (answer, agreed) = match parsed {
        Ok(httparse::Status::Complete(used)) => match check_request(&req, cfg) {
            Ok((answer, mut agreed)) => {
                agreed.leftover = buf[used..].to_vec();
                (answer, Ok(agreed))
            }
            Err((status, why)) => (refusal(status, &why), Err(why)),
        },
        _ => (refusal(400, "malformed HTTP request"), Err("malformed HTTP request".to_string())),
    };
    io.write_all(answer.as_bytes()).await.map_err(|e| NetError::io(what, peer, &e))?;
    io.flush().await.map_err(|e| NetError::io(what, peer, &e))?;
    agreed.map_err(|why| NetError::new(Kind::Protocol, format!("{what} {peer} refused: {why}")))
}

fn refusal(status: u16, why: &str) -> String {
    let (reason, extra) = match status {
        426 => ("Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        405 => ("Method Not Allowed", "Allow: GET\r\n"),
        _ => ("Bad Request", ""),
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{why}\n",
        why.len() + 1
    )
}

/// The 101 answer to a valid upgrade request, or the status and reason to refuse it with.
fn check_request(req: &httparse::Request<'_, '_>, cfg: &ServerConfig) -> Result<(String, Agreed), (u16, String)> {
    if req.method != Some("GET") {
        return Err((405, "a WebSocket upgrade must be a GET".into()));
    }
    let h = &*req.headers;
    if !has_token(header(h, "upgrade"), "websocket") {
        return Err((400, "not a WebSocket upgrade (no \"Upgrade: websocket\")".into()));
    }
    if !has_token(header(h, "connection"), "upgrade") {
        return Err((400, "not a WebSocket upgrade (no \"Connection: Upgrade\")".into()));
    }
    if header(h, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err((426, "only WebSocket version 13 is supported".into()));
    }
    let Some(key) = header(h, "sec-websocket-key").map(str::trim).filter(|k| !k.is_empty()) else {
        return Err((400, "missing Sec-WebSocket-Key".into()));
    };
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    let mut agreed = Agreed::default();
    let offered = header_list(h, "sec-websocket-protocol");
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    // The server's order decides, as in most servers: its first protocol the client also knows.
    if let Some(p) = cfg.protocols.iter().find(|p| offered.contains(&p.as_str())) {
        answer.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        agreed.subprotocol = Some(p.clone());
    }
    if cfg.compress {
        if let Some((ext, params)) = deflate::answer(&header_list(h, "sec-websocket-extensions")) {
            answer.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
            agreed.extensions = Some(ext);
            agreed.deflate = Some(params);
        }
    }
    answer.push_str("\r\n");
    Ok((answer, agreed))
}
