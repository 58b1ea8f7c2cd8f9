"""Properties of the Python frame codec (hypothesis): any bytes raise only the codec's own FrameError, a valid
frame in noise is recovered after a delimiter, every single bit flip (and dropped byte, truncation) of a frame is
detected, and the message parsers accept no payload of the wrong size."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeflow.link.protocol import (
    INFO_FORMAT,
    ErrCode,
    ErrorMsg,
    Frame,
    FrameError,
    FrameReader,
    Info,
    Output,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
)

pytestmark = pytest.mark.unit
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

types = st.integers(0, 255)
seqs = st.integers(0, 0xFFFF)
payloads = st.binary(max_size=600) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=600).map(bytes)
frames = st.builds(Frame, types, seqs, payloads)
noise = st.binary(max_size=300)


def wire(f: Frame) -> bytes:
    return encode_frame(f.type, f.seq, f.payload)


def read_all(data: bytes, **kw) -> tuple[list[Frame], FrameReader]:
    r = FrameReader(**kw)
    return list(r.feed(data)), r


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes_raise_only_frame_errors(data):
    for fn in (cobs_decode, decode_frame, Info.unpack, Output.unpack, ErrorMsg.unpack):
        try:
            fn(data)
        except FrameError as e:
            assert isinstance(e.code, ErrCode) and str(e)
    got, r = read_all(data)  # the reader never raises: each bad frame is counted
    assert r.bad == len(r.errors) and all(isinstance(e, FrameError) for e in r.errors)
    assert len(got) + r.bad <= data.count(0) + 1


@SETTINGS
@given(frames)
def test_round_trip_and_wire_has_one_delimiter(f):
    w = wire(f)
    assert w.endswith(b"\x00") and w.count(0) == 1
    assert len(w) <= len(f.payload) + 9 + (len(f.payload) + 9) // 254 + 3
    assert decode_frame(w) == Frame(f.type, f.seq, f.payload)
    assert cobs_decode(cobs_encode(f.payload)) == f.payload


@SETTINGS
@given(noise, frames, noise, st.integers(1, 64))
def test_frame_in_noise_is_recovered_after_a_delimiter(before, f, after, piece):
    """Noise, then a delimiter (the host's FLUSH), the frame, more noise: the frame comes out, once, whatever
    the noise and however the bytes are split into reads; noise never decodes as a frame."""
    stream = before + b"\x00" + wire(f) + after
    r = FrameReader()
    got = []
    for k in range(0, len(stream), piece):
        got += list(r.feed(stream[k:k + piece]))
    assert got == [f]


@SETTINGS
@given(st.binary(min_size=1, max_size=100).filter(lambda b: 0 not in b), frames)
def test_noise_glued_to_a_frame_is_rejected_not_misread(before, f):
    got, r = read_all(before + wire(f))
    assert got == [] and r.bad == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.builds(Frame, types, seqs, st.binary(max_size=120)), frames)
def test_every_bit_flip_drop_and_truncation_is_detected(f, nxt):
    """Each single bit of the wire frame flipped (the delimiter too), each byte before it dropped, each truncation: no
    frame comes out that was not sent; the next frame, after the host's delimiter, still does."""
    w = wire(f)
    follow = b"\x00" + wire(nxt)
    for i in range(len(w)):
        for bit in range(8):
            m = bytearray(w)
            m[i] ^= 1 << bit
            got, r = read_all(bytes(m) + follow)
            assert got == [nxt] and r.bad >= 1, (i, bit)
        if i == len(w) - 1:
            break  # the delimiter: dropping it (or cutting there) leaves the whole frame, then the host's 0x00
        got, r = read_all(w[:i] + w[i + 1:] + follow)
        assert got == [nxt] and r.bad >= 1, ("drop", i)
        if i:
            got, r = read_all(w[:i] + follow)
            assert got == [nxt] and r.bad == 1, ("truncate", i)


@SETTINGS
@given(frames, st.integers(0, 700))
def test_reader_limits_hold(f, limit):
    """A frame over the reader's max_payload is BAD_LENGTH; over max_frame wire bytes it is OVERFLOW, never
    decoded from the bytes that fit."""
    w = wire(f)
    got, r = read_all(w, max_payload=limit)
    assert got == ([f] if len(f.payload) <= limit else [])
    if len(f.payload) > limit:
        assert [e.code for e in r.errors] == [ErrCode.BAD_LENGTH]
    got, r = read_all(w, max_frame=limit)
    assert got == ([f] if len(w) - 1 <= limit else [])
    if len(w) - 1 > limit:
        assert [e.code for e in r.errors] == [ErrCode.OVERFLOW]


def test_overlong_frame_is_not_decoded_from_its_first_bytes():
    """Regression: FrameReader kept the first max_frame bytes of a longer frame and decoded them, so a valid
    frame followed by junk without a delimiter was accepted (the C receiver says OVERFLOW)."""
    w = encode_frame(0x04, 3, b"\x01\x02\x03")
    got, r = read_all(w[:-1] + b"\x07\x07\x00", max_frame=len(w) - 1)
    assert got == [] and [e.code for e in r.errors] == [ErrCode.OVERFLOW]


@SETTINGS
@given(st.binary(max_size=200))
def test_message_parsers_check_sizes(payload):
    """INFO and ERROR have one size; OUTPUT's size follows from its own counts; nothing else parses."""
    ok = {Info.unpack: len(payload) == INFO_FORMAT.size and payload[2] <= 4 and payload[3] <= 4,
          ErrorMsg.unpack: len(payload) == 8}
    if len(payload) >= 28:
        _, _, n_l, n = struct.unpack_from("<BBHI", payload)
        ok[Output.unpack] = len(payload) == 28 + 4 * n + 16 * n_l
    else:
        ok[Output.unpack] = False
    for fn, good in ok.items():
        if good:
            fn(payload)
        else:
            with pytest.raises(FrameError) as e:
                fn(payload)
            assert e.value.code == ErrCode.BAD_LENGTH
