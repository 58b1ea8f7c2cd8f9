"""firmware/link/ef_link.c against edgeflow/link/protocol.py: identical CRC, COBS and frame bytes; the C receiver
accepts what Python sends and rejects every corruption with the protocol's error code."""

from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
import zlib
from ctypes import POINTER, c_int32, c_size_t, c_uint8, c_uint16, c_uint32
from pathlib import Path

import numpy as np
import pytest

from edgeflow.link.protocol import ErrCode, MsgType, cobs_encode, decode_frame, encode_frame, input_frames

from .conftest import CFLAGS

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]
LINK_DIR = Path(__file__).resolve().parents[2] / "firmware" / "link"

# Test shim: feed a whole byte string through one receiver and record every event.
SHIM = r"""
#include "ef_link.h"
static uint8_t rx_buf[70000];
size_t ef_test_feed(const uint8_t *data, size_t n, size_t cap, uint16_t max_payload, int32_t *codes,
                    uint16_t *seqs, uint32_t *crcs, uint8_t *types, size_t max_events)
{
    ef_link_rx rx;
    ef_frame f;
    size_t i, k = 0;
    if (cap > sizeof rx_buf) return 0;
    ef_link_rx_init(&rx, rx_buf, cap, max_payload);
    for (i = 0; i < n && k < max_events; ++i) {
        int r = ef_link_rx_feed(&rx, data[i], &f);
        if (r == 0) continue;
        codes[k] = r;
        seqs[k] = f.seq;
        types[k] = f.type;
        crcs[k] = r == 1 ? ef_crc32(0, f.payload, f.length) : f.detail;
        ++k;
    }
    return k;
}
"""


