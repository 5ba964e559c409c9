//! Shared by the fuzz targets: a Lua state with `net.json` and `net.url` registered as
//! `require("net")` registers them, so the targets call the same Lua functions scripts call.

use mlua::prelude::*;

/// The functions the Lua-side targets call, from a Lua state made once per thread.
pub struct NetLua {
    pub lua: Lua,
    pub net: LuaTable,
}

thread_local! {
    static NET: NetLua = {
        // SAFETY: the standard interpreter's libraries, `debug` included (net's glue uses it, and
        // `lua5.4` has it too); no C module is loaded from these inputs.
        let lua = unsafe { Lua::unsafe_new() };
        net::export::install(&lua).expect("net's Lua glue loads");
        let net = lua.create_table().expect("a table");
        net::json::register(&lua, &net).expect("net.json registers");
        net::url::register(&lua, &net).expect("net.url registers");
        NetLua { lua, net }
    };
}

pub fn with_net<R>(f: impl FnOnce(&NetLua) -> R) -> R {
    NET.with(|n| {
        let r = f(n);
        // Keep the heap small between runs so that leaks and growth show, not old garbage.
        n.lua.gc_collect().expect("gc");
        r
    })
}

impl NetLua {
    /// `net.<path>` (dots allowed: "json.decode").
    pub fn func(&self, path: &str) -> LuaFunction {
        let mut t = self.net.clone();
        let mut parts = path.split('.').peekable();
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                return t.get(p).expect("a net function");
            }
            t = t.get(p).expect("a net table");
        }
        unreachable!("a path has a last part")
    }

    /// Calls `net.<path>(args)`. A Lua error is a result (scripts see it as an error); a Rust
    /// panic inside is re-raised by mlua, and anything that reads like one is turned back into one.
    pub fn call<R: FromLuaMulti>(&self, path: &str, args: impl IntoLuaMulti) -> Result<R, String> {
        match self.func(path).call::<R>(args) {
            Ok(r) => Ok(r),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains("panicked"), "net.{path} panicked: {msg}");
                Err(msg)
            }
        }
    }

    pub fn bytes(&self, data: &[u8]) -> LuaString {
        self.lua.create_string(data).expect("a Lua string")
    }
}
