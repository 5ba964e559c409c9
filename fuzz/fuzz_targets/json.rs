//! `net.json.decode` on arbitrary bytes never panics, and what decodes round-trips:
//! encode(decode(x)) is the same JSON document as x, decodes again, and encodes to itself.
//! Any valid UTF-8 string also survives encode then decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlua::prelude::*;
use net_fuzz::with_net;
use serde_json::Value;

/// JSON equality as a Lua program sees it: numbers by value (1 == 1.0, -0 == 0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    with_net(|n| {
        let decoded = n.call::<LuaValue>("json.decode", n.bytes(data));
        match (decoded, serde_json::from_slice::<Value>(data)) {
            (Ok(v), Ok(doc)) => round_trip(n, data, v, &doc),
            (Err(e), Err(_)) => assert!(e.contains("protocol: invalid JSON"), "decode error without its kind: {e}"),
            (Ok(_), Err(e)) => panic!("decode accepted what serde_json refuses ({e})"),
            (Err(e), Ok(_)) => panic!("decode refused valid JSON: {e}"),
        }
        string_round_trip(n, data);
    })
});

fn round_trip(n: &net_fuzz::NetLua, data: &[u8], v: LuaValue, doc: &Value) {
    let text: LuaString = n.call("json.encode", v).unwrap_or_else(|e| panic!("encode of a decoded value failed: {e}"));
    let text = text.as_bytes().to_vec();
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let again = serde_json::from_slice::<Value>(&text)
        .unwrap_or_else(|e| panic!("encode wrote invalid JSON ({e}): {}", shown(&text)));
    assert!(same(doc, &again), "round trip changed the document: {} -> {}", shown(data), shown(&text));
    let v2: LuaValue = n.call("json.decode", n.bytes(&text)).expect("encode's output decodes");
    let text2: LuaString = n.call("json.encode", v2).expect("and encodes again");
    assert_eq!(&*text2.as_bytes(), &text[..], "encode is not stable across a round trip");
}

/// encode(s) for a Lua string: an error unless UTF-8, else it decodes back to s.
fn string_round_trip(n: &net_fuzz::NetLua, data: &[u8]) {
    let r = n.call::<LuaString>("json.encode", n.bytes(data));
    match (std::str::from_utf8(data), r) {
        (Ok(_), Ok(text)) => {
            let back: LuaString = n.call("json.decode", text).expect("an encoded string decodes");
            assert_eq!(&*back.as_bytes(), data, "a string changed in a round trip");
        }
        (Err(_), Err(e)) => assert!(e.contains("not valid UTF-8"), "unexpected error: {e}"),
        (Ok(_), Err(e)) => panic!("encode refused a UTF-8 string: {e}"),
        (Err(_), Ok(_)) => panic!("encode accepted a string that is not UTF-8"),
    }
}
