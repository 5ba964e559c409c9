//! The frame header codec of the reader (RFC 6455 §5.2), pure: given the buffered bytes, is a
//! frame header there, and does it keep the rules (masking by side, reserved bits, control frames
//! unfragmented and at most 125 bytes, the message size limit)? `conn.rs` moves bytes and puts
//! messages together; the decisions about one header are made here and unit-tested below.
//!
//! The header's wire format is parsed by tungstenite's `FrameHeader` (the 7-, 16- and 64-bit
//! length forms and the mask key).

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::conn::Error;

/// What the reader expects of the peer's frames.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// We are the client: the server's frames must not be masked; a client's must be.
    pub client: bool,
    /// permessage-deflate was agreed (RSV1 may mark a compressed message).
    pub deflate: bool,
    /// `max_message_size`.
    pub max: usize,
}

/// A frame header that keeps the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// The message is compressed (first frame of a message only).
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    /// Bytes of the header itself; the payload follows.
    pub head_len: usize,
    pub payload_len: usize,
}

impl Header {
    /// The frame's size on the wire.
    #[inline]
    pub fn total(&self) -> usize {
        self.head_len + self.payload_len
    }
}

/// Parses the header at the start of `avail` and checks it: `Ok(None)` if more bytes are needed
/// for the header; `frag_len` is what the message in progress has gathered (for the size limit).
#[inline]
pub fn parse(avail: &[u8], rules: &Rules, frag_len: usize) -> Result<Option<Header>, Error> {
    let mut cur = Cursor::new(avail);
    let Some((h, len)) = FrameHeader::parse(&mut cur).map_err(|e| Error::Protocol(e.to_string()))? else {
        return Ok(None);
    };
    let control = matches!(h.opcode, OpCode::Control(_));
    if h.rsv2 || h.rsv3 {
        return Err(Error::Protocol("reserved bits set in a frame".into()));
    }
    if h.rsv1 && (control || !rules.deflate || h.opcode == OpCode::Data(Data::Continue)) {
        return Err(Error::Protocol("RSV1 set without permessage-deflate".into()));
    }
    if rules.client == h.mask.is_some() {
        let who = if rules.client { "masked frame from the server" } else { "unmasked frame from a client" };
        return Err(Error::Protocol(who.into()));
    }
    if control && (!h.is_final || len > 125) {
        return Err(Error::Protocol("control frame fragmented or over 125 bytes".into()));
    }
    if len.saturating_add(frag_len as u64) > rules.max as u64 {
        return Err(Error::TooBig(format!("message over max_message_size ({} bytes)", rules.max)));
    }
    Ok(Some(Header {
        fin: h.is_final,
        rsv1: h.rsv1,
        opcode: h.opcode,
        mask: h.mask,
        head_len: cur.position() as usize,
        // Within `max`, which is a usize.
        payload_len: len as usize,
    }))
}

