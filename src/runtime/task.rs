//! Tasks: what a task is, how its coroutine is driven, and the Rust API (`spawn`, `TaskRef`).
//! Their Lua face (`net.spawn`, the handle's methods, `net.run`) is in `handle.rs`.
//!
//! A task is a Lua coroutine resumed by its [`Driver`], which the state's executor polls
//! (`executor.rs`). The driver calls `lua_resume` itself (docs/internals.md, "Tasks"): no mlua
//! thread object, no mlua reference and no protected call per resume, because 100,000 tasks
//! must cost about what bare coroutines on libuv cost. The coroutine is kept by a raw registry
//! reference (not an mlua value: LuaJIT caps live mlua references near 8000). A failure is
//! printed with its traceback, taken from the dead coroutine, unless someone is joining the task.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::{sched, Sched, Wait};

pub(super) enum Outcome {
    Running,
    /// Results packed in a table (`n` = count), or none.
    Done(Option<LuaRegistryKey>),
    Failed(LuaRegistryKey),
    Cancelled,
}

/// What a task shares with its handle, its joiners and the Rust API.
pub struct TaskCell {
    /// Never reused (unlike a coroutine's address once it is collected).
    pub(super) id: u64,
    /// The coroutine's registry reference and its state, until the task ends.
    pub(super) co_ref: Cell<c_int>,
    pub(super) co: Cell<*mut lua_State>,
    pub(super) outcome: RefCell<Outcome>,
    pub(super) joiners: RefCell<Vec<Waker>>,
    /// Someone called `join`: its failure is theirs to report, not printed.
    pub(super) joined: Cell<bool>,
    /// The driver's slot in the executor (see `executor.rs`), for `cancel`.
    pub(super) slot: Cell<Option<(u32, u16)>>,
    /// The driver's waker while the task sleeps (`net.sleep`); the pump takes it at the deadline.
    pub(super) sleep_waker: RefCell<Option<Waker>>,
    /// Reads the task's results straight off its finished coroutine (see [`TaskRef::on_return`]).
    on_return: RefCell<Option<ReturnHook>>,
}

