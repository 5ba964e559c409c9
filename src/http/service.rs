//! One request on the server: read its body (within the limits), hand it to the Lua handler
//! as a table, and turn what the handler returns into a response; WebSocket upgrades are
//! answered here and handed to `handleWebSocket` by the connection (`server.rs`).
//!
//! The request table is Lune's (`method`, `path`, `query`, `headers`, `body`, plus `ip` and
//! `port` of the peer). The handler returns a string (200, text/plain) or
//! `{status, headers, body}`; a handler that raises, or returns something else, gives 500 and
//! the error is printed; the server goes on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mlua::ffi;
use mlua::prelude::*;

use super::body::Body;
use super::io::{Busy, ConnState};
use super::raw;
use super::reader::{Reader, Stream};
use super::server::Server;
use crate::runtime::task::{self, Ended};
use crate::ws::handshake::{self, Agreed};

/// A WebSocket upgrade the service answered with 101: the connection hands its transport over.
pub struct Upgrade {
    pub agreed: Agreed,
    /// The request head, as the WebSocket object keeps it (`ws.path`, `ws.headers` ...).
    pub head: Box<[u8]>,
}

/// The peer of a connection, as handlers see it.
pub struct Peer {
    pub ip: String,
    pub port: u16,
}

/// A short plain-text response (errors and refusals).
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::copy_from_slice(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name: HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    req.version() == http::Version::HTTP_11 && has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Serves one request.
pub async fn handle(
    srv: Rc<Server>,
    conn: Rc<ConnState>,
    peer: Rc<Peer>,
    upgrade: Option<Rc<std::cell::RefCell<Option<Upgrade>>>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let busy = Busy::new(&conn);
    if srv.ws_handler.is_some() && upgrade.is_some() && is_websocket_upgrade(&req) {
        return Ok(answer_upgrade(&srv, &req, upgrade.as_deref()));
    }
    let Some(handler) = &srv.handler else {
        let mut r = plain(StatusCode::UPGRADE_REQUIRED, "this server takes WebSocket connections only\n");
        r.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        return Ok(r);
    };
    let (parts, body) = req.into_parts();
    let body = if srv.stream_body {
        if let Some(r) = declared_too_large(&srv, &parts.headers) {
            return Ok(r);
        }
        let mut reader = Reader::new(body, None, format!("{} {}", parts.method, parts.uri.path()), None, None);
        reader.set_gap(Some(srv.limits.header_timeout));
        reader.set_limit(srv.limits.body_bytes);
        Err(reader)
    } else {
        match read_body(&srv, &parts.headers, body).await {
            Ok(b) => Ok(b),
            Err(r) => return Ok(r),
        }
    };
    let Some(lua) = srv.sched.lua() else { return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")) };
    // The handler runs inside this future (see `task::run_raw`), its request table pushed with
    // the C API in one protected call (`raw.rs`).
    let started = match body {
        // SAFETY: `push_request` pushes one table with the C API, under run_raw's protection.
        Ok(bytes) => unsafe { task::run_raw(&lua, handler, |l| raw::push_request(l, &parts, Some(&bytes), &peer)) },
        Err(reader) => streamed_request(&lua, handler, &parts, reader, &peer),
    };
    let (task, inline) = match started {
        Ok(t) => t,
        Err(e) => {
            eprintln!("net.serve: cannot run the handler: {e}");
            return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"));
        }
    };
    let answer: Answer = Rc::default();
    task.on_return(read_answer(&lua, answer.clone()));
    inline.await;
    let r = match task.result(&lua).await {
        // Its failure was printed with the traceback by the task itself.
        Ended::Failed(_) | Ended::Cancelled => Err(None),
        Ended::Returned(v) => match answer.borrow_mut().take() {
            Some(r) => r.map_err(Some),
            None => response(&lua, v.into_iter().next().unwrap_or(LuaValue::Nil)).map_err(Some),
        },
    };
    let r = r.unwrap_or_else(|e| {
        if let Some(e) = e {
            eprintln!("net.serve: {} {}: {e}", parts.method, parts.uri.path());
        }
        plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
    });
    Ok(keep_busy(r, busy))
}

/// Where `read_answer` leaves the response (or why the answer is not one).
type Answer = Rc<RefCell<Option<Result<Response<Body>, String>>>>;

/// Runs the handler on a request whose body it reads itself (`stream = true`): no `body`, but
/// the body reader as `stream` and the message methods (`req:read()`, `req:lines()`, `req:close()`).
fn streamed_request(
    lua: &Lua,
    handler: &LuaFunction,
    parts: &http::request::Parts,
    reader: Reader,
    peer: &Peer,
) -> LuaResult<(task::TaskRef, task::Inline)> {
    let stream = lua.create_any_userdata(Rc::new(Stream::new(reader)))?;
    let methods: LuaTable = lua.named_registry_value("net.http.request")?;
    // SAFETY: the stack holds the handler, the reader (2) and the methods (3); the request table
    // is pushed, given both, and left as the handler's one argument.
    unsafe {
        task::run_raw(lua, (handler, stream, methods), |l| {
            raw::push_request(l, parts, None, peer);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_setfield(l, -2, c"stream".as_ptr());
            ffi::lua_pushvalue(l, 3);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_replace(l, 2);
            ffi::lua_settop(l, 2);
        })
    }
}

/// Reads the handler's answer straight off its finished coroutine, in one protected call (see
/// `raw.rs`); a body function is left for the general path (`response`).
fn read_answer(lua: &Lua, slot: Answer) -> task::ReturnHook {
    let lua = lua.clone();
    Box::new(move |co, n| {
        let mut got = None;
        // SAFETY: under exec_raw's protected call on `state`; the `n` results are moved from the
        // finished coroutine and, when not taken, moved back where they were.
        let done = unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::luaL_checkstack(state, n + 8, c"results".as_ptr());
                ffi::lua_xmove(co, state, n);
                let first = ffi::lua_gettop(state) - n + 1;
                got = raw::read_response(state, first);
                if got.is_none() {
                    ffi::lua_xmove(state, co, n);
                } else {
                    ffi::lua_pop(state, n);
                }
            })
        };
        let taken = done.is_ok() && got.is_some();
        *slot.borrow_mut() = got;
        taken
    })
}

