//! URL utilities: `net.urlEncode`, `net.urlDecode` (Lune), `net.url.parse`, `net.url.query`.
//!
//! Parsing is the `url` crate's (WHATWG rules: host lower-cased, default ports known for
//! http/https/ws/wss/ftp); percent-coding is `percent-encoding`'s. `urlEncode` keeps exactly the
//! RFC 3986 unreserved characters and writes a space as `%20`; `urlDecode` leaves `+` alone.
//! Query strings (`net.url.query`, and `req.query` later) are form-encoded, so there `+` is a space.

use mlua::prelude::*;
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Kind, NResult, NetError};
use crate::export::{func, Args};

/// Everything but the RFC 3986 unreserved set `A-Z a-z 0-9 - . _ ~`.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn binary_flag(a: &Args, i: usize) -> NResult<bool> {
    if a.is_nil(i) {
        Ok(false)
    } else {
        a.boolean(i)
    }
}

fn url_encode(_: &Lua, a: Args) -> NResult<String> {
    let s = a.bytes(1)?;
    if !binary_flag(&a, 2)? && std::str::from_utf8(&s).is_err() {
        return Err(a.bad(1, "string is not valid UTF-8 (pass binary = true to encode raw bytes)"));
    }
    Ok(percent_encode(&s, RESERVED).to_string())
}

fn url_decode(lua: &Lua, a: Args) -> NResult<LuaString> {
    let s = a.bytes(1)?;
    let out: Vec<u8> = percent_decode(&s).collect();
    if !binary_flag(&a, 2)? && std::str::from_utf8(&out).is_err() {
        return Err(a.bad(1, "decoded string is not valid UTF-8 (pass binary = true to get raw bytes)"));
    }
    lua.create_string(out).map_err(NetError::from)
}

/// A query string as a table: a key seen once maps to a string, a repeated key to an array.
pub fn query_table(lua: &Lua, q: &str) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match t.raw_get::<LuaValue>(&*k)? {
            LuaValue::Nil => t.raw_set(&*k, &*v)?,
            LuaValue::Table(arr) => arr.raw_push(&*v)?,
            first => t.raw_set(&*k, lua.create_sequence_from([first, LuaValue::String(lua.create_string(&*v)?)])?)?,
        }
    }
    Ok(t)
}

fn parse(lua: &Lua, a: Args) -> NResult<LuaTable> {
    let s = a.string(1)?;
    let u = url::Url::parse(&s).map_err(|e| NetError::new(Kind::Protocol, format!("invalid URL \"{s}\": {e}")))?;
    let t = (|| -> LuaResult<LuaTable> {
        let t = lua.create_table()?;
        t.set("scheme", u.scheme())?;
        let host = u.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
        t.set("host", host)?;
        t.set("port", u.port_or_known_default())?;
        t.set("path", u.path())?;
        t.set("query", u.query())?;
        t.set("fragment", u.fragment())?;
        // The url crate keeps userinfo percent-encoded; scripts want the real name and password.
        let decoded = |s: &str| lua.create_string(percent_decode(s.as_bytes()).collect::<Vec<u8>>());
        let user = if u.username().is_empty() { None } else { Some(decoded(u.username())?) };
        t.set("user", user)?;
        t.set("password", u.password().map(decoded).transpose()?)?;
        Ok(t)
    })();
    t.map_err(NetError::from)
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    net.set("urlEncode", func(lua, "net.urlEncode", url_encode)?)?;
    net.set("urlDecode", func(lua, "net.urlDecode", url_decode)?)?;
    let url = lua.create_table()?;
    url.set("parse", func(lua, "net.url.parse", parse)?)?;
    url.set(
        "query",
        func(lua, "net.url.query", |lua, a: Args| {
            let q = a.bytes(1)?;
            let q = String::from_utf8_lossy(&q);
            query_table(lua, q.trim_start_matches('?')).map_err(NetError::from)
        })?,
    )?;
    net.set("url", url)?;
    Ok(())
}
