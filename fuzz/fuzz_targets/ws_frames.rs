//! The WebSocket frame reader with permessage-deflate on arbitrary incoming bytes: it gives
//! messages or a clean error (a close code), never panics, never hands out a message over
//! max_message_size, and never holds much more than that in memory, however far a compressed
//! message would inflate or however long a frame header claims to be.
//!
//! Input: byte 0 picks the setup (side, deflate, how the bytes are split), bytes 1-2 the limit
//! (1..=65536 bytes); the rest is what the peer sends.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libfuzzer_sys::fuzz_target;
use net::ws::fuzzing::{read_frames, FrameSetup};

/// Counts live heap bytes and their peak, so a run can tell how much the reader held at most.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            PEAK.fetch_max(LIVE.fetch_add(l.size(), Relaxed) + l.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new > l.size() {
                let grown = new - l.size();
                PEAK.fetch_max(LIVE.fetch_add(grown, Relaxed) + grown, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CHUNKS: [usize; 8] = [1, 2, 3, 7, 64, 512, 4096, 1 << 16];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    let max = 1 + u16::from_le_bytes([data[1], data[2]]) as usize;
    let wire = &data[3..];
    let setup = FrameSetup {
        client: flags & 1 != 0,
        max,
        deflate: (flags & 2 != 0).then_some(flags & 4 != 0),
        chunk: CHUNKS[(flags >> 3 & 7) as usize],
        leftover: match flags >> 6 {
            0 => 0,
            1 => wire.len(),
            2 => wire.len() / 2,
            _ => 1,
        },
    };
    // A warm-up run makes the runtime and the socket machinery once, outside the measurement.
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        read_frames(FrameSetup { client: false, max: 16, deflate: Some(true), chunk: 1, leftover: 0 }, b"");
    });
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let events = read_frames(setup, wire);
    let held = PEAK.load(Relaxed) - base;
    if std::env::var_os("NET_FUZZ_SHOW").is_some() {
        eprintln!("{setup:?}: held {held} bytes: {events:?}");
    }
    // What may legitimately be live at once: the input buffer (what was sent, plus at most 64 KiB
    // reserved ahead on the word of a header), the fragments of a message (a Vec that may have
    // doubled: 2 x max), the inflated output (max + 1) next to them, the inflater (~50 KiB), and
    // the socket and runtime bookkeeping. Inflating or reserving whole would go far past this.
    let bound = 2 * wire.len() + 4 * max + 256 * 1024;
    assert!(
        held <= bound,
        "the reader held {held} bytes (bound {bound}, max {max}) for {} input bytes: {events:?}",
        wire.len()
    );
    assert!(matches!(events.last(), Some(("error", _))), "the reader stopped without an error: {events:?}");
});
