//! `net.json`: `encode`, `decode`, the `null` sentinel and `array(t)`.
//!
//! Lua tables are both arrays and objects, so encoding decides: a table whose keys are exactly
//! 1..n is an array; an empty table is `{}` unless marked with `net.json.array(t)` (decoding `[]`
//! marks it, so it round-trips). Object keys are written sorted, so output is deterministic.
//! JSON `null` decodes to `net.json.null`, which encodes back to `null`. Parsing and string
//! escaping are serde_json's; only the walk over Lua values is written here.

use std::fmt::Write as _;

use mlua::prelude::*;

use crate::error::{Kind, NResult, NetError};
use crate::export::{func, Args};

const MAX_DEPTH: usize = 128;

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
        LuaValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => (*n as i64).to_string(),
        LuaValue::Number(n) => n.to_string(),
        other => return Err(bad(format!("cannot encode a table key of type {}", other.type_name()))),
    })
}

impl Encoder<'_> {
    fn string(&mut self, s: &LuaString) -> Walk {
        let s = s.to_str().map_err(|_| bad("string is not valid UTF-8"))?;
        self.out.push_str(&serde_json::to_string(&*s).expect("strings always serialise"));
        Ok(())
    }

    fn number(&mut self, n: f64) -> Walk {
        if !n.is_finite() {
            return Err(bad(format!("cannot encode {n} (JSON has no NaN or infinity)")));
        }
        if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
            let _ = write!(self.out, "{}", n as i64);
        } else {
            self.out.push_str(&serde_json::to_string(&n).expect("finite floats serialise"));
        }
        Ok(())
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
        let mut count = 0usize;
        let mut max_index = 0i64;
        let mut all_ints = true;
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, _) = pair.map_err(bad)?;
            count += 1;
            match k {
                LuaValue::Integer(i) if i >= 1 => max_index = max_index.max(i),
                LuaValue::Number(n) if n.fract() == 0.0 && (1.0..9.0e15).contains(&n) => {
                    max_index = max_index.max(n as i64)
                }
                LuaValue::String(_) => all_ints = false,
                LuaValue::Integer(_) | LuaValue::Number(_) => all_ints = false,
                other => return Err(bad(format!("cannot encode a table key of type {}", other.type_name()))),
            }
        }
        let is_array = if count == 0 { is_array_marked(self.lua, t) } else { all_ints && max_index as usize == count };
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
            self.out.push_str(&serde_json::to_string(name).expect("strings serialise"));
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
        J::Number(n) => match n.as_i64() {
            Some(i) => LuaValue::Integer(i as _),
            None => LuaValue::Number(n.as_f64().unwrap_or(f64::NAN)),
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

pub fn decode(lua: &Lua, text: &[u8]) -> NResult<LuaValue> {
    let v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| NetError::new(Kind::Protocol, format!("invalid JSON: {e}")))?;
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
