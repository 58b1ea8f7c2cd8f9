"""EDF/BDF header check before MNE reads a file: the real format (from the first bytes, not the name), every
signal's scaling and unit, the file size against the declared records, and the record start times of an EDF+D
(discontinuous) file, which MNE reads as if its records were contiguous; each problem is one DataError naming the
file."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeflow.errors import DataError

MAGIC = {b"0       ": "edf", b"\xffBIOSEMI": "bdf"}
SAMPLE_BYTES = {"edf": 2, "bdf": 3}
DIGITAL = {"edf": (-32768, 32767), "bdf": (-8388608, 8388607)}
ANNOTATIONS = ("EDF ANNOTATIONS", "BDF ANNOTATIONS")
MAX_SIGNALS = 4096
MAX_VOLTS = 10.0   # no EEG amplifier records beyond +-10 V; a larger physical range is a corrupt header
UNITS = {"V": 1.0, "MV": 1e-3, "UV": 1e-6, "\u039cV": 1e-6, "NV": 1e-9, "": 1e-6}  # upper-cased; "" = uV as in MNE


@dataclass(frozen=True)
class Signal:
    """One signal's header fields (physical/digital range, unit, samples per record)."""

    label: str
    unit: str
    pmin: float
    pmax: float
    dmin: int
    dmax: int
    n_samples: int

    @property
    def annotation(self) -> bool:
        return self.label.strip().upper() in ANNOTATIONS


@dataclass(frozen=True)
class EdfHeader:
    """What the fixed-size EDF/BDF header says, and how many bytes the file really holds."""

    kind: str          # "edf" or "bdf", from the magic bytes
    header_bytes: int
    n_records: int     # -1: unknown (recording not closed), inferred from the file size
    record_s: float
    signals: tuple[Signal, ...]
    file_bytes: int
    reserved: str = ""  # "EDF+C" / "EDF+D" (BDF+: "BDF+C" / "BDF+D"); "" or "24BIT" for plain EDF/BDF

    @property
    def discontinuous(self) -> bool:
        return self.reserved.upper().startswith(("EDF+D", "BDF+D"))

    @property
    def record_bytes(self) -> int:
        return sum(s.n_samples for s in self.signals) * SAMPLE_BYTES[self.kind]


def sniff(path: Path) -> str | None:
    """'edf' or 'bdf' from the first 8 bytes, None for anything else."""
    with open(path, "rb") as f:
        return MAGIC.get(f.read(8))


def _field(raw: bytes, what: str, conv: Callable[[str], float | int], where: str) -> float | int:
    text = raw.decode("latin-1").strip()
    try:
        return conv(text)
    except ValueError:
        raise DataError(f"{where}: header field {what} is {text!r}, not a number") from None


