//! The Lua face of tasks: `net.spawn` and the task handle (`join`, `cancel`, `status`), and
//! `net.run`, `net.stop`, `net.wrap`.
//!
//! `net.spawn` and the handle's methods are raw Lua C functions (docs/internals.md, "Tasks"): a
//! handle is a plain userdata holding an `Rc<TaskCell>`, with a private metatable; the waiting
//! part of `join` is Lua (`src/lua/task.lua`), parking like a read parks on a socket.

use std::ffi::{c_int, c_void};
use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Poll;

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::raw::{self, push_fail};
use super::task::{start, wait_end, Outcome, TaskCell};
use super::{sched, Mode, Sched, Wait};
use crate::error::{pending_tag, Kind, NResult, NetError};
use crate::export::{self, func};

/// The userdata of a task handle: a pointer made by `Rc::into_raw` (null once collected).
type Handle = *const TaskCell;

/// `net.spawn(fn, ...)`, called by Lua directly (it raises its errors itself, with nothing to
/// drop at that point). Upvalues: the scheduler, the handle metatable.
unsafe extern "C-unwind" fn spawn_raw(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the upvalues set by `register`. Every Lua call that may raise
    // happens while no Rust value needs dropping; the Rust part runs under `catch_unwind`.
    unsafe {
        let s = raw::sched(l, 1);
        if ffi::lua_type(l, 1) != ffi::LUA_TFUNCTION {
            let e = NetError::arg(1, "net.spawn", format!("function expected, got {}", raw::type_name(l, 1)));
            return raw::raise(l, e);
        }
        s.release_dead_refs(l);
        let n = ffi::lua_gettop(l);
        let ud = ffi::lua_newuserdata(l, std::mem::size_of::<Handle>()) as *mut Handle;
        ud.write(std::ptr::null());
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        ffi::lua_setmetatable(l, -2);
        let co = ffi::lua_newthread(l);
        // [fn args... handle co] -> [handle co fn args...], then the function and its arguments
        // move to the new coroutine.
        ffi::lua_insert(l, 1);
        ffi::lua_insert(l, 1);
        ffi::lua_xmove(l, co, n);
        let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        // The scheduler is kept alive by the state's app data; an `Rc` is needed for the driver.
        let started = catch_unwind(AssertUnwindSafe(|| {
            let s = sched_rc(s);
            Rc::into_raw(start(&s, r, co))
        }));
        match started {
            Ok(cell) => {
                ud.write(cell);
                1
            }
            Err(_) => {
                ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
                raw::raise(l, NetError::new(Kind::Io, "net.spawn: internal error"))
            }
        }
    }
}

/// An `Rc` of the scheduler behind `s` (which the state's app data holds).
fn sched_rc(s: &Sched) -> Rc<Sched> {
    // SAFETY: `s` points into the `Rc<Sched>` kept in the state's app data for the state's life;
    // the count is raised before the new `Rc` takes its share.
    unsafe {
        Rc::increment_strong_count(s as *const Sched);
        Rc::from_raw(s as *const Sched)
    }
}

/// The task behind the handle at index 1, or an argument error. Upvalue 2 is the metatable.
unsafe fn handle(l: *mut lua_State, op: &str) -> Result<*const TaskCell, NetError> {
    // SAFETY: `l` is the running C function's state; these calls only read the stack.
    unsafe {
        let ok = ffi::lua_getmetatable(l, 1) != 0 && {
            let same = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0;
            ffi::lua_pop(l, 1);
            same
        };
        let p = if ok { *(ffi::lua_touserdata(l, 1) as *const Handle) } else { std::ptr::null() };
        if p.is_null() {
            let got = raw::type_name(l, 1);
            return Err(NetError::arg(1, op, format!("task expected, got {got}")));
        }
        Ok(p)
    }
}

const OP_JOIN: ffi::lua_Integer = 0;
const OP_PARK: ffi::lua_Integer = 1;
const OP_CANCEL: ffi::lua_Integer = 2;
const OP_STATUS: ffi::lua_Integer = 3;

