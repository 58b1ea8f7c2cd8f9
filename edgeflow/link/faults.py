"""A fault-injecting wrapper around a serial port: garbage, dropped byte, flipped bit, truncation, a lost
answer, a device reset — each on a chosen frame of one direction, so tests can prove the host recovers."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("garbage", "drop", "flip", "truncate", "lose", "reset")


@dataclass
class Fault:
    """`kind` applied to frame number `frame` (0-based) going `direction` ("tx": host->device, "rx":
    device->host). "lose" swallows the whole frame (a device that does not answer); "reset" calls the
    port's on_reset callback right after tx frame `frame` is written (the device reboots mid-window)."""

    kind: str
    direction: str
    frame: int
    fired: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.direction not in ("tx", "rx"):
            raise ValueError(f"fault {self.kind}/{self.direction}: kinds {KINDS}, directions tx/rx")


def mangle(kind: str, frame: bytes, rng: random.Random) -> bytes:
    """One corrupted version of a wire frame (ending in 0x00)."""
    body = frame[:-1]
    mid = len(body) // 2
    if kind == "garbage":
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(3, 40))) + frame
    if kind == "drop":
        return body[:mid] + body[mid + 1:] + b"\x00"
    if kind == "flip":
        bit = 1 << rng.randrange(8)
        bit = bit if body[mid] != bit else (bit << 1) & 0xFF or 1  # never turn the byte into a delimiter
        return body[:mid] + bytes([body[mid] ^ bit]) + body[mid + 1:] + b"\x00"
    if kind == "truncate":
        return body[:mid] + b"\x00"
    if kind == "lose":
        return b""
    return frame


@dataclass
class FaultyPort:
    """Wraps a pyserial-like port; applies each Fault once. Host writes are counted as frames by 0x00
    delimiters (a lone delimiter is not counted); received bytes are cut into frames before faults apply."""

    port: Any
    faults: list[Fault] = field(default_factory=list)
    on_reset: Callable[[], None] | None = None
    seed: int = 0
    tx_frames: int = 0
    rx_frames: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._rx_partial = bytearray()
        self._rx_ready = bytearray()

    def _fault(self, direction: str, index: int) -> Fault | None:
        for f in self.faults:
            if not f.fired and f.direction == direction and f.frame == index:
                f.fired = True
                return f
        return None

    @property
    def all_fired(self) -> bool:
        return all(f.fired for f in self.faults)

    # ---- host -> device -----------------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        out = bytearray()
        start = 0
        for i, b in enumerate(data):
            if b != 0:
                continue
            frame = bytes(data[start:i + 1])
            if frame == b"\x00":  # a lone delimiter (resync point) is not a frame
                out += frame
                start = i + 1
                continue
            f = self._fault("tx", self.tx_frames)
            self.tx_frames += 1
            start = i + 1
            if f is not None and f.kind == "reset":
                out += frame
                self.port.write(bytes(out))
                out.clear()
                if self.on_reset is not None:
                    self.on_reset()
                continue
            out += mangle(f.kind, frame, self._rng) if f is not None else frame
        out += data[start:]
        if out:
            self.port.write(bytes(out))
        return len(data)

    # ---- device -> host -----------------------------------------------------------------------------------
    def _pull(self) -> None:
        n = self.port.in_waiting
        data = self.port.read(max(1, n))
        for b in data:
            self._rx_partial.append(b)
            if b == 0:
                frame = bytes(self._rx_partial)
                self._rx_partial.clear()
                f = self._fault("rx", self.rx_frames)
                self.rx_frames += 1
                self._rx_ready += mangle(f.kind, frame, self._rng) if f is not None else frame

    def read(self, size: int = 1) -> bytes:
        if not self._rx_ready:
            self._pull()
        out = bytes(self._rx_ready[:size])
        del self._rx_ready[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._rx_ready)

    @property
    def timeout(self) -> float | None:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    @property
    def write_timeout(self) -> float | None:
        return getattr(self.port, "write_timeout", None)

    @write_timeout.setter
    def write_timeout(self, value: float | None) -> None:
        self.port.write_timeout = value

    def close(self) -> None:
        self.port.close()
