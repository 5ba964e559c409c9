//! The hot paths through the Lua C API: the server's request table is pushed and the handler's
//! answer read in one protected call each, not one per field, and so is the client's response. Through mlua every `raw_set` or
//! `raw_get` is its own protected call, which on LuaJIT costs more than the rest of a request
//! (docs/internals.md, "HTTP"). What this cannot read (a body function) is left to the general
//! path in `service.rs`.

use std::ffi::{c_char, c_int, CStr};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use mlua::ffi::{self, lua_State};

use super::body::Body;
use super::service::Peer;

/// # Safety (all functions here)
/// `l` is a valid state inside a protected call (allocations may raise), with room for the
/// few values each pushes (`lua_checkstack` is called where a loop pushes).
unsafe fn push_bytes(l: *mut lua_State, s: &[u8]) {
    // SAFETY: see the module's contract; `s` is valid for its length.
    unsafe { ffi::lua_pushlstring(l, s.as_ptr() as *const c_char, s.len()) };
}

unsafe fn set_field(l: *mut lua_State, key: &CStr, value: &[u8]) {
    // SAFETY: the table is at -1 before the push, -2 after.
    unsafe {
        push_bytes(l, value);
        ffi::lua_setfield(l, -2, key.as_ptr());
    }
}

/// Pushes the handler's request table (Lune's fields, see `service.rs`); `body` is `None` when
/// the handler reads it itself.
///
/// # Safety
/// As the module's functions.
pub unsafe fn push_request(l: *mut lua_State, p: &http::request::Parts, body: Option<&[u8]>, peer: &Peer) {
    // SAFETY: each step pushes a value and stores it in the table on top.
    unsafe {
        ffi::luaL_checkstack(l, 8, c"request".as_ptr());
        ffi::lua_createtable(l, 0, 9);
        set_field(l, c"method", p.method.as_str().as_bytes());
        set_field(l, c"path", p.uri.path().as_bytes());
        push_query(l, p.uri.query().unwrap_or("").as_bytes());
        ffi::lua_setfield(l, -2, c"query".as_ptr());
        push_headers(l, &p.headers);
        ffi::lua_setfield(l, -2, c"headers".as_ptr());
        if let Some(body) = body {
            set_field(l, c"body", body);
        }
        set_field(l, c"ip", peer.ip.as_bytes());
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(peer.port));
        ffi::lua_setfield(l, -2, c"port".as_ptr());
        set_field(l, c"version", super::service::version_name(p.version).as_bytes());
    }
}

/// Pushes `net.request`'s response table (without its metatable and stream, which the caller
/// adds): Lune's fields, response headers with repeated ones as lists.
///
/// # Safety
/// As the module's functions.
pub unsafe fn push_response(
    l: *mut lua_State,
    status: StatusCode,
    version: http::Version,
    headers: &http::HeaderMap,
    url: &str,
    body: Option<&[u8]>,
) {
    let code = ffi::lua_Integer::from(status.as_u16());
    // SAFETY: each step pushes a value and stores it in the table on top.
    unsafe {
        ffi::luaL_checkstack(l, 8, c"response".as_ptr());
        ffi::lua_createtable(l, 0, 10);
        ffi::lua_pushboolean(l, c_int::from(status.is_success()));
        ffi::lua_setfield(l, -2, c"ok".as_ptr());
        ffi::lua_pushinteger(l, code);
        ffi::lua_setfield(l, -2, c"status".as_ptr());
        ffi::lua_pushinteger(l, code);
        ffi::lua_setfield(l, -2, c"statusCode".as_ptr());
        set_field(l, c"statusMessage", status.canonical_reason().unwrap_or("").as_bytes());
        ffi::lua_createtable(l, 0, headers.keys_len() as c_int);
        for name in headers.keys() {
            push_bytes(l, name.as_str().as_bytes());
            let mut values = headers.get_all(name).iter();
            let first = values.next().map(|v| v.as_bytes()).unwrap_or_default();
            match values.next() {
                None => push_bytes(l, first),
                Some(second) => {
                    ffi::lua_createtable(l, 2, 0);
                    push_bytes(l, first);
                    ffi::lua_rawseti(l, -2, 1);
                    push_bytes(l, second.as_bytes());
                    ffi::lua_rawseti(l, -2, 2);
                    for (i, v) in values.enumerate() {
                        push_bytes(l, v.as_bytes());
                        ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 3);
                    }
                }
            }
            ffi::lua_rawset(l, -3);
        }
        ffi::lua_setfield(l, -2, c"headers".as_ptr());
        set_field(l, c"url", url.as_bytes());
        set_field(l, c"version", super::service::version_name(version).as_bytes());
        if let Some(b) = body {
            set_field(l, c"body", b);
        }
    }
}

