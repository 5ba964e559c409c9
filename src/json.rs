//! `net.json`: `encode`, `decode`, the `null` sentinel and `array(t)`.
//!
//! Lua tables are both arrays and objects, so encoding decides: a table whose keys are exactly
//! 1..n is an array; an empty table is `{}` unless marked with `net.json.array(t)` (decoding `[]`
//! marks it, so it round-trips). Object keys are written sorted, so output is deterministic.
//! JSON `null` decodes to `net.json.null`, which encodes back to `null`. Parsing and string
//! escaping are serde_json's; the walk over Lua values is written here. The rules that need no
//! Lua (number and string forms, the array/object decision, decoded numbers, the depth limit)
//! are plain functions (`write_float`, `write_string`, `Shape`, `number`, `parse`) with unit tests.

use std::fmt::Write as _;

use mlua::prelude::*;

use crate::error::{Kind, NResult, NetError};
use crate::export::{func, Args};

/// The deepest nesting either direction accepts. serde_json's parser refuses a 128th level, so
/// the encoder stops at the same depth: whatever `encode` writes, `decode` reads.
const MAX_DEPTH: usize = 127;

/// The metatable that marks a table as a JSON array.
struct ArrayMark(LuaTable);

fn is_array_marked(lua: &Lua, t: &LuaTable) -> bool {
    match (t.metatable(), lua.app_data_ref::<ArrayMark>()) {
        (Some(mt), Some(mark)) => mt == mark.0,
        _ => false,
    }
}

/// Walks a Lua value and writes its JSON text. It holds no Lua reference per key or element
/// (only the few of the tables being walked, one per nesting level): mlua on LuaJIT caps live
/// references near 8000, and objects can have millions of keys.
struct Encoder<'a> {
    lua: &'a Lua,
    out: String,
    depth: usize,
}

/// A value that cannot be encoded: the reason, and the path to it, innermost step first (each
/// table level adds its step while the error travels out, so encoding pays nothing for paths).
struct Bad {
    what: String,
    path: Vec<String>,
}

type Walk = Result<(), Bad>;

fn bad(what: impl std::fmt::Display) -> Bad {
    Bad { what: what.to_string(), path: Vec::new() }
}

/// Adds the step into a table (`[3]` or `.name`) to an error coming out of it.
fn at<T>(r: Result<T, Bad>, step: impl FnOnce() -> String) -> Result<T, Bad> {
    r.map_err(|mut e| {
        e.path.push(step());
        e
    })
}

/// An object key as JSON writes it: strings as they are, numbers as their text.
fn key_name(k: &LuaValue) -> Result<String, Bad> {
    Ok(match k {
        LuaValue::String(s) => s.to_str().map_err(|_| bad("table key is not valid UTF-8"))?.to_string(),
        LuaValue::Integer(i) => i.to_string(),
        LuaValue::Number(n) => float_key_name(*n),
        other => return Err(bad(format!("cannot encode a table key of type {}", other.type_name()))),
    })
}

/// A float table key as an object member name: integral values without a fraction (`1.0` is
/// `"1"`, so it meets the integer key 1), others as Rust prints them (`"1.5"`).
fn float_key_name(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        (n as i64).to_string()
    } else {
        n.to_string()
    }
}

/// Writes a JSON string: serde_json's escaping (quotes, backslashes and control characters;
/// everything else, `/` and non-ASCII included, as it is).
fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialise"));
}

/// Writes a float: integral values below 2^53 without a fraction (`3.0` is `3`, `-0.0` is `0`),
/// others in the shortest form that reads back as the same float. NaN and infinities have no
/// JSON form.
fn write_float(out: &mut String, n: f64) -> Result<(), String> {
    if !n.is_finite() {
        return Err(format!("cannot encode {n} (JSON has no NaN or infinity)"));
    }
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", n as i64);
    } else {
        out.push_str(&serde_json::to_string(&n).expect("finite floats serialise"));
    }
    Ok(())
}

/// Whether a table is a JSON array, decided from its keys alone: exactly `1..n` (integers, or
/// floats with integral values) and nothing else. An empty table is an array only when marked.
#[derive(Default)]
struct Shape {
    count: usize,
    max_index: i64,
    all_positive_ints: bool,
}

impl Shape {
    fn new() -> Self {
        Shape { all_positive_ints: true, ..Default::default() }
    }

