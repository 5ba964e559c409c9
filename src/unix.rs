//! `net.unix`: the same stream and listener as TCP, on Unix domain sockets.
//!
//! A listener removes its socket file when it is closed or collected; a stale file left by a
//! crashed process makes `listen` raise `addrinuse: ...` (remove it yourself if that is safe).

use mlua::prelude::*;
use tokio::net::{UnixListener, UnixStream};

use crate::error::NetError;
use crate::export::{async_func, func, userdata};
use crate::runtime::sched;
use crate::tcp::listener::{Listener, Socket};
use crate::tcp::stream::{Stream, Transport};

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let unix = lua.create_table()?;
    unix.set(
        "connect",
        async_func(lua, "net.unix.connect", |lua, args| {
            let path = args.string(1)?;
            let timeout = args.opts(2)?.timeout("timeout")?;
            let lua = lua.clone();
            Ok(async move {
                let fut = UnixStream::connect(&path);
                let r = match timeout {
                    None => fut.await,
                    Some(d) => {
                        tokio::time::timeout(d, fut).await.map_err(|_| NetError::timeout("connect to", &path, d))?
                    }
                };
                let s = r.map_err(|e| NetError::io("connect to", &path, &e))?;
                crate::tcp::stream::into_lua(&lua, Stream::new(Transport::Unix(s), path.clone(), path))
            })
        })?,
    )?;
    unix.set(
        "listen",
        func(lua, "net.unix.listen", |lua, args| {
            let path = args.string(1)?;
            let s = sched(lua);
            let _ctx = s.enter();
            let l = UnixListener::bind(&path).map_err(|e| NetError::io("listen on", &path, &e))?;
            userdata(lua, Listener::new(Socket::Unix(l, path.clone()), path))
        })?,
    )?;
    net.set("unix", unix)?;
    Ok(())
}
