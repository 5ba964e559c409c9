//! The socket options scripts tune on TCP sockets: `recvbuf`, `sendbuf`, `linger` and
//! `keepalive` (with its idle time, probe interval and probe count).
//!
//! They are read once into a plain [`SockOpts`] (from an options table, or from one setter's
//! argument) and applied to any socket through a `socket2::SockRef`: before `connect` (so the
//! buffer sizes count for the TCP window), to a listening socket before `listen` (Linux and the
//! BSDs copy all of them to every accepted socket), or to a connected stream by its setters.
//! [`Effective`] reads back what the kernel actually uses (`stream:socket_options()`): Linux
//! doubles the buffer sizes it is given and caps them at `net.core.rmem_max`/`wmem_max`.
//!
//! Durations follow the rest of `net` (docs/api.md, "Options"): numbers are milliseconds, or
//! strings like `"60s"`. The kernel counts keepalive times in whole seconds, so other values
//! are refused rather than rounded.

use std::io;
use std::time::Duration;

use mlua::prelude::*;
use socket2::{SockRef, TcpKeepalive};

use crate::error::NResult;
use crate::export::{type_name, Args};
use crate::options::{timeout_value, Opts};

/// The largest buffer size a socket takes (the kernel's `int`).
const MAX_BUFFER: i64 = i32::MAX as i64;
/// Linux's limits for `TCP_KEEPIDLE`/`TCP_KEEPINTVL` (seconds) and `TCP_KEEPCNT`.
const MAX_KEEPALIVE_SECS: u64 = 32767;
const MAX_KEEPALIVE_COUNT: i64 = 127;
/// The keys of `keepalive = {...}`.
const KEEPALIVE_KEYS: &[&str] = &["idle", "interval", "count"];

/// `SO_KEEPALIVE` and its timers; an unset timer keeps the system's value (on Linux 7200 s idle,
/// 75 s between probes, 9 probes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keepalive {
    pub on: bool,
    pub idle: Option<Duration>,
    pub interval: Option<Duration>,
    pub count: Option<u32>,
}

/// What `close` does with data not yet sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linger {
    /// The default: `close` returns at once and the kernel sends what is left, then a FIN.
    Off,
    /// `linger = 0`: `close` drops what is left and sends a reset (RST) to the peer.
    Reset,
}

/// Socket options to apply; `None` leaves the socket's current value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOpts {
    pub recvbuf: Option<usize>,
    pub sendbuf: Option<usize>,
    pub linger: Option<Linger>,
    pub keepalive: Option<Keepalive>,
}

/// The buffer size argument of `set_recvbuf` / `set_sendbuf` (required).
fn size_arg(a: &Args) -> NResult<usize> {
    buffer_size(&a.get(2)).map_err(|e| a.bad(2, e))?.ok_or_else(|| a.expected(2, "integer"))
}

/// A buffer size in bytes: an integer in 1..2^31-1.
pub fn buffer_size(v: &LuaValue) -> Result<Option<usize>, String> {
    let n = match v {
        LuaValue::Nil => return Ok(None),
        LuaValue::Integer(n) => *n,
        LuaValue::Number(n) if n.fract() == 0.0 && n.is_finite() => *n as i64,
        v => return Err(format!("integer (bytes) expected, got {}", type_name(v))),
    };
    if !(1..=MAX_BUFFER).contains(&n) {
        return Err(format!("out of range: {n} is not in 1..{MAX_BUFFER}"));
    }
    Ok(Some(n as usize))
}

/// `linger`: `false` (the default graceful close) or `0` (reset on close). A positive linger is
/// refused: the kernel's `close` would then block the thread, and so every task, until the data
/// is sent or the time is up.
pub fn linger(v: &LuaValue) -> Result<Option<Linger>, String> {
    match v {
        LuaValue::Nil => Ok(None),
        LuaValue::Boolean(false) => Ok(Some(Linger::Off)),
        LuaValue::Boolean(true) => Err("false or 0 expected, got true".into()),
        v => match timeout_value(v)? {
            Some(d) if d.is_zero() => Ok(Some(Linger::Reset)),
            _ => Err(format!(
                "only 0 (reset on close) or false is supported, got {}: a longer linger makes close() \
                 block every task",
                match v {
                    LuaValue::String(s) => format!("\"{}\"", s.to_string_lossy()),
                    v => v.to_string().unwrap_or_default(),
                }
            )),
        },
    }
}

