"""Host end of one device link: open the port, HELLO handshake, send a window and get its answer through faults."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial

from edgeflow.errors import EdgeflowError
from edgeflow.link.protocol import (
    ERROR_FORMAT,
    INFO_FORMAT,
    INPUT_HEAD,
    PROTOCOL_VERSION,
    ErrCode,
    ErrorMsg,
    Frame,
    FrameError,
    FrameReader,
    Info,
    MsgType,
    Output,
    encode_frame,
    input_frames,
)

#: Device errors about the frame itself: its header (and seq) may be garbage, so they always mean "resend".
FRAMING_ERRORS = frozenset({ErrCode.BAD_CRC, ErrCode.BAD_LENGTH, ErrCode.OVERFLOW, ErrCode.BAD_COBS})
#: A lone delimiter before each HELLO and each attempt: ends whatever partial frame the device holds (from an
#: interrupted write or an earlier session) so it cannot swallow the next frame; an empty frame is ignored.
FLUSH = b"\x00"


class LinkError(EdgeflowError):
    """The serial link failed: no port, busy port, silent device, or a window lost after every retry."""


class ModelMismatchError(LinkError):
    """The device runs another model than the build the host checks against."""


class ProtocolVersionError(ModelMismatchError):
    """The device speaks another link protocol version (firmware of another edgeflow): nothing it says is trusted."""


class Port(Protocol):
    """What the session needs from a pyserial port (a fault-injecting wrapper has the same surface)."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    @property
    def in_waiting(self) -> int: ...

    def close(self) -> None: ...


def open_port(path: str, timeout: float = 0.05, write_timeout: float = 10.0) -> Any:
    """Open a serial port (or a pyserial URL such as loop://) exclusively; one-line LinkError naming the port.
    A write that cannot finish within write_timeout (the device stopped reading) fails that attempt; a Session
    sets it to its own answer timeout."""
    try:
        if "://" in path:
            return serial.serial_for_url(path, timeout=timeout, write_timeout=write_timeout)
        return serial.Serial(path, baudrate=115200, timeout=timeout, write_timeout=write_timeout, exclusive=True)
    except serial.SerialException as e:
        text = str(e)
        if "lock" in text.lower() or "busy" in text.lower() or "Errno 16" in text:
            raise LinkError(f"{path}: port busy (another `edgeflow stream` or terminal holds it)") from None
        if "Errno 2" in text or "No such file" in text:
            raise LinkError(f"{path}: no such serial port (is the device running? `edgeflow flash` prints "
                            "its port)") from None
        raise LinkError(f"{path}: cannot open serial port ({text.splitlines()[0][:160]})") from None


@dataclass
class LinkStats:
    """What went wrong on the link and how it was recovered; goes into the stream summary."""

    retries: int = 0          # window re-sends (same seq)
    timeouts: int = 0         # attempts that got no answer in time
    resets: int = 0           # unexpected boot INFO from the device: re-handshake, resend the window
    bad_frames: int = 0       # frames from the device the host rejected (CRC, COBS, length) and resynced past
    stale: int = 0            # answers to an already answered (or abandoned) window, ignored
    replays: int = 0          # answers the device marked as a replay of its cached output
    device_errors: Counter[str] = field(default_factory=Counter)  # ERROR frames by code name

    def to_dict(self) -> dict[str, Any]:
        return {"retries": self.retries, "timeouts": self.timeouts, "resets": self.resets,
                "bad_frames": self.bad_frames, "stale_answers": self.stale, "replays": self.replays,
                "device_errors": dict(self.device_errors), "resyncs": self.resets + self.bad_frames}


@dataclass
class Answer:
    """A window's accepted answer and how many attempts it took."""

    output: Output
    attempts: int
    latency_s: float


