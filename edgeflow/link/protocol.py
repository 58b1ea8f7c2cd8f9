"""The link protocol between host and device: the one spec (tables below) and its Python encode/decode.

firmware/link/ef_link.[ch] implements the same bytes in C; tests/c/test_link_c.py checks both agree.

Framing
-------
Every message is one frame; on the wire a frame is ``COBS(body) + b"\\x00"`` (COBS: consistent overhead byte
stuffing, so 0x00 appears only as the delimiter; a receiver resynchronises at the next 0x00). All integers are
little-endian.

=======  =====  ==========================================================================
offset   size   body field
=======  =====  ==========================================================================
0        1      message type (table below)
1        2      sequence number (u16; a window's id, echoed by its answer)
3        2      payload length n (u16); must equal the bytes present and be <= the receiver's max
5        n      payload
5+n      4      CRC-32 (zlib / IEEE 802.3, init 0xFFFFFFFF, reflected, final xor) over bytes 0 .. 5+n-1
=======  =====  ==========================================================================

Messages
--------
=====  ======  ===========  ====================================================================================
type   name    direction    payload
=====  ======  ===========  ====================================================================================
0x01   HELLO   host->dev    empty. The device answers INFO with the same sequence number.
0x02   INFO    dev->host    INFO_FORMAT (68 bytes): version u8, reason u8 (0 = boot, 1 = reply to HELLO),
                            input rank u8, output rank u8, model hash 8 B, input size u32 (int8 codes),
                            output size u32 (int32 values), layers u16, max payload u16 (largest INPUT payload
                            the device accepts), input scale u32 (float32 bits), input zero point i32,
                            input dims 4 x u32, output dims 4 x u32 (padded with 1), cores u8, 3 reserved.
                            Sent unprompted at boot (seq 0, reason 0): an unexpected boot INFO means a reset.
0x03   INPUT   host->dev    offset u32, total u32 (= input size), then the chunk's int8 codes. A window is
                            its chunks in order from offset 0, all with the window's sequence number; a chunk
                            at offset 0 (re)starts assembly. When the last byte arrives the device runs it.
0x04   OUTPUT  dev->host    flags u8 (bit 0: replay of the cached answer to a repeated seq, nothing re-run),
                            reserved u8, layers u16 L, outputs u32 N, cycles u64, instret u64 (whole window),
                            windows run u32 (device count, replays excluded), N x i32 outputs,
                            L x (cycles u64, instret u64) per layer (IR node order).
0x05   ERROR   dev->host    code u8, 3 reserved, detail u32 (code-specific, e.g. the expected offset).
                            The frame's seq names the offending frame (as read from its header, best effort).
=====  ======  ===========  ====================================================================================

Flow
----
1. The device boots and sends INFO (seq 0, reason 0). The host sends HELLO (seq 0xF000..0xFFFF) until the INFO
   with that seq arrives, and refuses the device if INFO's protocol version or model hash is not the build's,
   or if its max payload leaves no room for INPUT data; an OUTPUT of another size than INFO announced is never
   accepted.
2. For window k the host sends INPUT chunks with seq k (1 .. 0xEFFF, wrapping), then waits for OUTPUT seq k.
3. The host resends all of window k (same seq) on a timeout, an ERROR (framing codes always; other codes when
   they name seq k), or a frame it could not decode; after an unexpected boot INFO (device reset) it first
   repeats the handshake. Answers for other seqs are stale and ignored: no window is counted twice.
   Each HELLO and each attempt starts with a lone 0x00, ending any partial frame the device still holds.
4. The device keeps its last OUTPUT: a complete window with the cached seq and the same bytes (CRC-32) is
   answered from the cache with the replay flag, not run again. HELLO starts a new session and drops the cache.

Error codes (device rejects the frame, says why once, then waits for a chunk at offset 0 or a HELLO):
1 BAD_CRC, 2 BAD_LENGTH (header length != payload bytes, or payload too large), 3 BAD_SEQ (chunk of another
window mid-assembly), 4 BAD_OFFSET (chunk not where the window continues), 5 BAD_TYPE, 6 OVERFLOW (frame longer
than the receive buffer), 7 BAD_COBS, 8 BAD_SIZE (INPUT total != the model's input size).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from edgeflow.errors import EdgeflowError

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BHH")  # type, seq, payload length
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size  # 9 bytes of body around the payload
DELIM = 0x00


class MsgType(IntEnum):
    HELLO = 0x01
    INFO = 0x02
    INPUT = 0x03
    OUTPUT = 0x04
    ERROR = 0x05


class ErrCode(IntEnum):
    BAD_CRC = 1
    BAD_LENGTH = 2
    BAD_SEQ = 3
    BAD_OFFSET = 4
    BAD_TYPE = 5
    OVERFLOW = 6
    BAD_COBS = 7
    BAD_SIZE = 8


class FrameError(EdgeflowError):
    """A received frame that is not valid; `code` says why (the same codes the device reports)."""

    def __init__(self, code: ErrCode, message: str):
        super().__init__(message)
        self.code = code


# ---- COBS ----------------------------------------------------------------------------------------------------
def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` (no trailing delimiter): the result contains no 0x00 byte. A run of 254 non-zero
    bytes ends its block (code 0xFF) without an implied zero; no empty block follows one at the very end."""
    out = bytearray([0])
    code_at, code = 0, 1
    for i, b in enumerate(data):
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(b)
        code += 1
        if code == 0xFF and i + 1 < len(data):
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    """Inverse of cobs_encode; FrameError(BAD_COBS) on a 0x00 inside or a block running past the end."""
    out = bytearray()
    i, n = 0, len(enc)
    while i < n:
        code = enc[i]
        if code == 0 or i + code > n:
            raise FrameError(ErrCode.BAD_COBS, f"COBS: bad block code {code} at byte {i} of {n}")
        block = enc[i + 1:i + code]
        if 0 in block:
            raise FrameError(ErrCode.BAD_COBS, f"COBS: 0x00 inside a block at byte {i}")
        out += block
        i += code
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ---- frames --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One decoded message: type, sequence number, payload bytes."""

    type: int
    seq: int
    payload: bytes


def frame_body(msg_type: int, seq: int, payload: bytes) -> bytes:
    """Header + payload + CRC (before COBS)."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a u16 length")
    head = HEADER.pack(int(msg_type), seq & 0xFFFF, len(payload)) + payload
    return head + CRC.pack(zlib.crc32(head) & 0xFFFFFFFF)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one frame: COBS(header + payload + CRC) + 0x00."""
    return cobs_encode(frame_body(msg_type, seq, payload)) + b"\x00"


def parse_body(body: bytes, max_payload: int = 0xFFFF) -> Frame:
    """Check and split a decoded body; FrameError(BAD_LENGTH / BAD_CRC) naming the problem."""
    if len(body) < OVERHEAD:
        raise FrameError(ErrCode.BAD_LENGTH, f"frame of {len(body)} bytes is shorter than the {OVERHEAD}-byte minimum")
    t, seq, n = HEADER.unpack_from(body)
    if n > max_payload or len(body) != OVERHEAD + n:
        raise FrameError(ErrCode.BAD_LENGTH, f"frame seq {seq}: header says {n} payload bytes, frame holds "
                                             f"{len(body) - OVERHEAD} (max {max_payload})")
    (crc,) = CRC.unpack_from(body, HEADER.size + n)
    if zlib.crc32(body[:HEADER.size + n]) & 0xFFFFFFFF != crc:
        raise FrameError(ErrCode.BAD_CRC, f"frame seq {seq}: CRC mismatch")
    return Frame(t, seq, bytes(body[HEADER.size:HEADER.size + n]))


def decode_frame(wire: bytes, max_payload: int = 0xFFFF) -> Frame:
    """Decode one frame's wire bytes (with or without the trailing 0x00)."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    return parse_body(cobs_decode(wire), max_payload)