/// A query string as a table: a key seen once is a string, a repeated key a list.
unsafe fn push_query(l: *mut lua_State, q: &[u8]) {
    // SAFETY: the query table stays at the same index (`t`) through the loop.
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        let t = ffi::lua_gettop(l);
        for (k, v) in crate::url::form_pairs(q) {
            push_bytes(l, &k);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawget(l, t);
            match ffi::lua_type(l, -1) {
                ffi::LUA_TNIL => {
                    ffi::lua_pop(l, 1);
                    push_bytes(l, &v);
                    ffi::lua_rawset(l, t);
                }
                ffi::LUA_TTABLE => {
                    let n = ffi::lua_rawlen(l, -1);
                    push_bytes(l, &v);
                    ffi::lua_rawseti(l, -2, n as ffi::lua_Integer + 1);
                    ffi::lua_pop(l, 2);
                }
                _ => {
                    // The second value: the first becomes element 1 of a list.
                    ffi::lua_createtable(l, 2, 0);
                    ffi::lua_insert(l, -2);
                    ffi::lua_rawseti(l, -2, 1);
                    push_bytes(l, &v);
                    ffi::lua_rawseti(l, -2, 2);
                    ffi::lua_rawset(l, t);
                }
            }
        }
    }
}

/// Request headers: lower-case names; a repeated header joined with ", " (`cookie` with "; ").
unsafe fn push_headers(l: *mut lua_State, h: &http::HeaderMap) {
    // SAFETY: each name and value is pushed and stored at once.
    unsafe {
        ffi::lua_createtable(l, 0, h.keys_len() as c_int);
        for name in h.keys() {
            push_bytes(l, name.as_str().as_bytes());
            let mut values = h.get_all(name).iter();
            let first = values.next().map(|v| v.as_bytes()).unwrap_or_default();
            match values.next() {
                None => push_bytes(l, first),
                Some(second) => {
                    let sep: &[u8] = if name == header::COOKIE { b"; " } else { b", " };
                    let mut joined = [first, sep, second.as_bytes()].concat();
                    for v in values {
                        joined.extend_from_slice(sep);
                        joined.extend_from_slice(v.as_bytes());
                    }
                    push_bytes(l, &joined);
                }
            }
            ffi::lua_rawset(l, -3);
        }
    }
}

/// The bytes of the string at `idx`, if it is one (numbers are not converted in place).
unsafe fn string_at<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: a string's bytes live while it is on the stack; callers copy them before popping.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// A string or a number at `idx`, as text.
unsafe fn text_at(l: *mut lua_State, idx: c_int) -> Option<Vec<u8>> {
    // SAFETY: see `string_at`; numbers are read, not converted.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => string_at(l, idx).map(<[u8]>::to_vec),
            ffi::LUA_TNUMBER => {
                let n = ffi::lua_tonumber(l, idx);
                Some(
                    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
                        .into_bytes(),
                )
            }
            _ => None,
        }
    }
}

pub fn type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        _ => "userdata",
    }
}

/// What the handler returned (the value at `idx`) as a response, or `None` when it needs the
/// general path (a body function, which becomes a task of its own).
///
/// # Safety
/// As the module's functions; `idx` is an absolute index.
pub unsafe fn read_response(l: *mut lua_State, idx: c_int) -> Option<Result<Response<Body>, String>> {
    // SAFETY: only reads (lua_next, lua_rawgeti) and pops what it pushed.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => {
                let b = string_at(l, idx).unwrap_or_default();
                let mut r = Response::new(Body::full(Bytes::copy_from_slice(b)));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                Some(Ok(r))
            }
            ffi::LUA_TTABLE => read_table(l, idx),
            t => Some(Err(format!(
                "the handler must return a string or {{status, headers, body}}, got {}",
                type_name(t)
            ))),
        }
    }
}

