//! The synchronous first try of a stream's read and write methods, as raw Lua C functions.
//!
//! A buffered `read` is the hottest call there is, and going through mlua's callback machinery
//! (argument conversion, error slots, a reference per returned string) cost ~200 ns of a ~230 ns
//! call on LuaJIT. These functions read the Lua stack directly: the stream is found by its
//! userdata address in a per-thread table filled when the userdata is made (`register`) and
//! emptied when it is collected. They never raise: they push the result, or `PENDING` (the
//! Lua wrapper then calls the async twin in `stream.rs`), or `FAIL` and a message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mlua::ffi::{self, lua_State};

use super::stream::{Done, Inner, ReadOp};
use crate::error::NetError;
use crate::export::{fail_tag, pending_tag};

thread_local! {
    /// Live stream userdata, by address.
    static STREAMS: RefCell<HashMap<usize, Rc<Inner>>> = RefCell::new(HashMap::new());
}

/// Makes the stream userdata at `addr` known to the fast paths.
pub fn register(addr: usize, inner: Rc<Inner>) {
    STREAMS.with(|m| m.borrow_mut().insert(addr, inner));
}

/// Forgets it again (called when the userdata is collected; tolerant of thread teardown).
pub fn unregister(addr: usize) {
    let _ = STREAMS.try_with(|m| m.borrow_mut().remove(&addr));
}

pub const READ: u8 = 0;
pub const READ_LINE: u8 = 1;
pub const READ_ALL: u8 = 2;
pub const READ_EXACT: u8 = 3;
pub const READ_U32: u8 = 4;
pub const WRITE: u8 = 10;
pub const WRITE_ALL: u8 = 11;
pub const WRITE_U32: u8 = 12;

pub fn name(op: u8) -> &'static str {
    match op {
        READ => "read",
        READ_LINE => "read_line",
        READ_ALL => "read_all",
        READ_EXACT => "read_exact",
        READ_U32 => "read_u32",
        WRITE => "write",
        WRITE_ALL => "write_all",
        _ => "write_u32",
    }
}

unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    let t = ffi::lua_type(l, idx);
    if t == ffi::LUA_TNONE || t == ffi::LUA_TNIL {
        return "no value".into();
    }
    CStr::from_ptr(ffi::lua_typename(l, t)).to_string_lossy().into_owned()
}

unsafe fn push_fail(l: *mut lua_State, e: NetError) -> c_int {
    let msg = e.to_string();
    ffi::lua_pushlightuserdata(l, fail_tag().0);
    ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
    2
}

/// The stream whose userdata is at stack index 1.
unsafe fn stream(l: *mut lua_State, op: u8) -> Result<Rc<Inner>, NetError> {
    let addr = ffi::lua_touserdata(l, 1) as usize;
    STREAMS
        .with(|m| m.borrow().get(&addr).cloned())
        .ok_or_else(|| NetError::arg(1, name(op), format!("stream expected, got {}", type_name(l, 1))))
}

/// An integer argument at `idx` (nil gives `default`), checked against `lo..=hi`.
unsafe fn int_arg(
    l: *mut lua_State,
    idx: c_int,
    op: u8,
    default: Option<i64>,
    lo: i64,
    hi: i64,
) -> Result<i64, NetError> {
    let t = ffi::lua_type(l, idx);
    let n = if t == ffi::LUA_TNONE || t == ffi::LUA_TNIL {
        default.ok_or_else(|| NetError::arg(idx as usize, name(op), "integer expected, got no value"))?
    } else if t == ffi::LUA_TNUMBER {
        let f = ffi::lua_tonumber(l, idx);
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(NetError::arg(idx as usize, name(op), "number has no integer representation"));
        }
        f as i64
    } else {
        return Err(NetError::arg(idx as usize, name(op), format!("integer expected, got {}", type_name(l, idx))));
    };
    if n < lo || n > hi {
        return Err(NetError::arg(idx as usize, name(op), format!("out of range: {n} is not in {lo}..{hi}")));
    }
    Ok(n)
}

fn guarded(l: *mut lua_State, op: u8, body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(n) => n,
        Err(_) => unsafe {
            push_fail(l, NetError::new(crate::error::Kind::Io, format!("{}: internal error", name(op))))
        },
    }
}