/// Whether a whole frame is buffered (header and payload), whatever its content.
#[inline]
pub fn complete(avail: &[u8]) -> bool {
    let mut cur = Cursor::new(avail);
    match FrameHeader::parse(&mut cur) {
        Ok(Some((_, len))) => (avail.len() as u64).saturating_sub(cur.position()) >= len,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::Control;

    const SERVER: Rules = Rules { client: false, deflate: false, max: 1 << 20 };
    const CLIENT: Rules = Rules { client: true, deflate: false, max: 1 << 20 };

    /// One frame on the wire: first byte, payload length, mask key.
    fn frame(b0: u8, len: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
        let m = if mask.is_some() { 0x80 } else { 0 };
        let mut out = vec![b0];
        if len < 126 {
            out.push(m | len as u8);
        } else if len <= 0xffff {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if let Some(k) = mask {
            out.extend_from_slice(&k);
        }
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    fn err(avail: &[u8], rules: &Rules) -> String {
        match parse(avail, rules, 0) {
            Err(e) => e.to_string(),
            Ok(h) => panic!("accepted: {h:?}"),
        }
    }

    #[test]
    fn length_forms() {
        for (len, head) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70000, 10)] {
            let wire = frame(0x82, len, None);
            let h = parse(&wire, &CLIENT, 0).unwrap().unwrap();
            assert_eq!((h.head_len, h.payload_len, h.total()), (head, len, wire.len()), "len {len}");
            assert!(h.fin && h.opcode == OpCode::Data(Data::Binary));
            assert!(complete(&wire) && !complete(&wire[..wire.len() - 1]) || len == 0);
        }
    }

    #[test]
    fn masks_by_side() {
        let key = Some([1, 2, 3, 4]);
        let h = parse(&frame(0x81, 5, key), &SERVER, 0).unwrap().unwrap();
        assert_eq!((h.mask, h.head_len), (key, 6));
        assert_eq!(err(&frame(0x81, 5, None), &SERVER), "unmasked frame from a client");
        assert_eq!(err(&frame(0x81, 5, key), &CLIENT), "masked frame from the server");
    }

    #[test]
    fn header_split_at_every_byte() {
        for wire in
            [frame(0x81, 3, Some([9, 9, 9, 9])), frame(0x82, 300, Some([1, 0, 0, 1])), frame(0x82, 70000, Some([0; 4]))]
        {
            let whole = parse(&wire, &SERVER, 0).unwrap().unwrap();
            for cut in 0..wire.len() {
                let part = &wire[..cut];
                match parse(part, &SERVER, 0).unwrap() {
                    None => assert!(cut < whole.head_len, "no header at {cut} of {}", whole.head_len),
                    Some(h) => {
                        assert!(cut >= whole.head_len);
                        assert_eq!(h, whole);
                    }
                }
                assert!(!complete(part));
            }
            assert!(complete(&wire));
        }
    }

    #[test]
    fn reserved_bits() {
        assert_eq!(err(&frame(0x82 | 0x20, 1, None), &CLIENT), "reserved bits set in a frame");
        assert_eq!(err(&frame(0x82 | 0x10, 1, None), &CLIENT), "reserved bits set in a frame");
        // RSV1 only with deflate, only on a message's first data frame.
        assert_eq!(err(&frame(0xC1, 1, None), &CLIENT), "RSV1 set without permessage-deflate");
        let deflate = Rules { deflate: true, ..CLIENT };
        assert!(parse(&frame(0xC1, 1, None), &deflate, 0).unwrap().unwrap().rsv1);
        assert_eq!(err(&frame(0xC0, 1, None), &deflate), "RSV1 set without permessage-deflate");
        assert_eq!(err(&frame(0xC9, 1, None), &deflate), "RSV1 set without permessage-deflate");
    }

    #[test]
    fn control_frames() {
        let ping = parse(&frame(0x89, 125, None), &CLIENT, 0).unwrap().unwrap();
        assert_eq!(ping.opcode, OpCode::Control(Control::Ping));
        assert_eq!(err(&frame(0x89, 126, None), &CLIENT), "control frame fragmented or over 125 bytes");
        assert_eq!(err(&frame(0x09, 1, None), &CLIENT), "control frame fragmented or over 125 bytes");
        assert_eq!(err(&frame(0x08, 0, None), &CLIENT), "control frame fragmented or over 125 bytes");
        // A control frame in the middle of a fragmented message is fine (the caller checks order).
        assert!(parse(&frame(0x8A, 0, None), &CLIENT, 1000).unwrap().is_some());
    }

    #[test]
    fn size_limit_counts_fragments() {
        let small = Rules { max: 100, ..CLIENT };
        assert!(parse(&frame(0x82, 100, None), &small, 0).unwrap().is_some());
        assert_eq!(err(&frame(0x82, 101, None), &small), "message over max_message_size (100 bytes)");
        assert!(parse(&frame(0x00, 40, None), &small, 60).unwrap().is_some());
        assert!(matches!(parse(&frame(0x00, 41, None), &small, 60), Err(Error::TooBig(_))));
        // Refused on the word of the header alone: no payload needs to arrive.
        let huge = frame(0x82, 0, None);
        let mut announced = huge[..1].to_vec();
        announced.push(127);
        announced.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        assert!(matches!(parse(&announced, &small, 0), Err(Error::TooBig(_))));
    }

    #[test]
    fn opcodes_pass_through() {
        for (b0, op) in [
            (0x80, OpCode::Data(Data::Continue)),
            (0x81, OpCode::Data(Data::Text)),
            (0x88, OpCode::Control(Control::Close)),
        ] {
            assert_eq!(parse(&frame(b0, 0, None), &CLIENT, 0).unwrap().unwrap().opcode, op);
        }
        // Reserved opcodes are a protocol error from the header on.
        for b0 in [0x83, 0x87, 0x8B, 0x8F] {
            assert!(matches!(parse(&frame(b0, 0, None), &CLIENT, 0), Err(Error::Protocol(_))), "{b0:#x}");
        }
    }

    /// Whole messages through the real reader, the peer's bytes arriving in pieces of every size
    /// from one byte up: a fragmented text message with a ping between its fragments, then a
    /// close.
    #[test]
    fn messages_split_at_every_position() {
        let key = Some([7, 7, 7, 7]);
        let mut wire = Vec::new();
        wire.extend(masked(0x01, b"hel", key));
        wire.extend(masked(0x89, b"p", key));
        wire.extend(masked(0x80, b"lo", key));
        wire.extend(masked(0x88, &1000u16.to_be_bytes(), key));
        for chunk in 1..=wire.len() {
            for leftover in [0, 1, 5] {
                let setup = crate::ws::fuzzing::FrameSetup { client: false, max: 1024, deflate: None, chunk, leftover };
                let events = crate::ws::fuzzing::read_frames(setup, &wire);
                // The peer then hangs up: the reader sees the end of the stream (1006).
                let expected = vec![("ping", 1), ("text", 5), ("close", 0), ("error", 1006)];
                assert_eq!(events, expected, "chunk {chunk} leftover {leftover}");
            }
        }
    }

    fn masked(b0: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = frame(b0, payload.len(), key);
        let start = out.len() - payload.len();
        let k = key.unwrap_or_default();
        for (i, b) in payload.iter().enumerate() {
            out[start + i] = b ^ k[i % 4];
        }
        out
    }
}
