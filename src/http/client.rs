//! `net.request`: the HTTP client (docs/api.md, "HTTP client"), with Lune's semantics: it
//! raises only when no response came (network, TLS, protocol, timeout), never for a status.
//!
//! One request: take a pooled connection to the origin or open one (TLS with verification,
//! HTTP/2 when ALPN picks it, through a proxy from the options or the environment), send, and
//! follow redirects (up to 10; 301-303 turn a POST into a GET, 307/308 keep method and body;
//! credentials are dropped when the origin changes). A connection that turns out dead when
//! reused is replaced once. The body is read whole and decompressed, or, with `stream = true`,
//! handed to the script piece by piece (`reader.rs`).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use mlua::ffi;
use mlua::prelude::*;

use super::body::Body;
use super::decode::{Decoder, ACCEPT_ENCODING};
use super::pool::{Key, Pool, Sender};
use super::proxy::Proxy;
use super::reader::Reader;
use super::service::fill_headers;
use crate::error::{Kind, NResult, NetError};
use crate::export::{Args, Opts};
use crate::tcp::{self, ConnectOpts};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_REDIRECTS: usize = 10;

/// A request body as the client keeps it: bytes can be sent again (a retry, a 307), a stream
/// only once.
pub enum ReqBody {
    Empty,
    Bytes(Bytes),
    /// A function's chunks or a file: sent once.
    Once(Option<Body>, Option<u64>),
}

impl ReqBody {
    fn replayable(&self) -> bool {
        !matches!(self, ReqBody::Once(..))
    }

    /// The body for one send, and its length when known.
    fn take(&mut self) -> Option<(Body, Option<u64>)> {
        match self {
            ReqBody::Empty => Some((Body::Empty, None)),
            ReqBody::Bytes(b) => Some((Body::full(b.clone()), Some(b.len() as u64))),
            ReqBody::Once(b, len) => b.take().map(|b| (b, *len)),
        }
    }
}

/// Everything a request needs, copied out of Lua before anything waits.
pub struct Spec {
    pub url: url::Url,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: ReqBody,
    pub timeout: Option<Duration>,
    pub connect_timeout: Duration,
    pub decompress: bool,
    pub redirects: usize,
    pub tls: Option<crate::tls::ClientOpts>,
    pub proxy: Proxy,
    pub stream: bool,
}

/// A response before it becomes a Lua table.
pub struct Fetched {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub url: String,
    /// The whole body (not streaming), or the reader (streaming).
    pub body: Result<Bytes, Reader>,
}

/// `net.request(url | options)`: checks the arguments now, returns the future that fetches.
pub fn prepare(lua: &Lua, a: &Args) -> NResult<Spec> {
    match a.get(1) {
        // The common `net.request(url)`: no options table to read.
        LuaValue::String(s) => Ok(Spec::new(parse_url(&s.to_string_lossy()).map_err(|e| a.bad(1, e))?)),
        LuaValue::Table(t) => spec_from(lua, &Opts::new(a.name, 1, Some(t))),
        v => Err(a.bad(1, format!("string or table expected, got {}", crate::export::type_name(&v)))),
    }
}

