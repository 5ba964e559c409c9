//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4), in two layers:
//!
//! - **Negotiation, pure**: `negotiate` checks a request head (method, version, `Upgrade`,
//!   `Connection`, `Sec-WebSocket-Key` and `-Version`), picks the subprotocol and the
//!   permessage-deflate parameters, and returns the 101 answer's headers or a precise refusal
//!   (status and reason). `client_request` and `check_response` are the client's twins. They
//!   read headers through a plain `&[(name, value)]` view, so the HTTP server can run them on
//!   hyper's request and answer 101 through hyper, then hand the raw transport to `Conn`.
//! - **Raw head I/O**: `server` and `client` read an HTTP head off a transport (bounded in size;
//!   the caller bounds the time), keep the bytes read past it (the first frames), and write the
//!   answer. Used by `net.ws.listen` and `net.ws.connect`.
//!
//! Done here rather than by tungstenite's handshake so the bytes that follow the HTTP head stay
//! in our buffer, and so the deflate offer and answer are ours (see `deflate.rs`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use super::deflate::{self, Params};
use crate::error::{Kind, NResult, NetError};

/// An HTTP head longer than this is refused.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// Header fields as (name, value) pairs in the order they came; names in any case.
pub type Headers<'a> = [(&'a str, &'a [u8])];