def read_header(path: Path, expected: str) -> EdfHeader:
    """Parse the header of an EDF/BDF file (`expected`: the type its name says, for the messages)."""
    where = str(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        kind = MAGIC.get(head[:8])
        if len(head) < 256 or kind is None:
            why = f"{size} bytes, too short for a header" if len(head) < 256 else \
                f"the first bytes {head[:8]!r} are neither an EDF nor a BDF header"
            raise DataError(f"{where}: cannot read as {expected.upper()} ({why})")
        header_bytes = int(_field(head[184:192], "'header bytes'", int, where))
        n_records = int(_field(head[236:244], "'number of data records'", int, where))
        record_s = float(_field(head[244:252], "'duration of a data record'", float, where))
        ns = int(_field(head[252:256], "'number of signals'", int, where))
        if not 1 <= ns <= MAX_SIGNALS:
            raise DataError(f"{where}: header declares {ns} signals (expected 1 to {MAX_SIGNALS})")
        if header_bytes != 256 * (ns + 1):
            raise DataError(f"{where}: header says {header_bytes} header bytes, {ns} signals need {256 * (ns + 1)}")
        rest = f.read(256 * ns)
    if len(rest) < 256 * ns:
        raise DataError(f"{where}: truncated header ({size} bytes, {ns} signals need {header_bytes})")

    def col(offset: int, width: int, k: int) -> bytes:
        start = ns * offset + k * width
        return rest[start:start + width]

    sigs = []
    for k in range(ns):
        label = col(0, 16, k).decode("latin-1").strip()
        w = f"{where}: signal {k + 1} ('{label}')"
        sigs.append(Signal(label, col(96, 8, k).decode("latin-1").strip(),
                           float(_field(col(104, 8, k), "'physical minimum'", float, w)),
                           float(_field(col(112, 8, k), "'physical maximum'", float, w)),
                           int(_field(col(120, 8, k), "'digital minimum'", int, w)),
                           int(_field(col(128, 8, k), "'digital maximum'", int, w)),
                           int(_field(col(216, 8, k), "'samples per record'", int, w))))
    reserved = head[192:236].decode("latin-1").strip()
    return EdfHeader(kind, header_bytes, n_records, record_s, tuple(sigs), size, reserved)


def _check_signal(s: Signal, kind: str, where: str, is_eeg: Callable[[str], bool]) -> None:
    w = f"{where}: channel '{s.label}'"
    if s.n_samples < 1:
        raise DataError(f"{w}: {s.n_samples} samples per record (must be >= 1)")
    if s.annotation:
        return
    if not (math.isfinite(s.pmin) and math.isfinite(s.pmax)):
        raise DataError(f"{w}: physical range {s.pmin:g} .. {s.pmax:g} is not finite")
    if not is_eeg(s.label):
        return
    lo, hi = DIGITAL[kind]
    if not lo <= s.dmin < s.dmax <= hi:
        raise DataError(f"{w}: digital range {s.dmin} .. {s.dmax} must satisfy {lo} <= min < max <= {hi} "
                        f"({kind.upper()})")
    if s.pmin == s.pmax:
        raise DataError(f"{w}: physical range {s.pmin:g} .. {s.pmax:g} is empty")
    scale = UNITS.get(s.unit.upper().replace(" ", ""))
    if scale is not None and max(abs(s.pmin), abs(s.pmax)) * scale > MAX_VOLTS:
        volts = max(abs(s.pmin), abs(s.pmax)) * scale
        raise DataError(f"{w}: physical range {s.pmin:g} .. {s.pmax:g} {s.unit or 'uV'} reaches {volts:.3g} V, "
                        f"beyond the {MAX_VOLTS:g} V of any EEG amplifier (corrupt header?)")


def check_header(h: EdfHeader, path: Path, is_eeg: Callable[[str], bool]) -> None:
    """Refuse a header MNE would read into garbage: non-finite or absurd scaling, no sample rate, a size that
    does not match the declared records (truncated or trailing bytes)."""
    where = str(path)
    if not (math.isfinite(h.record_s) and h.record_s > 0):
        raise DataError(f"{where}: data record duration {h.record_s:g} s (must be > 0)")
    for s in h.signals:
        _check_signal(s, h.kind, where, is_eeg)
    data = h.file_bytes - h.header_bytes
    complete, stray = divmod(max(data, 0), h.record_bytes)
    if h.n_records == -1:   # allowed by the standard while recording; the size tells
        if complete < 1 or stray:
            raise DataError(f"{where}: unknown record count and {data} data bytes, not a whole number of "
                            f"{h.record_bytes}-byte records (truncated?)")
        return
    if h.n_records < 1:
        raise DataError(f"{where}: header declares {h.n_records} data records (no data)")
    if complete != h.n_records or stray:
        extra = f" and {stray} bytes of a partial one" if stray else ""
        what = "truncated" if complete < h.n_records else "longer than its header says"
        raise DataError(f"{where}: {what}: header declares {h.n_records} data records of {h.record_bytes} bytes, "
                        f"the file holds {complete} complete records{extra}")


def unit_problems(h: EdfHeader, is_eeg: Callable[[str], bool]) -> list[str]:
    """One line for the EEG signals with a blank physical unit (read as uV), one per unit that is no voltage."""
    blank: list[str] = []
    odd: dict[str, list[str]] = {}
    for s in h.signals:
        if s.annotation or not is_eeg(s.label):
            continue
        if not s.unit.strip():
            blank.append(s.label)
        elif s.unit.upper().replace(" ", "") not in UNITS:
            odd.setdefault(s.unit, []).append(s.label)
    out = [f"blank physical unit on channel(s) {', '.join(blank)}, read as uV"] if blank else []
    out += [f"physical unit '{unit}' on channel(s) {', '.join(labels)} is not a voltage (V, mV, uV or nV); their "
            "amplitudes are meaningless" for unit, labels in odd.items()]
    return out


_ONSET = re.compile(rb"^([+-]\d+(?:\.\d*)?)\x14")


def record_onsets(path: Path, h: EdfHeader) -> list[float]:
    """Each data record's start (s from the recording start) from its time-keeping TAL, the first annotation of
    the record's 'EDF Annotations' signal. One seek and read per record."""
    where = str(path)
    k_ann = next((k for k, s in enumerate(h.signals) if s.annotation), None)
    if k_ann is None:
        raise DataError(f"{where}: {h.reserved} (discontinuous) file without an 'EDF Annotations' signal to time "
                        "its records")
    width = SAMPLE_BYTES[h.kind]
    skip = sum(s.n_samples for s in h.signals[:k_ann]) * width
    size = h.signals[k_ann].n_samples * width
    n = h.n_records if h.n_records > 0 else (h.file_bytes - h.header_bytes) // h.record_bytes
    onsets = []
    with open(path, "rb") as f:
        for r in range(n):
            f.seek(h.header_bytes + r * h.record_bytes + skip)
            m = _ONSET.match(f.read(size))
            if m is None:
                raise DataError(f"{where}: data record {r + 1} has no time-keeping annotation ('+onset\\x14\\x14' "
                                f"opening its '{h.signals[k_ann].label}' signal)")
            onsets.append(float(m.group(1)))
    return onsets


def segments(h: EdfHeader, onsets: list[float], where: str) -> list[tuple[int, int, float]]:
    """Contiguous runs of records: (first record, number of records, start s); a gap ends a run. A record that
    starts before the previous one ends is refused. Onsets within a thousandth of a record of the previous end
    (rounding in the annotation text) are contiguous."""
    tol = 1e-3 * h.record_s
    out: list[tuple[int, int, float]] = []
    for r, t in enumerate(onsets):
        if r and t < onsets[r - 1] + h.record_s - tol:
            raise DataError(f"{where}: data record {r + 1} starts at {t:g} s, before record {r} ends "
                            f"({onsets[r - 1] + h.record_s:g} s)")
        if out and abs(t - (onsets[r - 1] + h.record_s)) <= tol:
            first, count, start = out[-1]
            out[-1] = (first, count + 1, start)
        else:
            out.append((r, 1, t))
    return out