/// A keepalive timer: a duration of whole seconds in 1..32767 s.
fn keepalive_secs(k: &Opts, key: &str) -> NResult<Option<Duration>> {
    let Some(d) = k.timeout(key)? else { return Ok(None) };
    if d.subsec_nanos() != 0 || d.is_zero() || d.as_secs() > MAX_KEEPALIVE_SECS {
        return Err(k.bad(
            key,
            format!("whole seconds from 1 s to {MAX_KEEPALIVE_SECS} s expected, got {} ms", d.as_secs_f64() * 1000.0),
        ));
    }
    Ok(Some(d))
}

/// `keepalive`: `true`, `false`, or `{idle =, interval =, count =}` (on, with those timers).
/// `k` reads the table form (its errors name `keepalive.idle` and so on).
fn keepalive_of(
    v: &LuaValue,
    table: impl FnOnce() -> NResult<Option<Opts>>,
) -> Result<Option<Keepalive>, KeepaliveError> {
    match v {
        LuaValue::Nil => Ok(None),
        LuaValue::Boolean(on) => Ok(Some(Keepalive { on: *on, ..Default::default() })),
        LuaValue::Table(_) => {
            let k = table().map_err(KeepaliveError::Net)?.expect("a table");
            k.only(KEEPALIVE_KEYS).map_err(KeepaliveError::Net)?;
            let count = k.int_in("count", 1, MAX_KEEPALIVE_COUNT).map_err(KeepaliveError::Net)?.map(|n| n as u32);
            Ok(Some(Keepalive {
                on: true,
                idle: keepalive_secs(&k, "idle").map_err(KeepaliveError::Net)?,
                interval: keepalive_secs(&k, "interval").map_err(KeepaliveError::Net)?,
                count,
            }))
        }
        v => Err(KeepaliveError::Type(format!("boolean or table expected, got {}", type_name(v)))),
    }
}

/// Why a `keepalive` value was refused: its type (the caller names it), or a field of its table.
enum KeepaliveError {
    Type(String),
    Net(crate::error::NetError),
}

impl SockOpts {
    /// Reads `recvbuf`, `sendbuf`, `linger` and `keepalive` from an options table.
    pub fn from_opts(o: &Opts) -> NResult<Self> {
        Ok(SockOpts {
            recvbuf: buffer_size(&o.value("recvbuf")).map_err(|e| o.bad("recvbuf", e))?,
            sendbuf: buffer_size(&o.value("sendbuf")).map_err(|e| o.bad("sendbuf", e))?,
            linger: linger(&o.value("linger")).map_err(|e| o.bad("linger", e))?,
            keepalive: keepalive_of(&o.value("keepalive"), || o.table("keepalive")).map_err(|e| match e {
                KeepaliveError::Type(what) => o.bad("keepalive", what),
                KeepaliveError::Net(e) => e,
            })?,
        })
    }

    /// Applies the options that are set.
    pub fn apply(&self, s: SockRef<'_>) -> io::Result<()> {
        if let Some(n) = self.recvbuf {
            s.set_recv_buffer_size(n)?;
        }
        if let Some(n) = self.sendbuf {
            s.set_send_buffer_size(n)?;
        }
        match self.linger {
            None => {}
            Some(Linger::Off) => s.set_linger(None)?,
            Some(Linger::Reset) => s.set_linger(Some(Duration::ZERO))?,
        }
        if let Some(k) = self.keepalive {
            if !k.on {
                s.set_keepalive(false)?;
            } else {
                let mut p = TcpKeepalive::new();
                if let Some(d) = k.idle {
                    p = p.with_time(d);
                }
                if let Some(d) = k.interval {
                    p = p.with_interval(d);
                }
                if let Some(n) = k.count {
                    p = p.with_retries(n);
                }
                s.set_tcp_keepalive(&p)?;
            }
        }
        Ok(())
    }
}

