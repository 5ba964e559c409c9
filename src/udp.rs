//! `net.udp`: datagram sockets, connected mode, broadcast and multicast.
//!
//! `send` to an IP literal and `recv` of a datagram already queued answer synchronously; only a
//! name to resolve or an empty queue takes the async path. A datagram longer than `recv`'s
//! `max` is truncated (the rest is dropped by the kernel, as with every UDP API).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mlua::prelude::*;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use crate::dns::{self, Family};
use crate::error::{Kind, NResult, NetError};
use crate::export::{self, func, pending_tag, raw_async, register_type, Args};
use crate::runtime::sched;
use crate::tcp::{host_port, listen_addr};

const MAX_DATAGRAM: usize = 65535;

struct Inner {
    sock: RefCell<Option<UdpSocket>>,
    /// Reused receive buffer.
    scratch: RefCell<Vec<u8>>,
    timeout: Cell<Option<Duration>>,
    local: SocketAddr,
    peer: RefCell<Option<SocketAddr>>,
    waiters: crate::runtime::Waiters,
}

pub struct Udp(Rc<Inner>);

fn this(args: &Args) -> NResult<Rc<Inner>> {
    Ok(args.this::<Udp>("udp socket")?.0.clone())
}

/// The socket, or `closed: ...` once it is closed.
fn open(args: &Args, op: &str) -> NResult<Rc<Inner>> {
    let s = this(args)?;
    if s.sock.borrow().is_none() {
        return Err(s.closed(op));
    }
    Ok(s)
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl Inner {
    fn closed(&self, op: &str) -> NetError {
        NetError::closed(op, "udp socket")
    }

    fn with<R>(&self, op: &str, f: impl FnOnce(&UdpSocket) -> std::io::Result<R>) -> NResult<R> {
        let s = self.sock.borrow();
        let s = s.as_ref().ok_or_else(|| self.closed(op))?;
        f(s).map_err(|e| NetError::io(op, &self.local.to_string(), &e))
    }

    /// Receives one datagram (truncated to `max`) into the scratch buffer; returns its length and
    /// sender. `connected` receives only from the connected peer.
    fn poll_recv(&self, cx: &mut Context<'_>, max: usize, connected: bool) -> Poll<NResult<(usize, SocketAddr)>> {
        let s = self.sock.borrow();
        let Some(s) = s.as_ref() else { return Poll::Ready(Err(self.closed("recv"))) };
        let mut buf = self.scratch.borrow_mut();
        if buf.len() < max {
            buf.resize(max, 0);
        }
        let mut rb = ReadBuf::new(&mut buf[..max]);
        let r = if connected {
            let peer = *self.peer.borrow();
            match peer {
                None => {
                    return Poll::Ready(Err(NetError::new(
                        Kind::Closed,
                        "recv_connected: the socket is not connected (call connect first)",
                    )))
                }
                Some(p) => s.poll_recv(cx, &mut rb).map_ok(|()| p),
            }
        } else {
            s.poll_recv_from(cx, &mut rb)
        };
        match r {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(from)) => Poll::Ready(Ok((rb.filled().len(), from))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(NetError::io("recv on", &self.local.to_string(), &e))),
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, data: &[u8], to: Option<SocketAddr>) -> Poll<NResult<usize>> {
        let s = self.sock.borrow();
        let Some(s) = s.as_ref() else { return Poll::Ready(Err(self.closed("send"))) };
        let r = match to {
            Some(a) => s.poll_send_to(cx, data, a),
            None => s.poll_send(cx, data),
        };
        r.map_err(|e| {
            let dest = to.or(*self.peer.borrow()).map(|a| a.to_string()).unwrap_or_default();
            NetError::io("send to", &dest, &e)
        })
    }

    /// The family to resolve names in so the address fits this socket.
    fn family(&self) -> Family {
        if self.local.is_ipv4() {
            Family::V4
        } else {
            Family::Any
        }
    }

    /// Maps an IPv4 destination onto an IPv6 socket.
    fn fit(&self, ip: IpAddr, port: u16) -> SocketAddr {
        match (self.local, ip) {
            (SocketAddr::V6(_), IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), port),
            _ => SocketAddr::new(ip, port),
        }
    }

    async fn timed<T>(&self, op: &str, fut: impl std::future::Future<Output = NResult<T>>) -> NResult<T> {
        match self.timeout.get() {
            None => fut.await,
            Some(d) => {
                tokio::time::timeout(d, fut).await.map_err(|_| NetError::timeout(op, &self.local.to_string(), d))?
            }
        }
    }
}