/// What both sides agreed on.
#[derive(Default, Debug)]
pub struct Agreed {
    pub subprotocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` in force, as the server answered it.
    pub extensions: Option<String>,
    pub deflate: Option<Params>,
    /// Bytes read past the HTTP head: the first frames.
    pub leftover: Vec<u8>,
}

/// The first value of a header, if it is text.
fn header<'a>(headers: &'a Headers<'a>, name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.0.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.1).ok())
}

/// All values of a header that may repeat, joined by commas as HTTP allows.
fn header_list(headers: &Headers<'_>, name: &str) -> String {
    let values =
        headers.iter().filter(|h| h.0.eq_ignore_ascii_case(name)).filter_map(|h| std::str::from_utf8(h.1).ok());
    values.collect::<Vec<_>>().join(", ")
}

fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether every value of a header, together, has `token` (`Connection: keep-alive` and
/// `Connection: Upgrade` on two lines count).
fn headers_have_token(headers: &Headers<'_>, name: &str, token: &str) -> bool {
    has_token(&header_list(headers, name), token)
}

/// Whether `key` is base64 of 16 bytes, as RFC 6455 §4.1 requires of `Sec-WebSocket-Key`.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        // The last character before the padding carries 2 bits; the rest must be zero.
        && b"AQgw".contains(&b[21])
}

// ---------------------------------------------------------------------------------------------
// The server side.

/// The server side: what it offers.
pub struct ServerConfig {
    pub protocols: Vec<String>,
    pub compress: bool,
}

/// The request line and headers the negotiation reads.
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// HTTP/1.1 or later: an upgrade needs it.
    pub http11: bool,
    pub headers: &'a Headers<'a>,
}

/// A valid upgrade: the headers of the 101 answer (besides the status line) and what they agree.
#[derive(Debug)]
pub struct Negotiated {
    pub response: Vec<(&'static str, String)>,
    pub agreed: Agreed,
}

/// An upgrade refused: the status to answer with and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
}

impl Rejection {
    fn new(status: u16, reason: &str) -> Self {
        Rejection { status, reason: reason.into() }
    }

    /// The reason phrase and any header the status calls for (426 names the version we speak,
    /// 405 the method we take).
    pub fn phrase_and_headers(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        match self.status {
            426 => ("Upgrade Required", &[("Sec-WebSocket-Version", "13")]),
            405 => ("Method Not Allowed", &[("Allow", "GET")]),
            _ => ("Bad Request", &[]),
        }
    }
}

/// Checks an upgrade request and decides the answer (pure: no I/O).
pub fn negotiate(req: &RequestHead<'_>, cfg: &ServerConfig) -> Result<Negotiated, Rejection> {
    let h = req.headers;
    if req.method != "GET" {
        return Err(Rejection::new(405, "a WebSocket upgrade must be a GET"));
    }
    if !req.http11 {
        return Err(Rejection::new(400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    if !headers_have_token(h, "upgrade", "websocket") {
        return Err(Rejection::new(400, "not a WebSocket upgrade (no \"Upgrade: websocket\")"));
    }
    if !headers_have_token(h, "connection", "upgrade") {
        return Err(Rejection::new(400, "not a WebSocket upgrade (no \"Connection: Upgrade\")"));
    }
    if header(h, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Rejection::new(426, "only WebSocket version 13 is supported"));
    }
    let key = match header(h, "sec-websocket-key").map(str::trim) {
        None | Some("") => return Err(Rejection::new(400, "missing Sec-WebSocket-Key")),
        Some(k) if !valid_key(k) => return Err(Rejection::new(400, "Sec-WebSocket-Key is not 16 bytes in base64")),
        Some(k) => k,
    };
    let mut response = vec![
        ("Upgrade", "websocket".to_string()),
        ("Connection", "Upgrade".to_string()),
        ("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes())),
    ];
    let mut agreed = Agreed::default();
    let offered = header_list(h, "sec-websocket-protocol");
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    // The server's order decides, as in most servers: its first protocol the client also knows.
    if let Some(p) = cfg.protocols.iter().find(|p| offered.contains(&p.as_str())) {
        response.push(("Sec-WebSocket-Protocol", p.clone()));
        agreed.subprotocol = Some(p.clone());
    }
    if cfg.compress {
        if let Some((ext, params)) = deflate::answer(&header_list(h, "sec-websocket-extensions")) {
            response.push(("Sec-WebSocket-Extensions", ext.clone()));
            agreed.extensions = Some(ext);
            agreed.deflate = Some(params);
        }
    }
    Ok(Negotiated { response, agreed })
}

/// The 101 answer as bytes on the wire.
pub fn switching_protocols(n: &Negotiated) -> String {
    let mut out = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (k, v) in &n.response {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out
}

/// A refusal as bytes on the wire: the status, and the reason as a plain-text body.
pub fn refusal(r: &Rejection) -> String {
    let (phrase, extra) = r.phrase_and_headers();
    let mut out = format!("HTTP/1.1 {} {phrase}\r\nConnection: close\r\n", r.status);
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}\n", r.reason.len() + 1, r.reason));
    out
}

/// Reads until the end of an HTTP head (`\r\n\r\n`); returns everything read so far (the head
/// and whatever came after it).
pub async fn read_head<S: AsyncRead + Unpin>(io: &mut S, what: &str, peer: &str) -> NResult<Vec<u8>> {
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

/// A server-side upgrade that went through: what was agreed, and the request's head (request
/// line and headers, as received) for `ws.path`, `ws.query` and `ws.headers`.
pub struct Upgraded {
    pub agreed: Agreed,
    pub head: Box<[u8]>,
}

/// Reads an upgrade request from `io`, answers it, and returns what was agreed; a request that
/// is not a valid upgrade gets its refusal (400, 405 or 426) and an error.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    cfg: &ServerConfig,
    peer: &str,
) -> NResult<Upgraded> {
    let what = "websocket handshake from";
    let buf = read_head(io, what, peer).await?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let (answer, result) = match req.parse(&buf) {
        Ok(httparse::Status::Complete(used)) => {
            let view: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
            let head = RequestHead { method: req.method.unwrap_or(""), http11: req.version == Some(1), headers: &view };
            match negotiate(&head, cfg) {
                Ok(mut n) => {
                    n.agreed.leftover = buf[used..].to_vec();
                    let answer = switching_protocols(&n);
                    (answer, Ok(Upgraded { agreed: n.agreed, head: buf[..used].into() }))
                }
                Err(r) => (refusal(&r), Err(r.reason)),
            }
        }
        _ => {
            let r = Rejection::new(400, "malformed HTTP request");
            (refusal(&r), Err(r.reason))
        }
    };
    io.write_all(answer.as_bytes()).await.map_err(|e| NetError::io(what, peer, &e))?;
    io.flush().await.map_err(|e| NetError::io(what, peer, &e))?;
    result.map_err(|why| NetError::new(Kind::Protocol, format!("{what} {peer} refused: {why}")))
}

// ---------------------------------------------------------------------------------------------
// The client side.

/// The client side: what to ask for.
pub struct ClientRequest<'a> {
    pub url: &'a url::Url,
    pub protocols: &'a [String],
    pub headers: &'a [(String, String)],
    pub compress: bool,
}

/// The upgrade request for `req` with `key` as bytes on the wire (pure).
pub fn client_request(req: &ClientRequest<'_>, key: &str) -> String {
    let url = req.url;
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
    head
}

/// Why a server's answer does not open the connection: refused (not 101) or malformed.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerError {
    Refused(u16),
    Bad(String),
}

/// Checks the server's answer to a request made with `key` (pure). `leftover` stays empty.
pub fn check_response(status: u16, h: &Headers<'_>, key: &str, req: &ClientRequest<'_>) -> Result<Agreed, AnswerError> {
    let bad = |why: String| Err(AnswerError::Bad(why));
    if status != 101 {
        return Err(AnswerError::Refused(status));
    }
    if !headers_have_token(h, "upgrade", "websocket") {
        return bad("no \"Upgrade: websocket\" in the answer".into());
    }
    if !headers_have_token(h, "connection", "upgrade") {
        return bad("no \"Connection: upgrade\" in the answer".into());
    }
    if header(h, "sec-websocket-accept").map(str::trim) != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return bad("wrong Sec-WebSocket-Accept".into());
    }
    let subprotocol = header(h, "sec-websocket-protocol").map(|p| p.trim().to_string());
    if let Some(p) = &subprotocol {
        if !req.protocols.contains(p) {
            return bad(format!("the server chose subprotocol \"{p}\", which was not offered"));
        }
    }
    let ext = header_list(h, "sec-websocket-extensions");
    let deflate = if ext.is_empty() {
        None
    } else if !req.compress {
        return bad(format!("the server answered extensions that were not offered ({ext})"));
    } else {
        match deflate::accept_answer(&ext) {
            Ok(Some(p)) => Some(p),
            Ok(None) => return bad(format!("unknown extension in the answer ({ext})")),
            Err(e) => return bad(format!("bad permessage-deflate answer: {e}")),
        }
    };
    Ok(Agreed { subprotocol, extensions: (!ext.is_empty()).then_some(ext), deflate, leftover: Vec::new() })
}

/// Sends the upgrade request over `io` and checks the answer.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, req: ClientRequest<'_>) -> NResult<Agreed> {
    let url = req.url;
    let key = generate_key();
    let what = "websocket handshake with";
    io.write_all(client_request(&req, &key).as_bytes()).await.map_err(|e| NetError::io(what, url.as_str(), &e))?;
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
    let view: Vec<(&str, &[u8])> = resp.headers.iter().map(|h| (h.name, h.value)).collect();
    match check_response(resp.code.unwrap_or(0), &view, &key, &req) {
        Ok(mut agreed) => {
            agreed.leftover = buf[used..].to_vec();
            Ok(agreed)
        }
        Err(AnswerError::Refused(status)) => {
            Err(NetError::new(Kind::Protocol, format!("websocket upgrade to {url} refused (HTTP {status})")))
        }
        Err(AnswerError::Bad(why)) => Err(bad(why)),
    }
}

// ---------------------------------------------------------------------------------------------
// The upgrade request, as a server-side WebSocket keeps it.

/// A parsed view of a kept request head: the target split into path and query, and the headers.
pub struct RequestView<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// Parses a request head kept by `server` (which parsed it once already, so this succeeds).
pub fn view_request(head: &[u8], with: impl FnOnce(RequestView<'_>)) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return;
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    with(RequestView { path, query, headers: req.headers.iter().map(|h| (h.name, h.value)).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    /// RFC 6455 §1.3's example answer to `KEY`.
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn cfg(protocols: &[&str], compress: bool) -> ServerConfig {
        ServerConfig { protocols: protocols.iter().map(|p| p.to_string()).collect(), compress }
    }

    fn base() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("Host", b"x"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", KEY.as_bytes()),
            ("Sec-WebSocket-Version", b"13"),
        ]
    }

    fn run(method: &str, http11: bool, h: &[(&str, &[u8])], c: &ServerConfig) -> Result<Negotiated, Rejection> {
        negotiate(&RequestHead { method, http11, headers: h }, c)
    }

    fn status(h: &[(&str, &[u8])]) -> u16 {
        run("GET", true, h, &cfg(&[], true)).err().map_or(101, |r| r.status)
    }

    fn without(name: &str) -> Vec<(&'static str, &'static [u8])> {
        base().into_iter().filter(|h| !h.0.eq_ignore_ascii_case(name)).collect()
    }

    fn with(name: &'static str, value: &'static [u8]) -> Vec<(&'static str, &'static [u8])> {
        let mut h = without(name);
        h.push((name, value));
        h
    }

    #[test]
    fn valid_upgrade_answers_101() {
        let n = run("GET", true, &base(), &cfg(&[], false)).expect("valid");
        assert!(n.response.contains(&("Sec-WebSocket-Accept", ACCEPT.to_string())));
        assert!(n.response.contains(&("Upgrade", "websocket".to_string())));
        assert!(n.agreed.subprotocol.is_none() && n.agreed.deflate.is_none());
        let wire = switching_protocols(&n);
        assert!(wire.starts_with("HTTP/1.1 101 Switching Protocols\r\n") && wire.ends_with("\r\n\r\n"));
    }

    #[test]
    fn method_and_version() {
        let c = cfg(&[], true);
        assert_eq!(run("POST", true, &base(), &c).unwrap_err().status, 405);
        assert_eq!(
            run("GET", false, &base(), &c).unwrap_err(),
            Rejection::new(400, "a WebSocket upgrade needs HTTP/1.1")
        );
    }

    #[test]
    fn upgrade_and_connection_tokens() {
        assert_eq!(status(&without("upgrade")), 400);
        assert_eq!(status(&with("Upgrade", b"h2c")), 400);
        assert_eq!(status(&with("Upgrade", b"WebSocket")), 101);
        assert_eq!(status(&without("connection")), 400);
        assert_eq!(status(&with("Connection", b"keep-alive")), 400);
        assert_eq!(status(&with("Connection", b"keep-alive, Upgrade")), 101);
        // The token may be on a second Connection line.
        let mut h = with("Connection", b"keep-alive");
        h.push(("connection", b"upgrade"));
        assert_eq!(status(&h), 101);
    }

    #[test]
    fn websocket_version() {
        assert_eq!(status(&without("sec-websocket-version")), 426);
        let r = run("GET", true, &with("Sec-WebSocket-Version", b"8"), &cfg(&[], true)).unwrap_err();
        assert_eq!(r.status, 426);
        assert_eq!(r.phrase_and_headers().1, &[("Sec-WebSocket-Version", "13")]);
        assert!(refusal(&r).contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn websocket_key() {
        assert_eq!(status(&without("sec-websocket-key")), 400);
        assert_eq!(status(&with("Sec-WebSocket-Key", b"  ")), 400);
        assert_eq!(status(&with("Sec-WebSocket-Key", b"short")), 400);
        // 24 characters but not 16 bytes: the bits under the padding are not zero.
        assert_eq!(status(&with("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZR==")), 400);
        assert_eq!(status(&with("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25j!Q==")), 400);
        assert_eq!(status(&with("Sec-WebSocket-Key", b" dGhlIHNhbXBsZSBub25jZQ== ")), 101);
    }

    #[test]
    fn subprotocol_by_server_order() {
        let mut h = base();
        h.push(("Sec-WebSocket-Protocol", b"chat, superchat"));
        let n = run("GET", true, &h, &cfg(&["superchat", "chat"], false)).unwrap();
        assert_eq!(n.agreed.subprotocol.as_deref(), Some("superchat"));
        assert!(n.response.contains(&("Sec-WebSocket-Protocol", "superchat".to_string())));
        // Offers on two lines count as one list.
        let mut h = base();
        h.push(("Sec-WebSocket-Protocol", b"a"));
        h.push(("sec-websocket-protocol", b"b"));
        assert_eq!(run("GET", true, &h, &cfg(&["b"], false)).unwrap().agreed.subprotocol.as_deref(), Some("b"));
        // No common protocol, or none offered: no header, still 101.
        let n = run("GET", true, &h, &cfg(&["c"], false)).unwrap();
        assert!(n.agreed.subprotocol.is_none() && !n.response.iter().any(|h| h.0 == "Sec-WebSocket-Protocol"));
        assert!(run("GET", true, &base(), &cfg(&["c"], false)).unwrap().agreed.subprotocol.is_none());
    }

    #[test]
    fn permessage_deflate() {
        let mut h = base();
        h.push(("Sec-WebSocket-Extensions", b"permessage-deflate; client_max_window_bits"));
        let n = run("GET", true, &h, &cfg(&[], true)).unwrap();
        assert!(n.agreed.deflate.is_some());
        assert!(n.agreed.extensions.as_deref().is_some_and(|e| e.starts_with("permessage-deflate")));
        // Turned off, or not offered, or only unknown extensions: none.
        assert!(run("GET", true, &h, &cfg(&[], false)).unwrap().agreed.deflate.is_none());
        assert!(run("GET", true, &base(), &cfg(&[], true)).unwrap().agreed.deflate.is_none());
        let mut h = base();
        h.push(("Sec-WebSocket-Extensions", b"x-webkit-deflate-frame"));
        let n = run("GET", true, &h, &cfg(&[], true)).unwrap();
        assert!(n.agreed.extensions.is_none() && n.agreed.deflate.is_none());
    }

    #[test]
    fn refusals_carry_their_reason() {
        let r = Rejection::new(405, "a WebSocket upgrade must be a GET");
        let wire = refusal(&r);
        assert!(wire.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(wire.contains("\r\nAllow: GET\r\n"));
        assert!(wire.ends_with("\r\n\r\na WebSocket upgrade must be a GET\n"));
        assert!(wire.contains(&format!("Content-Length: {}\r\n", r.reason.len() + 1)));
    }

    fn client_req<'a>(
        url: &'a url::Url,
        protocols: &'a [String],
        headers: &'a [(String, String)],
    ) -> ClientRequest<'a> {
        ClientRequest { url, protocols, headers, compress: true }
    }

    #[test]
    fn client_request_head() {
        let url = url::Url::parse("ws://example.org:8080/chat?room=1").unwrap();
        let protocols = vec!["a".to_string(), "b".to_string()];
        let extra = vec![("X-Token".to_string(), "t".to_string())];
        let wire = client_request(&client_req(&url, &protocols, &extra), KEY);
        assert!(wire.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: example.org:8080\r\n"));
        for line in [
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: a, b",
            "Sec-WebSocket-Extensions: permessage-deflate",
            "X-Token: t",
            "User-Agent: lua-net/",
        ] {
            assert!(wire.contains(&format!("\r\n{line}")), "missing {line} in {wire}");
        }
        assert!(wire.ends_with("\r\n\r\n"));
        // The user's Host and User-Agent replace ours.
        let extra = vec![("host".to_string(), "h".to_string()), ("User-Agent".to_string(), "me".to_string())];
        let wire = client_request(&client_req(&url, &[], &extra), KEY);
        assert!(!wire.contains("Host: example.org") && !wire.contains("lua-net/") && wire.contains("host: h\r\n"));
        assert!(!wire.contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn client_checks_the_answer() {
        let url = url::Url::parse("ws://x/").unwrap();
        let protocols = vec!["a".to_string()];
        let req = client_req(&url, &protocols, &[]);
        let ok: Vec<(&str, &[u8])> =
            vec![("Upgrade", b"websocket"), ("Connection", b"Upgrade"), ("Sec-WebSocket-Accept", ACCEPT.as_bytes())];
        assert!(check_response(101, &ok, KEY, &req).is_ok());
        assert_eq!(check_response(400, &ok, KEY, &req).unwrap_err(), AnswerError::Refused(400));
        let bad = |h: &[(&str, &[u8])]| matches!(check_response(101, h, KEY, &req), Err(AnswerError::Bad(_)));
        assert!(bad(&ok[1..]));
        assert!(bad(&[ok[0], ok[2]]));
        assert!(bad(&[ok[0], ok[1], ("Sec-WebSocket-Accept", b"nope")]));
        let mut h = ok.clone();
        h.push(("Sec-WebSocket-Protocol", b"a"));
        assert_eq!(check_response(101, &h, KEY, &req).unwrap().subprotocol.as_deref(), Some("a"));
        let mut h = ok.clone();
        h.push(("Sec-WebSocket-Protocol", b"z"));
        assert!(bad(&h));
        let mut h = ok.clone();
        h.push(("Sec-WebSocket-Extensions", b"permessage-deflate"));
        assert!(check_response(101, &h, KEY, &req).unwrap().deflate.is_some());
        let mut h = ok.clone();
        h.push(("Sec-WebSocket-Extensions", b"x-other"));
        assert!(bad(&h));
        // Not offered (compress off): any extension is an error.
        let plain = ClientRequest { compress: false, ..client_req(&url, &protocols, &[]) };
        let mut h = ok.clone();
        h.push(("Sec-WebSocket-Extensions", b"permessage-deflate"));
        assert!(matches!(check_response(101, &h, KEY, &plain), Err(AnswerError::Bad(_))));
    }

    #[test]
    fn kept_request_view() {
        let head = b"GET /chat/room?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n";
        let mut seen = false;
        view_request(head, |v| {
            assert_eq!(v.path, "/chat/room");
            assert_eq!(v.query, Some("x=1&y=%20"));
            assert_eq!(v.headers.len(), 2);
            seen = true;
        });
        assert!(seen);
    }
}
