//! permessage-deflate (RFC 7692): the offer and answer of the handshake, and the compressor and
//! decompressor of one connection.
//!
//! tungstenite 0.30 has no compression (its reader rejects frames with RSV1 set), so `conn.rs`
//! reads and writes frames itself and calls in here. Deflate is flate2 on the zlib-rs backend:
//! pure Rust, and unlike miniz_oxide it honours window sizes, which a peer may demand
//! (`client_max_window_bits=12` from Python's `websockets`, for one).
//!
//! Memory: a deflate context with a 32 KiB window costs ~260 KiB. A server keeps none per
//! connection: it always answers `server_no_context_takeover` and compresses every message
//! with one compressor per thread, reset after each message. A client (few connections, where
//! the better ratio of a kept context matters) keeps its own unless the server says no. The
//! inflater (~40 KiB) is made on the first compressed message a peer sends.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail that a sync flush ends with; RFC 7692 removes it on the wire.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// Messages shorter than this are sent as they are: deflate cannot win on them.
pub const MIN_SIZE: usize = 32;

/// What was agreed for one connection, from this side's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The peer resets its context after each message.
    pub peer_no_takeover: bool,
    /// We reset ours after each message.
    pub own_no_takeover: bool,
    /// Window of our compressor (9..=15).
    pub own_window: u8,
}

/// One `permessage-deflate` element of a `Sec-WebSocket-Extensions` header, parsed.
#[derive(Default, Debug)]
struct Offer {
    server_no_takeover: bool,
    client_no_takeover: bool,
    /// `Some(None)`: the parameter without a value.
    server_bits: Option<Option<u8>>,
    client_bits: Option<Option<u8>>,
}

/// Parses the elements of an extensions header that are permessage-deflate; `Err` for one that
/// is malformed (unknown or repeated parameter, bad window size).
fn offers(header: &str) -> Vec<Result<Offer, String>> {
    let mut out = Vec::new();
    for ext in header.split(',') {
        let mut parts = ext.split(';').map(str::trim);
        if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate")) {
            continue;
        }
        out.push(parse_params(parts));
    }
    out
}

fn parse_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<Offer, String> {
    let mut o = Offer::default();
    for p in params.filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        let bits = || -> Result<Option<u8>, String> {
            match value {
                None => Ok(None),
                Some(v) => match v.parse::<u8>() {
                    Ok(b @ 8..=15) => Ok(Some(b)),
                    _ => Err(format!("bad window size in \"{p}\"")),
                },
            }
        };
        let dup = || Err(format!("repeated parameter \"{name}\""));
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                if o.server_no_takeover {
                    return dup();
                }
                o.server_no_takeover = true
            }
            "client_no_context_takeover" if value.is_none() => {
                if o.client_no_takeover {
                    return dup();
                }
                o.client_no_takeover = true
            }
            "server_max_window_bits" => {
                if o.server_bits.is_some() {
                    return dup();
                }
                o.server_bits = Some(bits()?)
            }
            "client_max_window_bits" => {
                if o.client_bits.is_some() {
                    return dup();
                }
                o.client_bits = Some(bits()?)
            }
            _ => return Err(format!("unknown parameter \"{p}\"")),
        }
    }
    Ok(o)
}

/// The client's offer: the usual one of browsers, saying we can honour a window limit.
pub const CLIENT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Server side: the answer to a client's `Sec-WebSocket-Extensions`, if one of its offers is
/// acceptable, with what it means for this side.
pub fn answer(header: &str) -> Option<(String, Params)> {
    for offer in offers(header) {
        let Ok(o) = offer else { continue };
        // We compress with window 9..15; a demand for 8 cannot be met (zlib cannot either).
        let own_window = match o.server_bits {
            Some(Some(8)) | Some(None) => continue, // a bare server_max_window_bits is invalid
            Some(Some(b)) => b,
            None => 15,
        };
        let mut answer = String::from("permessage-deflate; server_no_context_takeover");
        if o.client_no_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if o.server_bits.is_some() {
            answer.push_str(&format!("; server_max_window_bits={own_window}"));
        }
        let params = Params { peer_no_takeover: o.client_no_takeover, own_no_takeover: true, own_window };
        return Some((answer, params));
    }
    None
}

/// Client side: what the server's answer means, or why it is unacceptable.
pub fn accept_answer(header: &str) -> Result<Option<Params>, String> {
    let mut all = offers(header).into_iter();
    let Some(first) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err("permessage-deflate answered twice".into());
    }
    let o = first?;
    let own_window = match o.client_bits {
        None => 15,
        Some(Some(b)) if b >= 9 => b,
        Some(_) => return Err("unsupported client_max_window_bits".into()),
    };
    if matches!(o.server_bits, Some(None)) {
        return Err("server_max_window_bits without a value".into());
    }
    Ok(Some(Params { peer_no_takeover: o.server_no_takeover, own_no_takeover: o.client_no_takeover, own_window }))
}

thread_local! {
    /// The compressor of contexts that are reset after each message (all server sides), by window.
    static SHARED: RefCell<Vec<(u8, Compress)>> = const { RefCell::new(Vec::new()) };
}

fn new_compress(window: u8) -> Compress {
    Compress::new_with_window_bits(Compression::default(), false, window)
}

fn run_compress(c: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.reserve(data.len() / 2 + 64);
    let mut pos = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity());
        }
        let before = c.total_in();
        c.compress_vec(&data[pos..], out, FlushCompress::Sync).map_err(|e| e.to_string())?;
        pos += (c.total_in() - before) as usize;
        // The flush is complete once all input is in and deflate stopped with room to spare.
        if pos == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.len() - start >= 4 && out.ends_with(&TAIL) {
        out.truncate(out.len() - 4);
    }
    Ok(())
}