/// An `http(s)://` URL with a host, without its fragment.
fn parse_url(raw: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(raw).map_err(|e| format!("invalid URL \"{raw}\": {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("http:// or https:// URL expected, got \"{raw}\""));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL without a host: \"{raw}\""));
    }
    url.set_fragment(None);
    Ok(url)
}

impl Spec {
    /// A GET of `url` with every default.
    fn new(url: url::Url) -> Spec {
        Spec {
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: ReqBody::Empty,
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            decompress: true,
            redirects: MAX_REDIRECTS,
            tls: None,
            proxy: Proxy::Env,
            stream: false,
        }
    }
}

pub fn spec_from(lua: &Lua, o: &Opts) -> NResult<Spec> {
    let raw = o.string("url")?.ok_or_else(|| o.bad("url", "a URL is required"))?;
    let mut url = parse_url(&raw).map_err(|e| o.bad("url", e))?;
    if let LuaValue::Table(q) = o.value("query") {
        add_query(&mut url, &q).map_err(|e| o.bad("query", e))?;
    } else if !o.value("query").is_nil() {
        return Err(o.expected("query", "table", &o.value("query")));
    }
    let method = match o.string("method")? {
        None => Method::GET,
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| o.bad("method", format!("invalid method \"{m}\"")))?,
    };
    let mut headers = HeaderMap::new();
    match o.value("headers") {
        LuaValue::Nil => {}
        LuaValue::Table(t) => fill_headers(&mut headers, &t).map_err(|e| o.bad("headers", e))?,
        v => return Err(o.expected("headers", "table", &v)),
    }
    let body = match o.value("body") {
        LuaValue::Nil => ReqBody::Empty,
        LuaValue::String(s) => ReqBody::Bytes(Bytes::copy_from_slice(&s.as_bytes())),
        LuaValue::Function(f) => ReqBody::Once(Some(super::stream::from_function(lua, f)?), None),
        LuaValue::Table(t) => match t.raw_get::<Option<String>>("file") {
            Ok(Some(path)) => {
                let file = std::fs::File::open(&path).map_err(|e| NetError::io("open", &path, &e))?;
                let len = file.metadata().map(|m| m.len()).ok();
                ReqBody::Once(Some(Body::File(file)), len)
            }
            _ => return Err(o.bad("body", "a string, a function or {file = path} expected")),
        },
        v => return Err(o.expected("body", "string, function or {file = path}", &v)),
    };
    let decompress = match o.table("options")? {
        Some(t) => t.boolean("decompress")?,
        None => None,
    };
    let decompress = decompress.or(o.boolean("decompress")?).unwrap_or(true);
    let redirects = match o.value("redirects") {
        LuaValue::Boolean(false) => 0,
        LuaValue::Boolean(true) | LuaValue::Nil => MAX_REDIRECTS,
        _ => o.int_in("redirects", 0, 100)?.map_or(MAX_REDIRECTS, |n| n as usize),
    };
    let timeout = match o.value("timeout") {
        LuaValue::Boolean(false) => None,
        LuaValue::Nil => Some(DEFAULT_TIMEOUT),
        _ => o.timeout("timeout")?,
    };
    let connect_timeout = o.timeout("connect_timeout")?.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let tls = crate::tls::client_opts(o, "tls")?;
    let proxy = Proxy::from_option(o)?;
    Ok(Spec {
        url,
        method,
        headers,
        body,
        timeout,
        connect_timeout,
        decompress,
        redirects,
        tls,
        proxy,
        stream: o.boolean("stream")?.unwrap_or(false),
    })
}

/// Appends a query table (`k = v`, `k = {v1, v2}`) to the URL, form-encoded.
fn add_query(url: &mut url::Url, q: &LuaTable) -> Result<(), String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let text = |v: &LuaValue| -> Result<String, String> {
        match v {
            LuaValue::String(s) => Ok(s.to_string_lossy()),
            LuaValue::Integer(n) => Ok(n.to_string()),
            LuaValue::Number(n) => Ok(n.to_string()),
            LuaValue::Boolean(b) => Ok(b.to_string()),
            other => Err(format!("values must be strings or numbers, got {}", other.type_name())),
        }
    };
    for pair in q.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let k = text(&k)?;
        match &v {
            LuaValue::Table(list) => {
                for item in list.sequence_values::<LuaValue>() {
                    pairs.push((k.clone(), text(&item.map_err(|e| e.to_string())?)?));
                }
            }
            _ => pairs.push((k, text(&v)?)),
        }
    }
    // Sorted, so the same table always makes the same URL (pairs() has no order).
    pairs.sort();
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(())
}

/// The origin a URL's connection belongs to.
fn key_for(url: &url::Url, spec: &Spec) -> Key {
    let https = url.scheme() == "https";
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
    let tls = https.then(|| spec.tls.clone().unwrap_or_default().offering(&["h2", "http/1.1"]));
    let proxy = spec.proxy.for_url(url);
    Key { https, host, port: url.port_or_known_default().unwrap_or(80), tls, proxy }
}

fn show(method: &Method, url: &url::Url) -> String {
    format!("{method} {url}")
}

