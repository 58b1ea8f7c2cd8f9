"""Protocol security, device side (firmware/device/device_main.c + ef_link.c on a pty): every message type but
HELLO and INPUT is rejected; every length field (frame length, header payload length, INPUT offset, total and
chunk length) is checked before anything is copied, each with its ERROR; afterwards the device still answers a
clean window bit-exactly. That no frame makes the firmware write outside its buffers is the fuzzers' part
(tests/fuzz)."""

from __future__ import annotations

import struct
import zlib

import pytest

from edgeflow.link.protocol import ErrCode, MsgType, Output, cobs_encode, encode_frame, input_frames

from .test_device_loop import Raw

pytestmark = pytest.mark.link
SIZE = 22 * 1280  # femba-micro's input bytes
MAX = 1024        # the device's max INPUT payload


@pytest.fixture
def raw(device):
    r = Raw(device.port)
    yield r
    r.port.close()


def _chunk(seq: int, off: int, n: int, total: int = SIZE) -> bytes:
    return encode_frame(MsgType.INPUT, seq, struct.pack("<II", off, total) + bytes([0x11]) * n)


def _lying(claimed: int, payload: bytes) -> bytes:
    """An INPUT frame with a valid CRC whose header claims `claimed` payload bytes."""
    body = struct.pack("<BHH", MsgType.INPUT, 9, claimed) + payload
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def _expect(raw: Raw, data: bytes, code: ErrCode, detail: int | None = None) -> None:
    raw.send(data)
    _, err = raw.error()
    assert err.code == code, (err.name, code.name)
    if detail is not None:
        assert err.detail == detail
    assert raw.quiet(0.05) == []  # one ERROR, nothing else
    raw.hello()                   # the device is still there


def test_every_other_message_type_is_rejected(raw):
    raw.hello()
    for t in range(256):
        if t in (MsgType.HELLO, MsgType.INPUT):
            continue
        raw.send(encode_frame(t, 0x0100 + t, b"\x00\x01"))
        seq, err = raw.error()
        assert (err.code, err.detail, seq) == (ErrCode.BAD_TYPE, t, 0x0100 + t)
        raw.hello()


@pytest.mark.parametrize("claimed", [0, 8, 10, MAX, MAX + 1, 0xFFFF])
def test_header_length_must_match_the_bytes_present(raw, claimed):
    raw.hello()
    _expect(raw, _lying(claimed, struct.pack("<II", 0, SIZE) + b"\x01"), ErrCode.BAD_LENGTH)


def test_payload_bounded_by_the_announced_maximum(raw, micro_windows):
    raw.hello()
    _expect(raw, _chunk(3, 0, MAX + 1 - 8), ErrCode.BAD_LENGTH)  # one byte over: fits the buffer, refused
    _expect(raw, _chunk(3, 0, MAX + 40), ErrCode.OVERFLOW)       # over the receive buffer: never stored
    raw.send(_chunk(3, 0, MAX - 8))                              # exactly the maximum: accepted, no answer
    assert raw.quiet(0.1) == []


@pytest.mark.parametrize("n", range(8))
def test_input_shorter_than_its_header(raw, n):
    raw.hello()
    _expect(raw, encode_frame(MsgType.INPUT, 4, bytes(range(1, n + 1))), ErrCode.BAD_LENGTH, detail=n)


@pytest.mark.parametrize("total", [0, SIZE - 1, SIZE + 1, 0xFFFFFFFF])
def test_input_total_must_be_the_model_input_size(raw, total):
    raw.hello()
    _expect(raw, _chunk(5, 0, 16, total=total), ErrCode.BAD_SIZE, detail=SIZE)


def test_chunk_may_not_run_past_the_window(raw):
    raw.hello()
    step = MAX - 8
    start = b"".join(_chunk(6, off, step) for off in range(0, SIZE - step, step))
    last = (SIZE - step) // step * step + step  # where the next chunk starts
    remaining = SIZE - last
    _expect(raw, start + _chunk(6, last, remaining + 1), ErrCode.BAD_LENGTH, detail=remaining)


@pytest.mark.parametrize("off", [1, SIZE, SIZE + 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_offsets_other_than_where_the_window_continues(raw, off):
    raw.hello()
    _expect(raw, _chunk(7, off, 4), ErrCode.BAD_OFFSET)                   # no window started
    _expect(raw, _chunk(7, 0, 16) + _chunk(7, off, 4), ErrCode.BAD_OFFSET, detail=16)  # mid-window


def test_device_still_answers_bit_exactly_after_every_rejection(raw, micro_windows, micro_graph):
    from edgeflow.ir.reference import run

    raw.hello()
    for bad in (_lying(0xFFFF, b"\x01" * 20), _chunk(8, 0, MAX + 40), _chunk(8, SIZE, 4), encode_frame(0x42, 8)):
        raw.send(bad)
        raw.error()
        raw.hello()
    raw.send(b"".join(input_frames(8, micro_windows[0].tobytes(), MAX)))
    f = raw.frames(1)[0]
    assert f.type == MsgType.OUTPUT and f.seq == 8
    ref = run(micro_graph, micro_windows[0])[micro_graph.outputs[0]].reshape(-1)
    assert list(Output.unpack(f.payload).values) == ref.tolist()