/// The `keepalive` argument of `stream:set_keepalive(v)` (argument 2 of `set_keepalive`).
pub fn keepalive_arg(a: &Args) -> NResult<Keepalive> {
    let v = a.get(2);
    match keepalive_of(&v, || a.opts(2).map(Some)) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(a.expected(2, "boolean or table")),
        Err(KeepaliveError::Type(_)) => Err(a.expected(2, "boolean or table")),
        Err(KeepaliveError::Net(e)) => Err(e),
    }
}

/// The options a TCP socket has now, as the kernel reports them.
#[derive(Debug)]
pub struct Effective {
    pub nodelay: bool,
    pub keepalive: Keepalive,
    pub recvbuf: usize,
    pub sendbuf: usize,
    /// `None`: off; `Some(0)`: reset on close.
    pub linger: Option<Duration>,
    pub ttl: Option<u32>,
}

impl Effective {
    pub fn read(s: SockRef<'_>) -> io::Result<Self> {
        let on = s.keepalive()?;
        let keepalive = Keepalive {
            on,
            idle: Some(s.tcp_keepalive_time()?),
            interval: Some(s.tcp_keepalive_interval()?),
            count: Some(s.tcp_keepalive_retries()?),
        };
        Ok(Effective {
            nodelay: s.tcp_nodelay()?,
            keepalive,
            recvbuf: s.recv_buffer_size()?,
            sendbuf: s.send_buffer_size()?,
            linger: s.linger()?,
            ttl: s.ttl_v4().or_else(|_| s.unicast_hops_v6()).ok(),
        })
    }

    /// The table `stream:socket_options()` returns: the shape the options take, so it can be
    /// passed back (`keepalive` is `false` or its table of timers, `linger` `false` or 0,
    /// durations in milliseconds).
    pub fn to_table(&self, lua: &Lua) -> LuaResult<LuaTable> {
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as i64);
        let t = lua.create_table()?;
        t.set("nodelay", self.nodelay)?;
        if self.keepalive.on {
            let k = lua.create_table()?;
            k.set("idle", ms(self.keepalive.idle))?;
            k.set("interval", ms(self.keepalive.interval))?;
            k.set("count", self.keepalive.count)?;
            t.set("keepalive", k)?;
        } else {
            t.set("keepalive", false)?;
        }
        t.set("recvbuf", self.recvbuf)?;
        t.set("sendbuf", self.sendbuf)?;
        match self.linger {
            None => t.set("linger", false)?,
            Some(d) => t.set("linger", d.as_millis() as i64)?,
        }
        t.set("ttl", self.ttl)?;
        Ok(t)
    }
}

