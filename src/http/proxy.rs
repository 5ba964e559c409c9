//! Proxies for the client: the `proxy` option (`"http://user:pass@host:port"`, or `false` for
//! none), else the environment (read once, at the first request) as curl reads it: `http_proxy` for http URLs, `https_proxy` for
//! https, `all_proxy` for both (lower case first, then upper case), and `no_proxy` (a list of
//! host names and domain suffixes, `*` for all). Plain HTTP goes to the proxy in absolute form;
//! https goes through a `CONNECT` tunnel, with TLS to the origin inside it.

use std::time::Duration;

use bytes::BytesMut;
use http::HeaderValue;
use mlua::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pool::Key;
use crate::error::{Kind, NResult, NetError};
use crate::export::Opts;
use crate::io::{Connection, Transport};
use crate::tcp::{self, ConnectOpts};

pub enum Proxy {
    /// From the environment, decided per URL.
    Env,
    /// `proxy = false`: never.
    Off,
    /// `proxy = "http://..."`: always.
    Fixed(String),
}

/// Checks a proxy URL: only `http://` proxies (the tunnel itself is plain TCP).
fn proxy_url(s: &str) -> Result<String, String> {
    let with_scheme = if s.contains("://") { s.to_string() } else { format!("http://{s}") };
    let u = url::Url::parse(&with_scheme).map_err(|e| format!("invalid proxy URL \"{s}\": {e}"))?;
    if u.scheme() != "http" {
        return Err(format!("only http:// proxies are supported, got \"{s}\""));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("proxy URL without a host: \"{s}\""));
    }
    Ok(with_scheme)
}

fn env(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// The proxy variables, read once per process at the first request (as Go does): looking
/// them up per request cost about a microsecond.
struct FromEnv {
    http: Option<String>,
    https: Option<String>,
    no_proxy: Option<String>,
}

fn from_env() -> &'static FromEnv {
    static VARS: std::sync::OnceLock<FromEnv> = std::sync::OnceLock::new();
    VARS.get_or_init(|| FromEnv {
        // Upper-case HTTP_PROXY is what a CGI script's `Proxy:` request header becomes: curl
        // and Go refuse it there; we read it only outside CGI.
        http: if std::env::var_os("REQUEST_METHOD").is_some() {
            env(&["http_proxy", "all_proxy", "ALL_PROXY"])
        } else {
            env(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
        },
        https: env(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
        no_proxy: env(&["no_proxy", "NO_PROXY"]),
    })
}

/// Whether `no_proxy` (or `NO_PROXY`) exempts `host`.
fn exempt(host: &str) -> bool {
    let Some(list) = &from_env().no_proxy else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    list.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).any(|e| {
        if e == "*" {
            return true;
        }
        let e = e.trim_start_matches("*.").trim_start_matches('.');
        // `host:port` entries name the host only.
        let e = match e.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            _ => e,
        };
        let e = e.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        host == e || host.ends_with(&format!(".{e}"))
    })
}

impl Proxy {
    pub fn from_option(o: &Opts) -> NResult<Proxy> {
        match o.value("proxy") {
            LuaValue::Nil | LuaValue::Boolean(true) => Ok(Proxy::Env),
            LuaValue::Boolean(false) => Ok(Proxy::Off),
            LuaValue::String(s) => Ok(Proxy::Fixed(proxy_url(&s.to_string_lossy()).map_err(|e| o.bad("proxy", e))?)),
            v => Err(o.expected("proxy", "string or false", &v)),
        }
    }

    /// The proxy a request to `url` goes through, if any.
    pub fn for_url(&self, url: &url::Url) -> Option<String> {
        match self {
            Proxy::Off => None,
            Proxy::Fixed(p) => Some(p.clone()),
            Proxy::Env => {
                let host = url.host_str()?;
                if exempt(host) {
                    return None;
                }
                let v = match url.scheme() {
                    "https" => from_env().https.as_deref(),
                    _ => from_env().http.as_deref(),
                }?;
                proxy_url(v).ok()
            }
        }
    }
}

/// `Proxy-Authorization: Basic ...` from the proxy URL's user and password.
pub fn authorization(proxy: &str) -> Option<HeaderValue> {
    let u = url::Url::parse(proxy).ok()?;
    if u.username().is_empty() {
        return None;
    }
    let dec = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let mut creds = dec(u.username());
    creds.push(b':');
    creds.extend(dec(u.password().unwrap_or("")));
    HeaderValue::from_str(&format!("Basic {}", data_encoding::BASE64.encode(&creds))).ok()
}

/// Connects to the origin of `key` through `proxy`: plain HTTP talks to the proxy itself; https
/// asks it for a tunnel with `CONNECT`, then does TLS with the origin inside.
pub async fn connect(lua: &Lua, proxy: &str, key: &Key, connect_timeout: Duration) -> NResult<Connection> {
    let u = url::Url::parse(proxy).map_err(|e| NetError::new(Kind::Io, e.to_string()))?;
    let phost = u.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
    let pport = u.port_or_known_default().unwrap_or(80);
    let mut o = ConnectOpts::default();
    o.timeout = Some(connect_timeout);
    let mut conn = tcp::connect(lua, phost.clone(), pport, o)?.await?;
    let Some(tls) = &key.tls else { return Ok(conn) };
    let target = tcp::host_port(&key.host, key.port);
    let what = format!("CONNECT {target} through the proxy {}", tcp::host_port(&phost, pport));
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = authorization(proxy) {
        req.push_str(&format!("Proxy-Authorization: {}\r\n", auth.to_str().unwrap_or("")));
    }
    req.push_str("\r\n");
    let tunnel = async {
        conn.transport.write_all(req.as_bytes()).await.map_err(|e| NetError::io(&what, "", &e))?;
        read_connect_answer(&mut conn.transport, &what).await
    };
    let status = tokio::time::timeout(connect_timeout, tunnel)
        .await
        .map_err(|_| NetError::timeout(&what, "", connect_timeout))??;
    if !(200..300).contains(&status) {
        let kind = if status == 407 { Kind::Refused } else { Kind::Protocol };
        return Err(NetError::new(kind, format!("{what} (the proxy answered {status})")));
    }
    let Connection { transport, peer, local } = conn;
    let tcp = transport.into_tcp().map_err(|_| NetError::new(Kind::Io, "proxy connection is not TCP"))?;
    let connector = crate::tls::client(tls)?;
    let s = crate::tls::connect(&connector, tls, &key.host, &target, tcp).await?;
    Ok(Connection { transport: Transport::tls(s), peer, local })
}

/// Reads a proxy's answer to CONNECT: the status line and headers, nothing more.
async fn read_connect_answer(t: &mut Transport, what: &str) -> NResult<u16> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = t.read(&mut chunk).await.map_err(|e| NetError::io(what, "", &e))?;
        if n == 0 {
            return Err(NetError::new(Kind::Closed, format!("{what} (the proxy closed the connection)")));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        match r.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => return Ok(r.code.unwrap_or(0)),
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => continue,
            _ => return Err(NetError::new(Kind::Protocol, format!("{what} (invalid answer from the proxy)"))),
        }
    }
}
