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

/// The one decoding rule's failure: what was not UTF-8 once decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct NotUtf8;

/// Percent-encodes `s` (everything but the unreserved set). Bytes that are not UTF-8 are refused
/// unless `binary`.
pub fn encode(s: &[u8], binary: bool) -> Result<String, NotUtf8> {
    if !binary && std::str::from_utf8(s).is_err() {
        return Err(NotUtf8);
    }
    Ok(percent_encode(s, RESERVED).to_string())
}

/// Decodes `%XX` escapes (`+` stays as it is). A `%` not followed by two hex digits is kept
/// as it is. A result that is not UTF-8 is refused unless `binary`.
pub fn decode(s: &[u8], binary: bool) -> Result<Vec<u8>, NotUtf8> {
    let out: Vec<u8> = percent_decode(s).collect();
    if !binary && std::str::from_utf8(&out).is_err() {
        return Err(NotUtf8);
    }
    Ok(out)
}

fn url_encode(_: &Lua, a: Args) -> NResult<String> {
    let s = a.bytes(1)?;
    encode(&s, binary_flag(&a, 2)?)
        .map_err(|_| a.bad(1, "string is not valid UTF-8 (pass binary = true to encode raw bytes)"))
}

fn url_decode(lua: &Lua, a: Args) -> NResult<LuaString> {
    let s = a.bytes(1)?;
    let out = decode(&s, binary_flag(&a, 2)?)
        .map_err(|_| a.bad(1, "decoded string is not valid UTF-8 (pass binary = true to get raw bytes)"))?;
    lua.create_string(out).map_err(NetError::from)
}

/// Decodes one form-encoded key or value: `+` is a space, then `%XX` escapes.
fn form_decode(s: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_decode(&spaced).collect()
}

/// The pairs of a form-encoded query string (`a=1&b`), decoded to bytes: the same split as the
/// `url` crate's `form_urlencoded`, but without its lossy UTF-8 step, so the caller decides.
/// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty value; only the first
/// `=` splits (`a=b=c` is `a` -> `b=c`).
pub fn form_pairs(q: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    q.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| match p.iter().position(|&b| b == b'=') {
        Some(i) => (form_decode(&p[..i]), form_decode(&p[i + 1..])),
        None => (form_decode(p), Vec::new()),
    })
}

/// Decoded keys and values, in order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The decoded pairs of a query string, in order; with `binary` false, any key or value that
/// is not UTF-8 once decoded refuses the whole string.
pub fn query_pairs(q: &[u8], binary: bool) -> Result<Pairs, NotUtf8> {
    let pairs: Vec<_> = form_pairs(q).collect();
    if !binary && pairs.iter().any(|(k, v)| std::str::from_utf8(k).is_err() || std::str::from_utf8(v).is_err()) {
        return Err(NotUtf8);
    }
    Ok(pairs)
}

/// A query string as a table: a key seen once maps to a string, a repeated key to an array.
/// Like `net.urlDecode`, keys and values that are not UTF-8 once decoded raise (argument `arg`
/// of `a`) unless `binary`.
pub fn query_table(lua: &Lua, a: &Args, arg: usize, q: &[u8], binary: bool) -> NResult<LuaTable> {
    let pairs = query_pairs(q, binary).map_err(|_| {
        a.bad(arg, "query key or value is not valid UTF-8 once decoded (pass binary = true to get raw bytes)")
    })?;
    Ok(pairs_table(lua, pairs)?)
}

/// Decoded pairs as a table: a key seen once maps to a string, a repeated key to an array.
pub fn pairs_table(lua: &Lua, pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    for (k, v) in pairs {
        let (k, v) = (lua.create_string(k)?, lua.create_string(v)?);
        match t.raw_get::<LuaValue>(&k)? {
            LuaValue::Nil => t.raw_set(k, v)?,
            LuaValue::Table(arr) => arr.raw_push(v)?,
            first => t.raw_set(k, lua.create_sequence_from([first, LuaValue::String(v)])?)?,
        }
    }
    Ok(t)
}

