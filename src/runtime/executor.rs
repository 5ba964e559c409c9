//! Runs the drivers of tasks (`task::Driver`) without a tokio task each.
//!
//! A tokio task costs a 256-byte allocation and a few atomic state changes per poll; a Lua task
//! costs less than that otherwise (docs/internals.md, "Tasks"). So drivers live in a slab here,
//! and one tokio task, the runner, polls the ones that are ready. A task's waker is two numbers
//! packed into the waker's data word (this executor and the task's slot with its generation):
//! cloning and dropping it cost nothing, and waking it queues the slot. A waker of a task that
//! ended finds its slot's generation changed and wakes nothing.
//!
//! Everything runs on the thread of the Lua state: the runtime is current-thread and nothing in
//! the process wakes a task from another thread. A wake from another thread finds no executor in
//! that thread's table and is dropped (it cannot touch this thread's data).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::task::Driver;

// The waker's data word packs 64 bits.
const _: () = assert!(std::mem::size_of::<usize>() == 8, "net needs a 64-bit target");

/// Drivers polled per turn of the runner before tokio gets to look at sockets and timers.
const BATCH: usize = 32;

struct Slot {
    gen: u16,
    /// In the ready queue already.
    queued: bool,
    /// None while free, and while the driver is being polled.
    driver: Option<Driver>,
}

pub struct Executor {
    /// This executor's number in the thread's table (`EXECUTORS`), part of every waker.
    id: u16,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    ready: RefCell<VecDeque<(u32, u16)>>,
    /// The runner's waker while it waits for ready tasks.
    runner: RefCell<Option<Waker>>,
    running: Cell<bool>,
}

thread_local! {
    /// The executors of this thread's Lua states, by id.
    static EXECUTORS: RefCell<Vec<Weak<Executor>>> = const { RefCell::new(Vec::new()) };
}

impl Executor {
    /// A new executor, registered in this thread's table; its runner must be spawned on the
    /// state's `LocalSet` (see `runner`).
    pub fn new() -> Rc<Executor> {
        EXECUTORS.with(|t| {
            let mut t = t.borrow_mut();
            let id = t.iter().position(|w| w.strong_count() == 0).unwrap_or(t.len());
            let e = Rc::new(Executor {
                id: u16::try_from(id).expect("fewer than 65536 Lua states on one thread"),
                slots: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                ready: RefCell::new(VecDeque::new()),
                runner: RefCell::new(None),
                running: Cell::new(false),
            });
            if id == t.len() {
                t.push(Rc::downgrade(&e));
            } else {
                t[id] = Rc::downgrade(&e);
            }
            e
        })
    }

    /// Adds a driver and queues its first poll; returns its slot and generation (for `cancel`).
    pub(super) fn spawn(&self, d: Driver) -> (u32, u16) {
        let (i, gen) = {
            let mut slots = self.slots.borrow_mut();
            match self.free.borrow_mut().pop() {
                Some(i) => {
                    let s = &mut slots[i as usize];
                    s.driver = Some(d);
                    (i, s.gen)
                }
                None => {
                    slots.push(Slot { gen: 0, queued: false, driver: Some(d) });
                    ((slots.len() - 1) as u32, 0)
                }
            }
        };
        self.schedule(i, gen);
        (i, gen)
    }

    /// Drops the driver in slot `i` if it is still the one of generation `gen` and is not being
    /// polled right now (a task cancelling itself is stopped by its driver instead).
    pub fn cancel(&self, i: u32, gen: u16) {
        let d = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(i as usize) {
                Some(s) if s.gen == gen && s.driver.is_some() => {
                    let d = s.driver.take();
                    self.free_slot(s, i);
                    d
                }
                _ => None,
            }
        };
        drop(d); // outside the borrow: a driver's drop may wake other tasks
    }

    fn free_slot(&self, s: &mut Slot, i: u32) {
        s.gen = s.gen.wrapping_add(1);
        s.queued = false;
        self.free.borrow_mut().push(i);
    }

    fn schedule(&self, i: u32, gen: u16) {
        {
            let mut slots = self.slots.borrow_mut();
            let Some(s) = slots.get_mut(i as usize) else { return };
            if s.gen != gen || s.queued {
                return;
            }
            s.queued = true;
        }
        self.ready.borrow_mut().push_back((i, gen));
        if !self.running.get() {
            let w = self.runner.borrow_mut().take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// Polls one ready driver; false when none is ready.
    fn run_one(&self) -> bool {
        let Some((i, gen)) = self.ready.borrow_mut().pop_front() else { return false };
        let d = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(i as usize) {
                Some(s) if s.gen == gen => {
                    s.queued = false;
                    s.driver.take()
                }
                _ => None,
            }
        };
        let Some(mut d) = d else { return true };
        let waker = task_waker(self.id, i, gen);
        // A panic stops this task only, as it would a tokio task (nothing foreign can unwind to
        // here: `lua_resume` catches every Lua error inside the coroutine).
        let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut d).poll(&mut Context::from_waker(&waker))));
        let done = polled.map_or_else(
            |_| {
                eprintln!("net: internal error (panic) while running a task; the task is stopped");
                true
            },
            |p| p.is_ready(),
        );
        // The slot is still this driver's: `cancel` leaves a slot alone while its driver is out.
        let mut slots = self.slots.borrow_mut();
        let s = &mut slots[i as usize];
        debug_assert_eq!(s.gen, gen);
        if done {
            self.free_slot(s, i);
            drop(slots);
            drop(d); // outside the borrow: a driver's drop may wake other tasks
        } else {
            s.driver = Some(d);
        }
        true
    }
}

/// The one tokio task that polls ready drivers.
pub struct Runner(pub Rc<Executor>);

impl Future for Runner {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let e = &self.0;
        e.running.set(true);
        let mut n = 0;
        while n < BATCH && e.run_one() {
            n += 1;
        }
        e.running.set(false);
        if e.ready.borrow().is_empty() {
            let mut r = e.runner.borrow_mut();
            if !r.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *r = Some(cx.waker().clone());
            }
        } else {
            // More are ready: let tokio look at sockets and timers first, then go on.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

// ---- Task wakers: (executor id, slot, generation) in the data word --------------------------

fn pack(id: u16, i: u32, gen: u16) -> *const () {
    ((u64::from(id) << 48) | (u64::from(gen) << 32) | u64::from(i)) as usize as *const ()
}

fn unpack(p: *const ()) -> (u16, u32, u16) {
    let v = p as usize as u64;
    ((v >> 48) as u16, v as u32, (v >> 32) as u16)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);

fn clone(p: *const ()) -> RawWaker {
    RawWaker::new(p, &VTABLE)
}

fn wake(p: *const ()) {
    let (id, i, gen) = unpack(p);
    let e = EXECUTORS.try_with(|t| t.borrow().get(id as usize).and_then(Weak::upgrade)).ok().flatten();
    if let Some(e) = e {
        e.schedule(i, gen);
    }
}

fn drop_waker(_: *const ()) {}

fn task_waker(id: u16, i: u32, gen: u16) -> Waker {
    // SAFETY: the data word is plain numbers (no pointer is dereferenced), and every function of
    // the vtable only decodes it and looks the executor up in this thread's table.
    unsafe { Waker::from_raw(RawWaker::new(pack(id, i, gen), &VTABLE)) }
}