/// A hyper failure as one of our errors.
pub fn hyper_error(what: &str, e: &hyper::Error) -> NetError {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // hyper's "end of file before message length reached": the server closed the
            // connection in the middle of a body, which is `closed`, not a reset.
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return NetError::new(Kind::Closed, format!("{what} ({})", crate::error::describe(io)));
            }
            return NetError::io(what, "", io);
        }
        src = s.source();
    }
    let kind = if e.is_timeout() {
        Kind::Timeout
    } else if e.is_parse() || e.is_user() {
        Kind::Protocol
    } else {
        Kind::Closed
    };
    let why = if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "the server closed the connection before the response was complete".to_string()
    } else {
        e.to_string()
    };
    NetError::new(kind, format!("{what} ({why})"))
}

/// Opens a connection to `key`'s origin (directly or through its proxy) and does the HTTP
/// handshake: HTTP/2 when TLS's ALPN chose it.
async fn open(lua: &Lua, pool: &Pool, key: &Key, connect_timeout: Duration) -> NResult<Sender> {
    let conn = match &key.proxy {
        None => {
            let mut o = ConnectOpts::default();
            o.timeout = Some(connect_timeout);
            o.tls = key.tls.clone();
            tcp::connect(lua, key.host.clone(), key.port, o)?.await?
        }
        Some(p) => super::proxy::connect(lua, p, key, connect_timeout).await?,
    };
    let h2 = conn.transport.alpn().as_deref() == Some("h2");
    let io = TokioIo::new(conn.transport);
    let failed = |e: hyper::Error| hyper_error(&format!("handshake with {}", tcp::host_port(&key.host, key.port)), &e);
    if h2 {
        let (tx, c) = http2::Builder::new(super::server::LocalExec)
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .handshake(io)
            .await
            .map_err(failed)?;
        tokio::task::spawn_local(async move {
            let _ = c.await;
        });
        pool.share_h2(key.clone(), &tx);
        Ok(Sender::H2(tx))
    } else {
        let (tx, c) = http1::Builder::new().handshake(io).await.map_err(failed)?;
        tokio::task::spawn_local(async move {
            let _ = c.await;
        });
        Ok(Sender::H1(tx))
    }
}

/// One request of a chain of redirects.
struct Hop<'a> {
    method: &'a Method,
    url: &'a url::Url,
    headers: &'a HeaderMap,
}

/// A request sent: its response, and the connection it came on (HTTP/1.1, for the pool).
struct Sent {
    res: Response<Incoming>,
    key: Key,
    tx: Option<http1::SendRequest<Body>>,
}

/// A pooled connection (`true`), or a new one. An HTTPS origin is opened by one request at a
/// time: the others wait for it, since an HTTP/2 connection will serve them all.
async fn checkout_or_open(lua: &Lua, pool: &Pool, key: &Key, connect_timeout: Duration) -> NResult<(Sender, bool)> {
    if let Some(s) = pool.checkout(key) {
        return Ok((s, true));
    }
    if !key.https {
        return Ok((open(lua, pool, key, connect_timeout).await?, false));
    }
    match pool.first_connect(key) {
        Ok(_opening) => Ok((open(lua, pool, key, connect_timeout).await?, false)),
        Err(other) => {
            // Bounded like a connect of our own; then whatever the pool has, or our own.
            let _ = tokio::time::timeout(connect_timeout, other.wait()).await;
            match pool.checkout(key) {
                Some(s) => Ok((s, true)),
                None => Ok((open(lua, pool, key, connect_timeout).await?, false)),
            }
        }
    }
}