@dataclass
class FrameReader:
    """Incremental receiver: feed() raw bytes, get decoded frames and rejected ones. Bytes between delimiters
    that do not form a valid frame (garbage, truncation, flipped bits) are dropped and counted in `bad`.
    Like the C receiver (ef_link_rx): at most `max_frame` wire bytes are kept per frame; a longer one is
    rejected whole (OVERFLOW) at its delimiter, never decoded from its first bytes; frames with more than
    `max_payload` payload bytes are rejected (BAD_LENGTH)."""

    max_frame: int = 1 << 20
    max_payload: int = 0xFFFF
    buf: bytearray = field(default_factory=bytearray)
    bad: int = 0
    errors: list[FrameError] = field(default_factory=list)
    overflow: bool = False

    def feed(self, data: bytes) -> Iterator[Frame]:
        for b in data:
            if b != DELIM:
                if len(self.buf) < self.max_frame:
                    self.buf.append(b)
                else:
                    self.overflow = True
                continue
            chunk, self.buf = bytes(self.buf), bytearray()
            overflow, self.overflow = self.overflow, False
            if overflow:
                self.bad += 1
                self.errors.append(FrameError(ErrCode.OVERFLOW, f"frame longer than {self.max_frame} bytes"))
                continue
            if not chunk:
                continue  # empty frame (back-to-back delimiters) is a harmless resync point
            try:
                yield decode_frame(chunk, self.max_payload)
            except FrameError as e:
                self.bad += 1
                self.errors.append(e)


# ---- messages ------------------------------------------------------------------------------------------------
INFO_FORMAT = struct.Struct("<BBBB8sIIHHIi4I4IB3x")
OUTPUT_HEAD = struct.Struct("<BBHIQQI")
ERROR_FORMAT = struct.Struct("<B3xI")
INPUT_HEAD = struct.Struct("<II")
OUTPUT_REPLAY = 0x01


