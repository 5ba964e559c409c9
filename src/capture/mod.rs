//! `net.capture`: packet capture on Linux (docs/api.md, "Packet capture"; docs/internals.md,
//! "Packet capture").
//!
//! `net.capture.open(iface, opts)` makes a capture object over an AF_PACKET socket
//! (`socket.rs`) registered with the loop. `next` reads frames, drops what the filter
//! (`filter.rs`) rejects and loopback's second copy of each packet, decodes the rest
//! (`parse.rs`) and returns one packet table. The callback style (`on_packet`, `start`, `stop`)
//! is Lua over `next` and `net.spawn` (`src/lua/capture.lua`). Off Linux, `open` raises
//! `unsupported: ...`.

pub mod filter;
pub mod parse;
#[cfg(target_os = "linux")]
mod socket;

#[cfg(not(target_os = "linux"))]
pub fn register(lua: &mlua::Lua, net: &mlua::Table) -> mlua::Result<()> {
    use crate::error::{Kind, NetError};
    let capture = lua.create_table()?;
    capture.set(
        "open",
        crate::export::func(lua, "net.capture.open", |_, _| -> crate::error::NResult<()> {
            Err(NetError::new(Kind::Unsupported, "packet capture needs Linux (AF_PACKET sockets)"))
        })?,
    )?;
    net.set("capture", capture)?;
    Ok(())
}