/// The request as it goes on the wire for this connection.
fn build(spec: &Spec, hop: &Hop<'_>, body: (Body, Option<u64>), h2: bool, key: &Key) -> NResult<Request<Body>> {
    let Hop { method, url, headers } = *hop;
    let (body, len) = body;
    // HTTP/2 and plain HTTP through a proxy take the absolute form; HTTP/1.1 the path.
    let absolute = h2 || (key.proxy.is_some() && !key.https);
    let target = if absolute {
        url.as_str().to_string()
    } else {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    };
    let uri: Uri =
        target.parse().map_err(|_| NetError::new(Kind::Protocol, format!("invalid request target {target}")))?;
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers.clone();
    let h = req.headers_mut();
    if !h2 && !h.contains_key(header::HOST) {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&host) {
            h.insert(header::HOST, v);
        }
    }
    if !h.contains_key(header::USER_AGENT) {
        h.insert(header::USER_AGENT, HeaderValue::from_static(concat!("lua-net/", env!("CARGO_PKG_VERSION"))));
    }
    if !h.contains_key(header::ACCEPT) {
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    if spec.decompress && !h.contains_key(header::ACCEPT_ENCODING) {
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ACCEPT_ENCODING));
    }
    if let Some(n) = len {
        if !h.contains_key(header::CONTENT_LENGTH) && (n > 0 || method_has_body(method)) {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    if key.proxy.is_some() && !key.https {
        if let Some(auth) = key.proxy.as_deref().and_then(super::proxy::authorization) {
            h.insert(header::PROXY_AUTHORIZATION, auth);
        }
    }
    Ok(req)
}

fn method_has_body(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::PATCH)
}

fn idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE)
}

/// Sends once on a pooled or new connection; a pooled one found dead is replaced once (when
/// the request was not sent, or can safely be sent again).
async fn send(lua: &Lua, pool: &Pool, spec: &Spec, hop: &Hop<'_>, body: &mut ReqBody) -> NResult<Sent> {
    let (method, url) = (hop.method, hop.url);
    let key = key_for(url, spec);
    let what = show(method, url);
    let (mut sender, mut reused) = checkout_or_open(lua, pool, &key, spec.connect_timeout).await?;
    loop {
        let Some(b) = body.take() else {
            return Err(NetError::new(
                Kind::Closed,
                format!("{what} (the connection closed and the body cannot be sent again)"),
            ));
        };
        let req = build(spec, hop, b, matches!(sender, Sender::H2(_)), &key)?;
        let r = match &mut sender {
            Sender::H1(tx) => match tx.ready().await {
                Ok(()) => tx.try_send_request(req).await.map_err(|mut e| (e.take_message().is_some(), e.into_error())),
                Err(e) => Err((true, e)),
            },
            Sender::H2(tx) => {
                tx.try_send_request(req).await.map_err(|mut e| (e.take_message().is_some(), e.into_error()))
            }
        };
        match r {
            Ok(res) => {
                let tx = match sender {
                    Sender::H1(tx) => Some(tx),
                    Sender::H2(_) => None,
                };
                return Ok(Sent { res, key, tx });
            }
            Err((unsent, e)) => {
                if reused && (unsent || (idempotent(method) && body.replayable())) && body.replayable() {
                    reused = false;
                    sender = open(lua, pool, &key, spec.connect_timeout).await?;
                    continue;
                }
                return Err(hyper_error(&what, &e));
            }
        }
    }
}

/// Where a redirect goes, and what the next request becomes; `None` when it is not followed.
fn redirect(
    status: StatusCode,
    url: &url::Url,
    res: &HeaderMap,
    method: &mut Method,
    body: &mut ReqBody,
) -> Option<url::Url> {
    let code = status.as_u16();
    if !matches!(code, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let loc = res.get(header::LOCATION)?.to_str().ok()?;
    // A relative Location is resolved against the current URL; its own query is kept.
    let mut next = url.join(loc).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    if next.fragment().is_none() {
        next.set_fragment(None);
    }
    if matches!(code, 301..=303) && *method != Method::HEAD && !(code != 303 && *method == Method::GET) {
        *method = Method::GET;
        *body = ReqBody::Empty;
    } else if !body.replayable() {
        // A 307/308 must resend the body, and a streamed one is gone: stop here.
        return None;
    }
    Some(next)
}

fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Fetches, following redirects.
pub async fn fetch(lua: &Lua, pool: &Rc<Pool>, mut spec: Spec) -> NResult<Fetched> {
    let mut url = spec.url.clone();
    let mut method = spec.method.clone();
    let mut headers = spec.headers.clone();
    let mut body = std::mem::replace(&mut spec.body, ReqBody::Empty);
    let mut hops = 0;
    loop {
        let sent = send(lua, pool, &spec, &Hop { method: &method, url: &url, headers: &headers }, &mut body).await?;
        let before = method.clone();
        if hops < spec.redirects {
            if let Some(next) = redirect(sent.res.status(), &url, sent.res.headers(), &mut method, &mut body) {
                hops += 1;
                if method != before {
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::CONTENT_LENGTH);
                }
                if !same_origin(&url, &next) {
                    headers.remove(header::AUTHORIZATION);
                    headers.remove(header::COOKIE);
                    headers.remove(header::PROXY_AUTHORIZATION);
                    headers.remove(header::HOST);
                }
                // Read the small body of the redirect so the connection can be reused.
                let _ = drain(sent, pool).await;
                url = next;
                continue;
            }
        }
        return respond(sent, &Hop { method: &before, url: &url, headers: &headers }, &spec, pool).await;
    }
}

