//! Running the loop when the script ends, for the callback-style APIs (docs/api.md, "Callback
//! facade": "When the script ends").
//!
//! Scripts written for callback runtimes (`net.TCPServer():listen(...)`, `net.ws.client(url)`)
//! set up their callbacks and end, expecting the runtime to go on serving them; they never call
//! `net.run()`. A Lua C module gets no "end of script" event, so the facades *arm* this: a return
//! hook on the main thread that waits for the return of the top-level chunk (the function
//! `lua` / `luajit` called from their C `pmain`: level 1 is a C function and nothing is above
//! it), removes itself and calls `net.run()` there. The script's own code then has finished,
//! nothing else runs on the main thread, and an error raised by the loop (Ctrl-C's
//! `interrupted:`) ends the script as an error of its last line would.
//!
//! It is armed only from the main thread (not from tasks, which already run inside the loop) and
//! only when no other debug hook is set (a debugger's wins; then the script calls `net.run()`).
//! `net.run()` itself disarms it: a script that runs the loop has no use for it, and LuaJIT runs
//! with its JIT compiler off while any hook is set. On Lua 5.1-5.4 a coroutine created while the
//! hook is armed inherits it; the hook removes itself from such a coroutine at its first return.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_Debug, lua_State};
use mlua::prelude::*;

/// Where the hook finds `net.run` (a registry field).
const RUN_KEY: &CStr = c"net.run_at_exit";

/// Keeps `net.run` where the hook finds it (after `net.run` is registered).
pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let run: LuaFunction = net.get("run")?;
    lua.set_named_registry_value(RUN_KEY.to_str().expect("ASCII key"), run)
}

/// The `arm()` function handed to the Lua facades (not part of the `net` table).
pub fn arm_function(lua: &Lua) -> LuaResult<LuaFunction> {
    // SAFETY: `arm` follows the lua_CFunction protocol (reads no arguments, returns nothing).
    unsafe { lua.create_c_function(arm) }
}

/// Arms the hook if called on the main thread and no hook is set. Returns no values.
unsafe extern "C-unwind" fn arm(l: *mut lua_State) -> c_int {
    // SAFETY: `l` is the calling thread; pushthread pushes one value, popped at once.
    let on_main = unsafe {
        let main = ffi::lua_pushthread(l) == 1;
        ffi::lua_pop(l, 1);
        main
    };
    // SAFETY: reading and setting the hook of the running (main) thread.
    unsafe {
        if on_main && ffi::lua_gethook(l).is_none() {
            set_hook(l, Some(on_return), ffi::LUA_MASKRET);
        }
    }
    0
}

/// Removes the hook from the main thread if it is ours (called by `net.run()`).
pub fn disarm(lua: &Lua) {
    let main = super::signal::main_state(lua);
    if main.is_null() {
        return;
    }
    // SAFETY: `main` is the live main thread of the state calling net.run.
    unsafe {
        if ffi::lua_gethook(main).map(|f| f as usize) == Some(on_return as ffi::lua_Hook as usize) {
            set_hook(main, None, 0);
        }
    }
}

/// # Safety
/// `l` must be a live thread of a state this module runs in.
unsafe fn set_hook(l: *mut lua_State, f: Option<ffi::lua_Hook>, mask: c_int) {
    // SAFETY: per the contract; lua_sethook returns an int on 5.1/5.2 and nothing later.
    #[allow(clippy::let_unit_value)]
    let _ = unsafe { ffi::lua_sethook(l, f, mask, 0) };
}

/// The return hook: at the return of the top-level chunk, disarms and runs the loop.
unsafe extern "C-unwind" fn on_return(l: *mut lua_State, ar: *mut lua_Debug) {
    // SAFETY: `ar` is the hook's own record, valid during this call.
    if unsafe { (*ar).event } != ffi::LUA_HOOKRET {
        return;
    }
    // SAFETY: as in `arm`.
    let on_main = unsafe {
        let main = ffi::lua_pushthread(l) == 1;
        ffi::lua_pop(l, 1);
        main
    };
    if !on_main {
        // A coroutine that inherited the hook (5.1-5.4 copy it into new threads); LuaJIT keeps
        // one hook for the whole state, which must stay until the main chunk returns.
        #[cfg(not(feature = "luajit"))]
        // SAFETY: `l` is the running coroutine; this removes only its own hook.
        unsafe {
            set_hook(l, None, 0)
        };
        return;
    }
    // SAFETY: lua_getstack/lua_getinfo fill records we own (zeroed plain C structs).
    let top_level = unsafe {
        let mut caller: lua_Debug = std::mem::zeroed();
        let mut above: lua_Debug = std::mem::zeroed();
        ffi::lua_getstack(l, 1, &mut caller) == 1
            && ffi::lua_getinfo(l, c"S".as_ptr(), &mut caller) != 0
            && !caller.what.is_null()
            && CStr::from_ptr(caller.what) == c"C"
            && ffi::lua_getstack(l, 2, &mut above) == 0
    };
    if !top_level {
        return;
    }
    // SAFETY: removes our hook from the running main thread, then calls net.run with no
    // arguments and no results. An error it raises propagates as the chunk's error (lua.c's own
    // Ctrl-C hook raises from a hook the same way); no Rust value with a destructor is alive here.
    unsafe {
        set_hook(l, None, 0);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, RUN_KEY.as_ptr());
        ffi::lua_call(l, 0, 0);
    }
}