fn recv_max(args: &Args) -> NResult<usize> {
    Ok(args.opt_int_in(2, 1, MAX_DATAGRAM as i64)?.unwrap_or(MAX_DATAGRAM as i64) as usize)
}

/// (data, host, port) or just data for connected receives.
fn recv_result(lua: &Lua, s: &Inner, n: usize, from: SocketAddr, connected: bool) -> LuaResult<LuaMultiValue> {
    // The scratch buffer is taken out while the string is made: that may run a finalizer that
    // receives on this same socket (it then gets a buffer of its own).
    let buf = std::mem::take(&mut *s.scratch.borrow_mut());
    let data = lua.create_string(&buf[..n]);
    let mut slot = s.scratch.borrow_mut();
    if slot.capacity() < buf.capacity() {
        *slot = buf;
    }
    drop(slot);
    let data = data?;
    if connected {
        return data.into_lua_multi(lua);
    }
    let ip = match from.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        ip => ip,
    };
    (data, ip.to_string(), from.port()).into_lua_multi(lua)
}

fn try_recv(lua: &Lua, args: Args, connected: bool) -> LuaResult<LuaMultiValue> {
    let r = this(&args).and_then(|s| Ok((recv_max(&args)?, s)));
    let (max, s) = match r {
        Ok(v) => v,
        Err(e) => return export::to_lua::<()>(lua, Err(e)),
    };
    match s.poll_recv(&mut noop_cx(), max, connected) {
        Poll::Pending => pending_tag().into_lua_multi(lua),
        Poll::Ready(Ok((n, from))) => recv_result(lua, &s, n, from, connected),
        Poll::Ready(Err(e)) => export::to_lua::<()>(lua, Err(e)),
    }
}

fn wait_recv(
    lua: &Lua,
    args: Args,
    connected: bool,
) -> NResult<impl std::future::Future<Output = NResult<LuaMultiValue>>> {
    let s = this(&args)?;
    let max = recv_max(&args)?;
    let lua = lua.clone();
    Ok(async move {
        let (n, from) = s
            .timed(
                "recv on",
                poll_fn(|cx| {
                    let r = s.poll_recv(cx, max, connected);
                    s.waiters.pending(cx, r)
                }),
            )
            .await?;
        recv_result(&lua, &s, n, from, connected).map_err(NetError::from)
    })
}

/// The destination of `send(data, host, port)` when it needs no lookup.
fn literal_dest(s: &Inner, args: &Args) -> NResult<Option<SocketAddr>> {
    let host = args.string(3)?;
    let port = args.port(4)?;
    Ok(dns::literal(&host).map(|ip| s.fit(ip, port)))
}

fn try_send(lua: &Lua, args: Args, connected: bool) -> LuaResult<LuaMultiValue> {
    let r = (|| {
        let s = this(&args)?;
        let data = args.bytes(2)?;
        let to = if connected {
            None
        } else {
            match literal_dest(&s, &args)? {
                Some(a) => Some(a),
                None => return Ok(None), // a name: resolve on the async path
            }
        };
        Ok(Some((s, data, to)))
    })();
    match r {
        Ok(Some((s, data, to))) => match s.poll_send(&mut noop_cx(), &data, to) {
            Poll::Pending => pending_tag().into_lua_multi(lua),
            Poll::Ready(r) => export::to_lua(lua, r),
        },
        Ok(None) => pending_tag().into_lua_multi(lua),
        Err(e) => export::to_lua::<()>(lua, Err(e)),
    }
}

