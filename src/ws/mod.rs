//! `net.ws`: WebSocket clients (`net.ws.connect`, alias `net.socket`) and servers
//! (`net.ws.listen` + `accept`), over TCP or TLS (`wss://`).
//!
//! The handshake and framing are tokio-tungstenite's, run over this crate's own transports, so
//! `wss://` uses the same verified TLS as `net.tcp.connect`. Messages are limited to
//! `max_message_size` (default 16 MiB); a server accepts at most the first of the client's
//! `protocols` it also lists.

pub mod socket;

use std::rc::Rc;
use std::time::Duration;

use mlua::prelude::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::error::{Kind, NResult, NetError};
use crate::export::{async_func, func, register_type, userdata, Args, Opts};
use crate::tcp::listener;
use crate::tcp::{self as tcp, ConnectOpts};
use socket::WebSocket;

pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn config(o: &Opts) -> NResult<WebSocketConfig> {
    let max = o.int_in("max_message_size", 1, i64::from(u32::MAX))?.map(|n| n as usize).unwrap_or(DEFAULT_MAX_MESSAGE);
    // A 4 KiB read buffer keeps idle connections small (tungstenite's default is 128 KiB).
    Ok(WebSocketConfig::default().read_buffer_size(4096).max_message_size(Some(max)).max_frame_size(Some(max)))
}

fn string_list(a: &Args, pos: usize, o: &Opts, key: &str) -> NResult<Vec<String>> {
    match o.value(key) {
        LuaValue::Nil => Ok(Vec::new()),
        LuaValue::String(s) => Ok(vec![s.to_string_lossy()]),
        LuaValue::Table(t) => t
            .sequence_values::<String>()
            .collect::<LuaResult<Vec<_>>>()
            .map_err(|_| a.bad(pos, format!("option '{key}': a list of strings expected"))),
        v => Err(a.bad(pos, format!("option '{key}': a list of strings expected, got {}", v.type_name()))),
    }
}

fn connect(lua: &Lua, a: Args) -> NResult<impl std::future::Future<Output = NResult<LuaAnyUserData>>> {
    let url = a.string(1)?;
    let o = a.opts(2)?;
    let parsed = url::Url::parse(&url).map_err(|e| a.bad(1, format!("invalid URL \"{url}\": {e}")))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        s => return Err(a.bad(1, format!("ws:// or wss:// URL expected, got \"{s}://\""))),
    };
    let host = parsed.host_str().ok_or_else(|| a.bad(1, format!("URL without a host: \"{url}\"")))?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(if secure { 443 } else { 80 });
    let mut request =
        url.as_str().into_client_request().map_err(|e| a.bad(1, format!("invalid URL \"{url}\": {e}")))?;
    if let LuaValue::Table(h) = o.value("headers") {
        for pair in h.pairs::<String, String>() {
            let (k, v) = pair.map_err(|_| a.bad(2, "option 'headers': a table of strings expected"))?;
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                k.parse().map_err(|_| a.bad(2, format!("option 'headers': invalid header name \"{k}\"")))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|_| a.bad(2, format!("option 'headers': invalid value for \"{k}\"")))?;
            request.headers_mut().insert(name, value);
        }
    }
    let protocols = string_list(&a, 2, &o, "protocols")?;
    if !protocols.is_empty() {
        let v =
            HeaderValue::from_str(&protocols.join(", ")).map_err(|_| a.bad(2, "option 'protocols': invalid name"))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", v);
    }
    let cfg = config(&o)?;
    let timeout = o.timeout("timeout")?;
    let mut copts = ConnectOpts::default();
    copts.timeout = timeout;
    if secure {
        let tls = match o.value("tls") {
            LuaValue::Nil => LuaValue::Boolean(true),
            v => v,
        };
        copts.tls = crate::tls::client_opts(tls, &a, 2)?;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let connecting = tcp::connect(lua, host, port, copts)?;
    let lua = lua.clone();
    let handshake = async move {
        let stream = connecting.await?;
        let (peer, local) = (stream.0.peer.clone(), stream.0.local.clone());
        let transport = stream.0.take_transport().ok_or_else(|| NetError::closed("connect", "connection"))?;
        let (ws, resp) =
            tokio_tungstenite::client_async_with_config(request, transport, Some(cfg)).await.map_err(|e| match e {
                WsError::Http(r) => NetError::new(
                    Kind::Protocol,
                    format!("websocket upgrade to {url} refused (HTTP {})", r.status().as_u16()),
                ),
                WsError::Io(io) => NetError::io("websocket handshake with", &url, &io),
                other => NetError::new(Kind::Protocol, format!("websocket handshake with {url} failed ({other})")),
            })?;
        let sub = resp.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
        userdata(&lua, WebSocket::new(ws, peer, local, sub))
    };
    Ok(async move {
        match timeout {
            None => handshake.await,
            Some(d) => tokio::time::timeout(d, handshake)
                .await
                .map_err(|_| NetError::timeout("websocket connect to", "", d))?,
        }
    })
}

