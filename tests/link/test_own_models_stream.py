"""Users' own models through the whole path on the emulated board: `edgeflow build --onnx M.onnx (--card C | --sfreq
HZ) --target rv32-virt` -> `edgeflow flash` (QEMU) -> `edgeflow stream --input` (CSV / NPY) -> `edgeflow flash
--stop`, every window bit-exact. The models are made by the tests: brevitas CNNs (tests/c/own_cnn_models.py:
EEGNet-style, 1-D CNN), a brevitas MLP over a window (tests/c/own_models.py "reshape-linear": a Linear over the
samples of each channel, reshape, a head) and onnxruntime `quantize_static` QDQ models (tests/c/ort_models.py: an
MLP that flattens its input, a 1-D CNN with an asymmetric uint8 input, EEGNet, a one-head attention with LayerNorm
and token mean)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeflow.cli import main
from edgeflow.runners import qemu_rv32 as emulator

pytestmark = pytest.mark.link

RATE = 64.0


def _need_tools() -> None:
    for tool in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (tools/setup.sh installs the RISC-V cross compiler and QEMU)")


def _card(path: Path, name: str, channels: list[str], window: int) -> Path:
    """A user's sensor card: named channels (a CSV header picks them), the rate, the model's window, half strides."""
    names = ", ".join(f'"{c}"' for c in channels)
    path.write_text(f'[model]\nname = "{name}"\nkind = "sensor"\ndescription = "a test-built model"\n\n[input]\n'
                    f"channels = [{names}]\nsample_rate = {RATE}\nwindow_s = {window / RATE}\n"
                    f"stride_s = {window / RATE / 2}\n")
    return path


def _onnx(kind: str, tmp_path_factory) -> tuple[Path, tuple[int, int]]:
    """(model file, (channels, samples) of its window)."""
    if kind.startswith("ort-"):
        from tests.c.ort_models import CONFIGS, SHAPES, ort_onnx

        cfg = next(c for c in CONFIGS if c.id == kind[4:])
        return ort_onnx(tmp_path_factory, cfg), SHAPES[cfg.family][-2:]
    if kind.startswith("bv-"):
        from tests.c.own_models import MODELS, export_model

        shape = MODELS[kind[3:]][1]
        path, _ = export_model(kind[3:], tmp_path_factory.mktemp(kind))
        return path, ((1, *shape) if len(shape) == 1 else shape)
    from tests.c.own_cnn_models import FAMILIES, cnn_onnx

    family, bits = kind.split("-w")
    return cnn_onnx(tmp_path_factory, family, int(bits)), FAMILIES[family][1][-2:]


#: (model, how its card is given): a card file read through a CSV header, or a minimal card (--sfreq) and NPY
CASES = [("eegnet-w8", "card"), ("cnn1d-w4", "sfreq"), ("ort-mlp-raw-pt-quint8-asym", "card"),
         ("ort-cnn1d-pre-pc-quint8-asym", "sfreq"), ("bv-reshape-linear", "sfreq"),
         ("ort-eegnet-pre-pc-quint8-asym", "card"), ("ort-attn-raw-pt-qint8-asym", "sfreq")]


@pytest.mark.parametrize("kind, how", CASES, ids=[k for k, _ in CASES])
def test_own_model_streams_bit_exact_over_qemu(kind, how, tmp_path_factory, tmp_path, monkeypatch, capsys):
    _need_tools()
    from edgeflow.build_folder import read_graph
    from edgeflow.ir.reference import run
    from edgeflow.link.harness import quantized_windows

    onnx, (n_ch, n_t) = _onnx(kind, tmp_path_factory)
    sig = np.round(np.random.default_rng(3).standard_normal((3 * n_t, n_ch)), 5)   # (samples, channels)
    names = [f"s{k}" for k in range(n_ch)]
    if how == "card":
        card = _card(tmp_path / "user.toml", "user-model", names, n_t)
        rec, extra = tmp_path / "rec.csv", ["--card", str(card)]
        cols = list(reversed(range(n_ch)))                           # columns stored in another order
        lines = [",".join(names[c] for c in cols)] + [",".join(f"{row[c]:.5f}" for c in cols) for row in sig]
        rec.write_text("\n".join(lines) + "\n")
        n = 1 + (len(sig) - n_t) // (n_t // 2)
    else:
        rec, extra = tmp_path / "rec.npy", ["--sfreq", f"{RATE:g}"]
        np.save(rec, sig)
        n = len(sig) // n_t
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(onnx), *extra, "--target", "rv32-virt"]) == 0
    build = tmp_path / "build" / f"{onnx.stem}-rv32-virt"
    assert (build / "card.toml").is_file() and (build / "firmware.elf").is_file()
    capsys.readouterr()
    assert main(["flash", "--target", "rv32-virt", str(build)]) == 0
    try:
        code = main(["stream", "--build", str(build), "--input", str(rec), "--timeout", "20", "--no-progress"])
        summary = json.loads((build / "stream" / "summary.json").read_text())
        assert code == 0, summary
    finally:
        assert main(["flash", "--stop", str(build)]) == 0
    assert emulator.load(build) is None
    rows = [json.loads(ln) for ln in (build / "stream" / "windows.jsonl").read_text().splitlines()]
    assert summary["windows"] == summary["matching"] == len(rows) == n >= 3
    assert summary["lost"] == summary["mismatched"] == 0 and summary["instret_per_window"] > 0
    assert all(r["values"] == r["expected"] for r in rows)
    # the expected answers are the reference's on exactly the windows of the recording (in the card's order)
    graph = read_graph(build)
    step = n_t // 2 if how == "card" else n_t
    want = np.stack([sig[k * step:k * step + n_t].T for k in range(n)]).astype(np.float32)
    refs = [np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1).tolist() for q in quantized_windows(want, graph)]
    assert [r["expected"] for r in rows] == refs
    assert len({tuple(r) for r in refs}) > 1                          # the windows differ, so do the answers