    fn int(&mut self, i: i64) {
        self.count += 1;
        if i >= 1 {
            self.max_index = self.max_index.max(i);
        } else {
            self.all_positive_ints = false;
        }
    }

    fn float(&mut self, n: f64) {
        if n.fract() == 0.0 && (1.0..9.0e15).contains(&n) {
            self.int(n as i64);
        } else {
            self.count += 1;
            self.all_positive_ints = false;
        }
    }

    fn name(&mut self) {
        self.count += 1;
        self.all_positive_ints = false;
    }

    fn is_array(&self, marked: bool) -> bool {
        if self.count == 0 {
            marked
        } else {
            self.all_positive_ints && self.max_index as usize == self.count
        }
    }
}

impl Encoder<'_> {
    fn string(&mut self, s: &LuaString) -> Walk {
        let s = s.to_str().map_err(|_| bad("string is not valid UTF-8"))?;
        write_string(&mut self.out, &s);
        Ok(())
    }

    fn number(&mut self, n: f64) -> Walk {
        write_float(&mut self.out, n).map_err(bad)
    }

    fn value(&mut self, v: &LuaValue) -> Walk {
        match v {
            LuaValue::Nil => self.out.push_str("null"),
            LuaValue::LightUserData(p) if p.0.is_null() => self.out.push_str("null"),
            LuaValue::Boolean(b) => self.out.push_str(if *b { "true" } else { "false" }),
            LuaValue::Integer(i) => {
                let _ = write!(self.out, "{i}");
            }
            LuaValue::Number(n) => self.number(*n)?,
            LuaValue::String(s) => self.string(s)?,
            LuaValue::Table(t) => {
                if self.depth >= MAX_DEPTH {
                    return Err(bad(format!("nested deeper than {MAX_DEPTH} levels (is the table cyclic?)")));
                }
                self.depth += 1;
                let r = self.table(t);
                self.depth -= 1;
                r?
            }
            other => return Err(bad(format!("cannot encode a {}", other.type_name()))),
        }
        Ok(())
    }

    fn table(&mut self, t: &LuaTable) -> Walk {
        // First pass: is it an array (keys exactly 1..n)? Keys are only looked at, not kept.
        let mut shape = Shape::new();
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, _) = pair.map_err(bad)?;
            match k {
                LuaValue::Integer(i) => shape.int(i),
                LuaValue::Number(n) => shape.float(n),
                LuaValue::String(_) => shape.name(),
                other => return Err(bad(format!("cannot encode a table key of type {}", other.type_name()))),
            }
        }
        let count = shape.count;
        let is_array = shape.is_array(count == 0 && is_array_marked(self.lua, t));
        if is_array {
            self.out.push('[');
            for i in 1..=count {
                if i > 1 {
                    self.out.push(',');
                }
                let v: LuaValue = t.raw_get(i).map_err(bad)?;
                at(self.value(&v), || format!("[{i}]"))?;
            }
            self.out.push(']');
            return Ok(());
        }
        // An object, keys sorted. Each value is encoded as the walk meets it, at the end of
        // `out`; that tail is then cut off and the members are written back in key order, so
        // only the key names and byte ranges are kept, no Lua value.
        let start = self.out.len();
        let mut members: Vec<(String, std::ops::Range<usize>)> = Vec::with_capacity(count);
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, v) = pair.map_err(bad)?;
            let name = key_name(&k)?;
            drop(k);
            let from = self.out.len() - start;
            let r = self.value(&v);
            if r.is_err() {
                self.out.truncate(start);
                return at(r, || format!(".{name}"));
            }
            members.push((name, from..self.out.len() - start));
        }
        let values = self.out.split_off(start);
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| values[a.1.clone()].cmp(&values[b.1.clone()])));
        self.out.reserve(values.len() + members.iter().map(|m| m.0.len() + 4).sum::<usize>() + 2);
        self.out.push('{');
        for (i, (name, range)) in members.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_string(&mut self.out, name);
            self.out.push(':');
            self.out.push_str(&values[range.clone()]);
        }
        self.out.push('}');
        Ok(())
    }
}

pub fn encode(lua: &Lua, v: &LuaValue) -> NResult<String> {
    let mut e = Encoder { lua, out: String::new(), depth: 0 };
    e.value(v).map_err(|b| {
        let path: String = b.path.iter().rev().map(String::as_str).collect();
        let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
        NetError::arg(1, "net.json.encode", format!("{}{at}", b.what))
    })?;
    Ok(e.out)
}

