"""Protocol security, host side: the host refuses a device of another protocol version or model, or one whose
INFO it cannot use; frames of unknown types and answers of the wrong size are never accepted; a hostile INFO in
the middle of a window is a bad frame, not a crash. The device is a scripted fake behind a pyserial-like port."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from edgeflow.link.protocol import (
    INFO_FORMAT,
    INPUT_HEAD,
    PROTOCOL_VERSION,
    FrameReader,
    Info,
    MsgType,
    Output,
    encode_frame,
)
from edgeflow.link.session import LinkError, ModelMismatchError, ProtocolVersionError, Session

pytestmark = pytest.mark.unit
HASH = bytes(range(1, 9))
INFO = Info(PROTOCOL_VERSION, 0, HASH, 40, 2, 3, 24, 0x3F800000, 0, (40,), (2,), 1)
Answer = Callable[[int, int], bytes]  # (seq, attempt) -> wire bytes the device sends after a whole window


def good_answer(seq: int, _attempt: int) -> bytes:
    return encode_frame(MsgType.OUTPUT, seq, Output(0, 10, 10, 1, (7, -7), (1, 2, 3), (1, 2, 3)).pack())


class FakeDevice:
    """A pyserial-like port with a scripted device behind it: HELLO -> `info` (reason 1), a complete window ->
    answer(seq, attempt)."""

    def __init__(self, info: Info = INFO, answer: Answer = good_answer):
        self.info, self.answer = info, answer
        self.reader = FrameReader()
        self.out = bytearray()
        self.timeout: float | None = 0.01
        self.attempts = 0

    def write(self, data: bytes) -> int:
        for f in self.reader.feed(data):
            if f.type == MsgType.HELLO:
                self.out += encode_frame(MsgType.INFO, f.seq, replace(self.info, reason=1).pack())
            elif f.type == MsgType.INPUT:
                off, total = INPUT_HEAD.unpack_from(f.payload)
                if off + len(f.payload) - INPUT_HEAD.size == total:
                    self.attempts += 1
                    self.out += self.answer(f.seq, self.attempts)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.out:
            time.sleep(0.002)
        got = bytes(self.out[:size])
        del self.out[:size]
        return got

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def close(self) -> None:
        pass


def session(dev: FakeDevice, expected: bytes | None = HASH) -> Session:
    return Session(dev, expected, timeout_s=0.2, retries=2, name="fake")


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 255])
def test_host_refuses_another_protocol_version(version):
    """Regression: the host checked only the model hash and streamed to a device of another protocol version."""
    with pytest.raises(ProtocolVersionError, match=f"protocol version {version}, this host speaks {PROTOCOL_VERSION}"):
        session(FakeDevice(replace(INFO, version=version))).handshake()


def test_host_refuses_another_model_hash():
    with pytest.raises(ModelMismatchError, match=f"device runs model {bytes(8).hex()}, the build expects {HASH.hex()}"):
        session(FakeDevice(replace(INFO, model_hash=bytes(8)))).handshake()
    assert session(FakeDevice(), expected=HASH).handshake().model_hash == HASH


@pytest.mark.parametrize("max_payload", [0, 1, INPUT_HEAD.size])
def test_host_refuses_a_max_payload_without_room_for_data(max_payload):
    """Regression: an INFO announcing max payload <= 8 made infer() raise ValueError (a traceback)."""
    with pytest.raises(LinkError, match=f"at most {max_payload} bytes"):
        session(FakeDevice(replace(INFO, max_payload=max_payload))).handshake()


def test_unknown_types_and_wrong_sized_answers_are_never_accepted():
    """Regression: an OUTPUT with another number of outputs than INFO announced was accepted as the answer."""
    def answer(seq: int, attempt: int) -> bytes:
        junk = b"".join(encode_frame(t, seq, b"\x01\x02") for t in (0x00, 0x06, 0x42, 0xFF, MsgType.HELLO))
        if attempt == 1:
            return junk + encode_frame(MsgType.OUTPUT, seq, Output(0, 1, 1, 1, (1, 2, 3)).pack())
        if attempt == 2:
            return junk + encode_frame(MsgType.OUTPUT, seq, Output(0, 1, 1, 1, (1, 2), (1,), (1,)).pack())
        return junk + good_answer(seq, attempt)

    s = session(FakeDevice(answer=answer))
    ans = s.infer(1, bytes(40))
    assert ans.attempts == 3 and ans.output.values == (7, -7)
    assert s.stats.bad_frames == 2


def test_hostile_info_mid_window_is_a_bad_frame_not_a_crash():
    """Regression: an INFO of the right size with ranks > 4 raised FrameError out of infer() and ended the
    stream; it is counted as a bad frame and the window is asked again."""
    bad = bytearray(replace(INFO, reason=0).pack())
    bad[2] = 9  # input rank 9
    assert len(bad) == INFO_FORMAT.size

    def answer(seq: int, attempt: int) -> bytes:
        return (encode_frame(MsgType.INFO, 0, bytes(bad)) if attempt == 1 else b"") + good_answer(seq, attempt)

    s = session(FakeDevice(answer=answer))
    assert s.infer(1, bytes(40)).output.values == (7, -7)
    assert s.stats.bad_frames >= 1 and s.stats.resets == 0


def test_window_of_another_size_is_refused_before_sending():
    dev = FakeDevice()
    s = session(dev)
    with pytest.raises(LinkError, match="window of 41 bytes, the device expects 40"):
        s.infer(1, bytes(41))
    assert dev.attempts == 0


@pytest.mark.parametrize("claimed", [0, 1, 9, 10, 11, 0xFFFF])
def test_header_length_must_match_the_bytes_present(claimed):
    """The payload length field is checked against the bytes present before anything is sliced."""
    from edgeflow.link.protocol import ErrCode, FrameError, cobs_encode, decode_frame

    payload = bytes(range(1, 11))
    body = bytearray(struct.pack("<BHH", MsgType.OUTPUT, 1, claimed) + payload)
    import zlib

    body += struct.pack("<I", zlib.crc32(body))
    wire = cobs_encode(bytes(body))
    if claimed == len(payload):
        assert decode_frame(wire).payload == payload
    else:
        with pytest.raises(FrameError) as e:
            decode_frame(wire)
        assert e.value.code == ErrCode.BAD_LENGTH and f"header says {claimed}" in str(e.value)