/// The sending half of one connection.
pub struct Deflater {
    params: Params,
    /// Our own kept context (client side with context takeover); made on first use.
    own: Option<Compress>,
}

impl Deflater {
    pub fn new(params: Params) -> Self {
        Deflater { params, own: None }
    }

    /// Appends `data` compressed to `out`; false (and `out` unchanged) when it would not be
    /// smaller, so the caller sends the message as it is.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        if data.len() < MIN_SIZE {
            return Ok(false);
        }
        let start = out.len();
        let window = self.params.own_window;
        if self.params.own_no_takeover {
            SHARED.with(|s| {
                let mut s = s.borrow_mut();
                let i = match s.iter().position(|(w, _)| *w == window) {
                    Some(i) => i,
                    None => {
                        s.push((window, new_compress(window)));
                        s.len() - 1
                    }
                };
                let c = &mut s[i].1;
                let r = run_compress(c, data, out);
                c.reset();
                r
            })?;
        } else {
            let c = self.own.get_or_insert_with(|| new_compress(window));
            run_compress(c, data, out)?;
            // With a kept context the message must be sent compressed even if it grew: the
            // peer's window has to see it.
            return Ok(true);
        }
        if out.len() - start >= data.len() {
            out.truncate(start);
            return Ok(false);
        }
        Ok(true)
    }
}

/// Why a compressed message could not be inflated.
pub enum InflateError {
    /// It inflates to more than the limit.
    TooBig,
    Corrupt(String),
}

/// The receiving half of one connection.
pub struct Inflater {
    peer_no_takeover: bool,
    d: Option<Decompress>,
}

impl Inflater {
    pub fn new(params: Params) -> Self {
        Inflater { peer_no_takeover: params.peer_no_takeover, d: None }
    }

    /// Inflates one whole message (its frames' payloads joined) into `out`, at most `max` bytes.
    pub fn inflate(&mut self, data: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
        // Window 15 inflates whatever window the peer deflated with.
        let d = self.d.get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let r = inflate_into(d, data, max, out);
        if self.peer_no_takeover || r.is_err() {
            d.reset(false);
        }
        r
    }
}

/// Inflates `data` and the sync-flush tail into `out`, growing it in steps so that a message
/// that inflates past `max` is stopped there rather than allocated whole (a "zip bomb").
fn inflate_into(d: &mut Decompress, data: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    let start = out.len();
    for input in [data, &TAIL[..]] {
        let mut pos = 0;
        loop {
            let produced = out.len() - start;
            if produced > max {
                return Err(InflateError::TooBig);
            }
            if out.len() == out.capacity() {
                out.reserve_exact((max + 1 - produced).min(out.capacity().max(4096)));
            }
            let (in0, out0) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(&input[pos..], out, FlushDecompress::Sync)
                .map_err(|e| InflateError::Corrupt(e.to_string()))?;
            pos += (d.total_in() - in0) as usize;
            if status == Status::StreamEnd {
                // The sender ended the deflate stream (BFINAL): the message is complete.
                d.reset(false);
                return if out.len() - start > max { Err(InflateError::TooBig) } else { Ok(()) };
            }
            let room = out.len() < out.capacity();
            if room && (pos == input.len() || (d.total_in() == in0 && out.len() == out0)) {
                break;
            }
        }
    }
    if out.len() - start > max {
        return Err(InflateError::TooBig);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(client_takeover: bool) -> (Deflater, Inflater) {
        let p = Params { peer_no_takeover: !client_takeover, own_no_takeover: !client_takeover, own_window: 15 };
        (Deflater::new(p), Inflater::new(p))
    }

    #[test]
    fn round_trip_with_and_without_context() {
        for takeover in [true, false] {
            let (mut d, mut i) = pair(takeover);
            for n in 0..5 {
                let msg = format!("{{\"hello\": \"world\", \"n\": {n}, \"pad\": \"{}\"}}", "x".repeat(200));
                let mut wire = Vec::new();
                assert!(d.compress(msg.as_bytes(), &mut wire).unwrap());
                assert!(wire.len() < msg.len());
                let mut back = Vec::new();
                i.inflate(&wire, 1 << 20, &mut back).ok().unwrap();
                assert_eq!(back, msg.as_bytes());
            }
        }
    }

    #[test]
    fn big_message_and_limit() {
        let (mut d, mut i) = pair(true);
        let msg = vec![b'a'; 3 << 20];
        let mut wire = Vec::new();
        d.compress(&msg, &mut wire).unwrap();
        let mut back = Vec::new();
        assert!(matches!(i.inflate(&wire, 1 << 20, &mut back), Err(InflateError::TooBig)));
        let (mut d, mut i) = pair(true);
        let mut wire = Vec::new();
        d.compress(&msg, &mut wire).unwrap();
        let mut back = Vec::new();
        assert!(i.inflate(&wire, msg.len(), &mut back).is_ok());
        assert_eq!(back.len(), msg.len());
    }

    #[test]
    fn negotiation() {
        let (h, p) = answer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(h, "permessage-deflate; server_no_context_takeover");
        assert_eq!(p.own_window, 15);
        let (h, p) =
            answer("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10")
                .unwrap();
        assert_eq!(h, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");
        assert_eq!(p.own_window, 10);
        assert!(answer("permessage-deflate; foo").is_none());
        assert!(answer("x-webkit-deflate-frame").is_none());
        let p = accept_answer("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12").unwrap();
        assert_eq!(p.unwrap().own_window, 12);
        assert!(accept_answer("permessage-deflate; bogus").is_err());
        assert_eq!(accept_answer("").unwrap(), None);
    }
}
