//! The event loop and the "one function, three behaviours" dispatch (docs/internals.md,
//! "Three behaviours of a waiting call").
//!
//! Each Lua state owns one tokio current-thread runtime and one `LocalSet`, kept in mlua app data.
//! Every operation that can wait is driven by a [`Call`], which looks at the calling coroutine:
//! - a task that the loop is polling now: the future is awaited, the task yields, others run;
//! - the main thread (or a plain coroutine) while no loop runs: the call blocks by driving the
//!   loop itself, so spawned tasks, servers and timers keep running meanwhile;
//! - any other coroutine while the loop runs: a clear error (blocking there would stall the loop,
//!   and yielding would hand mlua's marker to the user's coroutine).

pub mod channel;
mod executor;
mod handle;
pub(crate) mod raw;
pub mod run_at_exit;
pub mod signal;
pub mod task;
pub use handle::register as register_tasks;
pub mod timer;

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::future::Future;
use std::rc::Rc;
use std::task::Waker;

use mlua::prelude::*;
use tokio::runtime::Runtime;
use tokio::task::LocalSet;

use crate::error::{Kind, NResult, NetError};

pub struct Sched {
    pub rt: Runtime,
    pub local: LocalSet,
    /// True while something (net.run or a blocking call) is driving the LocalSet.
    running: Cell<bool>,
    /// The lua_State of the task coroutine being polled right now (null when none). Only ever
    /// compared while that task is polled, when its coroutine is alive: a stored address of a
    /// coroutine that may have been collected would match a new coroutine at the same address.
    current_task: Cell<*const c_void>,
    /// The id of the task being polled (0 when none): identity that outlives the coroutine.
    current_id: Cell<u64>,
    next_id: Cell<u64>,
    /// `net.wrap` coroutines being resumed right now by the polled task (or by one of these):
    /// they count as that task. Pushed just before each resume and popped right after, so it
    /// holds only running coroutines, never an address that could be reused.
    adopted: RefCell<Vec<*const c_void>>,
    /// Tasks and timers not finished yet: `net.run()` returns when this reaches zero.
    live: Cell<usize>,
    stop_requested: Cell<bool>,
    run_waker: RefCell<Option<Waker>>,
    /// Tasks that ended with an error during the current `net.run()`.
    failed: Cell<usize>,
    pub timers: timer::Timers,
    /// Where task drivers live and are polled (one tokio task for all of them).
    pub exec: Rc<executor::Executor>,
    /// Tasks asleep in `net.sleep`, by deadline (one tokio timer for all of them).
    pub sleepers: timer::Sleepers,
    /// Registry references of coroutines whose task was dropped outside a poll (cancelled, or
    /// the loop torn down): released at the next safe point, since a drop may happen where no Lua
    /// call is allowed.
    dead_refs: RefCell<Vec<std::ffi::c_int>>,
    /// Registry references of coroutines that returned normally, kept for the next inline task
    /// (an HTTP handler) instead of making a new one per request (see `task::run_raw`).
    pub(crate) spare_threads: RefCell<Vec<std::ffi::c_int>>,
    /// The Lua state, for the rare paths of a task's driver (results, errors, cancellation).
    lua: mlua::WeakLua,
}

