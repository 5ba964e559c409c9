//! The synchronous first try of a stream's read and write methods, as raw Lua C functions.
//!
//! A buffered `read` is the hottest call there is, and going through mlua's callback machinery
//! (argument conversion, error slots, a reference per returned string) cost ~200 ns of a ~230 ns
//! call on LuaJIT. These functions read the Lua stack directly: the stream is found by its
//! userdata address in a per-thread table filled when the userdata is made (`register`) and
//! emptied when it is collected. They push the result, or `PENDING` (the Lua wrapper then calls
//! the async twin in `stream.rs`), or `FAIL` and a message.
//!
//! Two rules keep them sound (docs/internals.md, "Fast paths"):
//! - **Work first, Lua last.** Creating a Lua string can run a GC step, and with it `__gc`
//!   finalizers, which may use this very stream (and move its buffer) or raise. So each function
//!   first does all its Rust work under `catch_unwind` without touching Lua, copying the result
//!   out of the stream's buffer into a buffer of its own, and only then pushes.
//! - **Nothing to drop while Lua may raise.** A raise from a push is a `longjmp` on Lua 5.x and a
//!   foreign exception on LuaJIT; either leaves the function without running Rust code, and a
//!   foreign exception aborts the process if it meets `catch_unwind`. Small results are copied to
//!   the C stack (nothing to free); larger ones are pushed by a tiny helper under `lua_pcall`, and
//!   its error is raised again once the copy is freed.

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::stream::{self, Done, Inner, ReadOp};
use crate::error::NetError;
use crate::export::{fail_tag, pending_tag, raw_async};
use crate::runtime::raw::type_name;