unsafe fn read_table(l: *mut lua_State, t: c_int) -> Option<Result<Response<Body>, String>> {
    let mut r = Response::new(Body::Empty);
    // SAFETY: a lua_next walk over the table at `t`, leaving the stack as it found it.
    unsafe {
        ffi::luaL_checkstack(l, 6, c"response".as_ptr());
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            let key = string_at(l, -2).unwrap_or_default();
            let outcome = match key {
                b"status" => read_status(l).map(|s| *r.status_mut() = s),
                b"headers" if ffi::lua_type(l, -1) == ffi::LUA_TTABLE => read_headers(l, r.headers_mut()),
                b"body" => match ffi::lua_type(l, -1) {
                    ffi::LUA_TSTRING => {
                        *r.body_mut() = Body::full(Bytes::copy_from_slice(string_at(l, -1).unwrap_or_default()));
                        Ok(())
                    }
                    ffi::LUA_TNIL => Ok(()),
                    ffi::LUA_TFUNCTION => {
                        ffi::lua_pop(l, 2);
                        return None;
                    }
                    other => Err(format!("response body must be a string or a function, got {}", type_name(other))),
                },
                _ => Ok(()),
            };
            ffi::lua_pop(l, 1);
            if let Err(e) = outcome {
                ffi::lua_pop(l, 1);
                return Some(Err(e));
            }
        }
    }
    Some(Ok(r))
}

unsafe fn read_status(l: *mut lua_State) -> Result<StatusCode, String> {
    // SAFETY: reads the value on top.
    let n = unsafe {
        if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER {
            return Err(format!(
                "response status must be an integer in 100..599, got {}",
                type_name(ffi::lua_type(l, -1))
            ));
        }
        ffi::lua_tonumber(l, -1)
    };
    if n.fract() != 0.0 || !(100.0..=599.0).contains(&n) {
        return Err(format!("response status must be an integer in 100..599, got {n}"));
    }
    StatusCode::from_u16(n as u16).map_err(|e| e.to_string())
}

/// `{name = value | {v1, v2}}` from the table on top into `h`.
unsafe fn read_headers(l: *mut lua_State, h: &mut http::HeaderMap) -> Result<(), String> {
    // SAFETY: a lua_next walk over the table on top (index `t`), restoring the stack.
    unsafe {
        let t = ffi::lua_gettop(l);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            let r = read_header(l, h);
            ffi::lua_pop(l, 1);
            if let Err(e) = r {
                ffi::lua_pop(l, 1);
                return Err(e);
            }
        }
    }
    Ok(())
}

unsafe fn read_header(l: *mut lua_State, h: &mut http::HeaderMap) -> Result<(), String> {
    // SAFETY: key at -2 and value at -1, as lua_next left them.
    unsafe {
        let Some(k) = string_at(l, -2) else {
            return Err(format!("header names must be strings, got {}", type_name(ffi::lua_type(l, -2))));
        };
        let name =
            HeaderName::from_bytes(k).map_err(|_| format!("invalid header name {:?}", String::from_utf8_lossy(k)))?;
        let value = |b: Option<Vec<u8>>, t: c_int| -> Result<HeaderValue, String> {
            let b = b.ok_or_else(|| format!("header {name}: a string expected, got {}", type_name(t)))?;
            HeaderValue::from_bytes(&b).map_err(|_| format!("header {name}: invalid value"))
        };
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            let n = ffi::lua_rawlen(l, -1);
            for i in 1..=n {
                ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer);
                let v = value(text_at(l, -1), ffi::lua_type(l, -1));
                ffi::lua_pop(l, 1);
                h.append(name.clone(), v?);
            }
        } else {
            h.insert(name.clone(), value(text_at(l, -1), ffi::lua_type(l, -1))?);
        }
    }
    Ok(())
}