/// Called with a finished coroutine and how many results sit on its stack; true when it took
/// them (the task's outcome is then "returned nothing").
pub type ReturnHook = Box<dyn FnOnce(*mut lua_State, c_int) -> bool>;

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

    pub(super) fn running(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Running)
    }

    pub(super) fn cancelled(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Cancelled)
    }

    /// Stops a running task; true if it was running. Another task's driver is dropped at once,
    /// never to resume the coroutine again; a task cancelling itself stops at its next wait (its
    /// driver sees the outcome).
    pub(super) fn cancel(&self, s: &Sched, itself: bool) -> bool {
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

    pub(super) fn status(&self) -> &'static str {
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

/// Runs `f(args...)` (`f_and_args`, then what `push` adds) as a task that the caller's own
/// future drives (the returned [`Inline`]),
/// not the executor: an HTTP handler is resumed inside hyper's service future, so a handler
/// that does not wait costs no trip through the scheduler. The arguments are pushed by `push`
/// in one protected call (a request table built field by field through mlua would cost one
/// protected call per field on LuaJIT). The task is
/// a task in every other way (`net.sleep`, parking, `<close>`); dropping the `Inline` cancels it.
///
/// # Safety
/// `push` runs under `exec_raw`'s protected call: it may use the Lua C API on the state it is
/// given (and raise, as Lua errors do), and must only push arguments.
pub unsafe fn run_raw(
    lua: &Lua,
    f_and_args: impl IntoLuaMulti,
    push: impl FnOnce(*mut lua_State),
) -> LuaResult<(TaskRef, Inline)> {
    let s = sched(lua);
    let spare = s.spare_threads.borrow_mut().pop();
    // SAFETY: the caller's contract for `push`; the rest moves the function and the pushed
    // values to a spare or new thread (a spare one is a live thread: its reference holds it)
    // and returns only its reference and address.
    let made: LuaResult<(c_int, LuaLightUserData)> = unsafe {
        lua.exec_raw(f_and_args, |state| {
            push(state);
            // The protected call's stack holds exactly the function and its arguments.
            let n = ffi::lua_gettop(state);
            let (co, r) = match spare {
                // A coroutine that returned normally starts afresh with a function on its stack.
                Some(r) => {
                    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
                    let co = ffi::lua_tothread(state, -1);
                    ffi::lua_pop(state, 1);
                    ffi::lua_xmove(state, co, n);
                    (co, r)
                }
                None => {
                    let co = ffi::lua_newthread(state);
                    ffi::lua_insert(state, 1);
                    ffi::lua_xmove(state, co, n);
                    (co, ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX))
                }
            };
            ffi::lua_pushinteger(state, r as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(state, co as *mut c_void);
        })
    };
    let (r, co) = match made {
        Ok(v) => v,
        Err(e) => {
            // The spare coroutine may hold part of the arguments now: let it go.
            if let Some(r) = spare {
                s.release_ref(r);
            }
            return Err(e);
        }
    };
    let cell = new_cell(&s, r, co.0 as *mut lua_State);
    let driver =
        Driver { cell: cell.clone(), sched: s.clone(), wait: None, started: false, findable: None, reuse: true };
    Ok((TaskRef(cell, s), Inline(driver)))
}

/// How many finished coroutines are kept for reuse (as many as requests usually run at once).
const MAX_SPARE_THREADS: usize = 256;

/// A task driven by its caller (see [`run_raw`]): ready when the task has ended.
pub struct Inline(Driver);

impl Future for Inline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Makes the task of a new coroutine (its function and arguments on its stack) and hands it to
/// the loop.
pub(super) fn start(s: &Rc<Sched>, co_ref: c_int, co: *mut lua_State) -> Rc<TaskCell> {
    let cell = new_cell(s, co_ref, co);
    let driver =
        Driver { cell: cell.clone(), sched: s.clone(), wait: None, started: false, findable: None, reuse: false };
    cell.slot.set(Some(s.exec.spawn(driver)));
    cell
}

/// A running task's cell, counted as alive for `net.run()` until its driver goes.
fn new_cell(s: &Rc<Sched>, co_ref: c_int, co: *mut lua_State) -> Rc<TaskCell> {
    let cell = Rc::new(TaskCell {
        id: s.new_task_id(),
        co_ref: Cell::new(co_ref),
        co: Cell::new(co),
        outcome: RefCell::new(Outcome::Running),
        joiners: RefCell::new(Vec::new()),
        joined: Cell::new(false),
        slot: Cell::new(None),
        sleep_waker: RefCell::new(None),
        on_return: RefCell::new(None),
    });
    s.retain();
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
        self.result(lua).await
    }

    /// Like [`join`](Self::join), but a failure is still printed with its traceback (an HTTP
    /// handler's error: the server answers 500 and the log says why).
    pub async fn result(&self, lua: &Lua) -> Ended {
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

    /// Sets what reads the task's results when it returns, before they would be packed for
    /// `join` (an HTTP response is read straight off the coroutine's stack).
    pub fn on_return(&self, hook: ReturnHook) {
        *self.0.on_return.borrow_mut() = Some(hook);
    }

    pub fn cancel(&self) -> bool {
        let itself = self.1.current_id() == self.0.id;
        self.0.cancel(&self.1, itself)
    }
}

pub(super) async fn wait_end(cell: &TaskCell) {
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
    /// Keep the coroutine for another inline task when it returns normally (`run_raw`).
    reuse: bool,
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
            (true, Ok(n)) => {
                let hook = self.cell.on_return.borrow_mut().take();
                if hook.is_some_and(|h| h(co, n)) {
                    Some(Outcome::Done(None))
                } else {
                    Some(self.pack_results(co, n))
                }
            }
            (true, Err(())) => Some(self.failure(co)),
        };
        let spare = self.reuse && matches!(outcome, Some(Outcome::Done(_)));
        self.release(co, spare);
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
        self.release(co, false);
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
        self.release(co, false);
    }

    /// Lets the coroutine go (its reference is released now, inside a poll, where Lua may run),
    /// or, with `spare`, keeps it for the next inline task: a coroutine that returned normally
    /// is as good as new, and a handler per request need not make one.
    fn release(&mut self, co: *mut lua_State, spare: bool) {
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
                let mut spares = self.sched.spare_threads.borrow_mut();
                if spare && spares.len() < MAX_SPARE_THREADS {
                    spares.push(r);
                } else {
                    drop(spares);
                    ffi::luaL_unref(co, ffi::LUA_REGISTRYINDEX, r);
                }
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
        let Ok(close) = crate::export::glue(lua).map(|g| g.close_coroutine.clone()) else { return };
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

/// The Rust API as the HTTP server will use it: results, error values and cancellation.
#[cfg(all(test, feature = "lua54"))]
mod tests {
    use super::*;

    fn state() -> (Lua, Rc<Sched>) {
        let lua = Lua::new();
        super::super::install(&lua).unwrap();
        crate::export::install(&lua).unwrap();
        let s = sched(&lua);
        (lua, s)
    }

    fn func(lua: &Lua, src: &str) -> LuaFunction {
        lua.load(src).eval().unwrap()
    }

    #[test]
    fn join_gives_results_error_values_and_cancellation() {
        let (lua, s) = state();
        let t = spawn(
            &lua,
            func(&lua, "return function(a, b) return a + b, nil, 'x' end"),
            (1, 2).into_lua_multi(&lua).unwrap(),
        )
        .unwrap();
        match s.block_on(&lua, "test", t.join(&lua)).unwrap() {
            Ended::Returned(v) => {
                let v: Vec<LuaValue> = v.into_iter().collect();
                assert_eq!(v.len(), 3);
                assert_eq!(v[0].as_integer(), Some(3));
                assert!(v[1].is_nil());
                assert_eq!(v[2].as_string().map(|s| s.to_string_lossy()).as_deref(), Some("x"));
            }
            _ => panic!("expected results"),
        }

        let t = spawn(&lua, func(&lua, "return function() error({code = 7}) end"), LuaMultiValue::new()).unwrap();
        match s.block_on(&lua, "test", t.join(&lua)).unwrap() {
            Ended::Failed(LuaValue::Table(e)) => assert_eq!(e.get::<i64>("code").unwrap(), 7),
            _ => panic!("expected the error table"),
        }

        let t =
            spawn(&lua, func(&lua, "return function() while true do coroutine.yield() end end"), LuaMultiValue::new())
                .unwrap();
        assert!(t.cancel());
        assert!(matches!(s.block_on(&lua, "test", t.join(&lua)).unwrap(), Ended::Cancelled));
        assert!(!t.cancel());
    }
}
