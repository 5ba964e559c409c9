//! The event loop and the "one function, three behaviours" dispatch (design §3).
//!
//! Each Lua state owns one tokio current-thread runtime and one `LocalSet`, kept in mlua app data.
//! Every operation that can wait is driven by a [`Call`], which looks at the calling coroutine:
//! - a task that the loop is polling now: the future is awaited, the task yields, others run;
//! - the main thread (or a plain coroutine) while no loop runs: the call blocks by driving the
//!   loop itself, so spawned tasks, servers and timers keep running meanwhile;
//! - any other coroutine while the loop runs: a clear error (blocking there would stall the loop,
//!   and yielding would hand mlua's marker to the user's coroutine).

pub mod channel;
pub mod signal;
pub mod task;
pub mod timer;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
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
    /// The lua_State of the task coroutine being polled right now (null when none).
    current_task: Cell<*const c_void>,
    /// Coroutines made by `net.wrap`: they count as the task that resumes them.
    adopted: RefCell<HashSet<*const c_void>>,
    /// Tasks and timers not finished yet: `net.run()` returns when this reaches zero.
    live: Cell<usize>,
    stop_requested: Cell<bool>,
    run_waker: RefCell<Option<Waker>>,
    /// Tasks that ended with an error during the current `net.run()`.
    failed: Cell<usize>,
    pub timers: timer::Timers,
    pub dns: RefCell<Option<Rc<crate::dns::Resolver>>>,
}

impl Sched {
    fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Sched {
            rt,
            local: LocalSet::new(),
            running: Cell::new(false),
            current_task: Cell::new(std::ptr::null()),
            adopted: RefCell::new(HashSet::new()),
            live: Cell::new(0),
            stop_requested: Cell::new(false),
            run_waker: RefCell::new(None),
            failed: Cell::new(0),
            timers: timer::Timers::default(),
            dns: RefCell::new(None),
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
        self.local
            .block_on(&self.rt, signal::Interruptible::new(lua, fut))
            .map_err(|signal::Interrupted| NetError::new(Kind::Interrupted, format!("{op} interrupted by SIGINT")))
    }

    /// Enters the runtime context (needed to create tokio sockets outside the loop).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt.enter()
    }
}

/// Tasks waiting on one object, to wake when it is closed under them. tokio wakes a socket's
/// waiters only once its driver releases the registration, which can be many closes later, so
/// `close()` wakes them itself and they find the object closed.
#[derive(Default)]
pub struct Waiters(RefCell<Vec<Waker>>);

impl Waiters {
    /// Remembers `cx`'s task if `r` is still pending.
    pub fn pending<T>(&self, cx: &std::task::Context<'_>, r: std::task::Poll<T>) -> std::task::Poll<T> {
        if r.is_pending() {
            let mut ws = self.0.borrow_mut();
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
        }
        r
    }

    pub fn wake_all(&self) {
        for w in self.0.borrow_mut().drain(..) {
            w.wake();
        }
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

/// The cheap way for a hot operation to wait inside a task (see `park_here`).
struct ParkState {
    /// The lua_State of the task coroutine being polled right now on this thread.
    task: Cell<*const c_void>,
    /// Set by `park_here` during that poll; taken by the task's driver when the poll ends.
    slot: RefCell<Option<(Rc<dyn Parkable>, bool)>>,
    /// Run when the poll of the current task ends.
    deferred: RefCell<Vec<Rc<dyn Deferred>>>,
}

thread_local! {
    static PARK: ParkState = ParkState {
        task: Cell::new(std::ptr::null()),
        slot: RefCell::new(None),
        deferred: RefCell::new(Vec::new()),
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
pub fn park_here(state: *const c_void, on: Rc<dyn Parkable>, write: bool) -> bool {
    PARK.with(|p| {
        if state.is_null() || p.task.get() != state {
            return false;
        }
        *p.slot.borrow_mut() = Some((on, write));
        true
    })
}

/// Runs `f` (one poll of a task) with `state` as the task that may park.
pub fn polling_task<R>(state: *const c_void, f: impl FnOnce() -> R) -> R {
    let prev = PARK.with(|p| p.task.replace(state));
    let r = f();
    PARK.with(|p| p.task.set(prev));
    if prev.is_null() {
        run_deferred();
    }
    r
}

/// What the task just polled parked on, if anything.
pub fn take_parked() -> Option<(Rc<dyn Parkable>, bool)> {
    PARK.with(|p| p.slot.borrow_mut().take())
}

/// The scheduler of this Lua state.
pub fn sched(lua: &Lua) -> Rc<Sched> {
    lua.app_data_ref::<Rc<Sched>>().expect("net: scheduler missing").clone()
}

pub fn install(lua: &Lua) -> LuaResult<()> {
    if lua.app_data_ref::<Rc<Sched>>().is_none() {
        let s = Sched::new().map_err(|e| LuaError::runtime(format!("net: cannot start the event loop: {e}")))?;
        lua.set_app_data(Rc::new(s));
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
    let task = s.current_task.get();
    if !task.is_null() {
        let cur = lua.current_thread().to_pointer();
        if cur == task || s.adopted.borrow().contains(&cur) {
            return Mode::Task;
        }
    }
    if s.running.get() {
        Mode::Nested
    } else {
        Mode::Block
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
}

impl<F> Call<F> {
    /// Must be created synchronously from the Lua call (before any await), which `export` does.
    pub fn new(lua: &Lua, op: &'static str, prepared: NResult<F>) -> Self {
        let sched = sched(lua);
        let mode = mode(lua, &sched);
        let (fut, err) = match prepared {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e)),
        };
        Call { fut, err, mode, sched, op, lua: lua.clone() }
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
                (Mode::Task, Some(f)) => match unsafe { std::pin::Pin::new_unchecked(f) }.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                },
                (Mode::Block, Some(_)) => {
                    let f = this.fut.take().expect("checked");
                    this.sched.block_on(&this.lua, this.op, f).and_then(|r| r)
                }
                (Mode::Nested, Some(_)) => Err(nested_error(this.op)),
            }
        };
        this.fut = None;
        Poll::Ready(crate::export::to_lua(&this.lua, r))
    }
}
