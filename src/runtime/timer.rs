//! Time: `net.sleep`, `net.now`, `net.setTimeout`/`clearTimeout`, `net.setInterval`/`clearInterval`.
//!
//! A timer is a local tokio task that holds the loop open until it fires or is cleared. Each
//! callback runs as a task of its own, so it may call anything that waits; an error in an
//! interval's callback is printed and stops that interval only.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use mlua::prelude::*;
use tokio::time::{Instant, MissedTickBehavior};

use super::{sched, task, Sched};
use crate::error::{NResult, NetError};
use crate::export::{async_func, func, Args};

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
            if !task::finished_ok(&t).await {
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
    net.set(
        "sleep",
        async_func(lua, "net.sleep", |_, args| {
            let secs = args.number(1)?;
            if secs < 0.0 {
                return Err(args.bad(1, format!("seconds must be >= 0, got {secs}")));
            }
            let d = Duration::from_secs_f64(secs.min(1e12));
            Ok(async move {
                tokio::time::sleep(d).await;
                Ok(())
            })
        })?,
    )?;
    let t0 = std::time::Instant::now();
    net.set("now", lua.create_function(move |_, ()| Ok(t0.elapsed().as_secs_f64()))?)?;
    net.set("setTimeout", func(lua, "net.setTimeout", |lua, args| start_timer(lua, args, false))?)?;
    net.set("setInterval", func(lua, "net.setInterval", |lua, args| start_timer(lua, args, true))?)?;
    net.set("clearTimeout", func(lua, "net.clearTimeout", clear_timer)?)?;
    net.set("clearInterval", func(lua, "net.clearInterval", clear_timer)?)?;
    Ok(())
}
