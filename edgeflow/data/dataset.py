"""Labelled window sets: a corpus folder (labels.csv + EEG files) to cached arrays, split by subject."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeflow.data.eeg import Preprocess, load_windows
from edgeflow.errors import DataError

CACHE_VERSION = "2"  # 2: EDF+D files split at their gaps, blank EDF units read as uV


@dataclass
class WindowSet:
    """Windows (N, C, W) float32 with per-window label and subject id; files: recordings in labels order."""

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> WindowSet:
        return WindowSet(self.x[mask], self.y[mask], self.subject[mask], list(self.files))

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.subject)


def _read_labels(corpus: Path) -> list[tuple[Path, int, int]]:
    path = corpus / "labels.csv"
    if not path.is_file():
        raise DataError(f"{path}: labels file not found (expected columns file,subject,label)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or ())
        if not {"file", "label"} <= cols:
            found = ",".join(sorted(cols)) or "none"
            raise DataError(f"{path}: needs columns file,subject,label; found {found}")
        rows = []
        for line, r in enumerate(reader, start=2):
            eeg = corpus / r["file"]
            if not eeg.is_file():
                raise DataError(f"{path}:{line}: names missing file {eeg}")
            try:
                label = int(r["label"])
                subject = int(r["subject"]) if r.get("subject") not in (None, "") else len(rows)
            except ValueError:
                raise DataError(f"{path}:{line}: label and subject must be integers") from None
            rows.append((eeg, subject, label))
    if not rows:
        raise DataError(f"{path}: no recordings listed")
    return rows


def _cache_key(rows: list[tuple[Path, int, int]], pp: Preprocess) -> str:
    h = hashlib.sha256(json.dumps([CACHE_VERSION, pp.to_dict()], sort_keys=True, default=str).encode())
    for eeg, subject, label in rows:
        st = eeg.stat()
        h.update(f"{eeg.name}|{subject}|{label}|{st.st_mtime_ns}|{st.st_size}\n".encode())
    return h.hexdigest()[:16]


def load_corpus(corpus_dir: str | Path, pp: Preprocess, cache: bool = True) -> WindowSet:
    """Every recording listed in labels.csv through load_windows; cached in .cache-<hash>.npz."""
    corpus = Path(corpus_dir)
    if not corpus.is_dir():
        raise DataError(f"{corpus}: corpus folder not found")
    rows = _read_labels(corpus)
    cached = corpus / f".cache-{_cache_key(rows, pp)}.npz"
    if cache and cached.is_file():
        try:
            with np.load(cached) as z:
                return WindowSet(z["x"], z["y"], z["subject"], [str(r[0]) for r in rows])
        except (OSError, KeyError, ValueError):
            cached.unlink(missing_ok=True)  # a damaged cache is rebuilt
    xs, ys, ss = [], [], []
    for eeg, subject, label in rows:
        w = load_windows(eeg, pp)
        xs.append(w)
        ys.append(np.full(len(w), label, np.int64))
        ss.append(np.full(len(w), subject, np.int64))
    ws = WindowSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), [str(r[0]) for r in rows])
    if cache:
        tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, x=ws.x, y=ws.y, subject=ws.subject)
            tmp.replace(cached)
        except OSError:  # a read-only corpus still loads, only slower next time
            tmp.unlink(missing_ok=True)
    return ws


def split_by_subject(ws: WindowSet, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                     seed: int = 0) -> dict[str, WindowSet]:
    """train/val/test with disjoint subjects, stratified by each subject's label (majority of its windows)."""
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DataError(f"split fractions must be three non-negative numbers, got {fractions}")
    frac = np.asarray(fractions, float) / sum(fractions)
    subjects = ws.subjects
    label = {int(s): int(np.bincount(ws.y[ws.subject == s]).argmax()) for s in subjects}
    rng = np.random.default_rng(seed)
    assign: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for cls in sorted(set(label.values())):
        members = np.array(sorted(s for s, c in label.items() if c == cls))
        rng.shuffle(members)
        need = int((frac > 0).sum())
        if len(members) < need:
            raise DataError(f"split: class {cls} has {len(members)} subject(s); need at least {need} "
                            "so every split gets both classes")
        n_val = max(1, int(round(frac[1] * len(members)))) if frac[1] > 0 else 0
        n_test = max(1, int(round(frac[2] * len(members)))) if frac[2] > 0 else 0
        while n_val + n_test > len(members) - (1 if frac[0] > 0 else 0):
            if n_val >= n_test and n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
        assign["val"] += members[:n_val].tolist()
        assign["test"] += members[n_val: n_val + n_test].tolist()
        assign["train"] += members[n_val + n_test:].tolist()
    return {k: ws.take(np.isin(ws.subject, v)) for k, v in assign.items()}


def default_corpus_dir(params: dict | None = None) -> Path:
    """$EDGEFLOW_CACHE/corpus-default, else $XDG_CACHE_HOME/edgeflow/corpus-default (~/.cache/...). A corpus
    with other parameters than the default job's gets its own folder (corpus-<hash of the parameters>), so
    asking for another corpus never replaces the cached default one."""
    root = os.environ.get("EDGEFLOW_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeflow")
    name = "corpus-default"
    if params is not None and params != DEFAULT_CORPUS:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        name = f"corpus-{digest}"
    return Path(root).expanduser() / name


#: Parameters of the default job's synthetic corpus (the cache folder corpus-default holds exactly these).
DEFAULT_CORPUS = {"n_subjects": 100, "duration_s": 60.0, "seed": 0, "difficulty": 0.5, "sfreq": 256.0}


def _corpus_matches(out: Path, want: dict) -> bool:
    meta = out / "corpus.json"
    try:
        have = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(have, dict) and all(have.get(k) == v for k, v in want.items()) \
        and (out / "labels.csv").is_file()


def ensure_default_corpus(n_subjects: int = 100, duration_s: float = 60.0, seed: int = 0,
                          difficulty: float = 0.5, sfreq: float = 256.0, out_dir: str | Path | None = None,
                          progress: bool = True) -> Path:
    """The synthetic corpus the default job trains on: generated once into a temporary folder beside the cache
    and swapped in only when complete; an existing corpus is replaced only once the new one is in place, and
    only when it is an edgeflow corpus of an older generator version at the same place."""
    from edgeflow.data.synthetic import GENERATOR_VERSION, check_corpus_params, write_corpus

    check_corpus_params(n_subjects, duration_s, sfreq, difficulty)
    params = {"n_subjects": n_subjects, "duration_s": float(duration_s), "seed": seed,
              "difficulty": float(difficulty), "sfreq": float(sfreq)}
    out = Path(out_dir) if out_dir is not None else default_corpus_dir(params)
    want = {"version": GENERATOR_VERSION, **params}
    if _corpus_matches(out, want):
        return out
    if out.exists() and not (out / "corpus.json").is_file() and any(out.iterdir()):
        raise DataError(f"{out}: exists but is not an edgeflow corpus (no corpus.json); use another folder")
    if out.exists() and out_dir is not None and (out / "corpus.json").is_file():
        raise DataError(f"{out}: holds an edgeflow corpus with other parameters; use another folder or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_corpus(tmp, n_subjects=n_subjects, duration_s=duration_s, seed=seed, difficulty=difficulty,
                     sfreq=sfreq, progress=progress)
        if not _corpus_matches(tmp, want):
            raise DataError(f"{tmp}: the generated corpus is incomplete; the cache {out} was left as it was")
        old = None
        if out.exists():  # an older version of the default corpus: moved aside, deleted once the new one is in
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
