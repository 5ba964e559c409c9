//! How Rust functions become Lua functions: argument checks, the error protocol, method tables.
//!
//! mlua raises Rust errors as userdata, but scripts need plain strings that scripts can
//! `match`. So a Rust function never fails through mlua: on error it *returns* the sentinel
//! `FAIL` followed by the message, and a one-line Lua wrapper (`src/lua/prelude.lua`) turns that
//! into `error(msg, 0)`. Every Lua-visible function goes through [`func`] or [`async_func`].
//!
//! Async functions are split in two: a synchronous *prepare* step that checks the arguments and
//! copies out what the operation needs (so no Lua reference is held across an `.await`, design
//! §3), and the future itself, which [`crate::runtime`] awaits, blocks on, or refuses depending on
//! the calling coroutine.

use std::ffi::c_void;
use std::future::Future;
use std::time::Duration;

use mlua::prelude::*;

use crate::error::{NResult, NetError};
// Options and durations live in `options.rs`; re-exported for the callers that take them from here.
pub use crate::error::{fail_tag, pending_tag, to_lua, type_name};
pub use crate::options::{timeout_value, Opts};
use crate::runtime;

/// The Lua helpers from the prelude, kept for the life of the state.
pub struct Glue {
    /// `wrap(raw) -> function(...) return finish(raw(...)) end`
    pub wrap: LuaFunction,
    /// `index(methods, getters) -> __index function` for types with fields
    pub index: LuaFunction,
    /// `make_wrap(enter, leave) -> net.wrap`
    pub make_wrap: LuaFunction,
    /// `make_pcall(enter, leave) -> net.pcall, net.xpcall` (the built-ins but on Lua 5.1)
    pub make_pcall: LuaFunction,
    /// `coroutine.close` (Lua 5.4), kept from load time: runs a cancelled task's `<close>`s.
    pub close_coroutine: LuaFunction,
    /// The helpers of `src/lua/task.lua`: `methods` (the task handle's) and `sleep`.
    pub tasks: LuaTable,
    /// `coroutine.isyieldable`, or the prelude's stand-in on Lua 5.1 and 5.2 (which lack it).
    pub isyieldable: LuaFunction,
}

/// Loads `src/lua/prelude.lua` and `src/lua/task.lua` and keeps their helpers in app data.
pub fn install(lua: &Lua) -> LuaResult<()> {
    if lua.app_data_ref::<Glue>().is_some() {
        return Ok(());
    }
    let t: LuaTable =
        lua.load(include_str!("lua/prelude.lua")).set_name("=net.prelude").call((fail_tag(), Lua::poll_pending()))?;
    let isyieldable: LuaFunction = t.get("isyieldable")?;
    let tasks = lua_helpers(lua, "=net.task", include_str!("lua/task.lua"), &isyieldable)?;
    lua.set_app_data(Glue {
        wrap: t.get("wrap")?,
        index: t.get("index")?,
        make_wrap: t.get("make_wrap")?,
        make_pcall: t.get("make_pcall")?,
        close_coroutine: t.get("close_coroutine")?,
        tasks,
        isyieldable,
    });
    Ok(())
}

pub fn glue(lua: &Lua) -> LuaResult<mlua::AppDataRef<'_, Glue>> {
    lua.app_data_ref::<Glue>().ok_or_else(|| LuaError::runtime("net: module not initialised"))
}

/// The fast-path wrappers of `src/lua/stream.lua` (`method`, `method3`, `varargs`): a
/// synchronous try first, the async twin only when it would wait.
pub fn fast_paths(lua: &Lua) -> LuaResult<LuaTable> {
    let isyieldable = glue(lua)?.isyieldable.clone();
    lua_helpers(lua, "=net.stream", include_str!("lua/stream.lua"), &isyieldable)
}

/// Runs a chunk of Lua helpers that park and raise like the fast paths: it gets `FAIL`,
/// `PENDING`, mlua's pending marker, `resumed`, the foreign-resume message and `isyieldable`
/// (`Glue::isyieldable`), and returns a table of helpers.
pub fn lua_helpers(lua: &Lua, name: &str, source: &str, isyieldable: &LuaFunction) -> LuaResult<LuaTable> {
    // SAFETY: `resumed` reads no argument and pushes a boolean.
    let resumed = unsafe { lua.create_c_function(resumed)? };
    lua.load(source).set_name(name).call((
        fail_tag(),
        pending_tag(),
        Lua::poll_pending(),
        resumed,
        runtime::foreign_resume_error().to_string(),
        isyieldable,
    ))
}

