"""The training preprocessing as one standalone file (no edgeflow import), for bundles that run on a board."""

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
