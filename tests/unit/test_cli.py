"""The edgeflow command: help texts, one-line errors, reserved commands, model info."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeflow.cli import RESERVED, build_parser, main

pytestmark = pytest.mark.unit


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set(sub.choices)
    assert {"data", "model", "train"} | set(RESERVED) <= names
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert len(capsys.readouterr().out) > 100


def test_reserved_command_says_so_and_fails(capsys):
    assert main(["build"]) == 3
    assert "not available" in capsys.readouterr().err


def test_unknown_card_is_one_line_error(capsys):
    assert main(["model", "info", "no-such-card"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-card" in err and "femba-mini" in err and "\n" not in err
    assert "Traceback" not in err


def test_model_info_femba_tiny(capsys):
    assert main(["model", "info", "femba-tiny"]) == 0
    out = capsys.readouterr().out
    from edgeflow.cards import load_card
    from edgeflow.nn.summary import totals

    params, macs = totals(load_card("femba-tiny"))
    assert f"params {params:,}" in out and f"{macs:,}" in out
    assert "patch" in out  # the per-layer table is printed


def test_data_inspect_missing_file_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgeflow", "data", "inspect", str(tmp_path / "nope.edf")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "nope.edf" in r.stderr and "Traceback" not in r.stderr


def test_data_synth_then_inspect(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--subjects", "2", "--duration", "12",
                 "--no-progress"]) == 0
    assert (tmp_path / "labels.csv").exists()
    edf = sorted(tmp_path.glob("*.edf"))[0]
    capsys.readouterr()
    assert main(["data", "inspect", str(edf)]) == 0
    out = capsys.readouterr().out
    assert "256" in out and "FP1-F7" in out