/// `resumed()`, called by a parked task after its `coroutine.yield()` returns: whether its driver
/// resumed it (see `runtime::resumed_by_driver`).
///
/// # Safety
/// Called by Lua as a C function. Nothing here can raise or panic (a thread-local lookup).
unsafe extern "C-unwind" fn resumed(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    let ok = runtime::resumed_by_driver(l as *const c_void);
    // SAFETY: `l` is valid for this call; a boolean needs no allocation.
    unsafe { mlua::ffi::lua_pushboolean(l, std::ffi::c_int::from(ok)) };
    1
}

/// A Lua function backed by a synchronous Rust function.
pub fn func<R, F>(lua: &Lua, name: &'static str, f: F) -> LuaResult<LuaFunction>
where
    R: IntoLuaMulti,
    F: Fn(&Lua, Args) -> NResult<R> + 'static,
{
    let raw = lua.create_function(move |lua, args: LuaMultiValue| to_lua(lua, f(lua, Args::new(name, args))))?;
    glue(lua)?.wrap.call(raw)
}

/// A Lua function backed by an operation that may wait (docs/internals.md, "Three behaviours of
/// a waiting call"). `prepare` runs synchronously on the caller's coroutine.
pub fn async_func<R, Fut, F>(lua: &Lua, name: &'static str, prepare: F) -> LuaResult<LuaFunction>
where
    R: IntoLuaMulti + 'static,
    Fut: Future<Output = NResult<R>> + 'static,
    F: Fn(&Lua, Args) -> NResult<Fut> + 'static,
{
    let raw = raw_async(lua, name, prepare)?;
    glue(lua)?.wrap.call(raw)
}

/// The unwrapped async function (returns `FAIL, msg` instead of raising); hot paths call it from
/// their own Lua wrappers.
pub fn raw_async<R, Fut, F>(lua: &Lua, name: &'static str, prepare: F) -> LuaResult<LuaFunction>
where
    R: IntoLuaMulti + 'static,
    Fut: Future<Output = NResult<R>> + 'static,
    F: Fn(&Lua, Args) -> NResult<Fut> + 'static,
{
    lua.create_async_function(move |lua, args: LuaMultiValue| {
        runtime::Call::new(&lua, name, prepare(&lua, Args::new(name, args)))
    })
}

/// Makes a userdata object of a type registered with [`register_type`].
pub fn userdata<T: 'static>(lua: &Lua, v: T) -> NResult<LuaAnyUserData> {
    Ok(lua.create_any_userdata(v)?)
}

/// Arguments of one call, checked one by one with Lua-style messages.
pub struct Args {
    pub name: &'static str,
    vals: LuaMultiValue,
}

impl Args {
    pub fn new(name: &'static str, vals: LuaMultiValue) -> Self {
        Args { name, vals }
    }

    /// The raw value at 1-based position `i` (nil when absent).
    pub fn get(&self, i: usize) -> LuaValue {
        self.vals.get(i - 1).cloned().unwrap_or(LuaValue::Nil)
    }

    pub fn is_nil(&self, i: usize) -> bool {
        matches!(self.vals.get(i - 1), None | Some(LuaValue::Nil))
    }

    pub fn bad(&self, i: usize, what: impl std::fmt::Display) -> NetError {
        NetError::arg(i, self.name, what)
    }

    pub fn expected(&self, i: usize, what: &str) -> NetError {
        let got = self.vals.get(i - 1).map(type_name).unwrap_or("no value");
        self.bad(i, format!("{what} expected, got {got}"))
    }

    /// A string argument (numbers are converted, as `luaL_checkstring` does).
    pub fn string(&self, i: usize) -> NResult<String> {
        match self.vals.get(i - 1) {
            Some(LuaValue::String(s)) => {
                Ok(s.to_str().map(|s| s.to_owned()).map_err(|_| self.bad(i, "string is not valid UTF-8"))?)
            }
            Some(LuaValue::Integer(n)) => Ok(n.to_string()),
            Some(LuaValue::Number(n)) => Ok(n.to_string()),
            _ => Err(self.expected(i, "string")),
        }
    }

    pub fn opt_string(&self, i: usize) -> NResult<Option<String>> {
        if self.is_nil(i) {
            Ok(None)
        } else {
            self.string(i).map(Some)
        }
    }

    /// A binary-safe string argument.
    pub fn bytes(&self, i: usize) -> NResult<Vec<u8>> {
        match self.vals.get(i - 1) {
            Some(LuaValue::String(s)) => Ok(s.as_bytes().to_vec()),
            Some(LuaValue::Integer(n)) => Ok(n.to_string().into_bytes()),
            Some(LuaValue::Number(n)) => Ok(n.to_string().into_bytes()),
            _ => Err(self.expected(i, "string")),
        }
    }

    pub fn number(&self, i: usize) -> NResult<f64> {
        match self.vals.get(i - 1) {
            Some(LuaValue::Integer(n)) => Ok(*n as f64),
            Some(LuaValue::Number(n)) if n.is_finite() => Ok(*n),
            Some(LuaValue::Number(_)) => Err(self.bad(i, "number must be finite")),
            _ => Err(self.expected(i, "number")),
        }
    }

    /// An integer in `lo..=hi` (floats with an integral value are accepted, as in Lua 5.3+).
    pub fn int_in(&self, i: usize, lo: i64, hi: i64) -> NResult<i64> {
        let n = match self.vals.get(i - 1) {
            Some(LuaValue::Integer(n)) => *n,
            Some(LuaValue::Number(n)) if n.fract() == 0.0 && n.is_finite() => *n as i64,
            Some(LuaValue::Number(_)) => return Err(self.bad(i, "number has no integer representation")),
            _ => return Err(self.expected(i, "integer")),
        };
        if n < lo || n > hi {
            return Err(self.bad(i, format!("out of range: {n} is not in {lo}..{hi}")));
        }
        Ok(n)
    }

    pub fn opt_int_in(&self, i: usize, lo: i64, hi: i64) -> NResult<Option<i64>> {
        if self.is_nil(i) {
            Ok(None)
        } else {
            self.int_in(i, lo, hi).map(Some)
        }
    }

    pub fn port(&self, i: usize) -> NResult<u16> {
        Ok(self.int_in(i, 0, 65535)? as u16)
    }

    pub fn boolean(&self, i: usize) -> NResult<bool> {
        match self.vals.get(i - 1) {
            Some(LuaValue::Boolean(b)) => Ok(*b),
            _ => Err(self.expected(i, "boolean")),
        }
    }

    pub fn opt_table(&self, i: usize) -> NResult<Option<LuaTable>> {
        match self.vals.get(i - 1) {
            None | Some(LuaValue::Nil) => Ok(None),
            Some(LuaValue::Table(t)) => Ok(Some(t.clone())),
            _ => Err(self.expected(i, "table")),
        }
    }

    pub fn function(&self, i: usize) -> NResult<LuaFunction> {
        match self.vals.get(i - 1) {
            Some(LuaValue::Function(f)) => Ok(f.clone()),
            _ => Err(self.expected(i, "function")),
        }
    }

    /// `self` of a method call: a userdata of type `T`.
    pub fn this<T: 'static>(&self, what: &str) -> NResult<mlua::UserDataRef<T>> {
        match self.vals.front() {
            Some(LuaValue::UserData(ud)) => ud.borrow::<T>().map_err(|_| self.expected(1, what)),
            _ => Err(self.expected(1, what)),
        }
    }

    /// A timeout: milliseconds, or a duration string (`"250ms"`, `"5s"`, `"1m"`); nil = none.
    pub fn timeout(&self, i: usize) -> NResult<Option<Duration>> {
        timeout_value(&self.get(i)).map_err(|what| self.bad(i, what))
    }

    /// Splits off the remaining arguments from position `i` on (e.g. `spawn(fn, ...)`).
    pub fn rest(mut self, i: usize) -> LuaMultiValue {
        let n = (i - 1).min(self.vals.len());
        self.vals.drain(..n);
        self.vals
    }
}

impl Args {
    /// The options table at position `i` (absent or nil gives an empty one).
    pub fn opts(&self, i: usize) -> NResult<Opts> {
        Ok(Opts::new(self.name, i, self.opt_table(i)?))
    }
}

/// Builds a userdata type's metatable: methods (already wrapped Lua functions), optional field
/// getters, `__tostring`, and `__close` (5.4) mapped to the `close` method.
pub fn register_type<T: 'static>(
    lua: &Lua,
    methods: LuaTable,
    getters: Option<LuaTable>,
    tostring: fn(&T) -> String,
) -> LuaResult<()> {
    let index: LuaValue = match getters {
        Some(g) => LuaValue::Function(glue(lua)?.index.call((methods.clone(), g))?),
        None => LuaValue::Table(methods.clone()),
    };
    let close: Option<LuaFunction> = methods.raw_get("close")?;
    lua.register_userdata_type::<T>(move |reg| {
        reg.add_meta_field("__index", index);
        reg.add_meta_method("__tostring", move |_, this: &T, ()| Ok(tostring(this)));
        if let Some(close) = close {
            reg.add_meta_field("__close", close);
        }
    })
}
