"""The training preprocessing, and a sensor card's reading of raw recordings, each as one standalone file (no
edgeflow import), for bundles that run on a board."""

from __future__ import annotations

from pathlib import Path

from edgeflow.errors import EdgeflowError

# the modules eeg.py imports, inlined in this order (each may use the ones before it)
HELPERS = ("edf_header", "formats", "montage", "quality")
MARKER = "from edgeflow.errors import DataError\n"


def _drop_imports(text: str, drop: tuple[str, ...]) -> str:
    """The text without the import statements starting with `drop` (a parenthesised one whole)."""
    out, skipping = [], False
    for ln in text.splitlines(keepends=True):
        if skipping:
            skipping = ")" not in ln
            continue
        if ln.startswith(drop):
            skipping = ln.rstrip().endswith("(") or ("(" in ln and ")" not in ln)
            continue
        out.append(ln)
    return "".join(out)


def _module_body(text: str) -> str:
    """A module's text without its docstring, `from __future__` line and edgeflow imports."""
    body = text.split('"""', 2)[2] if text.lstrip().startswith('"""') else text
    return _drop_imports(body, ("from __future__ import", "from edgeflow."))


def preprocessing_copy() -> str:
    """edgeflow/data/eeg.py made standalone for the board: the modules it imports (EDF header checks, file
    formats, montage, quality checks) inlined, DataError defined locally, the CLI-only inspect view left out."""
    import importlib

    import edgeflow.data.eeg as eeg_module

    eeg = Path(eeg_module.__file__).read_text(encoding="utf-8")
    if MARKER not in eeg:
        raise EdgeflowError("edgeflow/data/eeg.py no longer imports DataError as the bundle copy expects")
    helpers = "".join(_module_body(Path(importlib.import_module(f"edgeflow.data.{m}").__file__)
                                   .read_text(encoding="utf-8")) for m in HELPERS)
    eeg = _drop_imports(eeg, ("from edgeflow.data.",))
    local = "\n\nclass DataError(ValueError):\n    \"\"\"A recording cannot be used.\"\"\"\n"
    eeg = eeg.replace(MARKER, local + helpers)
    if "from edgeflow" in eeg or "import edgeflow" in eeg:
        raise EdgeflowError("edgeflow/data/eeg.py imports more of edgeflow than the bundle copy can carry")
    return eeg


SENSOR_MODULES = ("edf_header", "sensor_edf", "raw")   # raw.py and what it imports, in this order
TYPE_ONLY = "if TYPE_CHECKING:\n    from edgeflow.cards import ModelCard\n"


def sensor_copy() -> str:
    """edgeflow/data/raw.py made standalone for the board: EDF header checks and the EDF reader of sensor cards
    inlined before it, DataError defined locally. Its functions take any object shaped like a card (`name`,
    `input.montage / sample_rate / window_s / window_samples / stride_s / scale / offset`)."""
    import importlib

    texts = [Path(importlib.import_module(f"edgeflow.data.{m}").__file__).read_text(encoding="utf-8")
             for m in SENSOR_MODULES]
    if TYPE_ONLY not in texts[-1]:
        raise EdgeflowError("edgeflow/data/raw.py no longer imports ModelCard as the bundle copy expects")
    texts = [t.replace(TYPE_ONLY, "") for t in texts]   # annotations only (never evaluated: __future__)
    body = "".join(_module_body(t) for t in texts)
    local = "\n\nclass DataError(ValueError):\n    \"\"\"A recording cannot be used.\"\"\"\n"
    out = ('"""Copy of edgeflow/data/raw.py (with its EDF reader) written by `edgeflow build`: a sensor card\'s '
           'reading of recordings, no edgeflow needed."""\n\nfrom __future__ import annotations\n' + local + body)
    if "from edgeflow" in out or "import edgeflow" in out:
        raise EdgeflowError("edgeflow/data/raw.py imports more of edgeflow than the bundle copy can carry")
    return out
