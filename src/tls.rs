//! TLS for streams: the `tls` option of `net.tcp.connect` and `net.tcp.listen` (openssl with
//! tokio-openssl; the system's libssl, or a static one with the `vendored` cargo feature).
//!
//! Clients verify the server's certificate chain against the system store (or `ca_file` /
//! `ca_dir`) and its host name, always, unless told `verify = false` (alias `insecure = true`).
//! Failures read `tls: certificate verify failed for HOST: <openssl's reason>`.
//! A server needs `cert` and `key` (PEM files); with `ca_file` it also requires and verifies
//! client certificates. Handshakes on a listener run in the background, so a client that never
//! finishes its handshake cannot hold up `accept()` for the others.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use mlua::prelude::*;
use openssl::ssl::{AlpnError, SslAcceptor, SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509VerifyResult;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::error::{Kind, NResult, NetError};
use crate::options::Opts;

/// How long a server waits for a client's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Client settings from a `tls` option.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientOpts {
    insecure: bool,
    ca_file: Option<String>,
    ca_dir: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    server_name: Option<String>,
    alpn: Vec<String>,
}

impl ClientOpts {
    /// Offers `protocols` by ALPN unless the script chose its own.
    pub fn offering(mut self, protocols: &[&str]) -> Self {
        if self.alpn.is_empty() {
            self.alpn = protocols.iter().map(|p| p.to_string()).collect();
        }
        self
    }
}

/// Server settings from a `tls` option.
pub struct Server {
    acceptor: SslAcceptor,
}

fn tls_err(msg: impl Into<String>) -> NetError {
    NetError::new(Kind::Tls, msg)
}

/// The keys of a client's `tls = {...}` table; any other key raises (a typo must not pass
/// unnoticed in security settings).
const CLIENT_KEYS: &[&str] = &["verify", "insecure", "ca_file", "ca_dir", "cert", "key", "server_name", "alpn"];
/// The keys of a server's `tls = {...}` table.
const SERVER_KEYS: &[&str] = &["cert", "key", "ca_file", "alpn"];

/// Reads a client's `tls` option (`key` of `o`): nil/false (plain TCP), true (defaults), or a
/// table, whose errors name `tls.KEY`.
pub fn client_opts(o: &Opts, key: &str) -> NResult<Option<ClientOpts>> {
    let t = match o.value(key) {
        LuaValue::Nil | LuaValue::Boolean(false) => return Ok(None),
        LuaValue::Boolean(true) => return Ok(Some(ClientOpts::default())),
        LuaValue::Table(_) => o.table(key)?.expect("a table"),
        other => return Err(o.expected(key, "true or a table", &other)),
    };
    t.only(CLIENT_KEYS)?;
    let verify = t.boolean("verify")?.unwrap_or(true);
    let insecure = t.boolean("insecure")?.unwrap_or(false) || !verify;
    Ok(Some(ClientOpts {
        insecure,
        ca_file: t.string("ca_file")?,
        ca_dir: t.string("ca_dir")?,
        cert: t.string("cert")?,
        key: t.string("key")?,
        server_name: t.string("server_name")?,
        alpn: t.strings("alpn")?,
    }))
}

/// ALPN protocol names in the wire format openssl wants (length-prefixed).
fn alpn_wire(names: &[String]) -> NResult<Vec<u8>> {
    let mut out = Vec::new();
    for n in names {
        if n.is_empty() || n.len() > 255 {
            return Err(tls_err(format!("invalid ALPN protocol name \"{n}\"")));
        }
        out.push(n.len() as u8);
        out.extend_from_slice(n.as_bytes());
    }
    Ok(out)
}

/// Splits a wire-format ALPN list.
fn alpn_list(mut wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = wire.split_first() {
        let n = usize::from(n).min(rest.len());
        out.push(&rest[..n]);
        wire = &rest[n..];
    }
    out
}

fn file_err(what: &str, path: &str, e: openssl::error::ErrorStack) -> NetError {
    // openssl's own text for a missing file is a stack of internal codes; say it plainly.
    let reason = match std::fs::metadata(path) {
        Err(io) => crate::error::describe(&io),
        Ok(_) => e.errors().last().and_then(|e| e.reason().map(str::to_owned)).unwrap_or_else(|| "invalid PEM".into()),
    };
    tls_err(format!("cannot load {what} {path}: {reason}"))
}

