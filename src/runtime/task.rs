//! Tasks: `net.spawn`, `task:join`, `task:cancel`, `task:status`, `net.run`, `net.stop`, `net.wrap`.
//!
//! A task is a Lua coroutine resumed by its [`Driver`], which the state's executor polls
//! (`executor.rs`). The driver calls `lua_resume` itself (docs/internals.md, "Tasks"): no mlua
//! thread object, no mlua reference and no protected call per resume, because 100,000 tasks
//! must cost about what bare coroutines on libuv cost. The coroutine is kept by a raw registry
//! reference (not an mlua value: LuaJIT caps live mlua references near 8000), and `net.spawn`
//! and the handle's methods are raw C functions for the same reason. A failure is printed with
//! its traceback, taken from the dead coroutine, unless someone is joining the task.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::raw::{self, push_fail};
use super::{sched, Mode, Sched, Wait};
use crate::error::{Kind, NResult, NetError};
use crate::export::{self, func, pending_tag};

enum Outcome {
    Running,
    /// Results packed in a table (`n` = count), or none.
    Done(Option<LuaRegistryKey>),
    Failed(LuaRegistryKey),
    Cancelled,
}

/// What a task shares with its handle, its joiners and the Rust API.
pub struct TaskCell {
    /// Never reused (unlike a coroutine's address once it is collected).
    id: u64,
    /// The coroutine's registry reference and its state, until the task ends.
    co_ref: Cell<c_int>,
    co: Cell<*mut lua_State>,
    outcome: RefCell<Outcome>,
    joiners: RefCell<Vec<Waker>>,
    /// Someone called `join`: its failure is theirs to report, not printed.
    joined: Cell<bool>,
    /// The driver's slot in the executor (see `executor.rs`), for `cancel`.
    slot: Cell<Option<(u32, u16)>>,
    /// The driver's waker while the task sleeps (`net.sleep`); the pump takes it at the deadline.
    sleep_waker: RefCell<Option<Waker>>,
}

impl TaskCell {
    /// Wakes the task at its sleep's deadline (called by the pump of `timer::Sleepers`).
    pub(super) fn wake_sleeper(&self) {
        let w = self.sleep_waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    pub(super) fn is_sleeping(&self) -> bool {
        self.sleep_waker.borrow().is_some()
    }

    /// Records how the task ended and wakes its joiners. A task cancelled while it ran (by
    /// itself) stays cancelled whatever it returns afterwards.
    fn finish(&self, o: Outcome) {
        if matches!(*self.outcome.borrow(), Outcome::Cancelled) {
            return;
        }
        *self.outcome.borrow_mut() = o;
        for w in self.joiners.borrow_mut().drain(..) {
            w.wake();
        }
    }

    fn running(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Running)
    }

