"""The device main loop (firmware/device/device_main.c) on a pty, spoken to frame by frame: INFO at boot and on
HELLO, every bad frame rejected with one ERROR naming the reason, a repeated window replayed and not re-run."""

from __future__ import annotations

import struct
import time

import pytest

from edgeflow.link.protocol import (
    ErrorMsg,
    Frame,
    FrameReader,
    Info,
    MsgType,
    Output,
    cobs_encode,
    encode_frame,
    frame_body,
    input_frames,
)
from edgeflow.link.session import open_port

pytestmark = pytest.mark.link


class Raw:
    """Bare protocol access to the device: send bytes, collect frames."""

    def __init__(self, port_path: str):
        self.port = open_port(port_path)
        self.reader = FrameReader()
        self.pending: list[Frame] = []

    def send(self, data: bytes) -> None:
        self.port.write(data)

    def frames(self, n: int, timeout: float = 2.0) -> list[Frame]:
        """The next n frames (fewer on timeout); frames beyond n stay queued."""
        end = time.monotonic() + timeout
        while len(self.pending) < n and time.monotonic() < end:
            self.pending += list(self.reader.feed(self.port.read(max(1, self.port.in_waiting))))
        got, self.pending = self.pending[:n], self.pending[n:]
        return got

    def quiet(self, wait: float = 0.15) -> list[Frame]:
        """Frames arriving within `wait` (expected: none)."""
        time.sleep(wait)
        got = self.pending + list(self.reader.feed(self.port.read(self.port.in_waiting)))
        self.pending = []
        return got

    def hello(self, seq: int = 0xF00F) -> Info:
        """HELLO -> its INFO (a boot INFO still in flight from start-up is skipped)."""
        self.send(encode_frame(MsgType.HELLO, seq))
        f = self.frames(1)[0]
        if f.type == MsgType.INFO and f.seq == 0 and Info.unpack(f.payload).reason == 0:
            f = self.frames(1)[0]
        assert f.type == MsgType.INFO and f.seq == seq
        return Info.unpack(f.payload)

    def error(self) -> tuple[int, ErrorMsg]:
        f = self.frames(1)[0]
        assert f.type == MsgType.ERROR, f
        return f.seq, ErrorMsg.unpack(f.payload)


@pytest.fixture
def raw(device):
    r = Raw(device.port)
    yield r
    r.port.close()


def test_info_describes_the_model(raw, micro_graph, micro_hash):
    info = raw.hello()
    x = micro_graph.tensors[micro_graph.inputs[0]]
    assert info.reason == 1 and info.version == 1 and info.model_hash == micro_hash
    assert info.input_shape == x.shape and info.input_size == 22 * 1280 and info.output_size == 2
    assert info.n_layers == len(micro_graph.nodes) and info.max_payload == 1024
    assert info.input_scale == struct.unpack("<f", struct.pack("<f", micro_graph.meta["input_scale"]))[0]


def _chunk(seq: int, off: int, data: bytes, total: int = 22 * 1280) -> bytes:
    return encode_frame(MsgType.INPUT, seq, struct.pack("<II", off, total) + data)


def _recode(body: bytes, i: int) -> bytes:
    """Wire bytes of `body` with byte i inverted (a CRC error the framing cannot see)."""
    b = bytearray(body)
    b[i] ^= 0xFF
    return cobs_encode(bytes(b)) + b"\x00"


BAD_FRAMES = {
    "BAD_CRC": lambda: _recode(frame_body(MsgType.INPUT, 5, struct.pack("<II", 0, 28160) + b"x"), -1),
    "BAD_LENGTH": lambda: cobs_encode(bytes([MsgType.INPUT, 5, 0, 64, 0]) + bytes(13)) + b"\x00",  # says 64, has 9
    "BAD_COBS": lambda: b"\x09\x01\x02\x00",
    "OVERFLOW": lambda: encode_frame(MsgType.INPUT, 5, bytes(2000)),
    "BAD_TYPE": lambda: encode_frame(0x42, 5, b""),
    "BAD_SIZE": lambda: _chunk(5, 0, b"\x01", total=1000),
    "BAD_OFFSET": lambda: _chunk(5, 100, b"\x01"),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_device_rejects_bad_frame_naming_the_reason(raw, name):
    raw.hello()
    raw.send(BAD_FRAMES[name]())
    _, err = raw.error()
    assert err.name == name
    assert raw.quiet() == []  # one ERROR, nothing else
    assert raw.hello().reason == 1  # and the device still works


def test_unexpected_seq_and_offset_mid_window(raw, micro_windows):
    raw.hello()
    w = micro_windows[0].tobytes()
    frames = input_frames(7, w, 1024)
    raw.send(frames[0] + _chunk(8, 1016, w[1016:2032]))  # another window's chunk mid-assembly
    seq, err = raw.error()
    assert err.name == "BAD_SEQ" and seq == 8 and err.detail == 7
    raw.send(b"".join(frames[1:]))  # the rest of the broken window is dropped quietly
    assert raw.quiet() == []
    raw.send(frames[0] + _chunk(7, 5000, w[5000:6000]))  # a gap
    seq, err = raw.error()
    assert err.name == "BAD_OFFSET" and seq == 7 and err.detail == 1016
    raw.send(b"".join(frames))  # a clean resend is answered
    f = raw.frames(1)[0]
    assert f.type == MsgType.OUTPUT and f.seq == 7 and not Output.unpack(f.payload).replay


def test_repeated_window_is_replayed_hello_starts_a_new_session(raw, micro_windows):
    raw.hello()
    a, b = micro_windows[0].tobytes(), micro_windows[1].tobytes()
    raw.send(b"".join(input_frames(3, a, 1024)))
    first = Output.unpack(raw.frames(1)[0].payload)
    raw.send(b"".join(input_frames(3, a, 1024)))  # host retry after a lost answer
    again = Output.unpack(raw.frames(1)[0].payload)
    assert again.replay and again.values == first.values and again.windows_run == first.windows_run == 1
    raw.send(b"".join(input_frames(3, b, 1024)))  # same seq, other data: a new window, run
    other = Output.unpack(raw.frames(1)[0].payload)
    assert not other.replay and other.windows_run == 2
    raw.hello()
    raw.send(b"".join(input_frames(3, b, 1024)))  # after HELLO the cache is gone: run again
    fresh = Output.unpack(raw.frames(1)[0].payload)
    assert not fresh.replay and fresh.windows_run == 3 and fresh.values == other.values
    assert sum(fresh.layer_instret) <= fresh.instret and len(fresh.layer_cycles) == 33


def test_boot_info_after_reset(device, raw):
    raw.hello()
    device.restart()
    f = raw.frames(1)[0]
    assert f.type == MsgType.INFO and Info.unpack(f.payload).reason == 0 and f.seq == 0
