"""Recording file formats: the type from the name, first-byte checks MNE does not make (GDF, Neuroscan vs ANT
Neuro CNT, EEGLAB in MATLAB v7.3), MNE's reader for each, and its failures as one line naming the file."""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path
from typing import Any

from edgeflow.errors import DataError

SUFFIXES = {".edf": "edf", ".bdf": "bdf", ".fif": "fif", ".fif.gz": "fif", ".vhdr": "brainvision", ".set": "eeglab",
            ".gdf": "gdf", ".cnt": "cnt"}
NAMES = {"edf": "EDF", "bdf": "BDF", "fif": "FIF", "brainvision": "BrainVision", "eeglab": "EEGLAB", "gdf": "GDF",
         "cnt": "Neuroscan CNT"}
CNT_SETUP, CNT_ELECTRODE = 900, 75  # Neuroscan: fixed SETUP header, then one record per electrode
_ERROR_LINE = re.compile(r"^\w*(?:Error|Exception): (.+)$")


def file_kind(p: Path) -> str:
    """'edf', 'bdf', 'fif', 'brainvision', 'eeglab', 'gdf' or 'cnt' from the name; the file must exist and its
    first bytes fit the type (for those MNE reads into a traceback otherwise)."""
    kind = next((k for suffix, k in SUFFIXES.items() if p.name.lower().endswith(suffix)), None)
    if kind is None:
        raise DataError(f"{p}: unknown EEG file type '{p.suffix}' (expected .edf, .bdf, .fif, .vhdr, .set, .gdf or "
                        ".cnt)")
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    with open(p, "rb") as f:
        head = f.read(CNT_SETUP)
    if kind == "eeglab" and head.startswith(b"MATLAB 7.3 MAT-file"):
        try:
            import pymatreader  # noqa: F401
        except ImportError:
            raise DataError(f"{p}: an EEGLAB file saved as MATLAB v7.3 (HDF5), which this MNE reads only with "
                            "pymatreader (not installed); save it from EEGLAB in the MATLAB v7 format") from None
    if kind == "gdf":
        _check_gdf(p, head)
    if kind == "cnt":
        _check_cnt(p, head)
    return kind


def _check_gdf(p: Path, head: bytes) -> None:
    if not re.match(rb"GDF [12]\.\d\d", head[:8]) or len(head) < 256:
        raise DataError(f"{p}: cannot read as GDF (the first bytes {head[:8]!r} are not a GDF 1.x/2.x header)")
    v1 = head[4:5] == b"1"  # GDF 1: header bytes as int64; GDF 2: 256-byte blocks as uint16
    need = struct.unpack_from("<q", head, 184)[0] if v1 else 256 * struct.unpack_from("<H", head, 184)[0]
    if p.stat().st_size < need:
        raise DataError(f"{p}: cannot read as GDF (truncated: {p.stat().st_size} bytes, its header alone declares "
                        f"{need})")


def gdf_unit_notes(p: Path, is_eeg: Any) -> list[str]:
    """GDF 1.x: MNE scales a channel by 1e-6 when its unit starts with 'uV' and by 1 otherwise, so an EEG
    channel in mV, nV or a blank unit is read 1000x off; one line per such unit (GDF 2 codes its units)."""
    with open(p, "rb") as f:
        head = f.read(256)
        if head[4:5] != b"1":
            return []
        ns = struct.unpack_from("<I", head, 252)[0]
        var = f.read(104 * ns)  # labels (16), transducers (80), units (8)
    labels = [var[16 * k:16 * k + 16].decode("latin-1").strip() for k in range(ns)]
    units = [var[96 * ns + 8 * k:96 * ns + 8 * k + 8].decode("latin-1").strip() for k in range(ns)]
    off: dict[str, list[str]] = {}
    for label, unit in zip(labels, units, strict=True):
        if is_eeg(label) and not unit.startswith("uV"):
            off.setdefault(unit, []).append(label)
    return [f"physical unit {unit!r} on channel(s) {', '.join(chans)}: MNE's GDF 1 reader scales only uV, these "
            "samples are read as volts" for unit, chans in off.items()]


def _check_cnt(p: Path, head: bytes) -> None:
    if head[:4] in (b"RIFF", b"RF64"):
        raise DataError(f"{p}: an ANT Neuro CNT file (RIFF), not a Neuroscan one; this MNE reads it only with antio "
                        "(not installed)")
    if len(head) < CNT_SETUP:
        raise DataError(f"{p}: cannot read as Neuroscan CNT ({len(head)} bytes, too short for the {CNT_SETUP}-byte "
                        "SETUP header)")
    n_ch = struct.unpack_from("<H", head, 370)[0]
    need = CNT_SETUP + CNT_ELECTRODE * n_ch
    if n_ch < 1 or p.stat().st_size < need:
        raise DataError(f"{p}: cannot read as Neuroscan CNT (header declares {n_ch} electrodes, the file holds "
                        f"{p.stat().st_size} bytes, its headers alone need {need})")


def mne_message(e: Exception) -> str:
    """The line of an MNE exception that says what is wrong (its own 'XError: ...' line when it quotes one)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    quoted = [m.group(1) for ln in lines if (m := _ERROR_LINE.match(ln))]
    return quoted[-1] if quoted else lines[0] if lines else type(e).__name__


def mne_read(p: Path, kind: str, named: str, blank: list[str] | None = None) -> Any:
    """MNE's reader for `kind`, data loaded; `named`: the type the name says (an EDF/BDF mismatch is read from an
    open file); `blank`: EDF/BDF labels whose blank physical unit is read as uV."""
    import mne

    kw: dict[str, Any] = {"units": {label: "uV" for label in blank}} if blank else {}
    reader = {"edf": mne.io.read_raw_edf, "bdf": mne.io.read_raw_bdf, "fif": mne.io.read_raw_fif,
              "brainvision": mne.io.read_raw_brainvision, "eeglab": mne.io.read_raw_eeglab,
              "gdf": mne.io.read_raw_gdf, "cnt": mne.io.read_raw_cnt}[kind]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == named:
                return reader(p, preload=True, verbose="error", **kw)
            with open(p, "rb") as f:  # MNE insists on the suffix for a path, not for an open file
                return reader(f, preload=True, verbose="error", **kw)
    except Exception as e:  # MNE raises many types for a bad file; the user needs one line
        raise DataError(f"{p}: cannot read as {NAMES[kind]} ({mne_message(e)})") from None