impl Sched {
    fn new(lua: &Lua) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Sched {
            rt,
            local: LocalSet::new(),
            running: Cell::new(false),
            current_task: Cell::new(std::ptr::null()),
            current_id: Cell::new(0),
            next_id: Cell::new(1),
            adopted: RefCell::new(Vec::new()),
            live: Cell::new(0),
            stop_requested: Cell::new(false),
            run_waker: RefCell::new(None),
            failed: Cell::new(0),
            timers: timer::Timers::default(),
            exec: executor::Executor::new(),
            sleepers: timer::Sleepers::default(),
            dead_refs: RefCell::new(Vec::new()),
            spare_threads: RefCell::new(Vec::new()),
            lua: lua.weak(),
        })
    }

    /// Counts a task or timer as alive; `net.run()` waits for it.
    pub fn retain(&self) {
        self.live.set(self.live.get() + 1);
    }

    pub fn release(&self) {
        self.live.set(self.live.get().saturating_sub(1));
        if self.live.get() == 0 {
            self.wake_run();
        }
    }

    fn wake_run(&self) {
        if let Some(w) = self.run_waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn note_failure(&self) {
        self.failed.set(self.failed.get() + 1);
    }

    /// Runs `fut` to completion on this thread, driving every task, server and timer meanwhile.
    /// Ctrl-C ends the wait with `interrupted: OP interrupted by SIGINT` (see `signal`).
    pub fn block_on<F: Future>(&self, lua: &Lua, op: &str, fut: F) -> NResult<F::Output> {
        struct Running<'a>(&'a Cell<bool>);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        self.running.set(true);
        let _guard = Running(&self.running);
        let fut = std::pin::pin!(fut);
        let r = self
            .local
            .block_on(&self.rt, signal::Interruptible::new(lua, fut))
            .map_err(|signal::Interrupted| NetError::new(Kind::Interrupted, format!("{op} interrupted by SIGINT")));
        // Coroutines of tasks cancelled during the wait, when no task ran after them.
        if !self.dead_refs.borrow().is_empty() {
            // SAFETY: `release_dead_refs` runs under `exec_raw`'s protected call, on its state.
            let _ = unsafe { lua.exec_raw::<()>((), |state| self.release_dead_refs(state)) };
        }
        r
    }

    /// Enters the runtime context (needed to create tokio sockets outside the loop).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt.enter()
    }
}

/// Tasks waiting on one object, to wake when it is closed under them. tokio wakes a socket's
/// waiters only once its driver releases the registration, which can be many closes later, so
/// `close()` wakes them itself and they find the object closed.
///
/// A task leaves the list when its wait ends (`pending` sees it ready). One that stops waiting
/// without that (cancelled, timed out) stays, so a full list is woken and emptied: tasks still
/// waiting register again. The bound is twice the list at the last flush, so live waiters never
/// make it flush over and over, and it halves when waits end and the list is small again, so
/// stale ones cannot pile up either.
#[derive(Default)]
pub struct Waiters {
    list: RefCell<Vec<Waker>>,
    /// The length at which the list is next flushed (0 means the minimum).
    bound: Cell<usize>,
}

/// The smallest flush bound.
const MIN_WAITERS: usize = 16;

