//! Time: `net.sleep`, `net.now`, `net.setTimeout`/`clearTimeout`, `net.setInterval`/`clearInterval`.
//!
//! A timer is a local tokio task that holds the loop open until it fires or is cleared. Each
//! callback runs as a task of its own, so it may call anything that waits; an error in an
//! interval's callback is printed and stops that interval only.
//!
//! `net.sleep` inside a task does not make a timer of its own: the task parks with its deadline
//! and its driver puts it in [`Sleepers`], a heap served by one tokio timer (the pump). A sleeping
//! task then costs a heap entry, not a boxed future with a timer registration.

use std::cell::{Cell, RefCell};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mlua::ffi::{self, lua_State};
use mlua::prelude::*;
use tokio::time::{Instant, MissedTickBehavior};

use super::raw::{self, push_fail};
use super::task::{self, TaskCell};
use super::{sched, Sched, Wait};
use crate::error::{NResult, NetError};
use crate::export::{self, func, Args};

#[derive(Default)]
pub struct Timers {
    next_id: Cell<i64>,
    active: RefCell<HashMap<i64, tokio::task::AbortHandle>>,
}

/// Drops the loop's hold and the id when a timer ends, fires or is cleared.
struct Armed(Rc<Sched>, i64);
impl Drop for Armed {
    fn drop(&mut self) {
        self.0.timers.active.borrow_mut().remove(&self.1);
        self.0.release();
    }
}

/// Tasks asleep until a deadline, woken by the pump. Deadlines mostly arrive in order (tasks
/// sleeping the same time, or timeouts of one length): those go to a queue, in O(1); the others
/// to a heap. An entry holds the task, whose `sleep_waker` the pump takes at the deadline; a
/// task cancelled while asleep leaves its entry behind (removing it would cost a search), so
/// such stale entries are counted and swept out once they are half of all entries: a server
/// that cancels its watchdog tasks does not keep them until their deadlines.
#[derive(Default)]
pub struct Sleepers {
    in_order: RefCell<VecDeque<(Instant, Rc<TaskCell>)>>,
    heap: RefCell<BinaryHeap<Sleeper>>,
    /// Orders entries with the same deadline by arrival.
    seq: Cell<u64>,
    /// Entries whose task stopped sleeping without the pump (cancelled).
    stale: Cell<usize>,
    /// The pump's waker and the deadline its timer is set for (None: no timer set).
    pump: RefCell<Option<Waker>>,
    armed: Cell<Option<Instant>>,
}

struct Sleeper {
    at: Instant,
    seq: u64,
    task: Rc<TaskCell>,
}

