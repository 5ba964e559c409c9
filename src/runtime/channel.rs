//! Channels between tasks: `net.channel([capacity])` with `send`, `receive`, `close`.
//!
//! Values wait in the Lua registry (never as mlua references: docs/internals.md, "Tasks"). `net.channel()` is
//! unbounded; `net.channel(n)` holds at most `n` values and `send` waits while it is full.
//! `receive` returns `value, true`, or `nil, false` once the channel is closed and drained.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use mlua::prelude::*;

use crate::error::{NResult, NetError};
use crate::export::{async_func, func, register_type, Args};

#[derive(Default)]
struct State {
    queue: RefCell<VecDeque<LuaRegistryKey>>,
    capacity: Option<usize>,
    closed: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

impl State {
    fn wake_all(&self) {
        for w in self.waiting.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

pub struct Channel(Rc<State>);

fn this(args: &Args) -> NResult<Rc<State>> {
    Ok(args.this::<Channel>("channel")?.0.clone())
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let methods = lua.create_table()?;
    methods.set(
        "send",
        async_func(lua, "send", |lua, args| {
            let ch = this(&args)?;
            if ch.closed.get() {
                return Err(NetError::closed("send", "channel"));
            }
            let key = lua.create_registry_value(args.get(2)).map_err(NetError::from)?;
            Ok(async move {
                let mut key = Some(key);
                poll_fn(|cx| {
                    if ch.closed.get() {
                        return Poll::Ready(Err(NetError::closed("send", "channel")));
                    }
                    let full = ch.capacity.is_some_and(|c| ch.queue.borrow().len() >= c);
                    if full {
                        ch.waiting.borrow_mut().push(cx.waker().clone());
                        return Poll::Pending;
                    }
                    ch.queue.borrow_mut().push_back(key.take().expect("sent once"));
                    ch.wake_all();
                    Poll::Ready(Ok(true))
                })
                .await
            })
        })?,
    )?;
    methods.set(
        "receive",
        async_func(lua, "receive", |lua, args| {
            let ch = this(&args)?;
            let lua = lua.clone();
            Ok(async move {
                let key = poll_fn(|cx| {
                    if let Some(k) = ch.queue.borrow_mut().pop_front() {
                        return Poll::Ready(Some(k));
                    }
                    if ch.closed.get() {
                        return Poll::Ready(None);
                    }
                    ch.waiting.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                })
                .await;
                ch.wake_all(); // room for a waiting sender
                match key {
                    Some(k) => {
                        let v: LuaValue = lua.registry_value(&k).map_err(NetError::from)?;
                        let _ = lua.remove_registry_value(k);
                        Ok((v, true))
                    }
                    None => Ok((LuaValue::Nil, false)),
                }
            })
        })?,
    )?;
    methods.set(
        "close",
        func(lua, "close", |_, args| {
            let ch = this(&args)?;
            ch.closed.set(true);
            ch.wake_all();
            Ok(())
        })?,
    )?;
    methods.set("len", func(lua, "len", |_, args| Ok(this(&args)?.queue.borrow().len()))?)?;
    register_type::<Channel>(lua, methods, None, |c| {
        let cap = c.0.capacity.map(|n| n.to_string()).unwrap_or_else(|| "unbounded".into());
        format!(
            "channel{{{} queued, capacity {cap}{}}}",
            c.0.queue.borrow().len(),
            if c.0.closed.get() { ", closed" } else { "" }
        )
    })?;

    net.set(
        "channel",
        func(lua, "net.channel", |lua, args| {
            let capacity = args.opt_int_in(1, 1, i64::from(u32::MAX))?.map(|n| n as usize);
            let st = State { capacity, ..Default::default() };
            lua.create_any_userdata(Channel(Rc::new(st))).map_err(NetError::from)
        })?,
    )?;
    Ok(())
}
