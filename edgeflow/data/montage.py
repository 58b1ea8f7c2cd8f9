"""Channel names -> montage: electrode spellings, ear references (A1/A2, M1/M2, TP9/TP10), BioSemi cap positions,
a card's electrode map, and the derivation of each montage channel from the recorded ones."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from edgeflow.errors import DataError

# TUH temporal central parasagittal (TCP) bipolar montage. The order is fixed: the model reads it as
# 11 pairs of rows ((2, 16) patches), so rows 2k and 2k+1 always form one patch row.
TCP_MONTAGE: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"),
    ("FP2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2"),
    ("A1", "T3"), ("T3", "C3"), ("C3", "CZ"), ("CZ", "C4"), ("C4", "T4"), ("T4", "A2"),
    ("FP1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("FP2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)
TCP_NAMES: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_MONTAGE)
TCP_ELECTRODES: tuple[str, ...] = tuple(dict.fromkeys(e for pair in TCP_MONTAGE for e in pair))

# modern 10-10 names -> the 10-20 names TUH uses
ALIASES = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6", "M1": "A1", "M2": "A2"}
# an ear reference a recording lacks is taken from the 10-10 electrode next to it
EAR_STAND_INS = {"A1": "TP9", "A2": "TP10"}
_ELECTRODE = re.compile(r"^(?:NZ|IZ|A[12]|M[12]|(?:FP|AF|FT|FC|TP|CP|PO|F|T|C|P|O|I)(?:Z|\d{1,2}))$")
_PREFIX = re.compile(r"^(?:EEG|POL)[\s_:]+")
# BioSemi's ABC cap: 32 positions per letter (A1..A32, B1..B32, ... H32), not 10-20 names
_CAP_POSITION = re.compile(r"^[A-H](?:[1-9]|[12]\d|3[0-2])$")
_ONLY_CAP = re.compile(r"^(?:A(?:[3-9]|[12]\d|3[0-2])|[BDEGH](?:[1-9]|[12]\d|3[0-2]))$")  # no 10-20 reading


def _electrode(token: str) -> str | None:
    tok = ALIASES.get(token, token)
    return tok if _ELECTRODE.match(tok) else None


def _plain(name: str) -> str:
    return re.sub(r"\s+", "", _PREFIX.sub("", name.strip().upper()).rstrip("."))


def canonical_name(name: str) -> str | None:
    """'EEG Fp1-REF' -> 'FP1', 'EEG T7-F7' -> 'T3-F7'; None if the name is not an EEG electrode."""
    parts = _plain(name).split("-")
    first = _electrode(parts[0])
    if first is None or len(parts) > 2:
        return None
    if len(parts) == 2 and (second := _electrode(parts[1])) is not None:
        return f"{first}-{second}"
    return first  # referential: '-REF', '-LE', '-AR', '-AVG', ... or no suffix at all


def biosemi_cap(labels: list[str]) -> bool:
    """True when the labels are BioSemi ABC cap positions (A3..A32 or B1..B32, ... present): then A1/A2, C3,
    F4, ... are positions on the cap, not 10-20 electrodes."""
    return any(_ONLY_CAP.match(_plain(label)) for label in labels)


def channel_names(labels: list[str], electrodes: tuple[tuple[str, str], ...] = ()) -> list[str | None]:
    """The canonical name of each recorded label: the card's electrode map first (10-20 name, recorded label),
    BioSemi cap positions as None unless mapped, then canonical_name()."""
    mapped = {_plain(label): name for name, label in electrodes}
    cap = biosemi_cap(labels)
    out: list[str | None] = []
    for label in labels:
        plain = _plain(label)
        if plain in mapped:
            out.append(canonical_name(mapped[plain]))
        elif cap and _CAP_POSITION.match(plain):
            out.append(None)
        else:
            out.append(canonical_name(label))
    return out


def wanted(montage: str | tuple[str, ...] | list[str]) -> list[str]:
    """The canonical names of a montage ('tcp' or a card's list); DataError for a name that is no electrode."""
    if isinstance(montage, str):
        if montage != "tcp":
            raise DataError(f"montage must be 'tcp' or a list of channel names, got '{montage}'")
        return list(TCP_NAMES)
    out = []
    for name in montage:
        canon = canonical_name(name)
        if canon is None:
            raise DataError(f"montage channel '{name}' is not an EEG electrode or bipolar pair name")
        out.append(canon)
    return out


def _index(labels: list[str], electrodes: tuple[tuple[str, str], ...]
           ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Referential electrodes and bipolar pairs of the recording -> their raw index; ear stand-ins added."""
    ref: dict[str, int] = {}
    bip: dict[tuple[str, str], int] = {}
    for i, canon in enumerate(channel_names(labels, electrodes)):
        if canon is None:
            continue
        if "-" in canon:
            a, b = canon.split("-")
            bip.setdefault((a, b), i)
        else:
            ref.setdefault(canon, i)
    for ear, near in EAR_STAND_INS.items():
        if ear in ref or any(ear in pair for pair in bip):
            continue
        if near in ref:
            ref[ear] = ref[near]
        for (a, b), i in list(bip.items()):
            if near in (a, b):
                bip.setdefault((ear if a == near else a, ear if b == near else b), i)
    return ref, bip


def resolve_montage(raw: Any, montage: str | tuple[str, ...] | list[str], electrodes: tuple[tuple[str, str], ...] = ()
                    ) -> tuple[list[tuple[str, list[tuple[int, float]]]], list[str]]:
    """For each wanted channel: (name, [(raw index, sign), ...]); plus the missing names (all of them)."""
    ref, bip = _index(list(raw.ch_names), electrodes)
    found: list[tuple[str, list[tuple[int, float]]]] = []
    missing: list[str] = []
    for name in wanted(montage):
        if "-" not in name:
            if name in ref:
                found.append((name, [(ref[name], 1.0)]))
            else:
                missing.append(name)
            continue
        a, b = name.split("-")
        if (a, b) in bip:
            found.append((name, [(bip[a, b], 1.0)]))
        elif (b, a) in bip:
            found.append((name, [(bip[b, a], -1.0)]))
        elif a in ref and b in ref:
            found.append((name, [(ref[a], 1.0), (ref[b], -1.0)]))
        elif r := next((r for (x, r) in bip if x == a and (b, r) in bip), None):  # e.g. FP1-A1 and F7-A1
            found.append((name, [(bip[a, r], 1.0), (bip[b, r], -1.0)]))
        elif ref or not bip:  # a referential recording (or none recognised): name the electrodes it lacks
            missing.extend(e for e in (a, b) if e not in ref and e not in missing)
        else:
            missing.append(name)
    return found, missing


def missing_message(raw: Any, montage: str | tuple[str, ...] | list[str], missing: list[str], src: str) -> str:
    """The one line naming every missing channel (and a BioSemi cap's positions for what they are)."""
    label = "tcp" if montage == "tcp" else "requested"
    what = f"missing {len(missing)} channel(s) for the {label} montage: {', '.join(missing)}"
    if biosemi_cap(list(raw.ch_names)):
        return (f"{src}: BioSemi cap labels (A1..A32, B1..B32) are cap positions, not 10-20 electrodes; {what} "
                "(map them in the card's input.electrodes)")
    return f"{src}: {what}"


def apply_montage(raw: Any, montage: str | tuple[str, ...] | list[str] = "tcp", source: str = "",
                  electrodes: tuple[tuple[str, str], ...] = ()) -> tuple[np.ndarray, list[str]]:
    """Derive the montage channels as (C, T) float64 volts; DataError listing every missing channel."""
    found, missing = resolve_montage(raw, montage, electrodes)
    if missing:
        raise DataError(missing_message(raw, montage, missing, source_of(raw, source)))
    idx = sorted({i for _, terms in found for i, _ in terms})
    src = raw.get_data(picks=idx).astype(np.float64, copy=False)
    row = {i: k for k, i in enumerate(idx)}
    out = np.zeros((len(found), src.shape[1]))
    for c, (_, terms) in enumerate(found):
        for i, sign in terms:
            out[c] += sign * src[row[i]]
    return out, [name for name, _ in found]


def source_of(raw: Any, source: str = "") -> str:
    """The name a message gives a recording: `source`, else its file, else '<in-memory recording>'."""
    if source:
        return source
    files = [f for f in (raw.filenames or ()) if f]
    return str(files[0]) if files else "<in-memory recording>"
