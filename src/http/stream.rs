//! Bodies produced by Lua functions: a response body (or a request body to upload) given as a
//! function that returns the next chunk, `nil` at the end. The function runs in a task of its
//! own, so it may wait (`net.sleep` between server-sent events, reading a file, a request to
//! another server); its chunks go through a bounded [`Pipe`] to hyper. If the peer goes away
//! the task is cancelled; if the function raises, the message is cut short (the peer never sees
//! a complete-looking body) and the error is printed.

use std::rc::Rc;

use bytes::Bytes;
use mlua::prelude::*;

use super::body::{Body, Pipe};
use crate::export::{async_func, Args};
use crate::runtime::task::{self, Ended};

/// The loop around the producer, run as the task: `sink(chunk)` is false once the peer is gone.
const PUMP: &str = r#"
local f, sink = ...
while true do
  local chunk = f()
  if chunk == nil then return end
  local t = type(chunk)
  if t == "number" then chunk = tostring(chunk)
  elseif t ~= "string" then error("a body function must return strings (nil ends the body), got " .. t, 0) end
  if #chunk > 0 and not sink(chunk) then return end
end
"#;

pub fn from_function(lua: &Lua, f: LuaFunction) -> LuaResult<Body> {
    let pipe = Rc::new(Pipe::default());
    let p = pipe.clone();
    let sink = async_func(lua, "body", move |_, a: Args| {
        let chunk = Bytes::from(a.bytes(1)?);
        let p = p.clone();
        Ok(async move { Ok(p.push(chunk).await.is_ok()) })
    })?;
    let pump = match lua.named_registry_value::<Option<LuaFunction>>("net.http.pump")? {
        Some(f) => f,
        None => {
            let f = lua.load(PUMP).set_name("=net.http.body").into_function()?;
            lua.set_named_registry_value("net.http.pump", &f)?;
            f
        }
    };
    let producer = task::spawn(lua, pump, (f, sink).into_lua_multi(lua)?)?;
    let stop = producer.clone();
    pipe.on_drop(Box::new(move || {
        stop.cancel();
    }));
    let p = pipe.clone();
    let lua2 = lua.clone();
    // Through the state's LocalSet: this runs when the request is prepared, maybe outside it.
    crate::runtime::sched(lua).local.spawn_local(async move {
        let end = match producer.result(&lua2).await {
            Ended::Returned(_) => Ok(()),
            Ended::Failed(_) => Err("the body function raised an error".to_string()),
            Ended::Cancelled => Err("the body function was cancelled".to_string()),
        };
        p.finish(end);
    });
    Ok(Body::Stream(pipe, None))
}
