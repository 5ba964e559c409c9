#!/usr/bin/env python3
"""Writes a few valid inputs per fuzz target into fuzz/corpus/<target>/ (seed-*.bin), so that a
short run starts from real frames, upgrades and documents instead of from nothing.
Usage: fuzz/seeds/make.py [CORPUS_DIR]   (default: fuzz/corpus beside this script's folder)"""
import os, struct, sys, zlib

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def frame(opcode, payload, fin=True, rsv1=False, key=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    m = 0x80 if key else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if key:
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def ws_frames():
    key = b"\x11\x22\x33\x44"
    text = b'{"hello": "world", "list": [1, 2, 3], "pad": "' + b"x" * 100 + b'"}'
    big = bytes(range(256)) * 2
    seeds = {}
    for client in (0, 1):
        k = None if client else key
        for deflated in (0, 1):
            flags = client | (deflated << 1) | (deflated << 2) | (3 << 3)
            setup = bytes([flags]) + struct.pack("<H", 4095)
            msgs = frame(1, b"hello", key=k) + frame(2, big, key=k) + frame(9, b"ping", key=k) + frame(10, b"", key=k)
            msgs += frame(1, b"frag", fin=False, key=k) + frame(0, b"men", fin=False, key=k) + frame(0, b"ted", key=k)
            if deflated:
                z = deflate(text)
                msgs += frame(1, z, rsv1=True, key=k)
                msgs += frame(1, z[:10], fin=False, rsv1=True, key=k) + frame(0, z[10:], key=k)
            msgs += frame(8, struct.pack(">H", 1000) + b"bye", key=k)
            seeds[f"seed-c{client}-d{deflated}"] = setup + msgs
        # A "zip bomb": 1 MiB of zeros in about a kilobyte, against a 2 KiB limit.
        bomb = deflate(b"\0" * (1 << 20))
        seeds[f"seed-bomb-c{client}"] = bytes([client | 6 | (6 << 3)]) + struct.pack("<H", 2047) + frame(2, bomb, rsv1=True, key=k)
        # A header that announces far more than is sent.
        seeds[f"seed-long-c{client}"] = bytes([client]) + struct.pack("<H", 65535) + frame(2, b"x" * 70000, key=k)[:20]
    return seeds


def ws_handshake():
    req = (b"GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Protocol: chat, superchat\r\n")
    ext = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n"
    resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: @ACCEPT@\r\nSec-WebSocket-Protocol: chat\r\n")
    rext = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=12\r\n"
    return {
        "seed-server": bytes([0b0100]) + req + b"\r\n\x81\x85\x01\x02\x03\x04iggmn",
        "seed-server-deflate": bytes([0b0110 | (1 << 4)]) + req + ext + b"\r\n",
        "seed-client": bytes([0b0101]) + resp + b"\r\n\x81\x02hi",
        "seed-client-deflate": bytes([0b0111]) + resp + rext + b"\r\n",
    }


def json():
    return {
        "seed-object": b'{"a": [1, 2.5, -3e10, true, false, null, {}, []], "b": {"c": "d\\u00e9\\n"}, "1": 18446744073709551615}',
        "seed-array": b'[[[["deep"]]], "\\ud83d\\ude00", 0.1, -0, 1e300]',
    }


def url():
    return {
        "seed-url": b"wss://user%20name:p%40ss@[::1]:8443/a%2Fb/c?q=1&q=2&r=a+b%26c#frag",
        "seed-query": b"?a=1&b=%E2%82%AC&a=2&c&=d&e=%zz",
    }


for target, seeds in {"ws_frames": ws_frames(), "ws_handshake": ws_handshake(), "json": json(), "url": url()}.items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name + ".bin"), "wb") as f:
            f.write(data)
