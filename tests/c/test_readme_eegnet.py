"""The README's worked example "a brevitas EEGNet in a few lines" stays true: its Python snippet is taken from
README.md as written, run in an empty folder, and the README's `edgeflow build --onnx eegnet.onnx --card ...`
command (for the host) builds the exported model, checked bit-exact against the reference on 2 windows."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import warnings
from pathlib import Path

import pytest

from edgeflow.cli import main

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")]

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### A worked example: a brevitas EEGNet in a few lines"


def _section() -> str:
    text = README.read_text()
    assert HEADING in text, "the README lost its EEGNet worked example"
    body = text.split(HEADING, 1)[1]
    return body.split("\n### ", 1)[0]


def _snippet(section: str) -> str:
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _host_build(section: str) -> list[str]:
    """The README's host build command as argv (comment dropped), with --check 2 instead of its window count."""
    line = next(ln.strip() for ln in section.splitlines() if ln.strip().startswith("edgeflow build --onnx eegnet")
                and "--target host" in ln)
    argv = shlex.split(line.split("#", 1)[0])[1:]
    assert "--check" in argv
    argv[argv.index("--check") + 1] = "2"
    return argv


def test_readme_eegnet_snippet_exports_and_builds_bit_exact(tmp_path, monkeypatch, capsys):
    section = _section()
    monkeypatch.chdir(tmp_path)
    code = compile(_snippet(section), str(README) + ":eegnet", "exec")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        exec(code, {"__name__": "__readme__"})           # as a user runs it: a script in an empty folder
    assert (tmp_path / "eegnet.onnx").is_file()
    argv = _host_build(section)
    assert argv[:2] == ["build", "--onnx"] and "--card" in argv
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "bit-exact with the reference on 2 windows" in " ".join(out.split())
    assert (tmp_path / "build" / "eegnet-host" / "card.toml").is_file()