fn build_connector(o: &ClientOpts) -> NResult<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| tls_err(e.to_string()))?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(|e| tls_err(e.to_string()))?;
    if o.insecure {
        b.set_verify(SslVerifyMode::NONE);
    }
    if let Some(f) = &o.ca_file {
        b.set_ca_file(f).map_err(|e| file_err("CA file", f, e))?;
    }
    if let Some(d) = &o.ca_dir {
        b.load_verify_locations(None, Some(std::path::Path::new(d))).map_err(|e| file_err("CA directory", d, e))?;
    }
    if let Some(c) = &o.cert {
        b.set_certificate_chain_file(c).map_err(|e| file_err("certificate", c, e))?;
        let key = o.key.as_deref().unwrap_or(c);
        b.set_private_key_file(key, SslFiletype::PEM).map_err(|e| file_err("private key", key, e))?;
        b.check_private_key().map_err(|_| tls_err(format!("the key {key} does not match the certificate {c}")))?;
    }
    if !o.alpn.is_empty() {
        b.set_alpn_protos(&alpn_wire(&o.alpn)?).map_err(|e| tls_err(e.to_string()))?;
    }
    Ok(b.build())
}

thread_local! {
    /// Connectors by their settings: loading the system's CA store costs milliseconds.
    static CONNECTORS: RefCell<HashMap<ClientOpts, SslConnector>> = RefCell::new(HashMap::new());
}

fn connector(o: &ClientOpts) -> NResult<SslConnector> {
    if let Some(c) = CONNECTORS.with(|m| m.borrow().get(o).cloned()) {
        return Ok(c);
    }
    let c = build_connector(o)?;
    CONNECTORS.with(|m| m.borrow_mut().insert(o.clone(), c.clone()));
    Ok(c)
}

/// Explains a failed handshake: the certificate check's reason when that was it.
fn handshake_error(ssl: &openssl::ssl::SslRef, host: &str, target: &str, e: &openssl::ssl::Error) -> NetError {
    let v = ssl.verify_result();
    if v != X509VerifyResult::OK {
        return tls_err(format!("certificate verify failed for {host}: {}", v.error_string()));
    }
    if let Some(io) = e.io_error() {
        return NetError::io("tls handshake with", target, io);
    }
    let reason = e
        .ssl_error()
        .and_then(|s| s.errors().first().and_then(|x| x.reason().map(str::to_owned)))
        .unwrap_or_else(|| "the peer closed the connection".into());
    tls_err(format!("handshake with {target} failed ({reason})"))
}

/// Prepares a client handshake (settings are checked now, on the caller's coroutine).
pub fn client(o: &ClientOpts) -> NResult<SslConnector> {
    connector(o)
}

/// Runs the client handshake over a connected socket.
pub async fn connect(
    c: &SslConnector,
    o: &ClientOpts,
    host: &str,
    target: &str,
    tcp: TcpStream,
) -> NResult<SslStream<TcpStream>> {
    let name = o.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let cfg = c
        .configure()
        .map_err(|e| tls_err(e.to_string()))?
        .verify_hostname(!o.insecure)
        .use_server_name_indication(true);
    let ssl = cfg.into_ssl(name).map_err(|e| tls_err(format!("invalid server name \"{name}\" ({e})")))?;
    let mut s = SslStream::new(ssl, tcp).map_err(|e| tls_err(e.to_string()))?;
    match std::pin::Pin::new(&mut s).connect().await {
        Ok(()) => Ok(s),
        Err(e) => Err(handshake_error(s.ssl(), name, target, &e)),
    }
}

