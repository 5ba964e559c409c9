//! Options tables and durations: how `{timeout = "5s", tls = {ca_file = ...}}` is read.
//!
//! An [`Opts`] reads one table key by key with type checks whose errors name the option by its
//! full path (`bad argument #3 to 'connect' (option 'tls.ca_file': string expected, got number)`).
//! Tables nest: [`Opts::table`] gives the reader of a sub-table, which prefixes its keys' names.
//! Unknown keys are ignored at the top level (tables there may be shared with other libraries,
//! LuaSocket-style), but a nested table belongs to one option of ours, so [`Opts::only`] refuses
//! keys it does not know there: a typo such as `tls = {verfy = false}` raises instead of being
//! silently ignored (docs/api.md, "Options").
//!
//! Durations (`timeout_value`, `parse_duration`) are milliseconds as numbers, or strings such as
//! `"250ms"`, `"1.5s"`, `"1m30s"`.

use std::time::Duration;

use mlua::prelude::*;

use crate::error::type_name;
use crate::error::{NResult, NetError};

/// An options table (`{timeout = 500, nodelay = false}`), read key by key with type checks that
/// name the option in the error.
pub struct Opts {
    /// The function the table was passed to, and its argument position (for the error).
    name: &'static str,
    pos: usize,
    /// `""` at the top level, `"tls."` inside `tls = {...}`.
    prefix: String,
    t: Option<LuaTable>,
}

impl Opts {
    /// The options table `t` (`None`: absent, so every option is unset), argument `pos` of `name`.
    pub fn new(name: &'static str, pos: usize, t: Option<LuaTable>) -> Self {
        Opts { name, pos, prefix: String::new(), t }
    }

    /// The argument position the table came in (for errors made outside this reader).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The full name of an option: `tls.ca_file`.
    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The raw value of an option (nil when unset).
    pub fn value(&self, key: &str) -> LuaValue {
        self.t.as_ref().and_then(|t| t.raw_get(key).ok()).unwrap_or(LuaValue::Nil)
    }

    /// `bad argument #3 to 'connect' (option 'tls.alpn': what)`
    pub fn bad(&self, key: &str, what: impl std::fmt::Display) -> NetError {
        NetError::arg(self.pos, self.name, format!("option '{}': {what}", self.path(key)))
    }

    pub fn expected(&self, key: &str, what: &str, v: &LuaValue) -> NetError {
        self.bad(key, format!("{what} expected, got {}", type_name(v)))
    }

    pub fn boolean(&self, key: &str) -> NResult<Option<bool>> {
        match self.value(key) {
            LuaValue::Nil => Ok(None),
            LuaValue::Boolean(b) => Ok(Some(b)),
            v => Err(self.expected(key, "boolean", &v)),
        }
    }

    pub fn string(&self, key: &str) -> NResult<Option<String>> {
        match self.value(key) {
            LuaValue::Nil => Ok(None),
            LuaValue::String(s) => Ok(Some(s.to_string_lossy())),
            v => Err(self.expected(key, "string", &v)),
        }
    }

    /// One string or a list of strings (`alpn = "h2"` or `alpn = {"h2", "http/1.1"}`).
    pub fn strings(&self, key: &str) -> NResult<Vec<String>> {
        match self.value(key) {
            LuaValue::Nil => Ok(Vec::new()),
            LuaValue::String(s) => Ok(vec![s.to_string_lossy()]),
            LuaValue::Table(t) => t
                .sequence_values::<LuaValue>()
                .map(|v| match v {
                    Ok(LuaValue::String(s)) => Ok(s.to_string_lossy()),
                    _ => Err(self.bad(key, "a list of strings expected")),
                })
                .collect(),
            v => Err(self.expected(key, "a list of strings", &v)),
        }
    }

    /// An integer in `lo..=hi` (floats with an integral value are accepted, as in Lua 5.3+).
    pub fn int_in(&self, key: &str, lo: i64, hi: i64) -> NResult<Option<i64>> {
        let n = match self.value(key) {
            LuaValue::Nil => return Ok(None),
            LuaValue::Integer(n) => n,
            LuaValue::Number(n) if n.fract() == 0.0 && n.is_finite() => n as i64,
            v => return Err(self.expected(key, "integer", &v)),
        };
        if n < lo || n > hi {
            return Err(self.bad(key, format!("out of range: {n} is not in {lo}..{hi}")));
        }
        Ok(Some(n))
    }

    pub fn timeout(&self, key: &str) -> NResult<Option<Duration>> {
        timeout_value(&self.value(key)).map_err(|what| self.bad(key, what))
    }

