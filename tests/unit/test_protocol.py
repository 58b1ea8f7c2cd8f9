"""Link protocol in Python: COBS against the published examples, frame round trips, every corruption rejected,
message layouts, the incremental reader's resync, model hash and ef_model_info.h."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeflow.link.protocol import (
    INFO_FORMAT,
    ErrCode,
    ErrorMsg,
    Frame,
    FrameError,
    FrameReader,
    Info,
    MsgType,
    Output,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
    input_frames,
)

pytestmark = pytest.mark.unit
CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"

# (data, encoding) pairs of the COBS paper / Wikipedia examples
COBS_EXAMPLES = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (bytes([0x11, 0x22, 0x00, 0x33]), bytes([0x03, 0x11, 0x22, 0x02, 0x33])),
    (bytes([0x11, 0x22, 0x33, 0x44]), bytes([0x05, 0x11, 0x22, 0x33, 0x44])),
    (bytes([0x11, 0x00, 0x00, 0x00]), bytes([0x02, 0x11, 0x01, 0x01, 0x01])),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("data", "enc"), COBS_EXAMPLES)
def test_cobs_matches_published_examples(data, enc):
    assert cobs_encode(data) == enc
    assert cobs_decode(enc) == data


def test_cobs_round_trip_random_has_no_zero_and_bounded_overhead():
    rng = random.Random(1)
    for n in [0, 1, 253, 254, 255, 508, 509, 1000, 3000]:
        for density in (0.0, 0.01, 0.5):
            data = bytes(0 if rng.random() < density else rng.randrange(1, 256) for _ in range(n))
            enc = cobs_encode(data)
            assert 0 not in enc
            assert len(enc) <= n + n // 254 + 2
            assert cobs_decode(enc) == data


@pytest.mark.parametrize("bad", [b"\x00\x01", b"\x05\x01\x02", b"\x03\x01\x00", b"\x09"])
def test_cobs_rejects_malformed(bad):
    with pytest.raises(FrameError) as e:
        cobs_decode(bad)
    assert e.value.code == ErrCode.BAD_COBS


def test_frame_layout_and_crc_is_zlib():
    wire = encode_frame(MsgType.INPUT, 0x1234, b"\x00\x01\x02")
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    body = cobs_decode(wire[:-1])
    assert body[:5] == bytes([0x03, 0x34, 0x12, 0x03, 0x00])
    assert int.from_bytes(body[-4:], "little") == zlib.crc32(body[:-4])
    assert decode_frame(wire) == Frame(MsgType.INPUT, 0x1234, b"\x00\x01\x02")


def test_every_single_corruption_of_a_frame_is_rejected():
    wire = encode_frame(MsgType.INPUT, 7, bytes(range(256)) * 2)
    body = wire[:-1]
    rejected = 0
    for i in range(len(body)):  # every flipped bit
        for bit in range(8):
            mangled = bytearray(body)
            mangled[i] ^= 1 << bit
            if 0 in mangled:  # becomes two frames on the wire: check each piece
                pieces = bytes(mangled).split(b"\x00")
            else:
                pieces = [bytes(mangled)]
            for p in pieces:
                if p:
                    with pytest.raises(FrameError):
                        decode_frame(p)
                    rejected += 1
    for i in range(len(body)):  # every dropped byte
        with pytest.raises(FrameError):
            decode_frame(body[:i] + body[i + 1:])
    for n in range(len(body)):  # every truncation
        if n:
            with pytest.raises(FrameError):
                decode_frame(body[:n])
    assert rejected >= 8 * len(body)


def test_length_checks_name_the_problem():
    with pytest.raises(FrameError) as e:
        decode_frame(cobs_encode(b"\x01\x02\x00\x05"))
    assert e.value.code == ErrCode.BAD_LENGTH
    wire = encode_frame(MsgType.INPUT, 1, bytes(100))
    with pytest.raises(FrameError) as e:
        decode_frame(wire, max_payload=99)
    assert e.value.code == ErrCode.BAD_LENGTH and "100" in str(e.value)


def test_reader_resyncs_after_garbage_and_truncation():
    good = [encode_frame(MsgType.OUTPUT, s, bytes([s, 0, s])) for s in range(1, 6)]
    stream = b"\x13\x37garbage" + good[0] + good[1][:7] + b"\x00" + good[2] + b"\x00\x00" + good[3] + good[4]
    r = FrameReader()
    got = []
    for k in range(0, len(stream), 5):  # byte pieces of any size
        got += list(r.feed(stream[k:k + 5]))
    assert [f.seq for f in got] == [3, 4, 5]  # garbage merged into frame 1; frame 2 truncated
    assert r.bad == 2


def test_info_output_error_round_trip():
    info = Info(1, 0, bytes(range(8)), 28160, 2, 33, 1024, 0x3D121208, -3, (22, 1280), (1, 2), 1)
    assert len(info.pack()) == INFO_FORMAT.size == 68
    back = Info.unpack(info.pack())
    assert back == info and abs(back.input_scale - 0.0356617) < 1e-6
    out = Output(1, 10**12, 5, 9, (-5, 2**31 - 1, -(2**31)), (1, 2), (3, 4))
    assert Output.unpack(out.pack()) == out and out.replay
    with pytest.raises(FrameError):
        Output.unpack(out.pack()[:-1])
    err = ErrorMsg(ErrCode.BAD_SEQ, 77)
    assert ErrorMsg.unpack(err.pack()) == err and err.name == "BAD_SEQ"


def test_input_frames_reassemble_the_window():
    window = np.random.default_rng(0).integers(-128, 128, 5000).astype(np.int8).tobytes()
    frames = [decode_frame(w, max_payload=300) for w in input_frames(9, window, 300)]
    assert all(f.type == MsgType.INPUT and f.seq == 9 and len(f.payload) <= 300 for f in frames)
    buf = bytearray(len(window))
    for f in frames:
        off, total = int.from_bytes(f.payload[:4], "little"), int.from_bytes(f.payload[4:8], "little")
        assert total == len(window)
        buf[off:off + len(f.payload) - 8] = f.payload[8:]
    assert bytes(buf) == window


def test_model_hash_survives_save_load_and_sees_weight_changes(tmp_path):
    from edgeflow.ir.from_onnx import load_onnx
    from edgeflow.link.model_info import model_hash, render_model_info_h

    g = load_onnx(CASE / "model.onnx")
    g.save(tmp_path)
    h = model_hash(g)
    assert len(h) == 8 and model_hash(tmp_path) == h
    w = next(t for t in g.tensors.values() if t.data is not None and t.data.dtype == np.int8 and t.data.size > 8)
    w.data = w.data.copy()
    w.data.flat[0] = np.int8(w.data.flat[0] ^ 1)
    assert model_hash(g) != h
    text = render_model_info_h(g)
    assert "#define EF_MODEL_HASH {" + ", ".join(f"0x{b:02x}" for b in model_hash(g)) + "}" in text
    assert "#define EF_INPUT_DIMS {22, 1280, 1, 1}" in text and "#define EF_INPUT_RANK 2" in text


def test_fault_injector_mangles_each_kind_into_a_rejected_frame():
    from edgeflow.link.faults import KINDS, mangle

    rng = random.Random(0)
    wire = encode_frame(MsgType.OUTPUT, 3, bytes(range(1, 200)))
    for kind in KINDS:
        bad = mangle(kind, wire, rng)
        if kind == "reset":  # not a byte fault: the wrapper calls the device's reset instead
            assert bad == wire
            continue
        if kind == "lose":
            assert bad == b""
            continue
        assert bad != wire and bad.endswith(b"\x00") and bad.count(0) == 1
        r = FrameReader()
        assert list(r.feed(bad)) == [] and r.bad == 1