/// The stream methods for these options: `set_keepalive(true | false | {idle =, ...})`,
/// `set_recvbuf(bytes)`, `set_sendbuf(bytes)`, `set_linger(0 | false)`, and
/// `socket_options()`, which reads them all back (TCP and TLS streams only).
pub fn register_methods(lua: &Lua, methods: &LuaTable) -> LuaResult<()> {
    use super::stream::with_tcp_sock;
    use crate::export::func;

    fn setter(lua: &Lua, name: &'static str, read: fn(&Args) -> NResult<SockOpts>) -> LuaResult<LuaFunction> {
        func(lua, name, move |_, a| {
            let o = read(&a)?;
            with_tcp_sock(&a, name, |s| o.apply(s))
        })
    }
    methods.set(
        "set_keepalive",
        setter(lua, "set_keepalive", |a| Ok(SockOpts { keepalive: Some(keepalive_arg(a)?), ..Default::default() }))?,
    )?;
    methods.set(
        "set_recvbuf",
        setter(lua, "set_recvbuf", |a| Ok(SockOpts { recvbuf: Some(size_arg(a)?), ..Default::default() }))?,
    )?;
    methods.set(
        "set_sendbuf",
        setter(lua, "set_sendbuf", |a| Ok(SockOpts { sendbuf: Some(size_arg(a)?), ..Default::default() }))?,
    )?;
    methods.set(
        "set_linger",
        setter(lua, "set_linger", |a| {
            // nil, like false, puts back the default graceful close.
            let l = linger(&a.get(2)).map_err(|e| a.bad(2, e))?.unwrap_or(Linger::Off);
            Ok(SockOpts { linger: Some(l), ..Default::default() })
        })?,
    )?;
    methods.set(
        "socket_options",
        func(lua, "socket_options", |lua, a| {
            let e = with_tcp_sock(&a, "socket_options", Effective::read)?;
            e.to_table(lua).map_err(crate::error::NetError::from)
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(lua: &Lua, code: &str) -> Opts {
        Opts::new("net.tcp.connect", 3, Some(lua.load(code).eval::<LuaTable>().unwrap()))
    }

    fn err(lua: &Lua, code: &str) -> String {
        SockOpts::from_opts(&opts(lua, code)).unwrap_err().msg
    }

    #[test]
    fn reads_options() {
        let lua = Lua::new();
        assert_eq!(SockOpts::from_opts(&opts(&lua, "{}")).unwrap(), SockOpts::default());
        let o = SockOpts::from_opts(&opts(
            &lua,
            "{recvbuf = 65536, sendbuf = 4096.0, linger = 0, keepalive = {idle = '60s', interval = 10000, count = 5}}",
        ))
        .unwrap();
        assert_eq!(o.recvbuf, Some(65536));
        assert_eq!(o.sendbuf, Some(4096));
        assert_eq!(o.linger, Some(Linger::Reset));
        let k = Keepalive {
            on: true,
            idle: Some(Duration::from_secs(60)),
            interval: Some(Duration::from_secs(10)),
            count: Some(5),
        };
        assert_eq!(o.keepalive, Some(k));
        let o = SockOpts::from_opts(&opts(&lua, "{keepalive = false, linger = false}")).unwrap();
        assert_eq!(o.keepalive, Some(Keepalive::default()));
        assert_eq!(o.linger, Some(Linger::Off));
        let o = SockOpts::from_opts(&opts(&lua, "{keepalive = true, linger = '0s'}")).unwrap();
        assert_eq!(o.keepalive, Some(Keepalive { on: true, ..Default::default() }));
        assert_eq!(o.linger, Some(Linger::Reset));
        assert!(SockOpts::from_opts(&opts(&lua, "{keepalive = {}}")).unwrap().keepalive.unwrap().on);
    }

    #[test]
    fn errors_name_the_option() {
        let lua = Lua::new();
        let pre = "bad argument #3 to 'net.tcp.connect' (option ";
        assert_eq!(err(&lua, "{recvbuf = 'big'}"), format!("{pre}'recvbuf': integer (bytes) expected, got string)"));
        assert_eq!(err(&lua, "{sendbuf = 0}"), format!("{pre}'sendbuf': out of range: 0 is not in 1..2147483647)"));
        assert_eq!(
            err(&lua, "{sendbuf = 2^31}"),
            format!("{pre}'sendbuf': out of range: 2147483648 is not in 1..2147483647)")
        );
        assert_eq!(err(&lua, "{recvbuf = 1.5}"), format!("{pre}'recvbuf': integer (bytes) expected, got number)"));
        assert!(err(&lua, "{linger = 5000}")
            .starts_with(&format!("{pre}'linger': only 0 (reset on close) or false is supported, got 5000")));
        assert!(err(&lua, "{linger = '5s'}").contains("got \"5s\""));
        assert_eq!(err(&lua, "{linger = true}"), format!("{pre}'linger': false or 0 expected, got true)"));
        assert!(err(&lua, "{linger = -1}").contains("option 'linger': timeout must be a non-negative"));
        assert_eq!(err(&lua, "{keepalive = 1}"), format!("{pre}'keepalive': boolean or table expected, got number)"));
        assert_eq!(
            err(&lua, "{keepalive = {idle = 1500}}"),
            format!("{pre}'keepalive.idle': whole seconds from 1 s to 32767 s expected, got 1500 ms)")
        );
        assert!(err(&lua, "{keepalive = {interval = 0}}").contains("'keepalive.interval': whole seconds"));
        assert!(err(&lua, "{keepalive = {idle = '10h'}}").contains("got 36000000 ms"));
        assert!(err(&lua, "{keepalive = {idle = 'soon'}}").contains("'keepalive.idle': invalid duration 'soon'"));
        assert!(
            err(&lua, "{keepalive = {count = 128}}").contains("'keepalive.count': out of range: 128 is not in 1..127")
        );
        assert!(err(&lua, "{keepalive = {idel = '5s'}}")
            .contains("'keepalive.idel': unknown option (known: idle, interval, count)"));
    }
}
