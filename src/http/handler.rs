//! How a request reaches the Lua handler without a protected call of our own: the handler's
//! coroutine starts an entry function, `function(handler, id) return finish(id,
//! handler(make(id))) end`, with `make` and `finish` raw C functions that build the request
//! table and read the answer from inside the coroutine, where an error (out of memory) is the
//! task's like any other. The request waits in `PENDING` under its id; the coroutine's stack
//! gets only registry values and an integer, which cannot raise (see `task::run_prepared`).
//! A coroutine resumed by someone else after its request is gone finds no entry: nothing
//! dangles.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::rc::Rc;

use bytes::Bytes;
use http::Response;
use mlua::ffi::{self, lua_State};
use mlua::prelude::*;

use super::body::Body;
use super::raw;
use super::service::Peer;

/// A request waiting for, or being answered by, its handler.
pub struct Pending {
    pub parts: http::request::Parts,
    pub body: Bytes,
    pub peer: Rc<Peer>,
    /// The answer `finish` read (`None`: it left the value to the general path).
    pub answer: Option<Result<Response<Body>, String>>,
}

thread_local! {
    static PENDING: RefCell<HashMap<u64, Pending>> = RefCell::new(HashMap::new());
    static NEXT: Cell<u64> = const { Cell::new(1) };
}

/// Parks a request for its handler; the returned guard takes it back (or drops it).
pub fn park(p: Pending) -> Parked {
    let id = NEXT.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    PENDING.with(|m| m.borrow_mut().insert(id, p));
    Parked(id)
}

/// A parked request's id; dropping it forgets the request.
pub struct Parked(pub u64);

impl Parked {
    pub fn take(self) -> Option<Pending> {
        PENDING.with(|m| m.borrow_mut().remove(&self.0))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        let _ = PENDING.try_with(|m| m.borrow_mut().remove(&self.0));
    }
}

/// Runs `f` on request `id` taken out of the table (put back after): a Lua error inside `f`
/// may skip Rust's unwinding, which must not leave the table borrowed.
fn with_pending<R>(id: u64, f: impl FnOnce(&mut Pending) -> R) -> Option<R> {
    let mut p = PENDING.with(|m| m.borrow_mut().remove(&id))?;
    let r = f(&mut p);
    PENDING.with(|m| m.borrow_mut().insert(id, p));
    Some(r)
}

/// `make(id) -> request table` (nil when the request is gone).
unsafe extern "C-unwind" fn make(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the id as argument 1; pushes one value.
    unsafe {
        let id = ffi::lua_tointeger(l, 1) as u64;
        if with_pending(id, |p| raw::push_request(l, &p.parts, Some(&p.body), &p.peer)).is_none() {
            ffi::lua_pushnil(l);
        }
    }
    1
}

/// `finish(id, answer, ...)`: reads the answer into the pending request and returns nothing,
/// or, when it needs the general path (a body function), returns the answer.
unsafe extern "C-unwind" fn finish(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the id and the handler's results as arguments.
    unsafe {
        let id = ffi::lua_tointeger(l, 1) as u64;
        if ffi::lua_gettop(l) < 2 {
            ffi::lua_pushnil(l);
        }
        let read = with_pending(id, |p| match raw::read_response(l, 2) {
            Some(r) => {
                p.answer = Some(r);
                true
            }
            None => false,
        });
        if read == Some(false) {
            ffi::lua_settop(l, 2);
            return 1;
        }
    }
    0
}

const ENTRY: &str = "local make, finish = ...\nreturn function(handler, id) return finish(id, handler(make(id))) end";

/// The entry function and the handler, as registry references for `task::run_prepared`.
pub struct Entry {
    pub entry: c_int,
    pub handler: c_int,
}

impl Entry {
    pub fn new(lua: &Lua, handler: &LuaFunction) -> LuaResult<Entry> {
        // SAFETY: both are plain C functions taking their arguments from the stack.
        let (make, finish) = unsafe { (lua.create_c_function(make)?, lua.create_c_function(finish)?) };
        let entry: LuaFunction = lua.load(ENTRY).set_name("=net.serve").call((make, finish))?;
        let reference = |f: &LuaFunction| -> LuaResult<c_int> {
            // SAFETY: under exec_raw's protected call: references the function it was given.
            unsafe {
                lua.exec_raw(f, |state| {
                    let r = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
                    ffi::lua_pushinteger(state, r as ffi::lua_Integer);
                })
            }
        };
        Ok(Entry { entry: reference(&entry)?, handler: reference(handler)? })
    }

    /// Pushes the entry function, the handler and `id` onto a coroutine's stack.
    ///
    /// # Safety
    /// `co` is a thread of the state with room for 3 values; nothing here allocates or raises.
    pub unsafe fn push(&self, co: *mut lua_State, id: u64) {
        // SAFETY: registry reads by integer key and an integer push.
        unsafe {
            ffi::lua_rawgeti(co, ffi::LUA_REGISTRYINDEX, self.entry as ffi::lua_Integer);
            ffi::lua_rawgeti(co, ffi::LUA_REGISTRYINDEX, self.handler as ffi::lua_Integer);
            ffi::lua_pushinteger(co, id as ffi::lua_Integer);
        }
    }
}