/// Reads a body we do not want (a redirect's), so its connection can go back to the pool; a
/// large one is not worth it, the connection is dropped instead.
async fn drain(sent: Sent, pool: &Pool) -> Option<()> {
    let Sent { res, key, tx } = sent;
    let keep = keep_alive(res.headers());
    let mut body = res.into_body();
    let mut seen = 0usize;
    let read = async {
        while let Some(f) = body.frame().await {
            seen += f.ok()?.into_data().map(|d| d.len()).unwrap_or(0);
            if seen > 64 * 1024 {
                return None;
            }
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(2), read).await.ok()??;
    if let (Some(tx), true) = (tx, keep) {
        pool.put_back(key, tx);
    }
    Some(())
}

fn keep_alive(h: &HeaderMap) -> bool {
    !h.get_all(header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))))
}

/// The decoder for a response, if we decompress it; drops the headers it makes wrong.
fn decoder_for(spec: &Spec, method: &Method, status: StatusCode, h: &mut HeaderMap) -> Option<Decoder> {
    if !spec.decompress
        || *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return None;
    }
    let enc = h.get(header::CONTENT_ENCODING)?.to_str().ok()?;
    let d = Decoder::for_encoding(enc)?;
    h.remove(header::CONTENT_ENCODING);
    h.remove(header::CONTENT_LENGTH);
    Some(d)
}

async fn respond(sent: Sent, hop: &Hop<'_>, spec: &Spec, pool: &Rc<Pool>) -> NResult<Fetched> {
    let Sent { res, key, tx } = sent;
    let (method, url) = (hop.method, hop.url);
    let what = show(method, url);
    let (mut parts, incoming) = res.into_parts();
    let decoder = decoder_for(spec, method, parts.status, &mut parts.headers);
    let back = if keep_alive(&parts.headers) { tx.map(|tx| (key, tx)) } else { None };
    let mut reader = Reader::new(incoming, decoder, what.to_string(), back, Some(pool.clone()));
    let body = if spec.stream {
        reader.set_gap(spec.timeout);
        Err(reader)
    } else {
        Ok(reader.read_all().await?)
    };
    Ok(Fetched { status: parts.status, version: parts.version, headers: parts.headers, url: url.to_string(), body })
}

/// The response table (Lune's fields, plus `status`, `url`, `version`), with the response
/// methods of `src/lua/http.lua` as its metatable.
pub fn response_table(lua: &Lua, f: Fetched, methods: &LuaTable) -> LuaResult<LuaTable> {
    let (body, stream) = match f.body {
        Ok(b) => (Some(b), LuaValue::Nil),
        Err(reader) => {
            (None, LuaValue::UserData(lua.create_any_userdata(Rc::new(super::reader::Stream::new(reader)))?))
        }
    };
    // SAFETY: under exec_raw's protection; the stack holds the metatable (1) and the stream or
    // nil (2); only the new table is left on it.
    unsafe {
        lua.exec_raw((methods, stream), |l| {
            super::raw::push_response(l, f.status, f.version, &f.headers, &f.url, body.as_deref());
            if !matches!(ffi::lua_type(l, 2), ffi::LUA_TNIL) {
                ffi::lua_pushvalue(l, 2);
                ffi::lua_setfield(l, -2, c"stream".as_ptr());
            }
            ffi::lua_pushvalue(l, 1);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_replace(l, 1);
            ffi::lua_settop(l, 1);
        })
    }
}