@pytest.fixture(scope="module")
def link(tmp_path_factory) -> ctypes.CDLL:
    d = tmp_path_factory.mktemp("link")
    (d / "shim.c").write_text(SHIM)
    so = d / "libeflink.so"
    subprocess.run(["gcc", *CFLAGS, "-fPIC", "-shared", "-I", str(LINK_DIR), str(LINK_DIR / "ef_link.c"),
                    str(d / "shim.c"), "-o", str(so)], check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    u8p = POINTER(c_uint8)
    lib.ef_crc32.argtypes, lib.ef_crc32.restype = [c_uint32, u8p, c_size_t], c_uint32
    lib.ef_cobs_encode.argtypes, lib.ef_cobs_encode.restype = [u8p, c_size_t, u8p, c_size_t], c_size_t
    lib.ef_link_encode.argtypes = [c_uint8, c_uint16, u8p, c_uint16, u8p, c_size_t]
    lib.ef_link_encode.restype = c_size_t
    lib.ef_test_feed.argtypes = [u8p, c_size_t, c_size_t, c_uint16, POINTER(c_int32), POINTER(c_uint16),
                                 POINTER(c_uint32), u8p, c_size_t]
    lib.ef_test_feed.restype = c_size_t
    return lib


def buf(data: bytes):
    return (c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\x00")


def c_encode(lib, t: int, seq: int, payload: bytes, cap: int | None = None) -> bytes:
    cap = cap if cap is not None else len(payload) + len(payload) // 254 + 16
    out = (c_uint8 * max(cap, 1))()
    n = lib.ef_link_encode(t, seq, buf(payload), len(payload), out, cap)
    return bytes(out[:n])


def c_feed(lib, data: bytes, max_payload: int = 1024, cap: int | None = None) -> list[tuple[int, int, int, int]]:
    """(code, seq, type, payload crc | detail) per event of the C receiver."""
    cap = cap if cap is not None else max_payload + 9 + (max_payload + 9) // 254 + 2
    m = 4096
    codes, seqs, crcs, types = (c_int32 * m)(), (c_uint16 * m)(), (c_uint32 * m)(), (c_uint8 * m)()
    k = lib.ef_test_feed(buf(data), len(data), cap, max_payload, codes, seqs, crcs, types, m)
    return [(codes[i], seqs[i], types[i], crcs[i]) for i in range(k)]


def test_crc32_matches_zlib_and_chains(link):
    rng = random.Random(3)
    for n in (0, 1, 7, 64, 1000):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert link.ef_crc32(0, buf(data), n) == zlib.crc32(data)
        half = link.ef_crc32(0, buf(data[: n // 2]), n // 2)
        assert link.ef_crc32(half, buf(data[n // 2:]), n - n // 2) == zlib.crc32(data)


def test_cobs_and_frames_are_byte_identical(link):
    rng = random.Random(5)
    for n in (0, 1, 245, 246, 253, 254, 255, 500, 1024, 3000):
        for density in (0.0, 0.05, 0.6):
            payload = bytes(0 if rng.random() < density else rng.randrange(1, 256) for _ in range(n))
            out = (c_uint8 * (n + n // 254 + 4))()
            k = link.ef_cobs_encode(buf(payload), n, out, len(out))
            assert bytes(out[:k]) == cobs_encode(payload)
            seq = rng.randrange(65536)
            assert c_encode(link, MsgType.OUTPUT, seq, payload) == encode_frame(MsgType.OUTPUT, seq, payload)


def test_encode_refuses_a_short_buffer(link):
    payload = bytes(range(1, 200))
    wire = encode_frame(MsgType.INPUT, 1, payload)
    assert c_encode(link, MsgType.INPUT, 1, payload, cap=len(wire)) == wire
    for cap in (0, 1, 5, len(wire) - 1):
        assert c_encode(link, MsgType.INPUT, 1, payload, cap=cap) == b""


def test_receiver_accepts_python_frames(link):
    window = np.random.default_rng(2).integers(-128, 128, 4000).astype(np.int8).tobytes()
    frames = input_frames(42, window, 1024)
    events = c_feed(link, b"".join(frames))
    assert len(events) == len(frames)
    for (code, seq, t, crc), w in zip(events, frames, strict=True):
        assert (code, seq, t) == (1, 42, MsgType.INPUT)
        assert crc == zlib.crc32(decode_frame(w).payload)


def test_receiver_rejects_every_corruption(link):
    wire = encode_frame(MsgType.INPUT, 0x0102, bytes(range(1, 120)) + bytes(8))
    body = wire[:-1]
    seen: set[int] = set()
    for i in range(len(body)):
        for bit in range(8):
            m = bytearray(body)
            m[i] ^= 1 << bit
            events = c_feed(link, bytes(m) + b"\x00")
            assert events and all(code < 0 for code, *_ in events), (i, bit)
            seen |= {-code for code, *_ in events}
        events = c_feed(link, body[:i] + body[i + 1:] + b"\x00")  # a dropped byte
        assert events and all(code < 0 for code, *_ in events)
        if i:
            assert [e[0] < 0 for e in c_feed(link, body[:i] + b"\x00")] == [True]  # truncated
    assert {ErrCode.BAD_CRC, ErrCode.BAD_COBS, ErrCode.BAD_LENGTH} <= seen


def test_receiver_resyncs_after_garbage_and_overflow(link):
    good = encode_frame(MsgType.HELLO, 9)
    big = encode_frame(MsgType.INPUT, 0x0A0B, bytes(range(1, 250)) * 2)  # 498-byte payload
    events = c_feed(link, b"\x55\xaa\x01garbage" + good + good + big + good, max_payload=256)
    codes = [e[0] for e in events]
    assert -codes[0] in (ErrCode.BAD_CRC, ErrCode.BAD_COBS, ErrCode.BAD_LENGTH)  # garbage + the first HELLO
    assert codes[1:] == [1, -ErrCode.OVERFLOW, 1]
    assert events[2][1] == 0x0A0B  # the overflowing frame's seq is still named
    small = c_feed(link, big, max_payload=600, cap=100)  # a buffer smaller than the frame: never written past
    assert [e[0] for e in small] == [-ErrCode.OVERFLOW]
    assert c_feed(link, encode_frame(MsgType.INPUT, 1, bytes(300)), max_payload=299)[0][0] == -ErrCode.BAD_LENGTH
