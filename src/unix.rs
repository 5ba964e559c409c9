//! `net.unix`: the same stream and listener as TCP, on Unix domain sockets.
//!
//! A listener removes its socket file when it is closed or collected; a stale file left by a
//! crashed process makes `listen` raise `addrinuse: ...` (remove it yourself if that is safe).

use mlua::prelude::*;
use tokio::net::{UnixListener, UnixStream};

use crate::error::{NResult, NetError};
use crate::export::{async_func, func, userdata, Args};
use crate::io::acceptor::Listening;
use crate::io::{Connection, Transport};
use crate::runtime::sched;
use crate::tcp::listener::Listener;
use crate::tcp::stream::Stream;

/// The longest path a Unix socket address holds: `sun_path` less its terminating NUL (107 bytes
/// on Linux, 103 on the BSDs and macOS).
const MAX_PATH: usize =
    std::mem::size_of::<libc::sockaddr_un>() - std::mem::offset_of!(libc::sockaddr_un, sun_path) - 1;

/// The socket path argument. Only strings: `listen(8080)` would otherwise make a socket file
/// named `8080` in the working directory. Empty paths, NUL bytes (an abstract socket name is not
/// supported) and paths too long for the address are refused here with a clear message rather
/// than by the system's.
fn path_arg(args: &Args) -> NResult<String> {
    if !matches!(args.get(1), LuaValue::String(_)) {
        return Err(args.expected(1, "string"));
    }
    let path = args.string(1)?;
    if path.is_empty() {
        return Err(args.bad(1, "socket path is empty"));
    }
    if path.contains('\0') {
        return Err(args.bad(1, "socket path contains a NUL byte"));
    }
    if path.len() > MAX_PATH {
        return Err(args.bad(
            1,
            format!("socket path is {} bytes long; at most {MAX_PATH} fit in a Unix socket address", path.len()),
        ));
    }
    Ok(path)
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    let unix = lua.create_table()?;
    unix.set(
        "connect",
        async_func(lua, "net.unix.connect", |lua, args| {
            let path = path_arg(&args)?;
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
                let c = Connection { transport: Transport::unix(s), peer: path.clone(), local: path };
                crate::tcp::stream::into_lua(&lua, Stream::new(c))
            })
        })?,
    )?;
    unix.set(
        "listen",
        func(lua, "net.unix.listen", |lua, args| {
            let path = path_arg(&args)?;
            let s = sched(lua);
            let _ctx = s.enter();
            let l = UnixListener::bind(&path).map_err(|e| NetError::io("listen on", &path, &e))?;
            userdata(lua, Listener::new(Listening::Unix(l, path.clone()), path, None, None))
        })?,
    )?;
    net.set("unix", unix)?;
    Ok(())
}