#[cfg(target_os = "linux")]
pub use linux::register;

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::future::poll_fn;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use mlua::prelude::*;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use super::filter::{self, Filter};
    use super::parse::{self, flag_names, Link, Packet};
    use super::socket::{self, Frame};
    use crate::error::{NResult, NetError};
    use crate::export::{self, func, pending_tag, raw_async, register_type, Args};
    use crate::runtime::{sched, Waiters};

    /// The largest `snaplen`, and the default: more than loopback's 64 KiB frames.
    const MAX_SNAPLEN: i64 = 262_144;
    /// The default kernel receive buffer: what may wait while Lua is busy before the kernel drops.
    const DEFAULT_RECVBUF: i64 = 2 * 1024 * 1024;
    /// Frames read in one poll before letting the loop run other work (a busy interface whose
    /// packets the filter rejects must not hold the loop).
    const BUDGET: usize = 64;

    struct Inner {
        fd: RefCell<Option<AsyncFd<OwnedFd>>>,
        /// The interface name given (`"any"` for all).
        iface: String,
        /// The filter as given, for `tostring`.
        filter_src: Option<String>,
        filter: Filter,
        snaplen: usize,
        /// Reused receive buffer, `snaplen` bytes.
        scratch: RefCell<Vec<u8>>,
        /// Interface names by index, for `p.iface` on captures of all interfaces.
        names: RefCell<HashMap<i32, Rc<str>>>,
        waiters: Waiters,
        /// Kernel counters so far (reading them resets the kernel's): received, dropped.
        kernel: Cell<(u64, u64)>,
        /// Packets handed to Lua.
        delivered: Cell<u64>,
    }

    pub struct Capture(Rc<Inner>);

    /// A packet ready to become a Lua table: all Rust work is done before Lua runs
    /// (docs/internals.md, "Fast paths and finalizers").
    struct Captured {
        bytes: Vec<u8>,
        frame: Frame,
        packet: Packet,
        iface: Rc<str>,
    }

    fn link_of(hatype: u16) -> Link {
        match hatype {
            libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Link::Ethernet,
            // Interfaces without a link header: tun, raw IP, PPP, IP-in-IP and SIT tunnels.
            libc::ARPHRD_NONE
            | 519
            | libc::ARPHRD_PPP
            | libc::ARPHRD_TUNNEL
            | libc::ARPHRD_TUNNEL6
            | libc::ARPHRD_SIT => Link::RawIp,
            _ => Link::Other,
        }
    }

    impl Inner {
        fn closed(&self, op: &str) -> NetError {
            NetError::closed(op, "capture")
        }

        fn iface_name(&self, index: i32) -> Rc<str> {
            if let Some(n) = self.names.borrow().get(&index) {
                return n.clone();
            }
            let n: Rc<str> = socket::ifname(index).unwrap_or_else(|| index.to_string()).into();
            let mut names = self.names.borrow_mut();
            if names.len() > 256 {
                names.clear(); // interfaces come and go (containers): keep the cache bounded
            }
            names.insert(index, n.clone());
            n
        }

        /// Reads frames until one passes; `Ok(None)` once the capture is closed.
        fn poll_packet(&self, cx: &mut Context<'_>) -> Poll<NResult<Option<Captured>>> {
            for _ in 0..BUDGET {
                let got = {
                    let fd = self.fd.borrow();
                    let Some(fd) = fd.as_ref() else { return Poll::Ready(Ok(None)) };
                    let mut guard = match fd.poll_read_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(g)) => g,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(NetError::io("capture on", &self.iface, &e))),
                    };
                    let mut buf = self.scratch.borrow_mut();
                    match guard.try_io(|fd| socket::recv(fd.as_raw_fd(), &mut buf)) {
                        Err(_would_block) => continue,
                        Ok(Err(e)) => return Poll::Ready(Err(NetError::io("capture on", &self.iface, &e))),
                        Ok(Ok(frame)) => {
                            // Loopback hands a packet socket every packet twice, as it leaves and as
                            // it arrives; keep the arrival, as tcpdump does.
                            if frame.pkttype == libc::PACKET_OUTGOING && frame.hatype == libc::ARPHRD_LOOPBACK {
                                continue;
                            }
                            let bytes = &buf[..frame.caplen];
                            let packet = parse::parse(link_of(frame.hatype), bytes);
                            if !self.filter.matches(&packet) {
                                continue;
                            }
                            (bytes.to_vec(), frame, packet)
                        }
                    }
                };
                let (bytes, frame, packet) = got;
                let iface = self.iface_name(frame.ifindex);
                self.delivered.set(self.delivered.get() + 1);
                return Poll::Ready(Ok(Some(Captured { bytes, frame, packet, iface })));
            }
            // Budget spent on rejected frames: let the loop run, then come back.
            cx.waker().wake_by_ref();
            Poll::Pending
        }

        fn stats(&self) -> NResult<(u64, u64)> {
            let fd = self.fd.borrow();
            let fd = fd.as_ref().ok_or_else(|| self.closed("stats"))?;
            let (r, d) =
                socket::take_stats(fd.as_raw_fd()).map_err(|e| NetError::io("stats of capture on", &self.iface, &e))?;
            let (tr, td) = self.kernel.get();
            self.kernel.set((tr + r, td + d));
            Ok(self.kernel.get())
        }
    }

    /// The packet table (docs/api.md, "Packet capture").
    fn packet_table(lua: &Lua, c: Captured) -> LuaResult<LuaTable> {
        let Captured { bytes, frame, packet: p, iface } = c;
        let t = lua.create_table_with_capacity(0, 20)?;
        t.raw_set("protocol", p.protocol.name())?;
        if let Some(a) = p.src {
            t.raw_set("src", a.to_string())?;
        }
        if let Some(a) = p.dst {
            t.raw_set("dst", a.to_string())?;
        }
        t.raw_set("src_port", p.src_port)?;
        t.raw_set("dst_port", p.dst_port)?;
        t.raw_set("ip_version", p.ip_version)?;
        t.raw_set("ip_protocol", p.ip_protocol)?;
        if let Some(f) = p.tcp_flags {
            t.raw_set("flags", flag_names(f))?;
        }
        if let Some((ty, code)) = p.icmp {
            t.raw_set("icmp_type", ty)?;
            t.raw_set("icmp_code", code)?;
        }
        if let Some(r) = p.payload {
            // What the wire carried: the captured part plus what snaplen cut off the end.
            t.raw_set("length", r.len() + (frame.size - frame.caplen))?;
            t.raw_set("payload", lua.create_string(&bytes[r])?)?;
        }
        t.raw_set("size", frame.size)?;
        t.raw_set("time", frame.time)?;
        t.raw_set("iface", &*iface)?;
        t.raw_set("direction", if frame.pkttype == libc::PACKET_OUTGOING { "out" } else { "in" })?;
        t.raw_set("data", lua.create_string(&bytes)?)?;
        Ok(t)
    }

    fn this(args: &Args) -> NResult<Rc<Inner>> {
        Ok(args.this::<Capture>("capture")?.0.clone())
    }

    fn open_one(args: &Args, op: &str) -> NResult<Rc<Inner>> {
        let c = this(args)?;
        if c.fd.borrow().is_none() {
            return Err(c.closed(op));
        }
        Ok(c)
    }

    /// The synchronous try of `next`: a packet already queued, or PENDING.
    fn try_next(lua: &Lua, args: Args) -> LuaResult<LuaMultiValue> {
        let r = open_one(&args, "next").and_then(|c| args.timeout(2).map(|_| c));
        let c = match r {
            Ok(c) => c,
            Err(e) => return export::to_lua::<()>(lua, Err(e)),
        };
        let got = c.poll_packet(&mut Context::from_waker(Waker::noop()));
        match got {
            Poll::Pending => pending_tag().into_lua_multi(lua),
            Poll::Ready(Ok(Some(p))) => packet_table(lua, p)?.into_lua_multi(lua),
            Poll::Ready(Ok(None)) => export::to_lua::<()>(lua, Err(c.closed("next"))),
            Poll::Ready(Err(e)) => export::to_lua::<()>(lua, Err(e)),
        }
    }

    /// When a waiting `next` ends (a packet, a timeout, a cancel), the others are woken to
    /// register again: the socket's readiness holds one reader's waker at a time.
    struct WakeOthers(Rc<Inner>);
    impl Drop for WakeOthers {
        fn drop(&mut self) {
            self.0.waiters.wake_all();
        }
    }

    fn wait_next(lua: &Lua, args: Args) -> NResult<impl std::future::Future<Output = NResult<Option<LuaTable>>>> {
        let c = open_one(&args, "next")?;
        let timeout = args.timeout(2)?;
        let lua = lua.clone();
        Ok(async move {
            let _others = WakeOthers(c.clone());
            let wait = poll_fn(|cx| {
                let r = c.poll_packet(cx);
                c.waiters.pending(cx, r)
            });
            let got = match timeout {
                None => wait.await?,
                Some(d) => {
                    tokio::time::timeout(d, wait).await.map_err(|_| NetError::timeout("capture on", &c.iface, d))??
                }
            };
            match got {
                None => Ok(None), // closed while waiting
                Some(p) => Ok(Some(packet_table(&lua, p)?)),
            }
        })
    }

    fn open(lua: &Lua, args: Args) -> NResult<LuaAnyUserData> {
        let iface = match args.get(1) {
            LuaValue::Nil => "any".to_string(),
            LuaValue::String(_) => args.string(1)?,
            _ => return Err(args.expected(1, "interface name (string)")),
        };
        let o = args.opts(2)?;
        let filter_src = o.string("filter")?;
        let filter = filter::compile(filter_src.as_deref().unwrap_or("")).map_err(|e| o.bad("filter", e))?;
        let promiscuous = o.boolean("promiscuous")?.unwrap_or(false);
        let snaplen = o.int_in("snaplen", 64, MAX_SNAPLEN)?.unwrap_or(MAX_SNAPLEN) as usize;
        let recvbuf = o.int_in("recvbuf", 65_536, 1 << 30)?.unwrap_or(DEFAULT_RECVBUF) as usize;
        let index = if iface == "any" {
            if promiscuous {
                return Err(o.bad("promiscuous", "needs one interface, not \"any\""));
            }
            0
        } else {
            socket::ifindex(&iface).ok_or_else(|| {
                NetError::new(crate::error::Kind::Io, format!("capture on {iface}: no such network interface"))
            })?
        };
        let fd = socket::open(&iface, index, promiscuous, recvbuf)?;
        let sc = sched(lua);
        let _ctx = sc.enter();
        // SAFETY: the OwnedFd is moved into the AsyncFd, so the descriptor stays open and the
        // same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| NetError::io("capture on", &iface, &e.into()))?;
        let inner = Inner {
            fd: RefCell::new(Some(fd)),
            iface,
            filter_src,
            filter,
            snaplen,
            scratch: RefCell::new(vec![0; snaplen]),
            names: RefCell::new(HashMap::new()),
            waiters: Default::default(),
            kernel: Cell::new((0, 0)),
            delivered: Cell::new(0),
        };
        lua.create_any_userdata(Capture(Rc::new(inner))).map_err(NetError::from)
    }

    pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
        let fast: LuaTable = export::fast_paths(lua)?;
        let varargs: LuaFunction = fast.get("varargs")?;
        let methods = lua.create_table()?;
        let t = lua.create_function(|lua, a: LuaMultiValue| try_next(lua, Args::new("next", a)))?;
        let w = raw_async(lua, "next", wait_next)?;
        methods.set("next", varargs.call::<LuaFunction>((t, w))?)?;
        methods.set(
            "stats",
            func(lua, "stats", |lua, a| {
                let c = this(&a)?;
                let (received, dropped) = c.stats()?;
                let t = lua.create_table()?;
                t.raw_set("received", received)?;
                t.raw_set("dropped", dropped)?;
                t.raw_set("delivered", c.delivered.get())?;
                Ok(t)
            })?,
        )?;
        let raw_close = func(lua, "close", |_, a| {
            let c = this(&a)?;
            // Dropping the socket also ends promiscuous mode; waiting `next`s return nil.
            let fd = c.fd.borrow_mut().take();
            drop(fd);
            c.waiters.wake_all();
            Ok(())
        })?;
        // Per-capture Lua state (the callback, the running task) lives in the userdata's user
        // value, which the garbage collector traces: a callback that refers to its own capture
        // does not keep an unreferenced capture alive.
        let state = lua.create_function(|lua, ud: LuaValue| {
            let LuaValue::UserData(ud) = ud else { return Ok(None) };
            if !ud.is::<Capture>() {
                return Ok(None);
            }
            if let Ok(Some(t)) = ud.user_value::<Option<LuaTable>>() {
                return Ok(Some(t));
            }
            let t = lua.create_table()?;
            ud.set_user_value(&t)?;
            Ok(Some(t))
        })?;
        lua.load(include_str!("../lua/capture.lua")).set_name("=net.capture").call::<()>((
            net.clone(),
            methods.clone(),
            raw_close,
            state,
            crate::runtime::run_at_exit::arm_function(lua)?,
        ))?;
        let getters = lua.create_table()?;
        getters
            .set("iface", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Capture>()?.0.iface.clone()))?)?;
        getters.set(
            "filter",
            lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Capture>()?.0.filter_src.clone()))?,
        )?;
        getters.set("snaplen", lua.create_function(|_, ud: LuaAnyUserData| Ok(ud.borrow::<Capture>()?.0.snaplen))?)?;
        register_type::<Capture>(lua, methods, Some(getters), |c| {
            let c = &c.0;
            let filter = c.filter_src.as_deref().map(|f| format!(", filter {f:?}")).unwrap_or_default();
            let closed = if c.fd.borrow().is_none() { ", closed" } else { "" };
            format!("capture{{{}{filter}{closed}}}", c.iface)
        })?;
        let capture = lua.create_table()?;
        capture.set("open", func(lua, "net.capture.open", open)?)?;
        net.set("capture", capture)?;
        Ok(())
    }
}
