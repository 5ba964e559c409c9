//! Small helpers for the raw Lua C functions of the task core (`task.rs`, `timer.rs`).
//!
//! These functions run without mlua's callback machinery, so they follow the fast-path rules of
//! docs/internals.md ("Fast paths"): Rust work first, then pushes with nothing left to drop, since
//! a push may raise (a `longjmp`, or a foreign exception on LuaJIT) straight through Rust frames.

use std::ffi::{c_int, c_void};

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::Sched;
use crate::error::fail_tag;
use crate::error::NetError;

/// Error messages longer than this are cut (at a character boundary).
const MAX_MSG: usize = 512;

/// Pushes `FAIL` and the message of `e`; returns the number of values pushed (2).
///
/// # Safety
/// `l` is the running C function's state, with two free stack slots.
pub unsafe fn push_fail(l: *mut lua_State, e: NetError) -> c_int {
    let mut buf = [0u8; MAX_MSG];
    let n = copy_message(&mut buf, e);
    // SAFETY: see the contract; `buf` is a plain array, so a raise here leaks nothing.
    unsafe {
        ffi::lua_pushlightuserdata(l, fail_tag().0);
        ffi::lua_pushlstring(l, buf.as_ptr().cast(), n);
    }
    2
}

/// Raises the message of `e` as a plain string error (like `error(msg, 0)`).
///
/// # Safety
/// `l` is the running C function's state, with a free stack slot, and no Rust value that needs
/// dropping is alive in the caller (the raise leaves without running Rust code).
pub unsafe fn raise(l: *mut lua_State, e: NetError) -> c_int {
    let mut buf = [0u8; MAX_MSG];
    let n = copy_message(&mut buf, e);
    // SAFETY: see the contract; `buf` is a plain array.
    unsafe {
        ffi::lua_pushlstring(l, buf.as_ptr().cast(), n);
        ffi::lua_error(l)
    }
}

/// Copies the message of `e` into `buf` and drops it; returns its length.
fn copy_message(buf: &mut [u8; MAX_MSG], e: NetError) -> usize {
    let msg = e.to_string();
    let mut n = msg.len().min(MAX_MSG);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    buf[..n].copy_from_slice(&msg.as_bytes()[..n]);
    n
}

/// The scheduler stored as light userdata in upvalue `i` of the running C function.
///
/// # Safety
/// `l` is the running C function's state, and its upvalue `i` was set by [`closure`] with the
/// state's scheduler, which lives as long as the state.
pub unsafe fn sched<'a>(l: *mut lua_State, i: c_int) -> &'a Sched {
    // SAFETY: see the contract.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(i)) as *const Sched) }
}

/// A Lua C closure of `f` with the scheduler as upvalue 1 and `extra` values as upvalues 2...
pub fn closure(lua: &Lua, s: &Sched, f: ffi::lua_CFunction, extra: impl IntoLuaMulti) -> LuaResult<LuaFunction> {
    let mut up = extra.into_lua_multi(lua)?;
    up.push_front(LuaValue::LightUserData(LuaLightUserData(s as *const Sched as *mut c_void)));
    let n = up.len() as c_int;
    // SAFETY: `exec_raw` runs this under a protected call with the upvalues on the stack.
    unsafe { lua.exec_raw(up, |state| ffi::lua_pushcclosure(state, f, n)) }
}

/// The type name of the value at `idx`, as Lua's argument errors give it.
///
/// # Safety
/// `l` is the running C function's state and `idx` a valid index.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: see the contract; these calls only read the stack.
    unsafe {
        let t = ffi::lua_type(l, idx);
        if t == ffi::LUA_TNONE || t == ffi::LUA_TNIL {
            return "no value".into();
        }
        std::ffi::CStr::from_ptr(ffi::lua_typename(l, t)).to_string_lossy().into_owned()
    }
}