impl Waiters {
    /// Remembers `cx`'s task while `r` is pending, and forgets it once `r` is ready.
    pub fn pending<T>(&self, cx: &std::task::Context<'_>, r: std::task::Poll<T>) -> std::task::Poll<T> {
        let mut ws = self.list.borrow_mut();
        let at = ws.iter().position(|w| w.will_wake(cx.waker()));
        let bound = self.bound.get().max(MIN_WAITERS);
        match (r.is_pending(), at) {
            (true, None) => {
                if ws.len() >= bound {
                    self.bound.set(ws.len() * 2);
                    let stale = std::mem::take(&mut *ws);
                    drop(ws);
                    stale.into_iter().for_each(Waker::wake);
                    ws = self.list.borrow_mut();
                }
                ws.push(cx.waker().clone());
            }
            (false, Some(i)) => {
                ws.swap_remove(i);
                if ws.len() < bound / 4 {
                    self.bound.set((bound / 2).max(MIN_WAITERS));
                }
            }
            _ => {}
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    pub fn wake_all(&self) {
        let ws = std::mem::take(&mut *self.list.borrow_mut());
        ws.into_iter().for_each(Waker::wake);
    }
}

/// Something a task can park on instead of making an async call: ready when the task can
/// make progress (e.g. a socket became readable, or was closed).
pub trait Parkable {
    fn poll_ready(&self, cx: &mut std::task::Context<'_>, write: bool) -> std::task::Poll<()>;
}

/// Work put off until the task being polled yields: e.g. writing out what a WebSocket queued,
/// so that sixteen sends in a row become one system call.
pub trait Deferred {
    fn run(self: Rc<Self>);
}

/// What a parked task waits for (see `park_here`).
pub enum Wait {
    /// `on` to be ready for reading (false) or writing (true).
    Ready(Rc<dyn Parkable>, bool),
    /// The deadline of a `net.sleep`.
    Until(tokio::time::Instant),
}

/// The cheap way for a hot operation to wait inside a task (see `park_here`).
struct ParkState {
    /// The lua_State of the task coroutine being polled right now on this thread.
    task: Cell<*const c_void>,
    /// The waker of that task's driver, valid during the poll: async calls made by the task
    /// register it (see `Call::poll`).
    waker: Cell<*const Waker>,
    /// Set by `park_here` during that poll; taken by the task's driver when the poll ends.
    slot: RefCell<Option<Wait>>,
    /// Run when the poll of the current task ends.
    deferred: RefCell<Vec<Rc<dyn Deferred>>>,
    /// The driver's waker of every live task that ever parked, by its coroutine's address (alive
    /// while the task is): a parked coroutine resumed from outside its task wakes its driver with
    /// it (`foreign_resume`). A task waiting in an async call is woken by that `Call` instead.
    drivers: RefCell<Drivers>,
}

/// The wakers of parked tasks' drivers, by coroutine address: a slab, since entries come and go
/// with every park and the only lookup (a foreign resume, a programming error) may scan.
#[derive(Default)]
struct Drivers {
    slots: Vec<Option<(usize, Waker)>>,
    free: Vec<usize>,
}
thread_local! {
    static PARK: ParkState = ParkState {
        task: Cell::new(std::ptr::null()),
        waker: Cell::new(std::ptr::null()),
        slot: RefCell::new(None),
        deferred: RefCell::new(Vec::new()),
        drivers: RefCell::new(Drivers::default()),
    };
}

/// Puts `work` off until the task being polled yields; false (nothing done) outside a task.
pub fn defer(work: Rc<dyn Deferred>) -> bool {
    PARK.with(|p| {
        if p.task.get().is_null() {
            return false;
        }
        p.deferred.borrow_mut().push(work);
        true
    })
}

fn run_deferred() {
    loop {
        let Some(work) = PARK.with(|p| p.deferred.borrow_mut().pop()) else { return };
        work.run();
    }
}

/// Called by a fast path that would wait, from the coroutine `state`. If that coroutine is the
/// task being polled, records what it waits for and returns true: the caller then yields with a
/// plain `coroutine.yield()`, and the driver resumes the task once `on` is ready, without the
/// boxed future and userdata of an mlua async call. Elsewhere returns false (use the async path).
/// The caller must have checked that the coroutine can yield (`coroutine.isyieldable()`): a
/// park that is never followed by its yield would leave the task waiting on the wrong thing.
pub fn park_here(state: *const c_void, on: Rc<dyn Parkable>, write: bool) -> bool {
    park(state, Wait::Ready(on, write))
}

/// `park_here` for a wait until a deadline (`net.sleep`).
pub fn park(state: *const c_void, wait: Wait) -> bool {
    PARK.with(|p| {
        if state.is_null() || p.task.get() != state {
            return false;
        }
        *p.slot.borrow_mut() = Some(wait);
        true
    })
}

/// Forgets a park that was not followed by its yield (an async call starting in the same poll
/// proves it: a task waits on one thing at a time).
pub fn unpark() {
    PARK.with(|p| p.slot.borrow_mut().take());
}

/// After a parked task's `coroutine.yield()` returns: true if its driver resumed it. False if
/// someone else did (`coroutine.resume` on the task's coroutine, reachable through
/// `coroutine.running()`); the task's driver is then woken so that it notices the coroutine is
/// no longer its own, and the caller raises an error in the coroutine.
pub fn resumed_by_driver(state: *const c_void) -> bool {
    PARK.with(|p| {
        if !state.is_null() && p.task.get() == state {
            return true;
        }
        foreign_resume(state);
        false
    })
}

/// Wakes the driver of the task whose coroutine is `state`, resumed by someone else.
pub fn foreign_resume(state: *const c_void) {
    PARK.with(|p| {
        let d = p.drivers.borrow();
        if let Some((_, w)) = d.slots.iter().flatten().find(|(co, _)| *co == state as usize) {
            w.wake_by_ref();
        }
    })
}

/// The error of a task whose coroutine someone else resumed (see `resumed_by_driver`).
pub fn foreign_resume_error() -> NetError {
    NetError::new(
        Kind::Io,
        "a net task's coroutine was resumed from outside its task (coroutine.resume or a \
         coroutine.wrap of coroutine.running()); the task is stopped. Use channels to talk to a task",
    )
}

/// Registers the driver's waker of the task whose coroutine is `state` (see `foreign_resume`);
/// returns the slot to give back to `remove_driver`.
pub fn add_driver(state: *const c_void, w: &Waker) -> usize {
    PARK.with(|p| {
        let mut d = p.drivers.borrow_mut();
        let entry = Some((state as usize, w.clone()));
        match d.free.pop() {
            Some(i) => {
                d.slots[i] = entry;
                i
            }
            None => {
                d.slots.push(entry);
                d.slots.len() - 1
            }
        }
    })
}

pub fn remove_driver(slot: usize) {
    let _ = PARK.try_with(|p| {
        let mut d = p.drivers.borrow_mut();
        if let Some(e) = d.slots.get_mut(slot) {
            *e = None;
            d.free.push(slot);
        }
    });
}

/// Runs `f` (one poll of the task whose coroutine is `state` and whose id is `id`) with that task
/// as the one being polled. The registers are restored by a guard, so that a panic in `f` cannot
/// leave them pointing at a task that is no longer polled.
pub fn polling_task<R>(s: &Sched, state: *const c_void, id: u64, waker: &Waker, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        s: &'a Sched,
        task: *const c_void,
        id: u64,
        adopted: usize,
        park: *const c_void,
        waker: *const Waker,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.s.current_task.set(self.task);
            self.s.current_id.set(self.id);
            self.s.adopted.borrow_mut().truncate(self.adopted);
            let _ = PARK.try_with(|p| {
                p.task.set(self.park);
                p.waker.set(self.waker);
            });
        }
    }
    let restore = Restore {
        s,
        task: s.current_task.replace(state),
        id: s.current_id.replace(id),
        adopted: s.adopted.borrow().len(),
        park: PARK.with(|p| p.task.replace(state)),
        waker: PARK.with(|p| p.waker.replace(waker)),
    };
    let r = f();
    let outermost = restore.park.is_null();
    drop(restore);
    if outermost {
        run_deferred();
    }
    r
}

/// What the task just polled parked on, if anything.
pub fn take_parked() -> Option<Wait> {
    PARK.with(|p| p.slot.borrow_mut().take())
}

/// The scheduler of this Lua state.
pub fn sched(lua: &Lua) -> Rc<Sched> {
    lua.app_data_ref::<Rc<Sched>>().expect("net: scheduler missing").clone()
}

pub fn install(lua: &Lua) -> LuaResult<()> {
    if lua.app_data_ref::<Rc<Sched>>().is_none() {
        let s = Sched::new(lua).map_err(|e| LuaError::runtime(format!("net: cannot start the event loop: {e}")))?;
        let s = Rc::new(s);
        s.local.spawn_local(executor::Runner(s.exec.clone()));
        timer::start_pump(&s);
        lua.set_app_data(s);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Task,
    Block,
    Nested,
}

/// Which of the three behaviours applies to the coroutine calling into Rust right now.
pub fn mode(lua: &Lua, s: &Sched) -> Mode {
    // The calling coroutine matters only while a task is polled (looking it up makes an mlua
    // reference, so it is not done otherwise).
    let cur = if s.current_task.get().is_null() { std::ptr::null() } else { lua.current_thread().to_pointer() };
    s.mode_of(cur)
}

impl Sched {
    /// The Lua state, for rare paths; None while it is being torn down.
    pub fn lua(&self) -> Option<Lua> {
        self.lua.try_upgrade()
    }

    /// Queues the release of a coroutine's registry reference (see `dead_refs`).
    pub fn release_ref(&self, r: std::ffi::c_int) {
        if let Ok(mut v) = self.dead_refs.try_borrow_mut() {
            v.push(r);
        }
    }

    /// Releases the queued registry references.
    ///
    /// # Safety
    /// `l` is a live thread of this state, and the caller may let Lua run (unref calls no
    /// metamethod and allocates nothing, so it cannot raise).
    pub unsafe fn release_dead_refs(&self, l: *mut mlua::ffi::lua_State) {
        let refs = std::mem::take(&mut *self.dead_refs.borrow_mut());
        for r in refs {
            // SAFETY: see the function's contract; `r` came from `luaL_ref` on this registry.
            unsafe { mlua::ffi::luaL_unref(l, mlua::ffi::LUA_REGISTRYINDEX, r) };
        }
    }

    /// Which behaviour applies to the coroutine `l` (the raw twin of [`mode`]).
    pub fn mode_of(&self, l: *const c_void) -> Mode {
        let task = self.current_task.get();
        if !task.is_null() && (l == task || self.adopted.borrow().contains(&l)) {
            return Mode::Task;
        }
        if self.running.get() {
            Mode::Nested
        } else {
            Mode::Block
        }
    }

    /// A new task id (never 0, never reused).
    pub fn new_task_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// The id of the task being polled, 0 when none.
    pub fn current_id(&self) -> u64 {
        self.current_id.get()
    }

    /// `net.wrap` is about to resume `co` from the calling coroutine: if that is the polled task
    /// (or a coroutine it resumed this way), `co` counts as the task until `unadopt`. Returns
    /// whether it was adopted (`unadopt` ends it).
    pub fn adopt(&self, lua: &Lua, co: *const c_void) -> bool {
        if mode(lua, self) != Mode::Task {
            return false;
        }
        self.adopted.borrow_mut().push(co);
        true
    }

    pub fn unadopt(&self, co: *const c_void) {
        let mut a = self.adopted.borrow_mut();
        if let Some(i) = a.iter().rposition(|&c| c == co) {
            a.truncate(i);
        }
    }
}

pub fn nested_error(op: &str) -> NetError {
    NetError::new(
        Kind::Io,
        format!(
            "{op} called from a coroutine that is not a net task while the loop is running; \
             call it from the task itself, start the coroutine with net.spawn, or use net.wrap \
             instead of coroutine.wrap"
        ),
    )
}

/// One call of a waiting operation: decided, on the caller's coroutine, to be awaited, blocked
/// on, or refused (see the module doc). Written by hand rather than as an `async` block because
/// nested async blocks that capture a future and then await it store it twice, and this wraps
/// every waiting call (it halved the memory of a sleeping task).
pub struct Call<F> {
    fut: Option<F>,
    /// The argument check failed: report this instead of running anything.
    err: Option<NetError>,
    mode: Mode,
    sched: Rc<Sched>,
    op: &'static str,
    lua: Lua,
    /// In a task: the task's id, and its driver's waker once polled (see `poll`).
    task: u64,
    driver: Option<std::task::Waker>,
}

impl<F> Call<F> {
    /// Must be created synchronously from the Lua call (before any await), which `export` does.
    pub fn new(lua: &Lua, op: &'static str, prepared: NResult<F>) -> Self {
        let sched = sched(lua);
        let mode = mode(lua, &sched);
        let task = if mode == Mode::Task {
            // A park earlier in this poll that never yielded (e.g. from a table.sort comparator,
            // its error caught) is stale: the task now waits on this call.
            unpark();
            sched.current_id.get()
        } else {
            0
        };
        let (fut, err) = match prepared {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e)),
        };
        Call { fut, err, mode, sched, op, lua: lua.clone(), task, driver: None }
    }
}

