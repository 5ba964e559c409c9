//! `net.url.parse`, `net.urlDecode`, `net.urlEncode` and `net.url.query` on arbitrary bytes never
//! panic; errors carry their kind; percent-coding round-trips any bytes (binary = true), and
//! without `binary` urlDecode and url.query succeed exactly when what they decode is UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlua::prelude::*;
use net_fuzz::with_net;

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    with_net(|n| {
        let s = n.bytes(data);
        for binary in [false, true] {
            match n.call::<LuaTable>("url.parse", (s.clone(), binary)) {
                Ok(t) => {
                    let scheme: String = t.get("scheme").expect("a scheme");
                    assert!(!scheme.is_empty());
                }
                Err(e) => assert!(e.contains("protocol: invalid URL") || e.contains("bad argument"), "url.parse: {e}"),
            }
        }

        let raw: LuaString = n.call("urlDecode", (s.clone(), true)).expect("binary urlDecode never fails");
        let raw = raw.as_bytes().to_vec();
        assert_eq!(raw, percent_decode(data), "urlDecode is not plain percent-decoding");
        match (n.call::<LuaString>("urlDecode", s.clone()), std::str::from_utf8(&raw)) {
            (Ok(t), Ok(_)) => assert_eq!(&*t.as_bytes(), &raw[..]),
            (Err(e), Err(_)) => assert!(e.contains("not valid UTF-8"), "urlDecode: {e}"),
            (r, u) => panic!("urlDecode gave {:?} for decoded bytes that are UTF-8: {}", r.map(|_| ()), u.is_ok()),
        }

        let enc: LuaString = n.call("urlEncode", (s.clone(), true)).expect("binary urlEncode never fails");
        let enc = enc.as_bytes().to_vec();
        assert!(
            enc.iter().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(b)),
            "urlEncode left a reserved byte: {}",
            String::from_utf8_lossy(&enc)
        );
        let back: LuaString = n.call("urlDecode", (n.bytes(&enc), true)).expect("decodes");
        assert_eq!(&*back.as_bytes(), data, "urlEncode then urlDecode changed the bytes");
        match (n.call::<LuaString>("urlEncode", s.clone()), std::str::from_utf8(data)) {
            (Ok(t), Ok(_)) => assert_eq!(&*t.as_bytes(), &enc[..]),
            (Err(e), Err(_)) => assert!(e.contains("not valid UTF-8"), "urlEncode: {e}"),
            (r, u) => panic!("urlEncode gave {:?} for input UTF-8 {}", r.map(|_| ()), u.is_ok()),
        }

        // Binary: any bytes give a table of strings (a repeated key: an array of them). Without
        // `binary` the same table, or an error exactly when a decoded key or value is not UTF-8.
        let q: LuaTable = n.call("url.query", (s.clone(), true)).expect("binary url.query takes any string");
        let mut all_utf8 = true;
        let mut utf8 = |v: &LuaString| all_utf8 &= std::str::from_utf8(&v.as_bytes()).is_ok();
        for pair in q.pairs::<LuaString, LuaValue>() {
            let (k, v) = pair.expect("string keys");
            utf8(&k);
            match v {
                LuaValue::String(v) => utf8(&v),
                LuaValue::Table(arr) => {
                    for v in arr.sequence_values::<LuaString>() {
                        utf8(&v.expect("an array of strings"));
                    }
                }
                other => panic!("url.query gave a {}", other.type_name()),
            }
        }
        match n.call::<LuaTable>("url.query", s) {
            Ok(t) => {
                assert!(all_utf8, "url.query accepted a key or value that is not UTF-8");
                assert_eq!(t.pairs::<LuaValue, LuaValue>().count(), q.pairs::<LuaValue, LuaValue>().count());
            }
            Err(e) => {
                assert!(!all_utf8, "url.query refused UTF-8: {e}");
                assert!(e.contains("not valid UTF-8"), "url.query: {e}");
            }
        }
    })
});