/// What a handle operation pushes once its Rust part is done.
enum Reply {
    Fail(NetError),
    Pending,
    Bool(bool),
    Str(&'static str),
    /// `true` and the values of the packed results table at this registry index.
    Results(c_int),
    /// `FAIL` and the error value at this registry index.
    Raise(c_int),
    /// `true` and the coroutine at this registry index (to close: Lua 5.4 `cancel`).
    CloseCo(c_int),
}

/// `op(task, which)`: the raw part of the handle's methods (`src/lua/task.lua` wraps them).
/// Upvalues: the scheduler, the handle metatable.
unsafe extern "C-unwind" fn task_op(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the upvalues set by `register`; the handle at index 1 keeps
    // the task alive during the call. The Rust part ends (borrows and clones dropped) before
    // anything is pushed.
    unsafe {
        let s = raw::sched(l, 1);
        let which = ffi::lua_tointeger(l, 2);
        let name = match which {
            OP_JOIN | OP_PARK => "join",
            OP_CANCEL => "cancel",
            _ => "status",
        };
        let reply = match handle(l, name) {
            Err(e) => Reply::Fail(e),
            Ok(cell) => {
                let r = catch_unwind(AssertUnwindSafe(|| op_reply(s, l, &*cell, which)));
                r.unwrap_or_else(|_| Reply::Fail(NetError::new(Kind::Io, format!("{name}: internal error"))))
            }
        };
        match reply {
            Reply::Fail(e) => push_fail(l, e),
            Reply::Pending => {
                ffi::lua_pushlightuserdata(l, pending_tag().0);
                1
            }
            Reply::Bool(b) => {
                ffi::lua_pushboolean(l, c_int::from(b));
                1
            }
            Reply::Str(st) => {
                ffi::lua_pushlstring(l, st.as_ptr().cast(), st.len());
                1
            }
            Reply::Results(k) => {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, k.into());
                ffi::lua_getfield(l, -1, c"n".as_ptr());
                let n = ffi::lua_tointeger(l, -1) as c_int;
                ffi::lua_pop(l, 1);
                ffi::luaL_checkstack(l, n + 1, c"too many results".as_ptr());
                ffi::lua_pushboolean(l, 1);
                for i in 1..=n {
                    ffi::lua_rawgeti(l, -1 - i, i.into());
                }
                n + 1
            }
            Reply::Raise(k) => {
                ffi::lua_pushlightuserdata(l, crate::error::fail_tag().0);
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, k.into());
                2
            }
            Reply::CloseCo(k) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, k.into());
                2
            }
        }
    }
}

fn op_reply(s: &Sched, l: *mut lua_State, cell: &TaskCell, which: ffi::lua_Integer) -> Reply {
    let itself = s.current_id() == cell.id;
    match which {
        OP_JOIN => {
            if itself && s.mode_of(l as *const c_void) == Mode::Task {
                return Reply::Fail(NetError::new(
                    Kind::Io,
                    "task:join() called by the task itself (it would wait forever)",
                ));
            }
            cell.joined.set(true);
            match &*cell.outcome.borrow() {
                Outcome::Running => Reply::Pending,
                Outcome::Done(None) => Reply::Bool(true),
                Outcome::Done(Some(k)) => Reply::Results(k.id()),
                Outcome::Failed(k) => Reply::Raise(k.id()),
                Outcome::Cancelled => Reply::Fail(NetError::new(Kind::Cancelled, "join: the task was cancelled")),
            }
        }
        OP_PARK => {
            // SAFETY: called from `task_op`, whose handle argument keeps the cell alive; the
            // driver holds a counted reference, this one is taken for the wait.
            let me = unsafe {
                Rc::increment_strong_count(cell as *const TaskCell);
                Rc::from_raw(cell as *const TaskCell)
            };
            Reply::Bool(super::park(l as *const c_void, Wait::Ready(me, false)))
        }
        OP_CANCEL => {
            let co_ref = cell.co_ref.get();
            if !cell.cancel(s, itself) {
                Reply::Bool(false)
            } else if itself || co_ref == ffi::LUA_NOREF || cfg!(not(feature = "lua54")) {
                Reply::Bool(true)
            } else {
                // Another task: its coroutine is closed at once (its `<close>` variables run).
                Reply::CloseCo(co_ref)
            }
        }
        OP_STATUS => Reply::Str(cell.status()),
        _ => Reply::Fail(NetError::new(Kind::Io, "task: unknown operation")),
    }
}