/// The stream's read and write methods: each a fast path, its async twin and its park function,
/// joined by the Lua wrapper (`src/lua/stream.lua`). `stream::register` adds the rest.
pub fn methods(lua: &Lua) -> LuaResult<LuaTable> {
    let fast: LuaTable = crate::export::fast_paths(lua)?;
    let method: LuaFunction = fast.get("method")?;
    let methods = lua.create_table()?;
    let reads: [(&'static str, ffi::lua_CFunction); 5] = [
        ("read", read::<READ>),
        ("read_line", read::<READ_LINE>),
        ("read_all", read::<READ_ALL>),
        ("read_exact", read::<READ_EXACT>),
        ("read_u32", read::<READ_U32>),
    ];
    for (which, try_fn) in reads {
        let t = with_pusher(lua, try_fn)?;
        let w = raw_async(lua, which, move |lua, a| stream::wait_read(lua, a, which))?;
        // SAFETY: `park` reads its one argument and pushes a boolean (see below).
        let park = unsafe { lua.create_c_function(park::<false>)? };
        methods.set(which, method.call::<LuaFunction>((t, w, park))?)?;
    }
    let writes: [(&'static str, ffi::lua_CFunction); 3] =
        [("write", write::<WRITE>), ("write_all", write::<WRITE_ALL>), ("write_u32", write::<WRITE_U32>)];
    for (which, try_fn) in writes {
        let t = with_pusher(lua, try_fn)?;
        let w = raw_async(lua, which, move |_, a| stream::wait_write(a, which))?;
        // SAFETY: as above.
        let park = unsafe { lua.create_c_function(park::<true>)? };
        methods.set(which, method.call::<LuaFunction>((t, w, park))?)?;
    }
    Ok(methods)
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

/// Results up to this size are copied to the C stack and pushed directly; larger ones are pushed
/// under `lua_pcall` (see the module doc). 4 KiB is `read()`'s default size.
const SMALL: usize = 4096;

/// What a fast path answers. Only `Big` owns heap memory; it is pushed by `push_protected`.
enum Reply {
    Pending,
    /// A write would wait after sending this many bytes.
    PendingAt(usize),
    Nil,
    Int(i64),
    Bool(bool),
    /// The first `n` bytes of the caller's stack buffer.
    Small(usize),
    Big(Vec<u8>),
    /// `FAIL` and the first `n` bytes of the stack buffer (the message).
    Fail(usize),
}

type Scratch = [MaybeUninit<u8>; SMALL];

/// Copies `bytes` into `buf` when they fit, else into a `Vec`.
fn bytes_reply(buf: &mut Scratch, bytes: &[u8]) -> Reply {
    if bytes.len() <= SMALL {
        for (d, s) in buf.iter_mut().zip(bytes) {
            d.write(*s);
        }
        Reply::Small(bytes.len())
    } else {
        Reply::Big(bytes.to_vec())
    }
}

fn fail_reply(buf: &mut Scratch, e: NetError) -> Reply {
    let msg = e.to_string();
    let mut n = msg.len().min(SMALL);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    match bytes_reply(buf, &msg.as_bytes()[..n]) {
        Reply::Small(n) => Reply::Fail(n),
        _ => unreachable!("messages are cut to SMALL"),
    }
}

/// The stream whose userdata is at stack index 1.
unsafe fn stream_at(l: *mut lua_State, op: u8) -> Result<Rc<Inner>, NetError> {
    // SAFETY: `l` is the running C function's lua_State (valid for this call); index 1 is `self`; `lua_touserdata` only reads it.
    unsafe {
        let addr = ffi::lua_touserdata(l, 1) as usize;
        stream::lookup(addr)
            .ok_or_else(|| NetError::arg(1, name(op), format!("stream expected, got {}", type_name(l, 1))))
    }
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
    // SAFETY: `l` is the running C function's lua_State (valid for this call); `idx` is one of its arguments; only type checks and reads.
    unsafe {
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
}

/// Runs the Rust part of a fast path; `None` if it panicked (reported as an `io:` failure rather
/// than unwinding into Lua). `body` must not call any Lua function that can raise or run Lua code.
fn guarded(body: impl FnOnce() -> Reply) -> Option<Reply> {
    catch_unwind(AssertUnwindSafe(body)).ok()
}

fn internal_error(buf: &mut Scratch, op: u8) -> Reply {
    fail_reply(buf, NetError::new(crate::error::Kind::Io, format!("{}: internal error", name(op))))
}

/// Pushes a reply. From here on Lua may run finalizers and raise: `reply` holds no heap data
/// except in `Big`, which `push_protected` frees before raising again.
unsafe fn push(l: *mut lua_State, reply: Reply, buf: &Scratch) -> c_int {
    // SAFETY: `l` is the running C function's lua_State (valid for this call); a C function may push up to LUA_MINSTACK (20) values without checking.
    unsafe {
        match reply {
            Reply::Pending => {
                ffi::lua_pushlightuserdata(l, pending_tag().0);
                1
            }
            Reply::PendingAt(off) => {
                ffi::lua_pushlightuserdata(l, pending_tag().0);
                ffi::lua_pushinteger(l, off as ffi::lua_Integer);
                2
            }
            Reply::Nil => {
                ffi::lua_pushnil(l);
                1
            }
            Reply::Int(n) => {
                ffi::lua_pushinteger(l, n as ffi::lua_Integer);
                1
            }
            Reply::Bool(b) => {
                ffi::lua_pushboolean(l, c_int::from(b));
                1
            }
            Reply::Small(n) => {
                ffi::lua_pushlstring(l, buf.as_ptr().cast(), n);
                1
            }
            Reply::Fail(n) => {
                ffi::lua_pushlightuserdata(l, fail_tag().0);
                ffi::lua_pushlstring(l, buf.as_ptr().cast(), n);
                2
            }
            Reply::Big(v) => push_protected(l, v),
        }
    }
}

/// Pushes `v` as a string under `lua_pcall`, using the helper kept as upvalue 1 of every fast
/// path (`with_pusher`), so that an error (a finalizer's, or out of memory) cannot skip `v`'s
/// destructor; the error is raised again after `v` is gone.
unsafe fn push_protected(l: *mut lua_State, v: Vec<u8>) -> c_int {
    // SAFETY: `l` is the running C function's lua_State (valid for this call); upvalue 1 is `push_bytes` (`with_pusher`), and `v` outlives the protected call that reads it.
    unsafe {
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushlightuserdata(l, v.as_ptr() as *mut std::ffi::c_void);
        ffi::lua_pushinteger(l, v.len() as ffi::lua_Integer);
        let rc = ffi::lua_pcall(l, 2, 1, 0);
        drop(v);
        if rc != ffi::LUA_OK {
            // The error value is on top; nothing in this frame or our caller's needs dropping.
            ffi::lua_error(l);
        }
        1
    }
}

/// The helper `push_protected` calls: `(pointer, length) -> string`.
///
/// # Safety
/// Only for `push_protected`: arguments are a pointer to `length` readable bytes.
unsafe extern "C-unwind" fn push_bytes(l: *mut lua_State) -> c_int {
    // SAFETY: called only by `push_protected`, with a pointer and length of a live `Vec`.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *const std::ffi::c_char;
        let n = ffi::lua_tointeger(l, 2) as usize;
        ffi::lua_pushlstring(l, p, n);
        1
    }
}

/// Makes the Lua function for a fast path: the C function `f` with `push_bytes` as its upvalue.
pub fn with_pusher(lua: &Lua, f: ffi::lua_CFunction) -> LuaResult<LuaFunction> {
    // SAFETY: `push_bytes` only reads a pointer and a length its one caller passes, and the
    // closure is built under mlua's protection.
    unsafe {
        let pusher = lua.create_c_function(push_bytes)?;
        lua.exec_raw(pusher, |state| ffi::lua_pushcclosure(state, f, 1))
    }
}

/// `read*(stream, ...)`: see the module doc for the order of work.
///
/// # Safety
/// Called by Lua as a C function (`l` valid, arguments on its stack).
pub unsafe extern "C-unwind" fn read<const OP: u8>(l: *mut lua_State) -> c_int {
    let mut buf: Scratch = [MaybeUninit::uninit(); SMALL];
    // SAFETY: `l` is valid for this call (see above); `read_body` runs no Lua code.
    let reply = guarded(|| unsafe { read_body::<OP>(l, &mut buf) }).unwrap_or_else(|| internal_error(&mut buf, OP));
    // SAFETY: as above; from here only `reply` and `buf` are alive, which need no dropping but
    // `Big`'s, which `push_protected` frees before any error is raised again.
    unsafe { push(l, reply, &buf) }
}

unsafe fn read_body<const OP: u8>(l: *mut lua_State, buf: &mut Scratch) -> Reply {
    // SAFETY: `l` is the running C function's lua_State (valid for this call); only reads of arguments happen here, no Lua code runs.
    unsafe {
        let s = match stream_at(l, OP) {
            Ok(s) => s,
            Err(e) => return fail_reply(buf, e),
        };
        let max = i64::from(i32::MAX);
        let op = match OP {
            READ => int_arg(l, 2, OP, Some(4096), 1, max).map(|n| ReadOp::Some(n as usize)),
            READ_LINE => Ok(ReadOp::Line),
            READ_ALL => {
                int_arg(l, 2, OP, Some(stream::MAX_READ_ALL as i64), 0, i64::MAX).map(|n| ReadOp::All(n as usize))
            }
            READ_EXACT => int_arg(l, 2, OP, None, 0, max).map(|n| ReadOp::Exact(n as usize)),
            _ => Ok(ReadOp::U32),
        };
        let op = match op {
            Ok(op) => op,
            Err(e) => return fail_reply(buf, e),
        };
        match s.poll_read_op(&mut Context::from_waker(Waker::noop()), op, name(OP)) {
            Poll::Pending => Reply::Pending,
            Poll::Ready(Err(e)) => fail_reply(buf, e),
            Poll::Ready(Ok(Done::Eof)) => Reply::Nil,
            Poll::Ready(Ok(Done::Take { len, skip })) => s.take(len, skip, |bytes| {
                if OP == READ_U32 {
                    Reply::Int(u32::from_be_bytes(bytes.try_into().expect("4 bytes")).into())
                } else {
                    bytes_reply(buf, bytes)
                }
            }),
        }
    }
}

/// `park(stream)`: true if the calling task parked on the stream's readiness (it must then
/// `coroutine.yield()`), false if the caller must use the async path instead (not a task,
/// a stream with a timeout, or not a stream).
///
/// # Safety
/// Called by Lua as a C function (`l` valid, arguments on its stack).
pub unsafe extern "C-unwind" fn park<const W: bool>(l: *mut lua_State) -> c_int {
    let mut buf: Scratch = [MaybeUninit::uninit(); SMALL];
    // SAFETY: `l` is valid for this call; `stream_at` only reads argument 1.
    let reply = guarded(|| unsafe {
        Reply::Bool(match stream_at(l, if W { WRITE } else { READ }) {
            Ok(s) if s.parkable() => crate::runtime::park_here(l as *const _, s, W),
            _ => false,
        })
    })
    .unwrap_or_else(|| internal_error(&mut buf, READ));
    // SAFETY: as in `read`.
    unsafe { push(l, reply, &buf) }
}

/// `write*(stream, data[, sent])`.
///
/// # Safety
/// Called by Lua as a C function (`l` valid, arguments on its stack).
pub unsafe extern "C-unwind" fn write<const OP: u8>(l: *mut lua_State) -> c_int {
    // A number argument is converted to a string in place, which allocates and so may run
    // finalizers: do it before any Rust value is alive in this frame.
    // SAFETY: `l` is valid for this call and index 2 is an argument (or none: LUA_TNONE).
    unsafe {
        if OP != WRITE_U32 && ffi::lua_type(l, 2) == ffi::LUA_TNUMBER {
            ffi::lua_tolstring(l, 2, std::ptr::null_mut());
        }
    }
    let mut buf: Scratch = [MaybeUninit::uninit(); SMALL];
    // SAFETY: `l` is valid for this call; `write_body` runs no Lua code.
    let reply = guarded(|| unsafe { write_body::<OP>(l, &mut buf) }).unwrap_or_else(|| internal_error(&mut buf, OP));
    // SAFETY: as in `read`.
    unsafe { push(l, reply, &buf) }
}

unsafe fn write_body<const OP: u8>(l: *mut lua_State, buf: &mut Scratch) -> Reply {
    // SAFETY: `l` is the running C function's lua_State (valid for this call); only reads of arguments happen here, no Lua code runs.
    unsafe {
        let s = match stream_at(l, OP) {
            Ok(s) => s,
            Err(e) => return fail_reply(buf, e),
        };
        let u32_bytes;
        let data: &[u8] = if OP == WRITE_U32 {
            match int_arg(l, 2, OP, None, 0, i64::from(u32::MAX)) {
                Ok(n) => {
                    u32_bytes = (n as u32).to_be_bytes();
                    &u32_bytes
                }
                Err(e) => return fail_reply(buf, e),
            }
        } else {
            if ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
                let e = NetError::arg(2, name(OP), format!("string expected, got {}", type_name(l, 2)));
                return fail_reply(buf, e);
            }
            let mut len = 0usize;
            // A string already: no conversion, no allocation.
            let p = ffi::lua_tolstring(l, 2, &mut len);
            // SAFETY: the string stays on the stack (index 2), so alive and unmoved, for the whole call.
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        };
        // Where an earlier attempt of this same write stopped (the wrapper passes it back).
        let mut off = match ffi::lua_type(l, 3) {
            ffi::LUA_TNUMBER => (ffi::lua_tonumber(l, 3).max(0.0) as usize).min(data.len()),
            _ => 0,
        };
        match s.poll_write_all(&mut Context::from_waker(Waker::noop()), data, &mut off) {
            Poll::Pending => Reply::PendingAt(off),
            Poll::Ready(Ok(())) => Reply::Int(data.len() as i64),
            Poll::Ready(Err(e)) => fail_reply(buf, e),
        }
    }
}