    /// The reader of a nested table (`opts.tls`), whose errors name `tls.KEY`; `None` when the
    /// option is unset. Any other value raises `table expected`.
    pub fn table(&self, key: &str) -> NResult<Option<Opts>> {
        match self.value(key) {
            LuaValue::Nil => Ok(None),
            LuaValue::Table(t) => {
                Ok(Some(Opts { name: self.name, pos: self.pos, prefix: format!("{}.", self.path(key)), t: Some(t) }))
            }
            v => Err(self.expected(key, "table", &v)),
        }
    }

    /// Refuses keys not in `known`: `option 'tls.verfy': unknown option (known: verify, ...)`.
    /// Used for nested tables, where every key is ours and a typo would otherwise go unnoticed.
    pub fn only(&self, known: &[&str]) -> NResult<()> {
        let Some(t) = &self.t else { return Ok(()) };
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let Ok((k, _)) = pair else { continue };
            let name = match &k {
                LuaValue::String(s) => s.to_string_lossy(),
                other => format!("[{}]", other.to_string().unwrap_or_else(|_| type_name(other).into())),
            };
            if !known.contains(&name.as_str()) {
                return Err(self.bad(&name, format!("unknown option (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }
}

/// Parses a timeout value: nil, milliseconds (number), or a duration string.
pub fn timeout_value(v: &LuaValue) -> Result<Option<Duration>, String> {
    let ms = match v {
        LuaValue::Nil => return Ok(None),
        LuaValue::Integer(n) => *n as f64,
        LuaValue::Number(n) => *n,
        LuaValue::String(s) => {
            let s = s.to_str().map_err(|_| "invalid duration string".to_string())?;
            return duration_string(&s).map(Some);
        }
        v => return Err(format!("timeout expected (milliseconds or duration string), got {}", type_name(v))),
    };
    millis(ms).map(Some)
}

/// A number of milliseconds as a duration: finite and not negative; at most 1e15 ms (31,000
/// years) is kept, larger values mean "practically never".
pub fn millis(ms: f64) -> Result<Duration, String> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("timeout must be a non-negative number of milliseconds, got {ms}"));
    }
    Ok(Duration::from_secs_f64(ms.min(1e15) / 1000.0))
}

/// A duration string, with the error message scripts see when it does not parse.
pub fn duration_string(s: &str) -> Result<Duration, String> {
    parse_duration(s)
        .ok_or_else(|| format!("invalid duration '{s}' (use milliseconds or strings like \"250ms\", \"5s\", \"1m\")"))
}

/// `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, or combinations like `"1m30s"`. Whitespace
/// around the whole string is allowed, not inside it; the total must be at most 1e12 seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * factor;
    }
    if total.is_finite() && total <= 1e12 {
        Some(Duration::from_secs_f64(total))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<Duration> {
        parse_duration(s)
    }

    #[test]
    fn every_unit() {
        assert_eq!(d("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(d("7us"), Some(Duration::from_micros(7)));
        assert_eq!(d("7µs"), Some(Duration::from_micros(7)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("5s"), Some(Duration::from_secs(5)));
        assert_eq!(d("2m"), Some(Duration::from_secs(120)));
        assert_eq!(d("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(d("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn fractions_and_combinations() {
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(d("5.s"), Some(Duration::from_secs(5)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1h2m3s4ms"), Some(Duration::from_millis(3_723_004)));
        // Units may repeat and come in any order: they add up.
        assert_eq!(d("1s1s"), Some(Duration::from_secs(2)));
        assert_eq!(d("30s1m"), Some(Duration::from_secs(90)));
    }

    #[test]
    fn whitespace_only_around() {
        assert_eq!(d("  5s\t\n"), Some(Duration::from_secs(5)));
        assert_eq!(d("1m 30s"), None);
        assert_eq!(d("5 s"), None);
        assert_eq!(d("   "), None);
    }

    #[test]
    fn refused() {
        for s in ["", "5", "fast", "s", "-5s", "+5s", "5S", "5sec", "5 seconds", "1e3s", "1..5s", "5d", "5ms!", "ms5"] {
            assert_eq!(d(s), None, "{s:?}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(d("1000000000000s"), Some(Duration::from_secs(1_000_000_000_000)));
        assert_eq!(d("1000000000001s"), None);
        assert_eq!(d("300000000h"), None); // 1.08e12 s
        assert_eq!(d("99999999999999999999999999999999999999999999h"), None);
        let huge = "9".repeat(400) + "s"; // parses as infinity
        assert_eq!(d(&huge), None);
    }

    #[test]
    fn millisecond_numbers() {
        assert_eq!(millis(250.0), Ok(Duration::from_millis(250)));
        assert_eq!(millis(0.5), Ok(Duration::from_micros(500)));
        assert_eq!(millis(0.0), Ok(Duration::ZERO));
        assert_eq!(millis(1e300), Ok(Duration::from_secs(1_000_000_000_000)));
        assert!(millis(-1.0).unwrap_err().contains("non-negative"));
        assert!(millis(f64::NAN).is_err());
        assert!(millis(f64::INFINITY).is_err());
    }

    #[test]
    fn timeout_values() {
        let lua = Lua::new();
        let v = |code: &str| lua.load(code).eval::<LuaValue>().unwrap();
        assert_eq!(timeout_value(&v("nil")), Ok(None));
        assert_eq!(timeout_value(&v("1500")), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(timeout_value(&v("2.5")), Ok(Some(Duration::from_micros(2500))));
        assert_eq!(timeout_value(&v("'1m'")), Ok(Some(Duration::from_secs(60))));
        assert!(timeout_value(&v("'soon'")).unwrap_err().starts_with("invalid duration 'soon'"));
        assert!(timeout_value(&v("true")).unwrap_err().ends_with("got boolean"));
        assert!(timeout_value(&v("-1")).is_err());
    }

    fn opts(lua: &Lua, code: &str) -> Opts {
        Opts::new("connect", 3, Some(lua.load(code).eval::<LuaTable>().unwrap()))
    }

    #[test]
    fn errors_name_the_option_by_its_path() {
        let lua = Lua::new();
        let o = opts(&lua, "{timeout = true, tls = {ca_file = 5, verify = false, deep = {x = 'a'}}, n = 1.5}");
        let e = o.timeout("timeout").unwrap_err().msg;
        assert!(e.starts_with("bad argument #3 to 'connect' (option 'timeout': timeout expected"), "{e}");
        assert_eq!(
            o.int_in("n", 0, 9).unwrap_err().msg,
            "bad argument #3 to 'connect' (option 'n': integer expected, got number)"
        );
        let tls = o.table("tls").unwrap().unwrap();
        assert_eq!(
            tls.string("ca_file").unwrap_err().msg,
            "bad argument #3 to 'connect' (option 'tls.ca_file': string expected, got number)"
        );
        assert_eq!(tls.boolean("verify").unwrap(), Some(false));
        let deep = tls.table("deep").unwrap().unwrap();
        assert_eq!(
            deep.int_in("x", 0, 1).unwrap_err().msg,
            "bad argument #3 to 'connect' (option 'tls.deep.x': integer expected, got string)"
        );
        assert_eq!(
            tls.table("verify").err().unwrap().msg,
            "bad argument #3 to 'connect' (option 'tls.verify': table expected, got boolean)"
        );
        assert!(o.table("missing").unwrap().is_none());
        assert!(Opts::new("f", 1, None).table("tls").unwrap().is_none());
    }

    #[test]
    fn unknown_keys() {
        let lua = Lua::new();
        let o = opts(&lua, "{tls = {verify = true, verfy = false}, other = 1}");
        let tls = o.table("tls").unwrap().unwrap();
        let e = tls.only(&["verify", "ca_file"]).unwrap_err().msg;
        assert_eq!(e, "bad argument #3 to 'connect' (option 'tls.verfy': unknown option (known: verify, ca_file))");
        assert!(tls.only(&["verify", "verfy"]).is_ok());
        let list = opts(&lua, "{tls = {'x'}}").table("tls").unwrap().unwrap();
        assert!(list.only(&["verify"]).unwrap_err().msg.contains("option 'tls.[1]': unknown option"));
    }

    #[test]
    fn ranges_and_lists() {
        let lua = Lua::new();
        let o = opts(&lua, "{ttl = 300, two = 2.0, alpn = {'h2', 'http/1.1'}, one = 'h2', bad = {1}, worse = 5}");
        assert!(o.int_in("ttl", 1, 255).unwrap_err().msg.contains("option 'ttl': out of range: 300 is not in 1..255"));
        assert_eq!(o.int_in("two", 1, 255).unwrap(), Some(2));
        assert_eq!(o.strings("alpn").unwrap(), ["h2", "http/1.1"]);
        assert_eq!(o.strings("one").unwrap(), ["h2"]);
        assert!(o.strings("none").unwrap().is_empty());
        assert!(o.strings("bad").unwrap_err().msg.contains("option 'bad': a list of strings expected"));
        assert!(o.strings("worse").unwrap_err().msg.contains("a list of strings expected, got number"));
    }
}