/// A parsed URL as `net.url.parse` returns it, before it becomes a Lua table.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts {
    pub scheme: String,
    /// Without the brackets of an IPv6 literal.
    pub host: Option<String>,
    /// The given port, else the scheme's default (http 80, https 443, ws 80, wss 443, ftp 21).
    pub port: Option<u16>,
    pub path: String,
    /// Without the `?`, still encoded.
    pub query: Option<String>,
    pub fragment: Option<String>,
    /// Percent-decoded (the url crate keeps userinfo encoded; scripts want the real name).
    pub user: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a URL: the url crate's reason.
    Invalid(String),
    /// The user name or password is not UTF-8 once decoded (and `binary` was not given).
    NotUtf8(&'static str),
}

/// Parses a URL by the WHATWG rules (the `url` crate); userinfo is decoded under
/// [`decode`]'s rule.
pub fn parse_url(s: &str, binary: bool) -> Result<Parts, ParseError> {
    let u = url::Url::parse(s).map_err(|e| ParseError::Invalid(e.to_string()))?;
    let user = match u.username() {
        "" => None,
        name => Some(decode(name.as_bytes(), binary).map_err(|_| ParseError::NotUtf8("user name"))?),
    };
    let password =
        u.password().map(|p| decode(p.as_bytes(), binary)).transpose().map_err(|_| ParseError::NotUtf8("password"))?;
    Ok(Parts {
        scheme: u.scheme().to_string(),
        host: u.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
        port: u.port_or_known_default(),
        path: u.path().to_string(),
        query: u.query().map(str::to_string),
        fragment: u.fragment().map(str::to_string),
        user,
        password,
    })
}