impl<R: IntoLuaMulti, F: Future<Output = NResult<R>>> Future for Call<F> {
    type Output = LuaResult<LuaMultiValue>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        // SAFETY: `fut` is never moved while pinned: it is polled in place, or taken before its
        // first poll to be consumed by `block_on`.
        let this = unsafe { self.get_unchecked_mut() };
        let r = if let Some(e) = this.err.take() {
            Err(e)
        } else {
            match (this.mode, this.fut.as_mut()) {
                (_, None) => Err(NetError::new(Kind::Io, format!("{}: polled after completion", this.op))),
                // Polled outside its task: the task's coroutine was resumed by someone else. Leave
                // the future alone (its wake-ups are the task's), fail here, wake the driver.
                (Mode::Task, Some(_)) if this.sched.current_id.get() != this.task => {
                    if let Some(w) = &this.driver {
                        w.wake_by_ref();
                    }
                    foreign_resume(this.lua.current_thread().to_pointer());
                    return Poll::Ready(crate::error::to_lua::<()>(&this.lua, Err(foreign_resume_error())));
                }
                (Mode::Task, Some(f)) => {
                    // The task's driver resumes the coroutine with a raw `lua_resume`, so the
                    // context mlua passes in has no real waker: wake the driver instead.
                    let w = PARK.with(|p| p.waker.get());
                    // SAFETY: a non-null pointer is the waker of the driver polling this task
                    // right now (set and restored around the poll by `polling_task`).
                    let waker = if w.is_null() { cx.waker() } else { unsafe { &*w } };
                    if this.driver.is_none() {
                        this.driver = Some(waker.clone());
                    }
                    let mut cx = std::task::Context::from_waker(waker);
                    // SAFETY: `f` lives in `this.fut`, which is pinned with `self` (see above).
                    match unsafe { std::pin::Pin::new_unchecked(f) }.poll(&mut cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    }
                }
                (Mode::Block, Some(_)) => {
                    let f = this.fut.take().expect("checked");
                    this.sched.block_on(&this.lua, this.op, f).and_then(|r| r)
                }
                (Mode::Nested, Some(_)) => Err(nested_error(this.op)),
            }
        };
        this.fut = None;
        Poll::Ready(crate::error::to_lua(&this.lua, r))
    }
}