@dataclass(frozen=True)
class Info:
    """What the device says about itself (INFO)."""

    version: int
    reason: int
    model_hash: bytes
    input_size: int
    output_size: int
    n_layers: int
    max_payload: int
    input_scale_bits: int
    input_zero_point: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    cores: int = 1

    @property
    def input_scale(self) -> float:
        return struct.unpack("<f", struct.pack("<I", self.input_scale_bits))[0]

    def pack(self) -> bytes:
        pad = lambda s: list(s) + [1] * (4 - len(s))  # noqa: E731
        return INFO_FORMAT.pack(self.version, self.reason, len(self.input_shape), len(self.output_shape),
                                self.model_hash, self.input_size, self.output_size, self.n_layers, self.max_payload,
                                self.input_scale_bits, self.input_zero_point, *pad(self.input_shape),
                                *pad(self.output_shape), self.cores)

    @classmethod
    def unpack(cls, payload: bytes) -> Info:
        if len(payload) != INFO_FORMAT.size:
            raise FrameError(ErrCode.BAD_LENGTH, f"INFO payload of {len(payload)} bytes, expected {INFO_FORMAT.size}")
        v = INFO_FORMAT.unpack(payload)
        rin, rout = v[2], v[3]
        if rin > 4 or rout > 4:
            raise FrameError(ErrCode.BAD_LENGTH, f"INFO ranks {rin}/{rout} exceed 4")
        return cls(v[0], v[1], v[4], v[5], v[6], v[7], v[8], v[9], v[10], tuple(v[11:11 + rin]),
                   tuple(v[15:15 + rout]), v[19])


@dataclass(frozen=True)
class Output:
    """A window's answer (OUTPUT): int32 outputs and the device's counters."""

    flags: int
    cycles: int
    instret: int
    windows_run: int
    values: tuple[int, ...]
    layer_cycles: tuple[int, ...] = ()
    layer_instret: tuple[int, ...] = ()

    @property
    def replay(self) -> bool:
        return bool(self.flags & OUTPUT_REPLAY)

    def pack(self) -> bytes:
        n_l = len(self.layer_cycles)
        body = OUTPUT_HEAD.pack(self.flags, 0, n_l, len(self.values), self.cycles, self.instret, self.windows_run)
        body += struct.pack(f"<{len(self.values)}i", *self.values)
        for c, i in zip(self.layer_cycles, self.layer_instret, strict=True):
            body += struct.pack("<QQ", c, i)
        return body

    @classmethod
    def unpack(cls, payload: bytes) -> Output:
        if len(payload) < OUTPUT_HEAD.size:
            raise FrameError(ErrCode.BAD_LENGTH, f"OUTPUT payload of {len(payload)} bytes is too short")
        flags, _, n_l, n, cyc, ins, runs = OUTPUT_HEAD.unpack_from(payload)
        want = OUTPUT_HEAD.size + 4 * n + 16 * n_l
        if len(payload) != want:
            raise FrameError(ErrCode.BAD_LENGTH, f"OUTPUT payload of {len(payload)} bytes, {n} outputs and "
                                                 f"{n_l} layers need {want}")
        vals = struct.unpack_from(f"<{n}i", payload, OUTPUT_HEAD.size)
        per = struct.unpack_from(f"<{2 * n_l}Q", payload, OUTPUT_HEAD.size + 4 * n)
        return cls(flags, cyc, ins, runs, tuple(vals), tuple(per[0::2]), tuple(per[1::2]))


@dataclass(frozen=True)
class ErrorMsg:
    """The device rejected a frame (ERROR)."""

    code: int
    detail: int = 0

    def pack(self) -> bytes:
        return ERROR_FORMAT.pack(self.code, self.detail)

    @classmethod
    def unpack(cls, payload: bytes) -> ErrorMsg:
        if len(payload) != ERROR_FORMAT.size:
            raise FrameError(ErrCode.BAD_LENGTH, f"ERROR payload of {len(payload)} bytes")
        return cls(*ERROR_FORMAT.unpack(payload))

    @property
    def name(self) -> str:
        try:
            return ErrCode(self.code).name
        except ValueError:
            return f"code {self.code}"


def input_frames(seq: int, window: bytes, max_payload: int) -> list[bytes]:
    """Wire frames carrying one int8 window as INPUT chunks of at most max_payload payload bytes each."""
    step = max_payload - INPUT_HEAD.size
    if step <= 0:
        raise ValueError(f"max payload {max_payload} leaves no room for INPUT data")
    total = len(window)
    return [encode_frame(MsgType.INPUT, seq, INPUT_HEAD.pack(off, total) + window[off:off + step])
            for off in range(0, total, step)]