fn to_lua(lua: &Lua, v: serde_json::Value) -> LuaResult<LuaValue> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => LuaValue::NULL,
        J::Bool(b) => LuaValue::Boolean(b),
        J::Number(n) => match number(&n) {
            Ok(i) => LuaValue::Integer(i as _),
            Err(f) => LuaValue::Number(f),
        },
        J::String(s) => LuaValue::String(lua.create_string(&s)?),
        J::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            if items.is_empty() {
                if let Some(mark) = lua.app_data_ref::<ArrayMark>() {
                    t.set_metatable(Some(mark.0.clone()))?;
                }
            }
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(t)
        }
        J::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.raw_set(k, to_lua(lua, v)?)?;
            }
            LuaValue::Table(t)
        }
    })
}

/// A decoded number as Lua's `tonumber` would read it: an integer when it is one that fits in
/// 64 signed bits (`Ok`), else the nearest float (`Err`).
fn number(n: &serde_json::Number) -> Result<i64, f64> {
    n.as_i64().ok_or_else(|| n.as_f64().unwrap_or(f64::NAN))
}

/// Parses JSON text (serde_json: strict RFC 8259, UTF-8 only, nesting at most 127 deep).
fn parse(text: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))
}

pub fn decode(lua: &Lua, text: &[u8]) -> NResult<LuaValue> {
    let v = parse(text).map_err(|e| NetError::new(Kind::Protocol, e))?;
    to_lua(lua, v).map_err(NetError::from)
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let mark = lua.create_table()?;
    mark.raw_set("__name", "json.array")?;
    lua.set_app_data(ArrayMark(mark));
    let json = lua.create_table()?;
    json.set("null", LuaValue::NULL)?;
    json.set("encode", func(lua, "net.json.encode", |lua, a: Args| encode(lua, &a.get(1)))?)?;
    json.set("decode", func(lua, "net.json.decode", |lua, a: Args| decode(lua, &a.bytes(1)?))?)?;
    json.set(
        "array",
        func(lua, "net.json.array", |lua, a: Args| {
            let t = match a.opt_table(1)? {
                Some(t) => t,
                None => lua.create_table().map_err(NetError::from)?,
            };
            let mark = lua.app_data_ref::<ArrayMark>().expect("registered").0.clone();
            t.set_metatable(Some(mark)).map_err(NetError::from)?;
            Ok(t)
        })?,
    )?;
    net.set("json", json)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(n: f64) -> Result<String, String> {
        let mut out = String::new();
        write_float(&mut out, n).map(|_| out)
    }

    fn string(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn floats() {
        assert_eq!(float(3.0).unwrap(), "3");
        assert_eq!(float(-3.0).unwrap(), "-3");
        assert_eq!(float(-0.0).unwrap(), "0"); // the sign of zero is not kept
        assert_eq!(float(0.5).unwrap(), "0.5");
        assert_eq!(float(0.1).unwrap(), "0.1");
        assert_eq!(float(1e-7).unwrap(), "1e-7");
        assert_eq!(float(9007199254740991.0).unwrap(), "9007199254740991"); // 2^53 - 1
        assert_eq!(float(9007199254740992.0).unwrap(), "9007199254740992.0"); // 2^53: a float
        assert_eq!(float(1e300).unwrap(), "1e+300");
        assert_eq!(float(f64::MAX).unwrap(), "1.7976931348623157e+308");
        assert_eq!(float(f64::MIN_POSITIVE).unwrap(), "2.2250738585072014e-308");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(float(bad).unwrap_err().contains("JSON has no NaN or infinity"), "{bad}");
        }
    }

    #[test]
    fn floats_read_back_exactly() {
        let mut x = 1.0f64;
        for i in 0..2000 {
            // A spread of magnitudes and awkward fractions.
            x = x * -1.37 + (i as f64) / 7.0;
            for n in [x, 1.0 / x, x * 1e-300, x.sqrt()] {
                if !n.is_finite() {
                    continue;
                }
                let text = float(n).unwrap();
                let back = parse(text.as_bytes()).unwrap();
                let back = number(back.as_number().unwrap()).map_or_else(|f| f, |i| i as f64);
                assert_eq!(back, n, "{text}");
            }
        }
    }

    #[test]
    fn strings_escape_only_what_json_needs() {
        assert_eq!(string("plain"), r#""plain""#);
        assert_eq!(string("q\"b\\s/"), r#""q\"b\\s/""#);
        assert_eq!(string("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(string("\0\u{1}\u{1f}\u{7f}"), "\"\\u0000\\u0001\\u001f\u{7f}\"");
        assert_eq!(string("é😀\u{2028}"), "\"é😀\u{2028}\""); // non-ASCII stays UTF-8
    }

    fn text(v: &serde_json::Value) -> &str {
        v.as_str().unwrap()
    }

    #[test]
    fn string_escapes_on_the_way_in() {
        assert_eq!(text(&parse(br#""\u00e9\/\n""#).unwrap()), "é/\n");
        // A surrogate pair is one character.
        assert_eq!(text(&parse(br#""\ud83d\ude00""#).unwrap()), "😀");
        assert_eq!(text(&parse(br#""\uD83D\uDE00""#).unwrap()), "😀");
        assert_eq!(text(&parse(br#""\u0000""#).unwrap()), "\0");
        // Lone or reversed surrogates have no UTF-8 form: refused, not replaced.
        for bad in [&br#""\ud800""#[..], br#""\udc00""#, br#""\ude00\ud83d""#, br#""\ud83d\u0041""#, br#""\ud83dx""#] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("surrogate") || e.contains("end of hex escape"), "{e}");
        }
        // Raw bytes that are not UTF-8, and raw control characters, are refused.
        assert!(parse(b"\"\xff\"").unwrap_err().contains("invalid unicode code point"));
        assert!(parse(b"\"\xed\xa0\x80\"").is_err()); // an encoded surrogate
        assert!(parse(b"\"a\nb\"").unwrap_err().contains("control character"));
        assert!(parse(br#""\x41""#).unwrap_err().contains("invalid escape"));
    }

    fn num(s: &str) -> Result<i64, f64> {
        number(parse(s.as_bytes()).unwrap().as_number().unwrap())
    }

    #[test]
    fn numbers_on_the_way_in() {
        assert_eq!(num("42"), Ok(42));
        assert_eq!(num("-42"), Ok(-42));
        assert_eq!(num("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(num("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(num("9223372036854775808"), Err(9223372036854775808.0)); // past i64: a float
        assert_eq!(num("18446744073709551616"), Err(18446744073709551616.0));
        assert_eq!(num("1.0"), Err(1.0)); // a fraction written is a float, as tonumber("1.0")
        assert_eq!(num("1e2"), Err(100.0));
        assert_eq!(num("0.1"), Err(0.1));
        assert!(num("-0").unwrap_err().is_sign_negative()); // -0 is the float -0.0
        assert_eq!(num("1e-400"), Err(0.0));
        // Too big for a float: refused (tonumber would give infinity, which JSON cannot write).
        assert!(parse(b"1e400").unwrap_err().contains("number out of range"));
        assert!(parse(b"-1e400").unwrap_err().contains("number out of range"));
        for bad in ["01", "+1", ".5", "1.", "0x10", "NaN", "Infinity", "-", "1e"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_key_names() {
        assert_eq!(float_key_name(1.0), "1");
        assert_eq!(float_key_name(-2.0), "-2");
        assert_eq!(float_key_name(1.5), "1.5");
        assert_eq!(float_key_name(1e20), "100000000000000000000");
    }

    fn shape(keys: &[f64], strings: usize) -> Shape {
        let mut s = Shape::new();
        for &k in keys {
            s.float(k);
        }
        for _ in 0..strings {
            s.name();
        }
        s
    }

    #[test]
    fn array_or_object() {
        assert!(shape(&[1.0, 2.0, 3.0], 0).is_array(false));
        assert!(shape(&[3.0, 1.0, 2.0], 0).is_array(false)); // any order
        assert!(!shape(&[1.0, 3.0], 0).is_array(false)); // a hole
        assert!(!shape(&[0.0, 1.0], 0).is_array(false)); // index 0
        assert!(!shape(&[-1.0, 1.0], 0).is_array(false));
        assert!(!shape(&[1.5], 0).is_array(false));
        assert!(!shape(&[1.0, 2.0], 1).is_array(false)); // mixed
        assert!(!shape(&[], 1).is_array(true)); // the mark matters only when empty
        assert!(!shape(&[], 0).is_array(false)); // {} by default
        assert!(shape(&[], 0).is_array(true)); // [] when marked
        let mut s = Shape::new();
        s.int(2);
        s.int(1);
        assert!(s.is_array(false));
        s.int(0);
        assert!(!s.is_array(false));
    }

    fn lua() -> Lua {
        let lua = Lua::new();
        let mark = lua.create_table().unwrap();
        lua.set_app_data(ArrayMark(mark));
        lua
    }

    fn enc(lua: &Lua, code: &str) -> NResult<String> {
        encode(lua, &lua.load(code).eval::<LuaValue>().unwrap())
    }

    #[test]
    fn encodes_lua_values() {
        let lua = lua();
        assert_eq!(enc(&lua, "{1, 2, 'x'}").unwrap(), r#"[1,2,"x"]"#);
        assert_eq!(enc(&lua, "{b = 1, a = {true, false}, c = {}}").unwrap(), r#"{"a":[true,false],"b":1,"c":{}}"#);
        assert_eq!(enc(&lua, "{[1] = 'a', [3] = 'c'}").unwrap(), r#"{"1":"a","3":"c"}"#);
        assert_eq!(enc(&lua, "{[1.0] = 'a', [2] = 'b'}").unwrap(), r#"["a","b"]"#);
        assert_eq!(enc(&lua, "2^53").unwrap(), "9007199254740992.0");
        assert_eq!(enc(&lua, "-0.0").unwrap(), "0");
        assert_eq!(enc(&lua, "nil").unwrap(), "null");
        assert_eq!(enc(&lua, "math.maxinteger").unwrap(), "9223372036854775807");
        assert_eq!(enc(&lua, "math.mininteger").unwrap(), "-9223372036854775808");
        let e = enc(&lua, "{a = {1, 0/0}}").unwrap_err().msg;
        assert_eq!(
            e,
            "bad argument #1 to 'net.json.encode' (cannot encode NaN (JSON has no NaN or infinity) at .a[2])"
        );
        let e = enc(&lua, "{x = {[true] = 1}}").unwrap_err().msg;
        assert!(e.ends_with("(cannot encode a table key of type boolean at .x)"), "{e}");
        let e = enc(&lua, "{s = '\\255'}").unwrap_err().msg;
        assert!(e.ends_with("(string is not valid UTF-8 at .s)"), "{e}");
        let e = enc(&lua, "{print}").unwrap_err().msg;
        assert!(e.ends_with("(cannot encode a function at [1])"), "{e}");
    }

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn nesting_depth_limit_is_the_same_both_ways() {
        let lua = lua();
        // 127 levels decode and encode back; 128 are refused by both.
        let ok = decode(&lua, nested(MAX_DEPTH).as_bytes()).unwrap();
        assert_eq!(encode(&lua, &ok).unwrap(), nested(MAX_DEPTH));
        let e = decode(&lua, nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.msg.contains("recursion limit exceeded"), "{}", e.msg);
        let deep = lua.load("local t = {} ; for i = 2, 128 do t = {t} end ; return t").eval::<LuaValue>().unwrap();
        let e = encode(&lua, &deep).unwrap_err().msg;
        assert!(e.contains("nested deeper than 127 levels (is the table cyclic?)"), "{e}");
        let cyclic = lua.load("local t = {} ; t.self = t ; return t").eval::<LuaValue>().unwrap();
        assert!(encode(&lua, &cyclic).unwrap_err().msg.contains("nested deeper than 127"));
    }

    #[test]
    fn round_trip() {
        let lua = lua();
        for text in [
            r#"{"a":[1,2.5,"x",null,true,false,[],{}],"b":{"c":"é\n😀"}}"#,
            r#"[-9223372036854775808,9223372036854775807,1e+300,-0.1]"#,
            r#""\u0000\u001f""#,
            "[]",
            "{}",
            "null",
        ] {
            let v = decode(&lua, text.as_bytes()).unwrap();
            assert_eq!(encode(&lua, &v).unwrap(), text);
        }
        // Text serde_json would write differently comes back in the canonical form.
        let v = decode(&lua, br#"{ "b" : 1 , "a" : 2.0, "c": "\u00e9\/" }"#).unwrap();
        assert_eq!(encode(&lua, &v).unwrap(), r#"{"a":2,"b":1,"c":"é/"}"#);
    }
}