/// The response to a HEAD request as HTTP/2 must send it: the headers alone, with the length
/// the body would have had. hyper drops the body for HTTP/1 itself, but its HTTP/2 side sends
/// it, which clients take as a protocol error (nghttp and curl reset the stream). Dropping a
/// streamed body stops its producer.
pub fn for_head(r: Response<Body>, head: bool) -> Response<Body> {
    if !head {
        return r;
    }
    let (mut p, body) = r.into_parts();
    if let Some(n) = http_body::Body::size_hint(&body).exact() {
        p.headers.entry(header::CONTENT_LENGTH).or_insert_with(|| HeaderValue::from(n));
    }
    Response::from_parts(p, Body::Empty)
}

/// A streamed body keeps the connection busy until it is sent.
fn keep_busy(r: Response<Body>, busy: Busy) -> Response<Body> {
    let (p, b) = r.into_parts();
    Response::from_parts(p, b.with_guard(Box::new(busy)))
}

/// The whole request body, within `body_bytes` (413) and with at most `idle_timeout` between
/// its pieces (408): a client that stops sending does not hold a handler's place forever.
async fn read_body(srv: &Server, headers: &http::HeaderMap, mut body: Incoming) -> Result<Bytes, Response<Body>> {
    let limit = srv.limits.body_bytes;
    let too_large = || plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n");
    if let Some(r) = declared_too_large(srv, headers) {
        return Err(r);
    }
    let mut out = BytesMut::new();
    let gap: Duration = srv.limits.header_timeout;
    loop {
        let frame = match tokio::time::timeout(gap, body.frame()).await {
            Err(_) => return Err(plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n")),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(plain(StatusCode::BAD_REQUEST, "Bad Request\n")),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if limit.is_some_and(|max| out.len() + data.len() > max) {
                return Err(too_large());
            }
            if out.is_empty() && http_body::Body::is_end_stream(&body) {
                return Ok(data);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// `413` when `Content-Length` says the body is over `body_bytes`, before reading any of it.
fn declared_too_large(srv: &Server, headers: &http::HeaderMap) -> Option<Response<Body>> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())?;
    let max = srv.limits.body_bytes?;
    (declared > max as u64).then(|| plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"))
}

pub fn version_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// What a handler returned, as a response.
fn response(lua: &Lua, v: LuaValue) -> Result<Response<Body>, String> {
    match v {
        LuaValue::String(s) => {
            let mut r = Response::new(Body::full(Bytes::copy_from_slice(&s.as_bytes())));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            Ok(r)
        }
        LuaValue::Table(t) => {
            let status = match t.raw_get::<LuaValue>("status").map_err(|e| e.to_string())? {
                LuaValue::Nil => 200,
                LuaValue::Integer(n) if (100..=599).contains(&n) => n as u16,
                LuaValue::Number(n) if n.fract() == 0.0 && (100.0..=599.0).contains(&n) => n as u16,
                other => return Err(format!("response status must be an integer in 100..599, got {}", show(&other))),
            };
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::from_u16(status).map_err(|e| e.to_string())?;
            if let LuaValue::Table(h) = t.raw_get::<LuaValue>("headers").map_err(|e| e.to_string())? {
                fill_headers(r.headers_mut(), &h)?;
            }
            *r.body_mut() = match t.raw_get::<LuaValue>("body").map_err(|e| e.to_string())? {
                LuaValue::Nil => Body::Empty,
                LuaValue::String(s) => Body::full(Bytes::copy_from_slice(&s.as_bytes())),
                LuaValue::Function(f) => super::stream::from_function(lua, f).map_err(|e| e.to_string())?,
                other => return Err(format!("response body must be a string or a function, got {}", show(&other))),
            };
            Ok(r)
        }
        other => Err(format!("the handler must return a string or {{status, headers, body}}, got {}", show(&other))),
    }
}

fn show(v: &LuaValue) -> String {
    match v {
        LuaValue::Integer(n) => n.to_string(),
        LuaValue::Number(n) => n.to_string(),
        other => other.type_name().to_string(),
    }
}

/// Copies a Lua headers table (`name = value` or `name = {v1, v2}`) into `h`.
pub fn fill_headers(h: &mut http::HeaderMap, t: &LuaTable) -> Result<(), String> {
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let LuaValue::String(k) = k else { return Err(format!("header names must be strings, got {}", k.type_name())) };
        let name = HeaderName::from_bytes(&k.as_bytes())
            .map_err(|_| format!("invalid header name {:?}", k.to_string_lossy()))?;
        let value = |v: &LuaValue| -> Result<HeaderValue, String> {
            let bytes = match v {
                LuaValue::String(s) => s.as_bytes().to_vec(),
                LuaValue::Integer(n) => n.to_string().into_bytes(),
                LuaValue::Number(n) => n.to_string().into_bytes(),
                other => return Err(format!("header {name}: a string expected, got {}", other.type_name())),
            };
            HeaderValue::from_bytes(&bytes).map_err(|_| format!("header {name}: invalid value"))
        };
        match &v {
            LuaValue::Table(list) => {
                for item in list.sequence_values::<LuaValue>() {
                    h.append(name.clone(), value(&item.map_err(|e| e.to_string())?)?);
                }
            }
            _ => {
                h.insert(name.clone(), value(&v)?);
            }
        }
    }
    Ok(())
}

/// Answers a WebSocket upgrade: 101 with the negotiated headers (the connection then hands its
/// transport to `handleWebSocket`), or the refusal's status.
fn answer_upgrade(
    srv: &Server,
    req: &Request<Incoming>,
    slot: Option<&std::cell::RefCell<Option<Upgrade>>>,
) -> Response<Body> {
    let headers: Vec<(&str, &[u8])> = req.headers().iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let head = handshake::RequestHead { method: req.method().as_str(), http11: true, headers: &headers };
    match handshake::negotiate(&head, &srv.ws_config) {
        Ok(n) => {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = r.headers_mut();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            for (k, v) in &n.response {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                    h.insert(k, v);
                }
            }
            if let Some(slot) = slot {
                *slot.borrow_mut() = Some(Upgrade { agreed: n.agreed, head: request_head(req) });
            }
            r
        }
        Err(rej) => {
            let (phrase, extra) = rej.phrase_and_headers();
            let mut r = plain(
                StatusCode::from_u16(rej.status).unwrap_or(StatusCode::BAD_REQUEST),
                &format!("{phrase}: {}\n", rej.reason),
            );
            for (k, v) in extra {
                if let Ok(k) = HeaderName::from_bytes(k.as_bytes()) {
                    r.headers_mut().insert(k, HeaderValue::from_static(v));
                }
            }
            r
        }
    }
}

/// The request head as text, for the WebSocket object to keep.
fn request_head(req: &Request<Incoming>) -> Box<[u8]> {
    let mut out = Vec::with_capacity(256);
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", req.method(), target).as_bytes());
    for (k, v) in req.headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.into_boxed_slice()
}
