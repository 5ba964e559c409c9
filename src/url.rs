//! URL utilities: `net.urlEncode`, `net.urlDecode` (Lune), `net.url.parse`, `net.url.query`.
//!
//! Parsing is the `url` crate's (WHATWG rules: host lower-cased, default ports known for
//! http/https/ws/wss/ftp); percent-coding is `percent-encoding`'s. `urlEncode` keeps exactly the
//! RFC 3986 unreserved characters and writes a space as `%20`; `urlDecode` leaves `+` alone.
//! Query strings (`net.url.query`, and `req.query` later) are form-encoded, so there `+` is a space.
//! Everything that decodes follows one rule: a result that is not UTF-8 raises a bad-argument
//! error unless the caller passes `binary = true` and takes raw bytes.

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

/// Decodes one form-encoded key or value: `+` is a space, then `%XX` escapes.
fn form_decode(s: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_decode(&spaced).collect()
}

/// The pairs of a form-encoded query string (`a=1&b`), decoded to bytes: the same split as the
/// `url` crate's `form_urlencoded`, but without its lossy UTF-8 step, so the caller decides.
fn form_pairs(q: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    q.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| match p.iter().position(|&b| b == b'=') {
        Some(i) => (form_decode(&p[..i]), form_decode(&p[i + 1..])),
        None => (form_decode(p), Vec::new()),
    })
}

/// A query string as a table: a key seen once maps to a string, a repeated key to an array.
/// Like `net.urlDecode`, keys and values that are not UTF-8 once decoded raise (argument `arg`
/// of `a`) unless `binary`.
pub fn query_table(lua: &Lua, a: &Args, arg: usize, q: &[u8], binary: bool) -> NResult<LuaTable> {
    let t = lua.create_table()?;
    for (k, v) in form_pairs(q) {
        if !binary && (std::str::from_utf8(&k).is_err() || std::str::from_utf8(&v).is_err()) {
            return Err(
                a.bad(arg, "query key or value is not valid UTF-8 once decoded (pass binary = true to get raw bytes)")
            );
        }
        let (k, v) = (lua.create_string(k)?, lua.create_string(v)?);
        match t.raw_get::<LuaValue>(&k)? {
            LuaValue::Nil => t.raw_set(k, v)?,
            LuaValue::Table(arr) => arr.raw_push(v)?,
            first => t.raw_set(k, lua.create_sequence_from([first, LuaValue::String(v)])?)?,
        }
    }
    Ok(t)
}

fn parse(lua: &Lua, a: Args) -> NResult<LuaTable> {
    let s = a.string(1)?;
    let binary = binary_flag(&a, 2)?;
    let u = url::Url::parse(&s).map_err(|e| NetError::new(Kind::Protocol, format!("invalid URL \"{s}\": {e}")))?;
    // The url crate keeps userinfo percent-encoded; scripts want the real name and password,
    // under net.urlDecode's rule: UTF-8 unless `binary`.
    let decoded = |what: &str, s: &str| -> NResult<LuaString> {
        let out: Vec<u8> = percent_decode(s.as_bytes()).collect();
        if !binary && std::str::from_utf8(&out).is_err() {
            return Err(
                a.bad(1, format!("{what} is not valid UTF-8 once decoded (pass binary = true to get raw bytes)"))
            );
        }
        Ok(lua.create_string(out)?)
    };
    let user = if u.username().is_empty() { None } else { Some(decoded("user name", u.username())?) };
    let password = u.password().map(|p| decoded("password", p)).transpose()?;
    let t = (|| -> LuaResult<LuaTable> {
        let t = lua.create_table()?;
        t.set("scheme", u.scheme())?;
        let host = u.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
        t.set("host", host)?;
        t.set("port", u.port_or_known_default())?;
        t.set("path", u.path())?;
        t.set("query", u.query())?;
        t.set("fragment", u.fragment())?;
        t.set("user", user)?;
        t.set("password", password)?;
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
            let binary = binary_flag(&a, 2)?;
            let start = q.iter().position(|&b| b != b'?').unwrap_or(q.len());
            query_table(lua, &a, 1, &q[start..], binary)
        })?,
    )?;
    net.set("url", url)?;
    Ok(())
}
