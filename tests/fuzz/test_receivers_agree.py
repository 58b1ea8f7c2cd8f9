"""The Python receiver (FrameReader) and the C one (firmware/link/ef_link.c via link_events.c) agree event for
event on the same byte streams: valid frames, corrupted ones, noise, delimiters, with small and legal buffer
and payload limits (hypothesis)."""

from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
import zlib
from ctypes import POINTER, c_int32, c_size_t, c_uint8, c_uint16, c_uint32
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeflow.link.protocol import FrameReader, encode_frame

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]
HERE = Path(__file__).resolve().parent
LINK = HERE.parents[1] / "firmware" / "link"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
Event = tuple[int, int, int, int, int]  # code (1 or -error), type, seq, payload length, payload CRC-32


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    so = tmp_path_factory.mktemp("events") / "libevents.so"
    subprocess.run(["gcc", *CFLAGS, "-fPIC", "-shared", f"-I{LINK}", str(HERE / "link_events.c"),
                    str(LINK / "ef_link.c"), "-o", str(so)], check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    lib.ef_events.argtypes = [POINTER(c_uint8), c_size_t, c_size_t, c_uint16, POINTER(c_int32), POINTER(c_uint8),
                              POINTER(c_uint16), POINTER(c_uint32), POINTER(c_uint32), c_size_t]
    lib.ef_events.restype = c_size_t
    return lib


def c_events(lib, data: bytes, cap: int, max_payload: int) -> list[Event]:
    m = data.count(0) + 1
    codes, types, seqs = (c_int32 * m)(), (c_uint8 * m)(), (c_uint16 * m)()
    lens, crcs = (c_uint32 * m)(), (c_uint32 * m)()
    src = (c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\x00")
    k = lib.ef_events(src, len(data), cap, max_payload, codes, types, seqs, lens, crcs, m)
    return [(codes[i], types[i], seqs[i], lens[i], crcs[i]) for i in range(k)]


def py_events(data: bytes, cap: int, max_payload: int) -> list[Event]:
    r = FrameReader(max_frame=cap, max_payload=max_payload)
    out: list[Event] = []
    for b in data:
        before = r.bad
        for f in r.feed(bytes([b])):
            out.append((1, f.type, f.seq, len(f.payload), zlib.crc32(f.payload)))
        if r.bad > before:
            out.append((-int(r.errors[-1].code), 0, 0, 0, 0))
    return out


def legal_cap(max_payload: int) -> int:
    n = max_payload + 9
    return n + n // 254 + 2


frames = st.builds(lambda t, s, p: encode_frame(t, s, p), st.integers(0, 255), st.integers(0, 0xFFFF),
                   st.binary(max_size=400) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=300).map(bytes))


@st.composite
def corrupted(draw) -> bytes:
    w = bytearray(draw(frames))
    how = draw(st.sampled_from(["flip", "drop", "truncate", "insert", "none"]))
    i = draw(st.integers(0, len(w) - 1))
    if how == "flip":
        w[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "drop":
        del w[i]
    elif how == "truncate":
        w = w[:i] + b"\x00"
    elif how == "insert":
        w.insert(i, draw(st.integers(0, 255)))
    return bytes(w)


segments = st.lists(frames | corrupted() | st.binary(max_size=60) | st.just(b"\x00"), max_size=12).map(b"".join)
limits = st.integers(0, 420).flatmap(lambda mp: st.tuples(st.just(mp), st.sampled_from([legal_cap(mp), 0, 1, 9, 64,
                                                                                         300, legal_cap(mp) - 1])))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(segments, limits)
def test_python_and_c_receivers_agree_event_for_event(lib, stream, lim):
    max_payload, cap = lim
    assert py_events(stream, cap, max_payload) == c_events(lib, stream, cap, max_payload)


def test_agree_on_every_single_bit_flip(lib):
    rng = random.Random(8)
    for n in (0, 5, 253, 254, 300):
        w = encode_frame(rng.randrange(256), rng.randrange(65536), bytes(rng.randrange(256) for _ in range(n)))
        for i in range(len(w)):
            for bit in range(8):
                m = bytearray(w)
                m[i] ^= 1 << bit
                stream = bytes(m) + b"\x00" + w
                ev = c_events(lib, stream, legal_cap(1024), 1024)
                assert ev == py_events(stream, legal_cap(1024), 1024), (n, i, bit)
                assert [e[0] for e in ev][-1] == 1 and all(e[0] < 0 for e in ev[:-1]), (n, i, bit)