impl PartialEq for Sleeper {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
/// Reversed, so that the heap's top is the earliest deadline.
impl Ord for Sleeper {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Fewer stale entries than this are never swept.
const MIN_SWEEP: usize = 64;

impl Sleepers {
    /// Wakes `task` (its `sleep_waker`, set by the caller) at `at`.
    pub fn add(&self, at: Instant, task: Rc<TaskCell>) {
        let mut q = self.in_order.borrow_mut();
        if q.back().is_none_or(|(last, _)| *last <= at) {
            q.push_back((at, task));
        } else {
            let seq = self.seq.get().wrapping_add(1);
            self.seq.set(seq);
            self.heap.borrow_mut().push(Sleeper { at, seq, task });
        }
        drop(q);
        if self.armed.get().is_none_or(|armed| at < armed) {
            if let Some(w) = self.pump.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// A sleeping task stopped without the pump (its driver was dropped): its entry is stale.
    pub fn note_stale(&self) {
        self.stale.set(self.stale.get() + 1);
        let (Ok(mut q), Ok(mut heap)) = (self.in_order.try_borrow_mut(), self.heap.try_borrow_mut()) else {
            return;
        };
        let stale = self.stale.get();
        if stale >= MIN_SWEEP && stale * 2 >= q.len() + heap.len() {
            q.retain(|(_, t)| t.is_sleeping());
            heap.retain(|e| e.task.is_sleeping());
            self.stale.set(0);
        }
    }
}

/// The one timer behind `Sleepers`: wakes every due sleeper, then sleeps until the next deadline.
struct Pump {
    sched: Weak<Sched>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Future for Pump {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(s) = self.sched.upgrade() else { return Poll::Ready(()) };
        let sl = &s.sleepers;
        loop {
            let now = Instant::now();
            let next = {
                let mut q = sl.in_order.borrow_mut();
                while q.front().is_some_and(|(at, _)| *at <= now) {
                    q.pop_front().expect("peeked").1.wake_sleeper();
                }
                let mut heap = sl.heap.borrow_mut();
                while heap.peek().is_some_and(|e| e.at <= now) {
                    heap.pop().expect("peeked").task.wake_sleeper();
                }
                match (q.front().map(|e| e.0), heap.peek().map(|e| e.at)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            *sl.pump.borrow_mut() = Some(cx.waker().clone());
            sl.armed.set(next);
            let Some(at) = next else { return Poll::Pending };
            if self.timer.deadline() != at {
                self.timer.as_mut().reset(at);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// Starts the pump of this state's `Sleepers` (once, when the module loads).
pub fn start_pump(s: &Rc<Sched>) {
    let _rt = s.enter();
    let timer = Box::pin(tokio::time::sleep(Duration::ZERO));
    s.local.spawn_local(Pump { sched: Rc::downgrade(s), timer });
}

/// `net.sleep`'s argument: seconds, finite, not negative.
fn sleep_duration(secs: f64) -> NResult<Duration> {
    let bad = |what: String| NetError::arg(1, "net.sleep", what);
    if !secs.is_finite() {
        return Err(bad("number must be finite".into()));
    }
    if secs < 0.0 {
        return Err(bad(format!("seconds must be >= 0, got {secs}")));
    }
    Ok(Duration::from_secs_f64(secs.min(1e12)))
}

/// `park_sleep(secs)`: parks the calling task until the deadline (`true`), or `false` when the
/// caller is not the task being polled (then `sleep_wait` does it). Upvalue 1: the scheduler.
unsafe extern "C-unwind" fn park_sleep(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the scheduler as upvalue 1; the Rust part drops everything
    // before the push.
    unsafe {
        let parked = if ffi::lua_type(l, 1) == ffi::LUA_TNUMBER {
            sleep_duration(ffi::lua_tonumber(l, 1))
                .map(|d| super::park(l as *const c_void, Wait::Until(Instant::now() + d)))
        } else {
            Err(NetError::arg(1, "net.sleep", format!("number expected, got {}", raw::type_name(l, 1))))
        };
        match parked {
            Ok(b) => {
                ffi::lua_pushboolean(l, c_int::from(b));
                1
            }
            Err(e) => push_fail(l, e),
        }
    }
}

fn delay(args: &Args, i: usize) -> NResult<Duration> {
    Ok(args.timeout(i)?.unwrap_or(Duration::ZERO))
}

fn start_timer(lua: &Lua, args: Args, repeat: bool) -> NResult<i64> {
    let f = args.function(1)?;
    let every = delay(&args, 2)?;
    let s = sched(lua);
    let key = lua.create_registry_value(f).map_err(NetError::from)?;
    let id = s.timers.next_id.get() + 1;
    s.timers.next_id.set(id);
    let start = Instant::now() + every;
    let lua = lua.clone();
    s.retain();
    let armed = Armed(s.clone(), id);
    let fut = async move {
        let _armed = armed;
        if !repeat {
            tokio::time::sleep_until(start).await;
            if let Ok(f) = lua.registry_value::<LuaFunction>(&key) {
                let _ = task::spawn(&lua, f, LuaMultiValue::new());
            }
            return;
        }
        // An interval of 0 would spin; one millisecond is the floor.
        let mut ticks = tokio::time::interval_at(start, every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Ok(f) = lua.registry_value::<LuaFunction>(&key) else { return };
            let Ok(t) = task::spawn(&lua, f, LuaMultiValue::new()) else { return };
            if !t.finished_ok().await {
                return; // the error was printed by the task; this interval stops
            }
        }
    };
    let h = s.local.spawn_local(fut);
    s.timers.active.borrow_mut().insert(id, h.abort_handle());
    Ok(id)
}

fn clear_timer(lua: &Lua, args: Args) -> NResult<()> {
    if args.is_nil(1) {
        return Ok(()); // clearTimeout(nil) is a no-op, as in browsers
    }
    let id = args.int_in(1, i64::MIN, i64::MAX)?;
    let h = sched(lua).timers.active.borrow_mut().remove(&id);
    if let Some(h) = h {
        h.abort();
    }
    Ok(())
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let sleep_wait = export::raw_async(lua, "net.sleep", |_, args| {
        let d = match args.get(1) {
            LuaValue::Integer(n) => sleep_duration(n as f64)?,
            LuaValue::Number(n) => sleep_duration(n)?,
            _ => return Err(args.expected(1, "number")),
        };
        Ok(async move {
            tokio::time::sleep(d).await;
            Ok(())
        })
    })?;
    let park = raw::closure(lua, &sched(lua), park_sleep, ())?;
    let make_sleep: LuaFunction = export::glue(lua)?.tasks.get("sleep")?;
    net.set("sleep", make_sleep.call::<LuaFunction>((park, sleep_wait))?)?;
    let t0 = std::time::Instant::now();
    net.set("now", lua.create_function(move |_, ()| Ok(t0.elapsed().as_secs_f64()))?)?;
    net.set("setTimeout", func(lua, "net.setTimeout", |lua, args| start_timer(lua, args, false))?)?;
    net.set("setInterval", func(lua, "net.setInterval", |lua, args| start_timer(lua, args, true))?)?;
    net.set("clearTimeout", func(lua, "net.clearTimeout", clear_timer)?)?;
    net.set("clearInterval", func(lua, "net.clearInterval", clear_timer)?)?;
    Ok(())
}