/// The parts of mlua's internal async protocol the task driver relies on (see docs/internals.md,
/// "Tasks"); mlua is pinned because of them, and this test fails if an upgrade changes them.
#[cfg(all(test, feature = "lua54"))]
mod mlua_protocol {
    use std::future::poll_fn;
    use std::task::Poll;

    use mlua::ffi;
    use mlua::prelude::*;

    // The module build takes Lua's symbols from the interpreter; a test binary links it.
    #[link(name = "lua5.4")]
    extern "C" {}

    #[test]
    fn a_pending_async_call_yields_poll_pending_alone_and_polls_again_when_resumed() {
        let lua = Lua::new();
        // Pending on its first poll, done on the second.
        let f = lua
            .create_async_function(|_, ()| {
                let mut polled = false;
                poll_fn(move |_| {
                    if !polled {
                        polled = true;
                        Poll::Pending
                    } else {
                        Poll::Ready(Ok("done"))
                    }
                })
            })
            .unwrap();
        let body = lua.load("local f = ...; return f()").into_function().unwrap();
        // SAFETY: a test driving one coroutine of this state by hand, as `task::Driver` does.
        unsafe {
            let r: (i64, i64) = lua
                .exec_raw((body, f), |state| {
                    let co = ffi::lua_newthread(state);
                    ffi::lua_insert(state, 1);
                    ffi::lua_xmove(state, co, 2);
                    let mut nres = 0;
                    let rc1 = ffi::lua_resume(co, std::ptr::null_mut(), 1, &mut nres);
                    let marker = nres == 1 && ffi::lua_touserdata(co, -1) == Lua::poll_pending().0;
                    ffi::lua_settop(co, 0);
                    let rc2 = ffi::lua_resume(co, std::ptr::null_mut(), 0, &mut nres);
                    let done = nres == 1 && ffi::lua_type(co, -1) == ffi::LUA_TSTRING;
                    ffi::lua_pushinteger(state, (rc1 * 10 + i32::from(marker)) as ffi::lua_Integer);
                    ffi::lua_pushinteger(state, (rc2 * 10 + i32::from(done)) as ffi::lua_Integer);
                    ffi::lua_remove(state, -3); // the coroutine
                })
                .unwrap();
            assert_eq!(r, (ffi::LUA_YIELD as i64 * 10 + 1, ffi::LUA_OK as i64 * 10 + 1));
        }
    }
}