fn parse(lua: &Lua, a: Args) -> NResult<LuaTable> {
    let s = a.string(1)?;
    let p = parse_url(&s, binary_flag(&a, 2)?).map_err(|e| match e {
        ParseError::Invalid(why) => NetError::new(Kind::Protocol, format!("invalid URL \"{s}\": {why}")),
        ParseError::NotUtf8(what) => {
            a.bad(1, format!("{what} is not valid UTF-8 once decoded (pass binary = true to get raw bytes)"))
        }
    })?;
    let t = (|| -> LuaResult<LuaTable> {
        let t = lua.create_table()?;
        t.set("scheme", p.scheme)?;
        t.set("host", p.host)?;
        t.set("port", p.port)?;
        t.set("path", p.path)?;
        t.set("query", p.query)?;
        t.set("fragment", p.fragment)?;
        t.set("user", p.user.map(|u| lua.create_string(u)).transpose()?)?;
        t.set("password", p.password.map(|u| lua.create_string(u)).transpose()?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Parts {
        parse_url(s, false).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn invalid(s: &str) -> String {
        match parse_url(s, false) {
            Err(ParseError::Invalid(why)) => why,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn encode_keeps_only_the_unreserved_set() {
        assert_eq!(encode(b"AZaz09-._~", false).unwrap(), "AZaz09-._~");
        assert_eq!(encode(b"a b&c=d/e?f#g+h%i", false).unwrap(), "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25i");
        assert_eq!(encode("é€".as_bytes(), false).unwrap(), "%C3%A9%E2%82%AC");
        assert_eq!(encode(b"", false).unwrap(), "");
        assert_eq!(encode(b"\0\x7f", false).unwrap(), "%00%7F");
    }

    #[test]
    fn encode_utf8_rule() {
        assert_eq!(encode(b"\xff", false), Err(NotUtf8));
        assert_eq!(encode(b"\xc3", false), Err(NotUtf8)); // a cut sequence
        assert_eq!(encode(b"\xff\xfe", true).unwrap(), "%FF%FE");
    }

    #[test]
    fn decode_escapes() {
        assert_eq!(decode(b"a%20b%26c", false).unwrap(), b"a b&c");
        assert_eq!(decode(b"%c3%A9", false).unwrap(), "é".as_bytes()); // either case of hex
        assert_eq!(decode(b"a+b", false).unwrap(), b"a+b"); // + is not a space outside queries
        assert_eq!(decode(b"%00", false).unwrap(), b"\0");
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode(encode(&all, true).unwrap().as_bytes(), true).unwrap(), all);
    }

    #[test]
    fn invalid_percent_sequences_stay_as_they_are() {
        assert_eq!(decode(b"%", false).unwrap(), b"%");
        assert_eq!(decode(b"100%", false).unwrap(), b"100%");
        assert_eq!(decode(b"%4", false).unwrap(), b"%4");
        assert_eq!(decode(b"%zz%4g", false).unwrap(), b"%zz%4g");
        assert_eq!(decode(b"%%41", false).unwrap(), b"%A");
        assert_eq!(decode(b"%2541", false).unwrap(), b"%41"); // decoded once, not twice
    }

    #[test]
    fn decode_utf8_rule() {
        assert_eq!(decode(b"%FF", false), Err(NotUtf8));
        assert_eq!(decode(b"%C3", false), Err(NotUtf8));
        assert_eq!(decode(b"%ED%A0%80", false), Err(NotUtf8)); // an encoded surrogate
        assert_eq!(decode(b"\xff", false), Err(NotUtf8)); // raw bytes count too
        assert_eq!(decode(b"%FF%C3", true).unwrap(), b"\xff\xc3");
    }

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(q.as_bytes(), false)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn query_splitting() {
        assert_eq!(pairs("a=1&b=2"), kv(&[("a", "1"), ("b", "2")]));
        assert_eq!(pairs("a=1&a=2"), kv(&[("a", "1"), ("a", "2")]));
        assert_eq!(pairs("flag&x="), kv(&[("flag", ""), ("x", "")]));
        assert_eq!(pairs("&&a=1&&"), kv(&[("a", "1")]));
        assert_eq!(pairs("a=b=c"), kv(&[("a", "b=c")]));
        assert_eq!(pairs("=v"), kv(&[("", "v")]));
        assert_eq!(pairs(""), kv(&[]));
        assert_eq!(pairs("q=a+b%2Bc&sp%20ace=%26"), kv(&[("q", "a b+c"), ("sp ace", "&")]));
        assert_eq!(pairs("k=%zz"), kv(&[("k", "%zz")]));
    }

    #[test]
    fn query_utf8_rule() {
        assert_eq!(query_pairs(b"ok=1&k=%FF", false), Err(NotUtf8));
        assert_eq!(query_pairs(b"%FF=v", false), Err(NotUtf8));
        assert_eq!(query_pairs(b"raw=\xff", false), Err(NotUtf8));
        assert_eq!(query_pairs(b"k=%FF", true).unwrap(), vec![(b"k".to_vec(), b"\xff".to_vec())]);
    }

    #[test]
    fn parses_the_parts() {
        let p = parts("https://user:pa%20ss@Example.COM:8443/a/b?x=1&y=2#frag");
        assert_eq!(
            p,
            Parts {
                scheme: "https".into(),
                host: Some("example.com".into()), // lower-cased
                port: Some(8443),
                path: "/a/b".into(),
                query: Some("x=1&y=2".into()),
                fragment: Some("frag".into()),
                user: Some(b"user".to_vec()),
                password: Some(b"pa ss".to_vec()),
            }
        );
    }

    #[test]
    fn default_ports() {
        for (url, port) in [
            ("http://h/", 80),
            ("https://h/", 443),
            ("ws://h/", 80),
            ("wss://h/", 443),
            ("ftp://h/", 21),
            ("http://h:0/", 0),
            ("http://h:65535/", 65535),
        ] {
            assert_eq!(parts(url).port, Some(port), "{url}");
        }
        assert_eq!(parts("http://h:80/").port, Some(80)); // the default, written out
        assert_eq!(parts("redis://h/").port, None);
        assert_eq!(parts("redis://h:6379/").port, Some(6379));
    }

    #[test]
    fn ports_out_of_range() {
        assert_eq!(invalid("http://h:65536/"), "invalid port number");
        assert_eq!(invalid("http://h:99999999999/"), "invalid port number");
        assert_eq!(invalid("http://h:-1/"), "invalid port number");
        assert_eq!(invalid("http://h:8a/"), "invalid port number");
    }

    #[test]
    fn ipv6_hosts() {
        let p = parts("http://[::1]:8080/x");
        assert_eq!((p.host.as_deref(), p.port), (Some("::1"), Some(8080)));
        assert_eq!(parts("ws://[2001:DB8::1]/").host.as_deref(), Some("2001:db8::1")); // normalised
        assert_eq!(parts("http://[::ffff:1.2.3.4]/").host.as_deref(), Some("::ffff:102:304"));
        assert_eq!(invalid("http://[::1/"), "invalid IPv6 address");
        assert_eq!(invalid("http://[zz::1]/"), "invalid IPv6 address");
        assert_eq!(invalid("http://::1/"), "empty host"); // an IPv6 literal needs its brackets
    }

    #[test]
    fn ipv4_hosts() {
        assert_eq!(parts("http://127.0.0.1:9/").host.as_deref(), Some("127.0.0.1"));
        assert_eq!(parts("http://0x7f.1/").host.as_deref(), Some("127.0.0.1")); // WHATWG's forms
        assert_eq!(invalid("http://256.0.0.1/"), "invalid IPv4 address");
    }

    #[test]
    fn userinfo() {
        let p = parts("ftp://alice@h/");
        assert_eq!((p.user, p.password), (Some(b"alice".to_vec()), None));
        let p = parts("ftp://:secret@h/");
        assert_eq!((p.user, p.password), (None, Some(b"secret".to_vec())));
        let p = parts("ftp://a%40b:p%3Aq@h/");
        assert_eq!((p.user, p.password), (Some(b"a@b".to_vec()), Some(b"p:q".to_vec())));
        let p = parts("http://h/");
        assert_eq!((p.user, p.password), (None, None));
        let p = parts("http://%C3%A9:%E2%82%AC@h/");
        assert_eq!((p.user, p.password), (Some("é".as_bytes().to_vec()), Some("€".as_bytes().to_vec())));
    }

    #[test]
    fn userinfo_utf8_rule() {
        assert_eq!(parse_url("http://%FF@h/", false), Err(ParseError::NotUtf8("user name")));
        assert_eq!(parse_url("http://u:%FF@h/", false), Err(ParseError::NotUtf8("password")));
        let p = parse_url("http://%FF:%FE@h/", true).unwrap();
        assert_eq!((p.user, p.password), (Some(b"\xff".to_vec()), Some(b"\xfe".to_vec())));
    }

    #[test]
    fn empty_and_odd_paths() {
        assert_eq!(parts("http://h").path, "/"); // special schemes always have a path
        assert_eq!(parts("http://h?q").path, "/");
        assert_eq!(parts("http://h/a/../b/./c").path, "/b/c");
        assert_eq!(parts("http://h/a b").path, "/a%20b"); // kept encoded
        assert_eq!(parts("redis://h").path, "");
        assert_eq!(parts("mailto:me@example.com").path, "me@example.com");
        assert_eq!(parts("mailto:me@example.com").host, None);
    }

    #[test]
    fn queries_and_fragments() {
        let p = parts("http://h/p?#");
        assert_eq!((p.query.as_deref(), p.fragment.as_deref()), (Some(""), Some("")));
        let p = parts("http://h/p");
        assert_eq!((p.query, p.fragment), (None, None));
        let p = parts("http://h/p#a?b");
        assert_eq!((p.query.as_deref(), p.fragment.as_deref()), (None, Some("a?b")));
        let p = parts("http://h/p?a=1#x#y");
        assert_eq!((p.query.as_deref(), p.fragment.as_deref()), (Some("a=1"), Some("x#y")));
        assert_eq!(parts("http://h/?a b").query.as_deref(), Some("a%20b"));
    }

    #[test]
    fn not_urls() {
        assert_eq!(invalid(""), "relative URL without a base");
        assert_eq!(invalid("/just/a/path"), "relative URL without a base");
        assert_eq!(invalid("example.com"), "relative URL without a base");
        assert_eq!(invalid("http://"), "empty host");
        assert_eq!(invalid("http://exa mple.com/"), "invalid international domain name");
    }
}