fn wait_send(lua: &Lua, args: Args, connected: bool) -> NResult<impl std::future::Future<Output = NResult<usize>>> {
    let s = this(&args)?;
    let data = args.bytes(2)?;
    let lookup = if connected {
        None
    } else {
        let host = args.string(3)?;
        let port = args.port(4)?;
        Some((dns::lookup(lua, &host, s.family(), s.timeout.get())?, port))
    };
    Ok(async move {
        let to = match lookup {
            None => None,
            Some((l, port)) => Some(s.fit(l.await?[0], port)),
        };
        s.timed(
            "send to",
            poll_fn(|cx| {
                let r = s.poll_send(cx, &data, to);
                s.waiters.pending(cx, r)
            }),
        )
        .await
    })
}

fn bind(lua: &Lua, args: Args) -> NResult<LuaAnyUserData> {
    let (host, port, opos) = match args.get(1) {
        LuaValue::Integer(_) | LuaValue::Number(_) => ("0.0.0.0".to_string(), args.port(1)?, 2),
        LuaValue::Nil => ("0.0.0.0".to_string(), 0, 2),
        _ => (args.string(1)?, args.opt_int_in(2, 0, 65535)?.unwrap_or(0) as u16, 3),
    };
    let o = args.opts(opos)?;
    let addr = listen_addr(&host, port)?;
    let at = host_port(&host, port);
    let fail = |e: std::io::Error| NetError::io("bind", &at, &e);
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
            .map_err(fail)?;
    if o.boolean("reuseaddr")?.unwrap_or(false) {
        sock.set_reuse_address(true).map_err(fail)?;
    }
    if o.boolean("reuseport")?.unwrap_or(false) {
        sock.set_reuse_port(true).map_err(fail)?;
    }
    if o.boolean("broadcast")?.unwrap_or(false) {
        sock.set_broadcast(true).map_err(fail)?;
    }
    sock.bind(&addr.into()).map_err(fail)?;
    sock.set_nonblocking(true).map_err(fail)?;
    let sc = sched(lua);
    let _ctx = sc.enter();
    let u = UdpSocket::from_std(sock.into()).map_err(fail)?;
    let local = u.local_addr().map_err(fail)?;
    let inner = Inner {
        sock: RefCell::new(Some(u)),
        scratch: RefCell::new(Vec::new()),
        timeout: Cell::new(None),
        local,
        peer: RefCell::new(None),
        waiters: Default::default(),
    };
    lua.create_any_userdata(Udp(Rc::new(inner))).map_err(NetError::from)
}

