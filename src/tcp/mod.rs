//! `net.tcp`: `connect`, `listen`, `connect_timeout`, and `net.is_port_open`.
//!
//! Connecting resolves the name (bounded, see `dns.rs`), then tries each address in turn; the
//! connect timeout covers the lookup and every attempt. Streams have `TCP_NODELAY` on unless
//! `nodelay = false`: scripts write small messages and expect them to leave at once.

mod fast;
pub mod listener;
pub mod sockopt;
pub mod stream;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mlua::prelude::*;
use tokio::net::TcpSocket;

use crate::dns::{self, Family};
use crate::error::{Kind, NResult, NetError};
use crate::export::{async_func, func, userdata, Args, Opts};
use crate::io::acceptor::Listening;
use crate::io::{Connection, Transport};
use crate::runtime::sched;
use listener::Listener;
use stream::Stream;

/// Default for `net.is_port_open` when no timeout is given.
const PORT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct ConnectOpts {
    pub timeout: Option<Duration>,
    pub tls: Option<crate::tls::ClientOpts>,
    ttl: Option<u32>,
    nodelay: bool,
    /// `recvbuf`, `sendbuf`, `linger`, `keepalive`: set before connecting.
    pub sock: sockopt::SockOpts,
    bind: Option<SocketAddr>,
}

impl ConnectOpts {
    /// Reads the third argument of `connect`: an options table, `true` (TLS), or nothing.
    pub fn parse(args: &Args, pos: usize) -> NResult<Self> {
        if let LuaValue::Boolean(tls) = args.get(pos) {
            // Lune's shorthand: connect(host, port, true) is {tls = true}
            return Ok(ConnectOpts { tls: tls.then(crate::tls::ClientOpts::default), ..Default::default() });
        }
        Self::from_opts(&args.opts(pos)?)
    }

    fn from_opts(o: &Opts) -> NResult<Self> {
        let bind = match o.string("bind")? {
            None => None,
            Some(b) => Some(
                parse_bind(&b).ok_or_else(|| o.bad("bind", format!("\"ip\" or \"ip:port\" expected, got \"{b}\"")))?,
            ),
        };
        Ok(ConnectOpts {
            timeout: o.timeout("timeout")?,
            tls: crate::tls::client_opts(o, "tls")?,
            ttl: o.int_in("ttl", 1, 255)?.map(|n| n as u32),
            nodelay: o.boolean("nodelay")?.unwrap_or(true),
            sock: sockopt::SockOpts::from_opts(o)?,
            bind,
        })
    }
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts { timeout: None, tls: None, ttl: None, nodelay: true, sock: Default::default(), bind: None }
    }
}

fn parse_bind(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| dns::literal(s).map(|ip| SocketAddr::new(ip, 0)))
}

/// `host:port` as a user writes it (IPv6 in brackets).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn connect_one(addr: SocketAddr, o: &ConnectOpts) -> std::io::Result<tokio::net::TcpStream> {
    let sock = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(b) = o.bind {
        sock.bind(b)?;
    }
    // Before connecting: the receive buffer's size decides the window scale the SYN offers.
    o.sock.apply(socket2::SockRef::from(&sock))?;
    let s = sock.connect(addr).await?;
    s.set_nodelay(o.nodelay)?;
    if let Some(ttl) = o.ttl {
        let r = socket2::SockRef::from(&s);
        if addr.is_ipv4() {
            r.set_ttl_v4(ttl)?
        } else {
            r.set_unicast_hops_v6(ttl)?
        }
    }
    Ok(s)
}