    fn cancelled(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Cancelled)
    }

    /// Stops a running task; true if it was running. Another task's driver is dropped at once,
    /// never to resume the coroutine again; a task cancelling itself stops at its next wait (its
    /// driver sees the outcome).
    fn cancel(&self, s: &Sched, itself: bool) -> bool {
        if !self.running() {
            return false;
        }
        self.finish(Outcome::Cancelled);
        if !itself {
            if let Some((i, gen)) = self.slot.take() {
                s.exec.cancel(i, gen);
            }
        }
        true
    }

    fn status(&self) -> &'static str {
        match &*self.outcome.borrow() {
            Outcome::Running => "running",
            Outcome::Done(_) => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Joining a task parks on it: ready once it has ended.
impl super::Parkable for TaskCell {
    fn poll_ready(&self, cx: &mut Context<'_>, _write: bool) -> Poll<()> {
        if self.running() {
            let mut js = self.joiners.borrow_mut();
            if !js.iter().any(|w| w.will_wake(cx.waker())) {
                js.push(cx.waker().clone());
            }
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// How a task ended, for Rust callers (see [`wait`]).
pub enum Ended {
    Returned(LuaMultiValue),
    /// The task's error value, unchanged.
    Failed(LuaValue),
    Cancelled,
}

/// A task started from Rust (a timer callback, an HTTP handler).
#[derive(Clone)]
pub struct TaskRef(Rc<TaskCell>, Rc<Sched>);

/// Starts `f(args...)` as a task.
pub fn spawn(lua: &Lua, f: LuaFunction, args: LuaMultiValue) -> LuaResult<TaskRef> {
    let s = sched(lua);
    let mut vals = args;
    vals.push_front(LuaValue::Function(f));
    // SAFETY: runs under `exec_raw`'s protected call with `vals` on the stack: the new thread
    // takes them, and only its reference and address are returned.
    let (r, co): (c_int, LuaLightUserData) = unsafe {
        lua.exec_raw(vals, |state| {
            let n = ffi::lua_gettop(state);
            let co = ffi::lua_newthread(state);
            ffi::lua_insert(state, 1);
            ffi::lua_xmove(state, co, n);
            let r = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pushinteger(state, r as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(state, co as *mut c_void);
        })?
    };
    Ok(TaskRef(start(&s, r, co.0 as *mut lua_State), s))
}

/// Makes the task of a new coroutine (its function and arguments on its stack) and hands it to
/// the loop.
fn start(s: &Rc<Sched>, co_ref: c_int, co: *mut lua_State) -> Rc<TaskCell> {
    let cell = Rc::new(TaskCell {
        id: s.new_task_id(),
        co_ref: Cell::new(co_ref),
        co: Cell::new(co),
        outcome: RefCell::new(Outcome::Running),
        joiners: RefCell::new(Vec::new()),
        joined: Cell::new(false),
        slot: Cell::new(None),
        sleep_waker: RefCell::new(None),
    });
    s.retain();
    let driver = Driver { cell: cell.clone(), sched: s.clone(), wait: None, started: false, findable: None };
    cell.slot.set(Some(s.exec.spawn(driver)));
    cell
}

impl TaskRef {
    /// Waits for the task to end; true when it returned normally.
    pub async fn finished_ok(&self) -> bool {
        wait_end(&self.0).await;
        let ok = matches!(*self.0.outcome.borrow(), Outcome::Done(_));
        ok
    }

    /// Waits for the task to end and gives its results, its error value, or `Cancelled`. Its
    /// failure is then the caller's to report: it is not printed.
    pub async fn join(&self, lua: &Lua) -> Ended {
        self.0.joined.set(true);
        wait_end(&self.0).await;
        let o = self.0.outcome.borrow();
        match &*o {
            Outcome::Done(None) => Ended::Returned(LuaMultiValue::new()),
            Outcome::Done(Some(k)) => {
                let vals = lua.registry_value::<LuaTable>(k).and_then(|t| {
                    let n: usize = t.raw_get("n")?;
                    (1..=n).map(|i| t.raw_get::<LuaValue>(i)).collect::<LuaResult<LuaMultiValue>>()
                });
                match vals {
                    Ok(v) => Ended::Returned(v),
                    Err(e) => Ended::Failed(LuaValue::String(lua.create_string(e.to_string()).expect("string"))),
                }
            }
            Outcome::Failed(k) => Ended::Failed(lua.registry_value(k).unwrap_or(LuaValue::Nil)),
            Outcome::Cancelled | Outcome::Running => Ended::Cancelled,
        }
    }

    pub fn cancel(&self) -> bool {
        let itself = self.1.current_id() == self.0.id;
        self.0.cancel(&self.1, itself)
    }
}

async fn wait_end(cell: &TaskCell) {
    poll_fn(|cx| super::Parkable::poll_ready(cell, cx, false)).await
}

/// Resumes a task's coroutine whenever what it waits for is ready, and records how it ended.
/// Polled by the executor (`executor.rs`).
pub(super) struct Driver {
    cell: Rc<TaskCell>,
    sched: Rc<Sched>,
    /// What the task parked on (see `runtime::park_here`), checked before resuming it.
    wait: Option<Wait>,
    /// The coroutine has been resumed once (its function and arguments are on its stack
    /// before that).
    started: bool,
    /// This driver's slot in `drivers`, once the task parked (only tasks that park need it).
    findable: Option<usize>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.cell.cancelled() {
            // Cancelled by itself during its last poll (see `TaskCell::cancel`).
            this.close_coroutine();
            return Poll::Ready(());
        }
        let co = this.cell.co.get();
        if co.is_null() {
            return Poll::Ready(());
        }
        // SAFETY: `co` is alive (the registry holds it until the task ends).
        if this.started && unsafe { ffi::lua_status(co) } != ffi::LUA_YIELD {
            // Someone else resumed the coroutine and it ended there (or runs there now).
            this.fail_foreign();
            return Poll::Ready(());
        }
        match &this.wait {
            Some(Wait::Ready(on, write)) if on.poll_ready(cx, *write).is_pending() => return Poll::Pending,
            Some(Wait::Until(at)) if tokio::time::Instant::now() < *at => return Poll::Pending,
            _ => this.wait = None,
        }
        let nargs = if this.started {
            0
        } else {
            this.started = true;
            // SAFETY: as above; the stack holds the function and its arguments.
            unsafe { ffi::lua_gettop(co) - 1 }
        };
        let mut nres: c_int = 0;
        let id = this.cell.id;
        // SAFETY: `co` is a suspended (or new) coroutine of this state; `lua_resume` catches
        // every error raised inside it, so nothing unwinds through this frame.
        let rc = super::polling_task(&this.sched, co as *const c_void, id, cx.waker(), || unsafe {
            ffi::lua_resume(co, std::ptr::null_mut(), nargs, &mut nres)
        });
        let parked = super::take_parked();
        match rc {
            ffi::LUA_YIELD => {
                // SAFETY: the coroutine yielded `nres` values, now on its stack.
                let pending = nres == 1 && unsafe { ffi::lua_touserdata(co, -1) } == Lua::poll_pending().0;
                // SAFETY: as above; the yielded values are dropped (a resume passes none).
                unsafe { ffi::lua_settop(co, 0) };
                if this.cell.cancelled() || !pending {
                    // Cancelled by itself, or a plain `coroutine.yield()`: go on at the next turn.
                    cx.waker().wake_by_ref();
                } else if let Some(w) = parked {
                    this.park(cx, w);
                }
                // Otherwise an async call holds the driver's waker (see `Call::poll`).
                Poll::Pending
            }
            ffi::LUA_OK => {
                this.end(co, Ok(nres));
                Poll::Ready(())
            }
            _ => {
                this.end(co, Err(()));
                Poll::Ready(())
            }
        }
    }
}

impl Driver {
    /// Waits for `w` before the next resume; at once if it is ready already.
    fn park(&mut self, cx: &mut Context<'_>, w: Wait) {
        let ready = match &w {
            Wait::Ready(on, write) => on.poll_ready(cx, *write).is_ready(),
            Wait::Until(at) => {
                // A deadline already past (`sleep(0)`) is served by the pump at once.
                *self.cell.sleep_waker.borrow_mut() = Some(cx.waker().clone());
                self.sched.sleepers.add(*at, self.cell.clone());
                false
            }
        };
        if ready {
            cx.waker().wake_by_ref();
            return;
        }
        if self.findable.is_none() {
            self.findable = Some(super::add_driver(self.cell.co.get() as *const c_void, cx.waker()));
        }
        self.wait = Some(w);
    }

    /// The coroutine returned (`Ok(number of results)`) or raised (`Err`): record the outcome,
    /// print a failure nobody joins, and let the coroutine go.
    fn end(&mut self, co: *mut lua_State, r: Result<c_int, ()>) {
        let outcome = match (self.cell.running(), r) {
            (false, _) => None, // cancelled by itself, then returned or failed: stays cancelled
            (true, Ok(0)) => Some(Outcome::Done(None)),
            (true, Ok(n)) => Some(self.pack_results(co, n)),
            (true, Err(())) => Some(self.failure(co)),
        };
        self.release(co);
        if let Some(o) = outcome {
            self.cell.finish(o);
        }
    }

    /// The `n` values a coroutine returned, kept in a table for `join`.
    fn pack_results(&self, co: *mut lua_State, n: c_int) -> Outcome {
        let Some(lua) = self.sched.lua() else { return Outcome::Done(None) };
        // SAFETY: under `exec_raw`'s protected call; the coroutine is finished and its `n` results
        // are its whole stack (they are moved, so the coroutine keeps nothing).
        let packed: LuaResult<LuaTable> = unsafe {
            lua.exec_raw((), |state| {
                if ffi::lua_checkstack(state, n + 2) == 0 {
                    ffi::luaL_error(state, c"too many results".as_ptr());
                }
                ffi::lua_createtable(state, n, 1);
                ffi::lua_xmove(co, state, n);
                for i in (1..=n).rev() {
                    ffi::lua_rawseti(state, -(i + 1), i as ffi::lua_Integer);
                }
                ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                ffi::lua_setfield(state, -2, c"n".as_ptr());
            })
        };
        match packed.and_then(|t| lua.create_registry_value(t)) {
            Ok(k) => Outcome::Done(Some(k)),
            Err(e) => {
                let msg = e.to_string();
                self.failed_with(&lua, LuaValue::String(lua.create_string(&msg).expect("string")), &msg)
            }
        }
    }

    /// A coroutine that raised: its error value and the traceback of where it raised.
    fn failure(&self, co: *mut lua_State) -> Outcome {
        let Some(lua) = self.sched.lua() else { return Outcome::Cancelled };
        // SAFETY: under `exec_raw`'s protected call; the coroutine is dead with its error value on
        // top, and its frames are still there for the traceback.
        let r: LuaResult<(LuaValue, String)> = unsafe {
            lua.exec_raw((), |state| {
                ffi::lua_pushvalue(co, -1);
                ffi::lua_xmove(co, state, 1);
                let msg = if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
                    ffi::lua_tostring(state, -1)
                } else {
                    ffi::luaL_tolstring(state, -1, std::ptr::null_mut())
                };
                ffi::luaL_traceback(state, co, msg, 0);
                if ffi::lua_gettop(state) == 3 {
                    ffi::lua_remove(state, -2); // luaL_tolstring's string
                }
            })
        };
        match r {
            Ok((err, trace)) => self.failed_with(&lua, err, &trace),
            Err(e) => {
                let msg = e.to_string();
                self.failed_with(&lua, LuaValue::String(lua.create_string(&msg).expect("string")), &msg)
            }
        }
    }

    /// Records a failure with error value `err` (kept unchanged for `join`), printing `trace`
    /// unless someone joins the task.
    fn failed_with(&self, lua: &Lua, err: LuaValue, trace: &str) -> Outcome {
        self.sched.note_failure();
        if !self.cell.joined.get() {
            eprintln!("net: task failed: {trace}");
        }
        Outcome::Failed(lua.create_registry_value(err).expect("registry"))
    }

    /// The coroutine was resumed by someone other than this driver and ended there.
    fn fail_foreign(&mut self) {
        let co = self.cell.co.get();
        if let Some(lua) = self.sched.lua() {
            let msg = super::foreign_resume_error().to_string();
            self.sched.note_failure();
            if !self.cell.joined.get() {
                eprintln!("net: task failed: {msg}");
            }
            let key = lua.create_registry_value(msg).expect("registry");
            self.cell.finish(Outcome::Failed(key));
        }
        self.release(co);
    }

    /// Closes a cancelled task's suspended coroutine so that its pending `<close>` variables run
    /// (Lua 5.4; other versions have none). An error from one of them is printed.
    fn close_coroutine(&mut self) {
        let co = self.cell.co.get();
        if co.is_null() {
            return;
        }
        if let Some(lua) = self.sched.lua() {
            close_thread(&lua, self.cell.co_ref.get());
        }
        self.release(co);
    }

    /// Lets the coroutine go (its reference is released now, inside a poll, where Lua may run).
    fn release(&mut self, co: *mut lua_State) {
        self.forget_sleep();
        let r = self.cell.co_ref.replace(ffi::LUA_NOREF);
        self.cell.co.set(std::ptr::null_mut());
        if let Some(slot) = self.findable.take() {
            // Before the coroutine can be collected and its address reused.
            super::remove_driver(slot);
        }
        if !co.is_null() {
            // SAFETY: `co` is a live thread of this state (the reference still holds it); unref
            // and the queued releases allocate nothing and cannot raise.
            unsafe {
                ffi::lua_settop(co, 0);
                ffi::luaL_unref(co, ffi::LUA_REGISTRYINDEX, r);
                self.sched.release_dead_refs(co);
            }
        }
    }
}

impl Driver {
    /// A task that stops while asleep leaves a stale entry in the sleepers (see `Sleepers`).
    fn forget_sleep(&self) {
        let w = self.cell.sleep_waker.borrow_mut().take();
        if w.is_some() {
            drop(w);
            self.sched.sleepers.note_stale();
        }
    }
}

impl Drop for Driver {
    /// The task ended, or its driver was dropped (cancelled, or the loop torn down).
    fn drop(&mut self) {
        self.forget_sleep();
        self.cell.co.set(std::ptr::null_mut());
        if let Some(slot) = self.findable.take() {
            super::remove_driver(slot);
        }
        let r = self.cell.co_ref.replace(ffi::LUA_NOREF);
        if r != ffi::LUA_NOREF {
            self.sched.release_ref(r); // no Lua call here: this may run anywhere
        }
        if self.cell.running() {
            self.cell.finish(Outcome::Cancelled);
        }
        self.sched.release();
    }
}

/// Runs the pending `<close>` variables of the coroutine at registry reference `r` (Lua 5.4).
fn close_thread(lua: &Lua, r: c_int) {
    #[cfg(feature = "lua54")]
    {
        // SAFETY: under `exec_raw`'s protected call; pushes the value at reference `r`.
        let th: LuaResult<LuaValue> = unsafe {
            lua.exec_raw((), |state| {
                ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, r.into());
            })
        };
        let Ok(LuaValue::Thread(th)) = th else { return };
        if th.status() != LuaThreadStatus::Resumable {
            return;
        }
        let Ok(close) = export::glue(lua).map(|g| g.close_coroutine.clone()) else { return };
        match close.call::<(bool, LuaValue)>(th) {
            Ok((true, _)) => {}
            Ok((false, e)) => eprintln!("net: closing a cancelled task: {}", display(&e)),
            Err(e) => eprintln!("net: closing a cancelled task: {e}"),
        }
    }
    #[cfg(not(feature = "lua54"))]
    let _ = (lua, r);
}

#[cfg(feature = "lua54")]
fn display(v: &LuaValue) -> String {
    match v {
        LuaValue::String(s) => s.to_string_lossy(),
        v => format!("{v:?}"),
    }
}

// ---- The Lua-facing raw functions -------------------------------------------------------

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
    let join_wait = export::raw_async(lua, "join", |lua, args| {
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
        let _ = lua;
        Ok(async move {
            wait_end(&cell).await;
            Ok(())
        })
    })?;
    let helpers = export::lua_helpers(lua, "=net.task", include_str!("../lua/task.lua"))?;
    let methods: LuaTable = helpers.get::<LuaFunction>("methods")?.call((op, join_wait))?;
    mt.raw_set("__index", methods)?;
    net.set("spawn", spawn)?;
    net.set("run", func(lua, "net.run", |lua, _| run(lua))?)?;
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
    let make_wrap = export::glue(lua)?.make_wrap.clone();
    net.set("wrap", make_wrap.call::<LuaFunction>((enter, leave))?)?;
    Ok(())
}
