//! The WebSocket upgrade on arbitrary bytes. Server side: whatever the request, the server
//! answers one well-formed HTTP response (101 exactly when it accepts, with no body; else a
//! 4xx whose Content-Length is right) and never panics. Client side: against any answer (with
//! `@ACCEPT@` replaced by the right Sec-WebSocket-Accept) the client accepts or errors, never
//! panics.
//!
//! Input: byte 0 picks the side, compression, the subprotocols and how the request is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::ws::fuzzing::{client_handshake, server_handshake};

const CHUNKS: [usize; 4] = [1, 5, 100, 1 << 16];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else { return };
    let compress = flags & 2 != 0;
    let protocols: Vec<String> = match flags >> 2 & 3 {
        0 => vec![],
        1 => vec!["chat".into()],
        2 => vec!["chat".into(), "superchat".into()],
        _ => vec!["a".into(), "b".into(), "chat".into()],
    };
    if flags & 1 == 0 {
        let (answer, agreed) = server_handshake(bytes, CHUNKS[(flags >> 4 & 3) as usize], protocols, compress);
        if std::env::var_os("NET_FUZZ_SHOW").is_some() {
            eprintln!("{agreed:?}\n{}", String::from_utf8_lossy(&answer));
        }
        if answer.is_empty() {
            // The head never ended (the peer hung up, or it grew past the limit): no answer.
            let e = agreed.expect_err("accepted without answering");
            assert!(e.starts_with("closed: ") || e.contains("HTTP head over"), "{e}");
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(&answer) {
            Ok(httparse::Status::Complete(n)) => n,
            other => {
                panic!("the server's answer is not one HTTP head ({other:?}): {:?}", String::from_utf8_lossy(&answer))
            }
        };
        let code = resp.code.expect("a status");
        let length = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
        match &agreed {
            Ok(_) => {
                assert_eq!(code, 101, "accepted but answered {code}");
                assert_eq!(head, answer.len(), "a 101 with bytes after its head");
            }
            Err(e) => {
                assert!((400..500).contains(&code), "refused ({e}) with {code}");
                assert!(e.starts_with("protocol: "), "an error without its kind: {e}");
                assert_eq!(length, Some(answer.len() - head), "Content-Length is not the body's length");
            }
        }
    } else {
        let agreed = client_handshake(bytes, b"@ACCEPT@", protocols, compress);
        if std::env::var_os("NET_FUZZ_SHOW").is_some() {
            eprintln!("{agreed:?}");
        }
        match agreed {
            Ok(_) => {}
            Err(e) => {
                assert!(e.starts_with("protocol: ") || e.starts_with("closed: "), "an error without its kind: {e}")
            }
        }
    }
});