fn multicast(args: &Args, join: bool) -> NResult<()> {
    let s = this(args)?;
    let op = if join { "join_multicast" } else { "leave_multicast" };
    let group = args.string(2)?;
    let group: IpAddr = dns::literal(&group)
        .filter(|ip| ip.is_multicast())
        .ok_or_else(|| args.bad(2, format!("multicast group address expected, got \"{group}\"")))?;
    match group {
        IpAddr::V4(g) => {
            let iface = match args.opt_string(3)? {
                None => Ipv4Addr::UNSPECIFIED,
                Some(i) => {
                    i.parse().map_err(|_| args.bad(3, format!("IPv4 interface address expected, got \"{i}\"")))?
                }
            };
            s.with(op, |u| if join { u.join_multicast_v4(g, iface) } else { u.leave_multicast_v4(g, iface) })
        }
        IpAddr::V6(g) => {
            let iface = args.opt_int_in(3, 0, i64::from(u32::MAX))?.unwrap_or(0) as u32;
            s.with(op, |u| if join { u.join_multicast_v6(&g, iface) } else { u.leave_multicast_v6(&g, iface) })
        }
    }
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let fast: LuaTable = crate::export::fast_paths(lua)?;
    let method3: LuaFunction = fast.get("method3")?;
    let method1: LuaFunction = fast.get("method")?;
    let varargs: LuaFunction = fast.get("varargs")?;
    let methods = lua.create_table()?;

    for (name, connected) in [("recv", false), ("recv_connected", true)] {
        let t = lua.create_function(move |lua, a: LuaMultiValue| try_recv(lua, Args::new(name, a), connected))?;
        let w = raw_async(lua, name, move |lua, a| wait_recv(lua, a, connected))?;
        let wrapper = if connected { &method1 } else { &method3 };
        methods.set(name, wrapper.call::<LuaFunction>((t, w))?)?;
    }
    for (name, connected) in [("send", false), ("send_connected", true)] {
        let t = lua.create_function(move |lua, a: LuaMultiValue| try_send(lua, Args::new(name, a), connected))?;
        let w = raw_async(lua, name, move |lua, a| wait_send(lua, a, connected))?;
        methods.set(name, varargs.call::<LuaFunction>((t, w))?)?;
    }
    methods.set(
        "connect",
        export::async_func(lua, "connect", |lua, args| {
            let s = this(&args)?;
            let host = args.string(2)?;
            let port = args.port(3)?;
            let lookup = dns::lookup(lua, &host, s.family(), s.timeout.get())?;
            Ok(async move {
                let addr = s.fit(lookup.await?[0], port);
                // A UDP connect only records the peer: do it synchronously on the socket.
                s.with("connect", |u| socket2::SockRef::from(u).connect(&addr.into()))?;
                *s.peer.borrow_mut() = Some(addr);
                Ok(())
            })
        })?,
    )?;
    methods.set(
        "set_broadcast",
        func(lua, "set_broadcast", |_, a| {
            let on = a.boolean(2)?;
            this(&a)?.with("set_broadcast", |u| u.set_broadcast(on))
        })?,
    )?;
    methods.set(
        "set_ttl",
        func(lua, "set_ttl", |_, a| {
            let ttl = a.int_in(2, 1, 255)? as u32;
            let s = this(&a)?;
            s.with("set_ttl", |u| {
                if s.local.is_ipv4() {
                    u.set_ttl(ttl)?;
                    u.set_multicast_ttl_v4(ttl)
                } else {
                    socket2::SockRef::from(u).set_unicast_hops_v6(ttl)
                }
            })
        })?,
    )?;
    methods.set("join_multicast", func(lua, "join_multicast", |_, a| multicast(&a, true))?)?;
    methods.set("leave_multicast", func(lua, "leave_multicast", |_, a| multicast(&a, false))?)?;
    methods.set(
        "set_timeout",
        func(lua, "set_timeout", |_, a| {
            let t = a.timeout(2)?;
            open(&a, "set_timeout")?.timeout.set(t);
            Ok(())
        })?,
    )?;
    methods.set("local_addr", func(lua, "local_addr", |_, a| Ok(open(&a, "local_addr")?.local.to_string()))?)?;
    methods.set(
        "close",
        func(lua, "close", |_, a| {
            let s = this(&a)?;
            drop(s.sock.borrow_mut().take());
            s.waiters.wake_all();
            Ok(())
        })?,
    )?;
    let getters = lua.create_table()?;
    getters
        .set("ip", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Udp>()?.0.local.ip().to_string()))?)?;
    getters.set("port", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Udp>()?.0.local.port()))?)?;
    register_type::<Udp>(lua, methods, Some(getters), |u| {
        let closed = if u.0.sock.borrow().is_none() { ", closed" } else { "" };
        match *u.0.peer.borrow() {
            Some(p) => format!("udp{{{} -> {p}{closed}}}", u.0.local),
            None => format!("udp{{{}{closed}}}", u.0.local),
        }
    })?;

    let udp = lua.create_table()?;
    udp.set("bind", func(lua, "net.udp.bind", bind)?)?;
    net.set("udp", udp)?;
    Ok(())
}
