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


def test_reserved_command_says_so_and_fails(capsys, monkeypatch):
    import edgeflow.cli as cli

    monkeypatch.setitem(cli.RESERVED, "future", ("a later stage", 99))
    assert main(["future"]) == 3
    assert "not available" in capsys.readouterr().err


def test_bench_unknown_peer_is_one_line_error(capsys, tmp_path):
    assert main(["bench", "--peers", "edgeflow-c,no-such-peer", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-peer" in err and "onnxruntime" in err and "\n" not in err


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


def test_quantize_unsupported_bits_is_one_line_error(capsys):
    assert main(["quantize", "--card", "femba-micro", "--ckpt", "x.pt", "--weights", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unsupported weight bit width 3" in err and "\n" not in err


def test_quantize_unsupported_kind_is_one_line_error(capsys, tmp_path, monkeypatch):
    import edgeflow.quant.ptq as ptq
    from edgeflow.cards import load_card
    from edgeflow.nn import build_model
    from edgeflow.train.checkpoint import save_checkpoint

    card = load_card("vit-tiny-eeg")
    ckpt = save_checkpoint(tmp_path / "v.pt", build_model(card), card, "final", 0)
    monkeypatch.setattr(ptq, "QUANTIZABLE", ("femba",))  # a kind without a quantized model yet
    assert main(["quantize", "--card", "vit-tiny-eeg", "--ckpt", str(ckpt), "--corpus", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not supported yet" in err and "\n" not in err


def test_export_missing_checkpoint_is_one_line_error(capsys, tmp_path):
    assert main(["export", "--card", "femba-micro", "--ckpt", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.pt" in err and "not found" in err and "\n" not in err


def test_resources_fall_back_to_packaged_data(tmp_path, monkeypatch):
    """In a wheel install models/, targets/ and firmware/ live in edgeflow/_data (pyproject force-include)."""
    import tomllib
    from pathlib import Path

    import edgeflow.resources as res

    root = Path(__file__).resolve().parents[2]
    include = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "force-include"]
    assert include == {d: f"edgeflow/_data/{d}" for d in ("models", "targets", "firmware")}
    pkg = tmp_path / "site" / "edgeflow"
    (pkg / "_data" / "models").mkdir(parents=True)
    monkeypatch.setattr(res, "_PKG", pkg)
    assert res.models_dir() == pkg / "_data" / "models"


def test_inspect_prints_memory_levels_and_firmware_regions(tmp_path, capsys):
    import json

    report = {"target": "rv32-virt", "macs": 10, "weight_bytes": 4, "arena_bytes": 8,
              "nodes": [{"index": 0, "name": "fc", "op": "linear", "macs": 10, "weight_bytes": 4, "output_bytes": 8,
                         "tiling": {"n_tiles": 3, "l1_bytes_used": 96}}],
              "memory": {"weights_level": "MRAM", "levels": {"L1": {"used": 96, "usable": 100, "fits": True},
                                                             "L2": {"used": 700, "usable": 600, "fits": False},
                                                             "MRAM": {"used": 4, "usable": 9, "fits": True}}},
              "firmware": {"elf": "firmware.elf", "sections": {".text": 50, ".l1": 96},
                           "regions": {"L2": {"used": 50, "size": 600}, "L1": {"used": 96, "size": 100}}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 x 96 B" in out and "streamed from MRAM" in out and "NO" in out
    assert "linker regions" in out and ".text 50" in out and ".l1 96" in out