/// `__gc` of a handle: drops its share of the task.
unsafe extern "C-unwind" fn handle_gc(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a finalizer of a handle (the metatable is private to the module).
    unsafe {
        let ud = ffi::lua_touserdata(l, 1) as *mut Handle;
        if !ud.is_null() {
            let p = ud.replace(std::ptr::null());
            if !p.is_null() {
                let _ = catch_unwind(AssertUnwindSafe(|| drop(Rc::from_raw(p))));
            }
        }
    }
    0
}

/// `__tostring` of a handle: `task{0x...}`.
unsafe extern "C-unwind" fn handle_tostring(l: *mut lua_State) -> c_int {
    let mut buf = [0u8; 64];
    // SAFETY: called by Lua with a handle at index 1 (the metatable is private to the module).
    let p = unsafe { *(ffi::lua_touserdata(l, 1) as *const Handle) };
    let n = {
        use std::io::Write;
        let mut w = &mut buf[..];
        let _ = write!(w, "task{{{p:p}}}");
        64 - w.len()
    };
    // SAFETY: `buf` is a plain array; nothing to drop if the push raises.
    unsafe { ffi::lua_pushlstring(l, buf.as_ptr().cast(), n) };
    1
}

fn run(lua: &Lua) -> NResult<usize> {
    let s = sched(lua);
    if s.running.get() {
        return Err(NetError::new(
            Kind::Io,
            "net.run: the loop is already running (net.run cannot be nested or called from a task)",
        ));
    }
    super::run_at_exit::disarm(lua);
    s.stop_requested.set(false);
    s.failed.set(0);
    let s2 = s.clone();
    let until_done = poll_fn(|cx| {
        if s2.live.get() == 0 || s2.stop_requested.get() {
            Poll::Ready(())
        } else {
            *s2.run_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    });
    s.block_on(lua, "net.run", until_done)?;
    s.stop_requested.set(false);
    Ok(s.failed.get())
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let s = sched(lua);
    let mt = lua.create_table()?;
    // SAFETY: both read only their own userdata argument (see the functions).
    unsafe {
        mt.raw_set("__gc", lua.create_c_function(handle_gc)?)?;
        mt.raw_set("__tostring", lua.create_c_function(handle_tostring)?)?;
    }
    mt.raw_set("__metatable", "task")?;
    let spawn = raw::closure(lua, &s, spawn_raw, mt.clone())?;
    let op = raw::closure(lua, &s, task_op, mt.clone())?;
    let join_wait = export::raw_async(lua, "join", |_, args| {
        // Only `src/lua/task.lua` calls this, with a handle `task_op` accepted a moment ago.
        let ud = match args.get(1) {
            LuaValue::UserData(ud) => ud,
            _ => return Err(args.expected(1, "task")),
        };
        // SAFETY: the handle is an argument of this call, so its block (a `Handle`) is alive.
        let p = unsafe { *(ud.to_pointer() as *const Handle) };
        if p.is_null() {
            return Err(args.expected(1, "task"));
        }
        // SAFETY: the handle holds a counted reference to the cell; this takes one more.
        let cell = unsafe {
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        };
        Ok(async move {
            wait_end(&cell).await;
            Ok(())
        })
    })?;
    let make_methods: LuaFunction = export::glue(lua)?.tasks.get("methods")?;
    let methods: LuaTable = make_methods.call((op, join_wait))?;
    mt.raw_set("__index", methods)?;
    net.set("spawn", spawn)?;
    net.set("run", func(lua, "net.run", |lua, _| run(lua))?)?;
    super::run_at_exit::register(lua, net)?;
    net.set(
        "stop",
        func(lua, "net.stop", |lua, _| {
            let s = sched(lua);
            s.stop_requested.set(true);
            s.wake_run();
            Ok(())
        })?,
    )?;
    let enter = lua.create_function(|lua, co: LuaThread| Ok(sched(lua).adopt(lua, co.to_pointer())))?;
    let leave = lua.create_function(|lua, co: LuaThread| {
        sched(lua).unadopt(co.to_pointer());
        Ok(())
    })?;
    let (make_wrap, make_pcall) = {
        let g = export::glue(lua)?;
        (g.make_wrap.clone(), g.make_pcall.clone())
    };
    net.set("wrap", make_wrap.call::<LuaFunction>((&enter, &leave))?)?;
    let (pcall, xpcall) = make_pcall.call::<(LuaFunction, LuaFunction)>((enter, leave))?;
    net.set("pcall", pcall)?;
    net.set("xpcall", xpcall)?;
    Ok(())
}
