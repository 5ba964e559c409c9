//! Tasks: `net.spawn`, `task:join`, `task:cancel`, `net.run`, `net.stop`, `net.wrap`.
//!
//! A task is a Lua coroutine polled by a tokio local task. The coroutine is kept in the Lua
//! registry, not as an mlua `Thread` value, because LuaJIT caps live mlua references near 8000
//! and 100,000 tasks must work (design §3). Its body runs under `xpcall` (prelude `task_main`) so
//! a failure keeps its traceback; a failure is printed unless someone is already joining.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use mlua::prelude::*;

use super::{sched, Mode, Sched};
use crate::error::{Kind, NetError};
use crate::export::{self, func, Args};

enum Outcome {
    Running,
    /// Results packed in a table (`n` = count), or none.
    Done(Option<LuaRegistryKey>),
    Failed(LuaRegistryKey),
    Cancelled,
}

struct TaskState {
    outcome: RefCell<Outcome>,
    joiners: RefCell<Vec<Waker>>,
    abort: RefCell<Option<tokio::task::AbortHandle>>,
    /// Someone called `join`: its failure is theirs to report, not printed.
    joined: std::cell::Cell<bool>,
    /// Never reused (unlike the coroutine's address once it is collected): a task joining
    /// itself is refused by comparing ids.
    id: u64,
    /// The task's coroutine in the registry, until the task ends.
    co: RefCell<Option<LuaRegistryKey>>,
}

impl TaskState {
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
}

/// The handle `net.spawn` returns.
pub struct Task(Rc<TaskState>);