/// Prepares a connection (argument checks and the DNS lookup's set-up happen now, on the
/// caller's coroutine) and returns the future that makes it.
pub fn connect(
    lua: &Lua,
    host: String,
    port: u16,
    o: ConnectOpts,
) -> NResult<impl std::future::Future<Output = NResult<Connection>>> {
    let lookup = dns::lookup(lua, &host, Family::Any, o.timeout)?;
    let tls = match &o.tls {
        Some(t) => Some((crate::tls::client(t)?, t.clone())),
        None => None,
    };
    let target = host_port(&host, port);
    let shown = target.clone();
    let limit = o.timeout;
    // Boxed: each async wrapper around a future it awaits (the timeout below, the Lua call's)
    // takes room for it twice, so inline this would make a connect in flight cost ~26 KB.
    let attempt = Box::pin(async move {
        let ips: Vec<IpAddr> = lookup.await?;
        let mut last = None;
        for ip in ips {
            let addr = SocketAddr::new(ip, port);
            match connect_one(addr, &o).await {
                Ok(s) => {
                    let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    let t = match &tls {
                        None => Transport::tcp(s),
                        Some((c, opts)) => {
                            // Boxed, so plain TCP connects do not carry the handshake's state.
                            let handshake = Box::pin(crate::tls::connect(c, opts, &host, &target, s));
                            Transport::tls(handshake.await?)
                        }
                    };
                    return Ok(Connection { transport: t, peer: addr.to_string(), local });
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("lookup returns at least one address");
        Err(NetError::io("connect to", &target, &e))
    });
    Ok(async move {
        match limit {
            None => attempt.await,
            Some(d) => {
                tokio::time::timeout(d, attempt).await.map_err(|_| NetError::timeout("connect to", &shown, d))?
            }
        }
    })
}

/// Where to listen: `listen(port)`, `listen(host, port)`, each with optional options after.
fn listen_args(args: &Args) -> NResult<(String, u16, usize)> {
    match args.get(1) {
        LuaValue::Integer(_) | LuaValue::Number(_)
            if !matches!(args.get(2), LuaValue::Integer(_) | LuaValue::Number(_)) =>
        {
            Ok(("0.0.0.0".into(), args.port(1)?, 2))
        }
        _ => Ok((args.string(1)?, args.port(2)?, 3)),
    }
}

/// Resolves a listen address without waiting on DNS: literals, `localhost`, `*`, or the system
/// resolver for anything else (rare for servers).
pub fn listen_addr(host: &str, port: u16) -> NResult<SocketAddr> {
    if let Some(ip) = dns::literal(host) {
        return Ok(SocketAddr::new(ip, port));
    }
    match host {
        "" | "*" => return Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        "localhost" => return Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        _ => {}
    }
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| NetError::new(Kind::Dns, format!("{host}: {}", crate::error::describe(&e))))?
        .next()
        .ok_or_else(|| NetError::new(Kind::Dns, format!("{host}: host not found")))
}

fn listen(lua: &Lua, args: Args) -> NResult<LuaAnyUserData> {
    let b = bind_listener(lua, &args)?;
    userdata(lua, Listener::new(b.sock, b.local, b.tls, b.max_connections))
}

/// A bound listening socket and the options every server reads.
pub struct Bound {
    pub sock: Listening,
    pub local: String,
    /// The `tls` option: connections go through the TLS handshake first.
    pub tls: Option<std::rc::Rc<crate::tls::Server>>,
    /// The `max_connections` option (see `io::acceptor`).
    pub max_connections: Option<usize>,
    /// The options table, for callers with options of their own (`net.ws.listen`).
    pub opts: Opts,
}

/// Binds the socket for `listen([host,] port[, opts])`.
pub fn bind_listener(lua: &Lua, args: &Args) -> NResult<Bound> {
    let (host, port, opos) = listen_args(args)?;
    bind(lua, &host, port, args.opts(opos)?, &[])
}

/// Binds a listening socket on `host:port` with the options every server reads (`tls`,
/// `reuseaddr`, `reuseport`, `backlog`, socket options, `max_connections`). `alpn` is what a
/// TLS server offers when its `tls` table names no `alpn` of its own.
pub fn bind(lua: &Lua, host: &str, port: u16, o: Opts, alpn: &[&str]) -> NResult<Bound> {
    let tls = crate::tls::server(&o, "tls", alpn)?;
    let reuseaddr = o.boolean("reuseaddr")?.unwrap_or(true);
    let reuseport = o.boolean("reuseport")?.unwrap_or(false);
    let backlog = o.int_in("backlog", 1, 65535)?.unwrap_or(1024) as i32;
    let sockopts = sockopt::SockOpts::from_opts(&o)?;
    let max_connections = o.int_in("max_connections", 1, i64::from(u32::MAX))?.map(|n| n as usize);
    let addr = listen_addr(host, port)?;
    let at = host_port(host, port);
    let fail = |e: std::io::Error| NetError::io("listen on", &at, &e);
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))
            .map_err(fail)?;
    sock.set_reuse_address(reuseaddr).map_err(fail)?;
    if reuseport {
        sock.set_reuse_port(true).map_err(fail)?;
    }
    // Set on the listening socket before `listen`: accepted sockets inherit them.
    sockopts.apply(socket2::SockRef::from(&sock)).map_err(fail)?;
    sock.bind(&addr.into()).map_err(fail)?;
    sock.listen(backlog).map_err(fail)?;
    sock.set_nonblocking(true).map_err(fail)?;
    let s = sched(lua);
    let _ctx = s.enter();
    let l = tokio::net::TcpListener::from_std(sock.into()).map_err(fail)?;
    let local = l.local_addr().map(|a| a.to_string()).unwrap_or(at);
    Ok(Bound { sock: Listening::Tcp(l), local, tls, max_connections, opts: o })
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    stream::register(lua, fast::methods(lua)?)?;
    listener::register(lua)?;
    let tcp = lua.create_table()?;
    tcp.set(
        "connect",
        async_func(lua, "net.tcp.connect", |lua, args| {
            let host = args.string(1)?;
            let port = args.port(2)?;
            let o = ConnectOpts::parse(&args, 3)?;
            let fut = connect(lua, host, port, o)?;
            let lua = lua.clone();
            Ok(async move { stream::into_lua(&lua, Stream::new(fut.await?)) })
        })?,
    )?;
    tcp.set(
        "connect_timeout",
        async_func(lua, "net.tcp.connect_timeout", |lua, args| {
            let host = args.string(1)?;
            let port = args.port(2)?;
            let timeout = args.timeout(3)?;
            let fut = connect(lua, host, port, ConnectOpts { timeout, ..Default::default() })?;
            let lua = lua.clone();
            Ok(async move { stream::into_lua(&lua, Stream::new(fut.await?)) })
        })?,
    )?;
    tcp.set("listen", func(lua, "net.tcp.listen", listen)?)?;
    net.set("tcp", tcp)?;
    net.set(
        "is_port_open",
        async_func(lua, "net.is_port_open", |lua, args| {
            let host = args.string(1)?;
            let port = args.port(2)?;
            let timeout = args.timeout(3)?.unwrap_or(PORT_CHECK_TIMEOUT);
            let fut = connect(lua, host, port, ConnectOpts { timeout: Some(timeout), ..Default::default() });
            Ok(async move {
                Ok(match fut {
                    Ok(f) => f.await.is_ok(), // dropping the connection closes it
                    Err(_) => false,
                })
            })
        })?,
    )?;
    // net.TCPSocket / net.TCPServer: the callback facade, thin Lua over the above.
    let arm = crate::runtime::run_at_exit::arm_function(lua)?;
    lua.load(include_str!("../lua/tcp_callbacks.lua")).set_name("=net.tcp.callbacks").call::<()>((net.clone(), arm))?;
    Ok(())
}
