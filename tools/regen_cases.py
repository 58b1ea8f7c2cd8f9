"""Regenerates the golden cases tests/cases/<name>/{model.onnx, inputs.npz, outputs.npz, case.json}.

    python tools/regen_cases.py            # all cases
    python tools/regen_cases.py femba-mini-w2
    python tools/regen_cases.py --outputs-only   # keep model.onnx and inputs.npz, recompute the reference
                                                 # outputs (after a change of the integer numerics)

inputs.npz holds int8 windows (already quantized with the model's input scale) cut from a synthetic EDF
recording; outputs.npz holds the int32 logit accumulators of ir/reference.py for each window, plus the float
logits of onnxruntime (optimizations off) for the tolerance check.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
N_WINDOWS = 100


def eeg_windows(card, n: int, seed: int) -> np.ndarray:
    """n float windows (stride 1 s) from a synthetic abnormal + normal recording written as EDF."""
    from edgeflow.data.eeg import Preprocess, load_windows
    from edgeflow.data.synthetic import write_corpus

    pp = Preprocess.from_card(card)
    pp = dataclasses.replace(pp, stride_s=1.0)
    with tempfile.TemporaryDirectory() as d:
        write_corpus(Path(d), n_subjects=2, duration_s=60.0, seed=seed, progress=False)
        x = np.concatenate([load_windows(p, pp) for p in sorted(Path(d).glob("*.edf"))])
    return x[:n]


def _random_quant(card_name: str, seed: int):
    from edgeflow.cards import load_card
    from edgeflow.nn import build_model
    from edgeflow.quant.layers import QuantPolicy
    from edgeflow.quant.ptq import build_quant_model, calibrate
    from edgeflow.quant.qfemba import load_float_weights

    card = load_card(card_name)
    torch.manual_seed(seed)
    q = build_quant_model(card, QuantPolicy.from_card(card, 2))
    load_float_weights(q, build_model(card).state_dict(), "random init")
    calibrate(q, eeg_windows(card, 32, seed=11))
    return card, q


def mini_model():
    from edgeflow.cards import load_card
    from edgeflow.quant.qat import load_quant
    from edgeflow.resources import models_dir

    card = load_card("femba-mini")
    q, _ = load_quant(card, models_dir() / "femba-mini-w2.quant.pt")
    return card, q


BUILDERS = {"femba-micro-w2": lambda: _random_quant("femba-micro", 7), "femba-mini-w2": mini_model,
            "vit-tiny-w2": lambda: _random_quant("vit-tiny-eeg", 5)}


def regen(name: str, outputs_only: bool = False) -> None:
    from edgeflow.export.onnx import export_qcdq, ort_run
    from edgeflow.ir.from_onnx import load_onnx, quantize_input
    from edgeflow.ir.reference import run

    card, model = BUILDERS[name]()
    folder = CASES / name
    folder.mkdir(parents=True, exist_ok=True)
    x = eeg_windows(card, N_WINDOWS, seed=23)
    if not outputs_only:
        export_qcdq(model, x[:1], folder / "model.onnx", form="scan")
    graph = load_onnx(folder / "model.onnx")
    shape = graph.tensors[graph.inputs[0]].shape
    xq = quantize_input(x, graph).reshape(len(x), *shape)
    if outputs_only and not np.array_equal(np.load(folder / "inputs.npz")["x"], xq):
        raise SystemExit(f"{name}: the stored inputs.npz no longer matches the windows; regenerate it in full")
    acc = np.stack([np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1) for q in xq]).astype(np.int32)
    ort = ort_run(folder / "model.onnx", x)
    np.savez_compressed(folder / "inputs.npz", x=xq)
    np.savez_compressed(folder / "outputs.npz", logits_acc=acc, ort_logits=ort.astype(np.float32))
    ref_logits = acc * np.asarray(graph.meta["output_scale"], dtype=np.float64)
    diff = float(np.abs(ref_logits - ort).max())
    info = {"card": card.name, "windows": len(x), "source": "synthetic EDF, 2 subjects, 5 s windows every 1 s",
            "reference_vs_ort_max_abs_logit": diff,
            "argmax_agree": float((ref_logits.argmax(1) == ort.argmax(1)).mean())}
    (folder / "case.json").write_text(json.dumps(info, indent=1))
    print(name, info)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--outputs-only"]
    for case in args or list(BUILDERS):
        regen(case, outputs_only="--outputs-only" in sys.argv[1:])