/// Starts `f(args...)` as a task; returns its handle.
pub fn spawn(lua: &Lua, f: LuaFunction, args: LuaMultiValue) -> LuaResult<Task> {
    let s = sched(lua);
    let main = export::glue(lua)?.task_main.clone();
    let th = lua.create_thread(main)?;
    let ptr = th.to_pointer();
    // Push (f, args...) onto the new coroutine's stack; the first poll resumes with them.
    let mut first = LuaMultiValue::with_capacity(args.len() + 1);
    first.push_back(LuaValue::Function(f));
    first.extend(args);
    drop(th.clone().into_async::<()>(first)?);
    let key = lua.create_registry_value(th)?;
    let id = s.new_task_id();
    let state = Rc::new(TaskState {
        outcome: RefCell::new(Outcome::Running),
        joiners: RefCell::new(Vec::new()),
        abort: RefCell::new(None),
        joined: std::cell::Cell::new(false),
        id,
        co: RefCell::new(Some(key)),
    });
    let st = state.clone();
    let lua2 = lua.clone();
    let s2 = s.clone();
    s.retain();
    // Created outside the async block so that it is dropped (and the loop released) even when
    // the task is cancelled before its first poll.
    let alive = Release(s2.clone(), st.clone(), ptr);
    let fut = async move {
        let _alive = alive;
        let mut parked: Option<(Rc<dyn super::Parkable>, bool)> = None;
        // Whether this driver's waker is in `drivers` (only tasks that park need it there).
        let mut findable = false;
        let res = poll_fn(|cx| {
            if matches!(*st.outcome.borrow(), Outcome::Cancelled) {
                // Cancelled by itself during its last poll (see `cancel`).
                close_coroutine(&lua2, &st);
                return Poll::Ready(Ok(LuaMultiValue::new()));
            }
            let th = match st.thread(&lua2) {
                Some(th) => th,
                None => return Poll::Ready(Ok(LuaMultiValue::new())),
            };
            if th.status() != LuaThreadStatus::Resumable {
                // Someone else resumed the coroutine and it ended there.
                let msg = super::foreign_resume_error().to_string();
                s2.note_failure();
                if !st.joined.get() {
                    eprintln!("net: task failed: {msg}");
                }
                st.finish(Outcome::Failed(lua2.create_registry_value(msg).expect("registry")));
                return Poll::Ready(Ok(LuaMultiValue::new()));
            }
            if let Some((on, write)) = &parked {
                if on.poll_ready(cx, *write).is_pending() {
                    return Poll::Pending;
                }
                parked = None;
            }
            let at = match th.into_async::<LuaMultiValue>(()) {
                Ok(at) => at,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let mut at = std::pin::pin!(at);
            let r = super::polling_task(&s2, ptr, id, || at.as_mut().poll(cx));
            // A task that parked itself (see `park_here`) yielded mlua's pending marker: register
            // interest in what it waits for now, and poll again at once if that is already ready.
            let p = super::take_parked();
            if r.is_pending() {
                if matches!(*st.outcome.borrow(), Outcome::Cancelled) {
                    cx.waker().wake_by_ref(); // stop at once (see the top of this closure)
                } else if let Some((on, write)) = p {
                    if on.poll_ready(cx, write).is_ready() {
                        cx.waker().wake_by_ref();
                    } else {
                        if !findable {
                            super::add_driver(ptr, cx.waker());
                            findable = true;
                        }
                        parked = Some((on, write));
                    }
                }
            }
            r
        })
        .await;
        if let Some(key) = st.co.borrow_mut().take() {
            let _ = lua2.remove_registry_value(key);
        }
        // Not when the end was decided already (cancelled, or resumed by someone else).
        if matches!(*st.outcome.borrow(), Outcome::Running) {
            let outcome = outcome_of(&lua2, &s2, &st, res);
            st.finish(outcome);
        }
    };
    let handle = s.local.spawn_local(fut);
    *state.abort.borrow_mut() = Some(handle.abort_handle());
    Ok(Task(state))
}

impl TaskState {
    fn thread(&self, lua: &Lua) -> Option<LuaThread> {
        self.co.borrow().as_ref().and_then(|k| lua.registry_value::<LuaThread>(k).ok())
    }
}

/// Closes a cancelled task's suspended coroutine so that its pending `<close>` variables run
/// (Lua 5.4; other versions have none). An error from one of them is printed.
fn close_coroutine(lua: &Lua, st: &TaskState) {
    #[cfg(feature = "lua54")]
    {
        let Some(th) = st.thread(lua) else { return };
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
    let _ = (lua, st);
}

#[cfg(feature = "lua54")]
fn display(v: &LuaValue) -> String {
    match v {
        LuaValue::String(s) => s.to_string_lossy(),
        v => format!("{v:?}"),
    }
}

/// Releases the loop's hold when the task's future ends or is dropped (cancel).
struct Release(Rc<Sched>, Rc<TaskState>, *const std::ffi::c_void);
impl Drop for Release {
    fn drop(&mut self) {
        super::remove_driver(self.2);
        // A cancelled task's coroutine is not needed any more (dropping a key calls no Lua).
        drop(self.1.co.borrow_mut().take());
        if matches!(*self.1.outcome.borrow(), Outcome::Running) {
            self.1.finish(Outcome::Cancelled);
        }
        self.0.release();
    }
}

fn outcome_of(lua: &Lua, s: &Sched, st: &TaskState, res: LuaResult<LuaMultiValue>) -> Outcome {
    let mut vals = match res {
        Ok(v) => v,
        Err(e) => {
            // Only mlua-internal failures land here (the body runs under xpcall).
            s.note_failure();
            eprintln!("net: task failed: {e}");
            let key = lua.create_registry_value(e.to_string()).expect("registry");
            return Outcome::Failed(key);
        }
    };
    let ok = matches!(vals.pop_front(), Some(LuaValue::Boolean(true)));
    if ok {
        if vals.is_empty() {
            return Outcome::Done(None);
        }
        let n = vals.len();
        let packed = (|| {
            let t = lua.create_sequence_from(vals)?;
            t.raw_set("n", n)?;
            lua.create_registry_value(t)
        })();
        return match packed {
            Ok(k) => Outcome::Done(Some(k)),
            Err(e) => Outcome::Failed(lua.create_registry_value(e.to_string()).expect("registry")),
        };
    }
    let err = vals.pop_front().unwrap_or(LuaValue::Nil);
    let trace = vals.pop_front();
    s.note_failure();
    if !st.joined.get() {
        let trace = trace.and_then(|t| t.as_string().map(|s| s.to_string_lossy())).unwrap_or_default();
        eprintln!("net: task failed: {trace}");
    }
    Outcome::Failed(lua.create_registry_value(err).expect("registry"))
}

async fn wait(st: &TaskState) {
    poll_fn(|cx| {
        if matches!(*st.outcome.borrow(), Outcome::Running) {
            st.joiners.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}

/// Waits for a task to end; true when it returned normally.
pub async fn finished_ok(t: &Task) -> bool {
    wait(&t.0).await;
    let ok = matches!(*t.0.outcome.borrow(), Outcome::Done(_));
    ok
}

fn join(
    lua: &Lua,
    args: Args,
) -> crate::error::NResult<impl std::future::Future<Output = crate::error::NResult<LuaMultiValue>>> {
    let st = args.this::<Task>("task")?.0.clone();
    let s = sched(lua);
    if s.current_id() == st.id && super::mode(lua, &s) == Mode::Task {
        return Err(NetError::new(Kind::Io, "task:join() called by the task itself (it would wait forever)"));
    }
    st.joined.set(true);
    let lua = lua.clone();
    Ok(async move {
        wait(&st).await;
        let o = st.outcome.borrow();
        match &*o {
            Outcome::Done(None) => Ok(LuaMultiValue::new()),
            Outcome::Done(Some(k)) => {
                let t: LuaTable = lua.registry_value(k).map_err(NetError::from)?;
                let n: usize = t.raw_get("n").unwrap_or(0);
                (1..=n).map(|i| t.raw_get::<LuaValue>(i)).collect::<LuaResult<LuaMultiValue>>().map_err(NetError::from)
            }
            Outcome::Failed(k) => {
                // Re-raise the task's own error value, whatever its type.
                let v: LuaValue = lua.registry_value(k).unwrap_or(LuaValue::Nil);
                let mut mv = LuaMultiValue::new();
                mv.push_back(LuaValue::LightUserData(export::fail_tag()));
                mv.push_back(v);
                Ok(mv)
            }
            Outcome::Cancelled => Err(NetError::new(Kind::Cancelled, "join: the task was cancelled")),
            Outcome::Running => unreachable!(),
        }
    })
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set("join", export::async_func(lua, "join", join)?)?;
    methods.set(
        "cancel",
        func(lua, "cancel", |lua, args| {
            let st = args.this::<Task>("task")?.0.clone();
            if !matches!(*st.outcome.borrow(), Outcome::Running) {
                return Ok(false);
            }
            let s = sched(lua);
            let itself = s.current_id() == st.id;
            if !itself {
                // Dropped at the loop's next turn without being resumed again.
                if let Some(h) = st.abort.borrow_mut().take() {
                    h.abort();
                }
            }
            // Visible at once, not at the loop's next turn. The task itself stops at its next
            // wait: its driver sees the outcome and closes the coroutine there.
            st.finish(Outcome::Cancelled);
            if !itself {
                close_coroutine(lua, &st);
            }
            Ok(true)
        })?,
    )?;
    methods.set(
        "status",
        func(lua, "status", |_, args| {
            let st = args.this::<Task>("task")?.0.clone();
            let o = st.outcome.borrow();
            Ok(match &*o {
                Outcome::Running => "running",
                Outcome::Done(_) => "done",
                Outcome::Failed(_) => "failed",
                Outcome::Cancelled => "cancelled",
            })
        })?,
    )?;
    export::register_type::<Task>(lua, methods, None, |t| format!("task{{{:p}}}", Rc::as_ptr(&t.0)))?;

    net.set(
        "spawn",
        func(lua, "net.spawn", |lua, args| {
            let f = args.function(1)?;
            let rest = args.rest(2);
            spawn(lua, f, rest).and_then(|t| lua.create_any_userdata(t)).map_err(NetError::from)
        })?,
    )?;
    net.set(
        "run",
        func(lua, "net.run", |lua, _args| {
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
        })?,
    )?;
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