pub unsafe extern "C-unwind" fn read<const OP: u8>(l: *mut lua_State) -> c_int {
    guarded(l, OP, || unsafe { read_body::<OP>(l) })
}

unsafe fn read_body<const OP: u8>(l: *mut lua_State) -> c_int {
    let s = match stream(l, OP) {
        Ok(s) => s,
        Err(e) => return push_fail(l, e),
    };
    let max = i64::from(i32::MAX);
    let op = match OP {
        READ => int_arg(l, 2, OP, Some(4096), 1, max).map(|n| ReadOp::Some(n as usize)),
        READ_LINE => Ok(ReadOp::Line),
        READ_ALL => Ok(ReadOp::All),
        READ_EXACT => int_arg(l, 2, OP, None, 0, max).map(|n| ReadOp::Exact(n as usize)),
        _ => Ok(ReadOp::U32),
    };
    let op = match op {
        Ok(op) => op,
        Err(e) => return push_fail(l, e),
    };
    match s.poll_read_op(&mut Context::from_waker(Waker::noop()), op, name(OP)) {
        Poll::Pending => {
            ffi::lua_pushlightuserdata(l, pending_tag().0);
            1
        }
        Poll::Ready(Err(e)) => push_fail(l, e),
        Poll::Ready(Ok(Done::Eof)) => {
            ffi::lua_pushnil(l);
            1
        }
        Poll::Ready(Ok(Done::Take { len, skip })) => {
            let (ptr, len) = s.take(len, skip);
            if OP == READ_U32 {
                let v = u32::from_be_bytes(std::slice::from_raw_parts(ptr, 4).try_into().expect("4 bytes"));
                ffi::lua_pushinteger(l, v as ffi::lua_Integer);
            } else {
                // `take` only advanced the read position: the bytes stay where they are until the
                // next read, and the table above keeps the stream alive while we copy them.
                drop(s);
                ffi::lua_pushlstring(l, ptr.cast(), len);
            }
            1
        }
    }
}

/// `park(stream)`: true if the calling task parked on the stream's readiness (it must then
/// `coroutine.yield()`), false if the caller must use the async path instead (not a task,
/// a stream with a timeout, or not a stream).
pub unsafe extern "C-unwind" fn park<const W: bool>(l: *mut lua_State) -> c_int {
    let parked = guarded(l, READ, || unsafe {
        let ok = match stream(l, if W { WRITE } else { READ }) {
            Ok(s) if s.parkable() => crate::runtime::park_here(l as *const _, s, W),
            _ => false,
        };
        ffi::lua_pushboolean(l, c_int::from(ok));
        1
    });
    parked
}

pub unsafe extern "C-unwind" fn write<const OP: u8>(l: *mut lua_State) -> c_int {
    guarded(l, OP, || unsafe { write_body::<OP>(l) })
}

unsafe fn write_body<const OP: u8>(l: *mut lua_State) -> c_int {
    let s = match stream(l, OP) {
        Ok(s) => s,
        Err(e) => return push_fail(l, e),
    };
    let u32_bytes;
    let data: &[u8] = if OP == WRITE_U32 {
        match int_arg(l, 2, OP, None, 0, i64::from(u32::MAX)) {
            Ok(n) => {
                u32_bytes = (n as u32).to_be_bytes();
                &u32_bytes
            }
            Err(e) => return push_fail(l, e),
        }
    } else {
        let t = ffi::lua_type(l, 2);
        if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
            return push_fail(l, NetError::arg(2, name(OP), format!("string expected, got {}", type_name(l, 2))));
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 2, &mut len);
        // The string stays on the stack (index 2) for the whole call.
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    };
    // Where an earlier attempt of this same write stopped (the wrapper passes it back).
    let mut off = match ffi::lua_type(l, 3) {
        ffi::LUA_TNUMBER => (ffi::lua_tonumber(l, 3).max(0.0) as usize).min(data.len()),
        _ => 0,
    };
    match s.poll_write_all(&mut Context::from_waker(Waker::noop()), data, &mut off) {
        Poll::Pending => {
            ffi::lua_pushlightuserdata(l, pending_tag().0);
            ffi::lua_pushinteger(l, off as ffi::lua_Integer);
            2
        }
        Poll::Ready(Ok(())) => {
            ffi::lua_pushinteger(l, data.len() as ffi::lua_Integer);
            1
        }
        Poll::Ready(Err(e)) => push_fail(l, e),
    }
}