/// A WebSocket server: a TCP (or TLS) listener whose `accept` also does the upgrade.
pub struct Server {
    listener: Rc<listener::Inner>,
    config: WebSocketConfig,
    protocols: Rc<Vec<String>>,
}

fn server_this(a: &Args) -> NResult<mlua::UserDataRef<Server>> {
    a.this::<Server>("websocket server")
}

/// Accepts one connection and upgrades it; a client that fails the handshake is dropped and the
/// next one is awaited, so one bad client is not an error of the server.
async fn accept(
    lua: Lua,
    l: Rc<listener::Inner>,
    cfg: WebSocketConfig,
    protocols: Rc<Vec<String>>,
) -> NResult<LuaAnyUserData> {
    loop {
        let stream = listener::accept(&l).await?;
        let (peer, local) = (stream.0.peer.clone(), stream.0.local.clone());
        let Some(transport) = stream.0.take_transport() else { continue };
        let chosen = std::cell::RefCell::new(None::<String>);
        let pick = |req: &Request, mut resp: Response| {
            let offered = req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
            let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
            if let Some(p) = protocols.iter().find(|p| offered.contains(&p.as_str())) {
                if let Ok(v) = HeaderValue::from_str(p) {
                    resp.headers_mut().insert("Sec-WebSocket-Protocol", v);
                    *chosen.borrow_mut() = Some(p.clone());
                }
            }
            Ok(resp)
        };
        let hs = tokio_tungstenite::accept_hdr_async_with_config(transport, pick, Some(cfg));
        if let Ok(Ok(ws)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, hs).await {
            let sub = chosen.borrow_mut().take();
            return userdata(&lua, WebSocket::new(ws, peer, local, sub));
        }
    }
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    socket::register(lua)?;
    let methods = lua.create_table()?;
    methods.set(
        "accept",
        async_func(lua, "accept", |lua, a| {
            let s = server_this(&a)?;
            Ok(accept(lua.clone(), s.listener.clone(), s.config, s.protocols.clone()))
        })?,
    )?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(server_this(&a)?.listener.local.clone()))?)?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            server_this(&a)?.listener.set_timeout(a.timeout(2)?);
            Ok(())
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            server_this(&a)?.listener.close();
            Ok(())
        })?,
    )?;
    let getters = lua.create_table()?;
    getters.set(
        "port",
        lua.create_function(|_, ud: LuaAnyUserData| {
            let s = ud.borrow::<Server>()?;
            Ok(s.listener.local.parse::<std::net::SocketAddr>().map(|a| a.port()).ok())
        })?,
    )?;
    register_type::<Server>(lua, methods, Some(getters), |s| format!("ws.server{{{}}}", s.listener.local))?;

    let ws = lua.create_table()?;
    let connect_fn = async_func(lua, "net.ws.connect", connect)?;
    ws.set("connect", connect_fn.clone())?;
    net.set("socket", connect_fn)?;
    ws.set(
        "listen",
        func(lua, "net.ws.listen", |lua, a| {
            let (l, o) = tcp::bind_listener(lua, &a)?;
            let pos = if matches!(a.get(1), LuaValue::Integer(_) | LuaValue::Number(_)) { 2 } else { 3 };
            let protocols = string_list(&a, pos, &o, "protocols")?;
            let server = Server { listener: l.0.clone(), config: config(&o)?, protocols: Rc::new(protocols) };
            userdata(lua, server)
        })?,
    )?;
    net.set("ws", ws)?;
    Ok(())
}
