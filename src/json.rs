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

struct Encoder<'a> {
    lua: &'a Lua,
    out: String,
    path: Vec<String>,
}

impl Encoder<'_> {
    fn bad(&self, what: impl std::fmt::Display) -> NetError {
        let at = if self.path.is_empty() { String::new() } else { format!(" at {}", self.path.concat()) };
        NetError::arg(1, "net.json.encode", format!("{what}{at}"))
    }

    fn string(&mut self, s: &LuaString) -> NResult<()> {
        let s = s.to_str().map_err(|_| self.bad("string is not valid UTF-8"))?;
        self.out.push_str(&serde_json::to_string(&*s).expect("strings always serialise"));
        Ok(())
    }

    fn number(&mut self, n: f64) -> NResult<()> {
        if !n.is_finite() {
            return Err(self.bad(format!("cannot encode {n} (JSON has no NaN or infinity)")));
        }
        if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
            let _ = write!(self.out, "{}", n as i64);
        } else {
            self.out.push_str(&serde_json::to_string(&n).expect("finite floats serialise"));
        }
        Ok(())
    }

    fn value(&mut self, v: &LuaValue) -> NResult<()> {
        match v {
            LuaValue::Nil => self.out.push_str("null"),
            LuaValue::LightUserData(p) if p.0.is_null() => self.out.push_str("null"),
            LuaValue::Boolean(b) => self.out.push_str(if *b { "true" } else { "false" }),
            LuaValue::Integer(i) => {
                let _ = write!(self.out, "{i}");
            }
            LuaValue::Number(n) => self.number(*n)?,
            LuaValue::String(s) => self.string(s)?,
            LuaValue::Table(t) => self.table(t)?,
            other => return Err(self.bad(format!("cannot encode a {}", other.type_name()))),
        }
        Ok(())
    }

    fn table(&mut self, t: &LuaTable) -> NResult<()> {
        if self.path.len() >= MAX_DEPTH {
            return Err(self.bad(format!("nested deeper than {MAX_DEPTH} levels (is the table cyclic?)")));
        }
        let mut count = 0usize;
        let mut max_index = 0i64;
        let mut all_ints = true;
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, _) = pair.map_err(|e| self.bad(e.to_string()))?;
            count += 1;
            match k {
                LuaValue::Integer(i) if i >= 1 => max_index = max_index.max(i),
                LuaValue::Number(n) if n.fract() == 0.0 && n >= 1.0 && n < 9.0e15 => {
                    max_index = max_index.max(n as i64)
                }
                LuaValue::String(_) => all_ints = false,
                LuaValue::Integer(_) | LuaValue::Number(_) => all_ints = false,
                other => return Err(self.bad(format!("cannot encode a table key of type {}", other.type_name()))),
            }
        }
        let is_array = if count == 0 { is_array_marked(self.lua, t) } else { all_ints && max_index as usize == count };
        if is_array {
            self.out.push('[');
            for i in 1..=count {
                if i > 1 {
                    self.out.push(',');
                }
                let v: LuaValue = t.raw_get(i).map_err(|e| self.bad(e.to_string()))?;
                self.path.push(format!("[{i}]"));
                self.value(&v)?;
                self.path.pop();
            }
            self.out.push(']');
            return Ok(());
        }
        // An object: string keys sorted, number keys written as strings.
        let mut keys: Vec<(String, LuaValue)> = Vec::with_capacity(count);
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, _) = pair.map_err(|e| self.bad(e.to_string()))?;
            let name = match &k {
                LuaValue::String(s) => s.to_str().map_err(|_| self.bad("table key is not valid UTF-8"))?.to_string(),
                LuaValue::Integer(i) => i.to_string(),
                LuaValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => (*n as i64).to_string(),
                LuaValue::Number(n) => n.to_string(),
                _ => unreachable!("checked above"),
            };
            keys.push((name, k));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.push('{');
        for (i, (name, k)) in keys.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(&serde_json::to_string(name).expect("strings serialise"));
            self.out.push(':');
            let v: LuaValue = t.raw_get(k.clone()).map_err(|e| self.bad(e.to_string()))?;
            self.path.push(format!(".{name}"));
            self.value(&v)?;
            self.path.pop();
        }
        self.out.push('}');
        Ok(())
    }
}

pub fn encode(lua: &Lua, v: &LuaValue) -> NResult<String> {
    let mut e = Encoder { lua, out: String::new(), path: Vec::new() };
    e.value(v)?;
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
