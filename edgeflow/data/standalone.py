"""The training preprocessing as one standalone file (no edgeflow import), for bundles that run on a board."""

from __future__ import annotations

from pathlib import Path

from edgeflow.errors import EdgeflowError


def _module_body(text: str) -> str:
    """A module's text without its docstring, `from __future__` line and edgeflow.errors import."""
    body = text.split('"""', 2)[2] if text.lstrip().startswith('"""') else text
    drop = ("from __future__ import", "from edgeflow.errors import DataError")
    return "".join(ln for ln in body.splitlines(keepends=True) if not ln.startswith(drop))


def preprocessing_copy() -> str:
    """edgeflow/data/eeg.py made standalone for the board: the EDF header checks it imports inlined, DataError
    defined locally, the CLI-only inspect view left out."""
    import edgeflow.data.edf_header as header_module
    import edgeflow.data.eeg as eeg_module

    eeg = Path(eeg_module.__file__).read_text(encoding="utf-8")
    header = _module_body(Path(header_module.__file__).read_text(encoding="utf-8"))
    marker = "from edgeflow.errors import DataError\n"
    if marker not in eeg:
        raise EdgeflowError("edgeflow/data/eeg.py no longer imports DataError as the bundle copy expects")
    lines = [ln for ln in eeg.splitlines(keepends=True)
             if not ln.startswith(("from edgeflow.data.edf_header import", "from edgeflow.data.inspect_view import"))]
    local = "\n\nclass DataError(ValueError):\n    \"\"\"A recording cannot be used.\"\"\"\n"
    eeg = "".join(lines).replace(marker, local + header)
    if "from edgeflow" in eeg or "import edgeflow" in eeg:
        raise EdgeflowError("edgeflow/data/eeg.py imports more of edgeflow than the bundle copy can carry")
    return eeg