class Session:
    """Talks the protocol over `port`; `expected_hash` (8 bytes) guards against firmware for another model."""

    def __init__(self, port: Port, expected_hash: bytes | None, timeout_s: float = 2.0, retries: int = 5,
                 name: str = "device"):
        self.port, self.expected_hash, self.timeout_s, self.retries = port, expected_hash, timeout_s, retries
        self.name = name
        self.reader = FrameReader()
        self.stats = LinkStats()
        self.info: Info | None = None
        self._hello_seq = 0xF000
        self._pending: list[Frame] = []
        self._bad_seen = False

    # ---- receiving -----------------------------------------------------------------------------------------
    def _frames(self, deadline: float) -> Frame | None:
        """The next valid frame before `deadline`; None on timeout, or early when a frame was rejected (counted,
        skipped; `_bad_seen` set) and nothing valid is pending."""
        while not self._pending:
            if self._bad_seen or time.monotonic() >= deadline:
                return None
            data = self.port.read(1)
            if data:
                n = self.port.in_waiting
                if n:
                    data += self.port.read(n)
                before = self.reader.bad
                self._pending = list(self.reader.feed(data))
                if self.reader.bad > before:
                    self.stats.bad_frames += self.reader.bad - before
                    self._bad_seen = True
        return self._pending.pop(0)

    # ---- handshake -----------------------------------------------------------------------------------------
    def handshake(self) -> Info:
        """HELLO until a matching INFO arrives (bounded); checks the model hash; returns the device's INFO."""
        for _ in range(self.retries + 1):
            self._bad_seen = False
            self._hello_seq = 0xF000 | ((self._hello_seq + 1) & 0x0FFF)
            try:
                self.port.write(FLUSH + encode_frame(MsgType.HELLO, self._hello_seq))
            except serial.SerialTimeoutException:
                continue
            deadline = time.monotonic() + self.timeout_s
            while (f := self._frames(deadline)) is not None or self._bad_seen:
                self._bad_seen = False
                if f is not None and f.type == MsgType.INFO and f.seq == self._hello_seq:
                    try:
                        info = Info.unpack(f.payload)
                    except FrameError:
                        continue
                    if info.reason == 1:
                        self._check(info)
                        self.info = info
                        return info
        raise LinkError(f"{self.name}: no INFO answer to HELLO within {self.timeout_s:g} s x {self.retries + 1} "
                        "(is the firmware running on this port?)")

    def _check(self, info: Info) -> None:
        """Refuse a device of another protocol version or model, or one whose INFO cannot be used."""
        if info.version != PROTOCOL_VERSION:
            raise ProtocolVersionError(f"{self.name}: device speaks link protocol version {info.version}, this host "
                                       f"speaks {PROTOCOL_VERSION}; flash firmware built by this edgeflow")
        if info.max_payload <= INPUT_HEAD.size:
            raise LinkError(f"{self.name}: device accepts INPUT payloads of at most {info.max_payload} bytes, an "
                            f"INPUT chunk needs more than its {INPUT_HEAD.size}-byte header")
        if self.expected_hash is not None and info.model_hash != self.expected_hash:
            raise ModelMismatchError(f"{self.name}: device runs model {info.model_hash.hex()}, the build expects "
                                     f"{self.expected_hash.hex()}; flash this build first")

    # ---- one window ------------------------------------------------------------------------------------------
    def infer(self, seq: int, window: bytes) -> Answer:
        """Send one window as INPUT chunks and return its OUTPUT, resending the same seq on timeout, ERROR, a
        rejected frame or a device reset (re-handshake first); LinkError after retries + 1 attempts."""
        if self.info is None:
            self.handshake()
        assert self.info is not None
        if len(window) != self.info.input_size:
            raise LinkError(f"{self.name}: window of {len(window)} bytes, the device expects {self.info.input_size}")
        frames = input_frames(seq, window, self.info.max_payload)
        # A frame that cannot be written within the answer timeout (or the port's own, if longer): the device
        # stopped reading and the attempt is lost.
        if hasattr(self.port, "write_timeout") and (self.port.write_timeout or 0.0) < self.timeout_s:
            self.port.write_timeout = self.timeout_s
        t0 = time.monotonic()
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self.stats.retries += 1
            try:
                self.port.write(FLUSH)
                for fr in frames:
                    self.port.write(fr)
            except serial.SerialTimeoutException:  # the device stopped reading: this attempt is lost
                self.stats.timeouts += 1
                continue
            out = self._await(seq)
            if out is not None:
                if out.replay:
                    self.stats.replays += 1
                return Answer(out, attempt, time.monotonic() - t0)
        raise LinkError(f"{self.name}: window seq {seq} got no valid answer after {self.retries + 1} attempts")

    def _await(self, seq: int) -> Output | None:
        """Wait for seq's OUTPUT; None means 'resend' (timeout, error, bad frame, reset handled)."""
        deadline = time.monotonic() + self.timeout_s
        self._bad_seen = False
        while True:
            f = self._frames(deadline)
            if f is None:
                if self._bad_seen:  # maybe our answer, mangled: ask again rather than wait for the timeout
                    self._bad_seen = False
                    return None
                self.stats.timeouts += 1
                return None
            if f.type == MsgType.OUTPUT:
                try:
                    out = Output.unpack(f.payload)
                except FrameError:
                    self.stats.bad_frames += 1
                    return None
                if f.seq != seq:
                    self.stats.stale += 1
                elif self.info is not None and (len(out.values) != self.info.output_size
                                                or len(out.layer_cycles) not in (0, self.info.n_layers)):
                    self.stats.bad_frames += 1  # not the answer INFO announced: never accepted, ask again
                    return None
                else:
                    return out
            elif f.type == MsgType.ERROR:
                err = ErrorMsg.unpack(f.payload) if len(f.payload) == ERROR_FORMAT.size else ErrorMsg(0)
                self.stats.device_errors[err.name] += 1
                if err.code in FRAMING_ERRORS or f.seq == seq:
                    return None
            elif f.type == MsgType.INFO:
                try:
                    info = Info.unpack(f.payload) if len(f.payload) == INFO_FORMAT.size else None
                except FrameError:  # an INFO with impossible ranks: not a frame to act on
                    self.stats.bad_frames += 1
                    info = None
                if info is not None and info.reason == 0:  # the device rebooted mid-stream
                    self.stats.resets += 1
                    self.handshake()
                    return None
