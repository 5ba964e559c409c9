//! Error kinds and their messages (docs/api.md, "Errors").
//!
//! Every failure a Lua script can see is a `NetError`: a stable kind word plus a sentence naming
//! the operation and the peer. It reaches Lua as a plain string (`"refused: connect to
//! 127.0.0.1:9 (connection refused)"`), never as userdata, so scripts can `match` and concatenate
//! it. Argument errors have no kind word and read like Lua's own (`bad argument #1 to ...`).

use std::ffi::c_void;
use std::fmt;
use std::io;
use std::time::Duration;

use mlua::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Timeout,
    Refused,
    Reset,
    Closed,
    Dns,
    Tls,
    Unreachable,
    AddrInUse,
    Protocol,
    Limit,
    Io,
    Cancelled,
    /// A blocking call on the main thread was stopped by Ctrl-C (SIGINT; see runtime/signal.rs).
    Interrupted,
    /// The process lacks a privilege the call needs (packet capture without CAP_NET_RAW).
    Permission,
    /// The call cannot work on this system (packet capture off Linux).
    Unsupported,
    /// A wrong argument: a programming error, reported like Lua's `luaL_argerror`.
    Arg,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Timeout => "timeout",
            Kind::Refused => "refused",
            Kind::Reset => "reset",
            Kind::Closed => "closed",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::Unreachable => "unreachable",
            Kind::AddrInUse => "addrinuse",
            Kind::Protocol => "protocol",
            Kind::Limit => "limit",
            Kind::Io => "io",
            Kind::Cancelled => "cancelled",
            Kind::Interrupted => "interrupted",
            Kind::Permission => "permission",
            Kind::Unsupported => "unsupported",
            Kind::Arg => "",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NetError {
    pub kind: Kind,
    pub msg: String,
}

pub type NResult<T> = Result<T, NetError>;

impl NetError {
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        NetError { kind, msg: msg.into() }
    }

    /// `bad argument #2 to 'net.tcp.connect' (number expected, got string)`
    pub fn arg(pos: usize, func: &str, what: impl fmt::Display) -> Self {
        NetError::new(Kind::Arg, format!("bad argument #{pos} to '{func}' ({what})"))
    }

    /// `closed: write on a closed connection`
    pub fn closed(op: &str, what: &str) -> Self {
        NetError::new(Kind::Closed, format!("{op} on a closed {what}"))
    }

    pub fn timeout(op: &str, peer: &str, after: Duration) -> Self {
        let at = if peer.is_empty() { String::new() } else { format!(" {peer}") };
        NetError::new(Kind::Timeout, format!("{op}{at} timed out after {} ms", after.as_millis()))
    }

    /// An OS error during `op` with `peer` (e.g. `connect to 127.0.0.1:9`).
    pub fn io(op: &str, peer: &str, e: &io::Error) -> Self {
        let at = if peer.is_empty() { String::new() } else { format!(" {peer}") };
        NetError::new(kind_of(e), format!("{op}{at} ({})", describe(e)))
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Arg => f.write_str(&self.msg),
            k => write!(f, "{}: {}", k.word(), self.msg),
        }
    }
}

/// A failure inside mlua itself (out of memory, a broken registry): rare, reported as `io`.
impl From<mlua::Error> for NetError {
    fn from(e: mlua::Error) -> Self {
        NetError::new(Kind::Io, e.to_string())
    }
}

/// The kind word for an OS error.
pub fn kind_of(e: &io::Error) -> Kind {
    use io::ErrorKind as E;
    match e.kind() {
        E::ConnectionRefused => Kind::Refused,
        E::ConnectionReset | E::ConnectionAborted | E::BrokenPipe | E::UnexpectedEof => Kind::Reset,
        E::TimedOut => Kind::Timeout,
        E::AddrInUse => Kind::AddrInUse,
        E::NotConnected => Kind::Closed,
        E::HostUnreachable | E::NetworkUnreachable | E::NetworkDown => Kind::Unreachable,
        _ => Kind::Io,
    }
}

/// The OS's sentence without Rust's `(os error N)` suffix, starting lower case.
pub fn describe(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => "unknown error".into(),
    }
}

/// A value's type as Lua's argument errors name it (`no value`, `number`, ...).
pub fn type_name(v: &LuaValue) -> &'static str {
    match v {
        LuaValue::Nil => "no value",
        LuaValue::Integer(_) | LuaValue::Number(_) => "number",
        LuaValue::LightUserData(_) => "light userdata",
        v => v.type_name(),
    }
}

// ---- The error protocol between Rust functions and their Lua wrappers (docs/internals.md,
// "Errors"). It lives here so that the loop (`runtime`) needs nothing from `export`.

static FAIL_TAG: u8 = 0;
static PENDING_TAG: u8 = 0;

/// Returned first by a raw function that failed; the Lua wrapper raises the message after it.
pub fn fail_tag() -> LuaLightUserData {
    LuaLightUserData(&FAIL_TAG as *const u8 as *mut c_void)
}

/// Returned by a synchronous fast path that would have to wait; the Lua wrapper then calls the
/// async slow path.
pub fn pending_tag() -> LuaLightUserData {
    LuaLightUserData(&PENDING_TAG as *const u8 as *mut c_void)
}

/// Converts a result into what the Lua wrapper expects: the values, or `FAIL, message`.
pub fn to_lua<R: IntoLuaMulti>(lua: &Lua, r: NResult<R>) -> LuaResult<LuaMultiValue> {
    match r {
        Ok(v) => v.into_lua_multi(lua),
        Err(e) => (fail_tag(), e.to_string()).into_lua_multi(lua),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_get_kind_words_and_no_os_error_suffix() {
        let e = io::Error::from_raw_os_error(111); // ECONNREFUSED
        let n = NetError::io("connect to", "127.0.0.1:9", &e);
        assert_eq!(n.to_string(), "refused: connect to 127.0.0.1:9 (connection refused)");
        let e = io::Error::from_raw_os_error(98); // EADDRINUSE
        assert!(NetError::io("bind", "0.0.0.0:80", &e).to_string().starts_with("addrinuse: bind 0.0.0.0:80 ("));
    }

    #[test]
    fn argument_errors_read_like_lua() {
        let e = NetError::arg(2, "net.tcp.connect", "number expected, got string");
        assert_eq!(e.to_string(), "bad argument #2 to 'net.tcp.connect' (number expected, got string)");
    }

    #[test]
    fn timeouts_say_how_long() {
        let e = NetError::timeout("read from", "127.0.0.1:8080", Duration::from_millis(100));
        assert_eq!(e.to_string(), "timeout: read from 127.0.0.1:8080 timed out after 100 ms");
    }
}