/// Reads a server's `tls` option: a table with `cert` and `key` (PEM), optional `ca_file`
/// (require client certificates signed by it) and `alpn` (protocols to accept, preferred first;
/// `default_alpn` when the table names none).
pub fn server(o: &Opts, key: &str, default_alpn: &[&str]) -> NResult<Option<std::rc::Rc<Server>>> {
    let t = match o.value(key) {
        LuaValue::Nil | LuaValue::Boolean(false) => return Ok(None),
        LuaValue::Table(_) => o.table(key)?.expect("a table"),
        LuaValue::Boolean(true) => {
            return Err(tls_err("a TLS server needs a certificate: tls = {cert = \"cert.pem\", key = \"key.pem\"}"))
        }
        other => return Err(o.expected(key, "a table", &other)),
    };
    t.only(SERVER_KEYS)?;
    let get = |k: &str| t.string(k);
    let cert = get("cert")?.ok_or_else(|| tls_err("a TLS server needs 'cert' (a PEM certificate chain file)"))?;
    let key = get("key")?.unwrap_or_else(|| cert.clone());
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(|e| tls_err(e.to_string()))?;
    b.set_certificate_chain_file(&cert).map_err(|e| file_err("certificate", &cert, e))?;
    b.set_private_key_file(&key, SslFiletype::PEM).map_err(|e| file_err("private key", &key, e))?;
    b.check_private_key().map_err(|_| tls_err(format!("the key {key} does not match the certificate {cert}")))?;
    if let Some(ca) = get("ca_file")? {
        b.set_ca_file(&ca).map_err(|e| file_err("CA file", &ca, e))?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    let mut alpn = t.strings("alpn")?;
    if alpn.is_empty() {
        alpn = default_alpn.iter().map(|p| p.to_string()).collect();
    }
    if !alpn.is_empty() {
        alpn_wire(&alpn)?; // checks the names
        b.set_alpn_select_callback(move |_, client| {
            // The server's preference wins; the answer must point into the client's list.
            let offered = alpn_list(client);
            alpn.iter().find_map(|p| offered.iter().copied().find(|c| *c == p.as_bytes())).ok_or(AlpnError::NOACK)
        });
    }
    Ok(Some(std::rc::Rc::new(Server { acceptor: b.build() })))
}

/// Runs the server handshake over an accepted socket, bounded by [`HANDSHAKE_TIMEOUT`].
pub async fn accept(s: &Server, peer: &str, tcp: TcpStream) -> NResult<SslStream<TcpStream>> {
    let ssl = openssl::ssl::Ssl::new(s.acceptor.context()).map_err(|e| tls_err(e.to_string()))?;
    let mut st = SslStream::new(ssl, tcp).map_err(|e| tls_err(e.to_string()))?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut st).accept()).await {
        Err(_) => Err(NetError::timeout("tls handshake with", peer, HANDSHAKE_TIMEOUT)),
        Ok(Ok(())) => Ok(st),
        Ok(Err(e)) => Err(handshake_error(st.ssl(), peer, peer, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(lua: &Lua, code: &str) -> NResult<Option<ClientOpts>> {
        let t = lua.load(code).eval::<LuaTable>().unwrap();
        client_opts(&Opts::new("net.tcp.connect", 3, Some(t)), "tls")
    }

    #[test]
    fn client_option_forms() {
        let lua = Lua::new();
        assert!(client(&lua, "{}").unwrap().is_none());
        assert!(client(&lua, "{tls = false}").unwrap().is_none());
        assert!(client(&lua, "{tls = true}").unwrap() == Some(ClientOpts::default()));
        let o =
            client(&lua, "{tls = {verify = false, ca_file = 'ca.pem', alpn = {'h2', 'http/1.1'}}}").unwrap().unwrap();
        assert!(o.insecure);
        assert_eq!(o.ca_file.as_deref(), Some("ca.pem"));
        assert_eq!(o.alpn, ["h2", "http/1.1"]);
        assert!(client(&lua, "{tls = {insecure = true}}").unwrap().unwrap().insecure);
        assert!(!client(&lua, "{tls = {}}").unwrap().unwrap().insecure);
        assert_eq!(client(&lua, "{tls = {alpn = 'h2'}}").unwrap().unwrap().alpn, ["h2"]);
    }

    #[test]
    fn client_option_errors() {
        let lua = Lua::new();
        let err = |code: &str| client(&lua, code).err().unwrap().msg;
        let pre = "bad argument #3 to 'net.tcp.connect' (option ";
        assert_eq!(err("{tls = 5}"), format!("{pre}'tls': true or a table expected, got number)"));
        assert_eq!(err("{tls = {ca_file = 5}}"), format!("{pre}'tls.ca_file': string expected, got number)"));
        assert_eq!(err("{tls = {verify = 'no'}}"), format!("{pre}'tls.verify': boolean expected, got string)"));
        assert_eq!(err("{tls = {alpn = {1}}}"), format!("{pre}'tls.alpn': a list of strings expected)"));
        assert!(
            err("{tls = {verfy = false}}").starts_with(&format!("{pre}'tls.verfy': unknown option (known: verify,"))
        );
    }

    #[test]
    fn server_option_errors() {
        let lua = Lua::new();
        let err = |code: &str| {
            let t = lua.load(code).eval::<LuaTable>().unwrap();
            server(&Opts::new("net.tcp.listen", 3, Some(t)), "tls", &[]).err().unwrap().to_string()
        };
        assert!(err("{tls = true}").starts_with("tls: a TLS server needs a certificate"));
        assert_eq!(
            err("{tls = 'x'}"),
            "bad argument #3 to 'net.tcp.listen' (option 'tls': a table expected, got string)"
        );
        assert_eq!(
            err("{tls = {cert = 1}}"),
            "bad argument #3 to 'net.tcp.listen' (option 'tls.cert': string expected, got number)"
        );
        assert_eq!(
            err("{tls = {cert = 'c.pem', ca = 'x'}}"),
            "bad argument #3 to 'net.tcp.listen' (option 'tls.ca': unknown option (known: cert, key, ca_file, alpn))"
        );
        assert_eq!(err("{tls = {}}"), "tls: a TLS server needs 'cert' (a PEM certificate chain file)");
    }
}
