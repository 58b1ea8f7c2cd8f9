"""Latency per window of the TVM module compiled for this CPU (the jetson --host-only build) vs onnxruntime.

    python tools/bench_jetson.py                         # femba-tiny (untrained 2-bit, calibrated), 20 windows
    python tools/bench_jetson.py --card femba-mini --windows 50

femba-mini uses models/femba-mini-w2.quant.pt; other cards an untrained 2-bit model calibrated on synthetic EEG
(latency depends on shapes, not on trained values). Both run the chunked QCDQ ONNX at batch 1 on the same windows;
onnxruntime is timed with its default optimizations and with them off (the oracle). Prints and writes JSON.
Not part of CI; no GPU needed (the GPU figures come from the board or a lent GPU machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def chunked_onnx(card_name: str, out: Path) -> tuple[Path, object]:
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.resources import models_dir

    card = load_card(card_name)
    shipped = models_dir() / f"{card_name}-w2.quant.pt"
    if shipped.is_file():
        from edgeflow.quant.qat import load_quant

        model, _ = load_quant(card, shipped)
    else:
        from edgeflow.quant.ptq import untrained_quant_model

        model, _ = untrained_quant_model(card, 2)
    x = np.zeros((1, card.input.n_channels, card.input.window_samples), np.float32)
    export_qcdq(model, x, out, form="chunked")
    return out, card


def timed(fn, windows: np.ndarray, warmup: int = 2) -> tuple[np.ndarray, list[float]]:
    for _ in range(warmup):
        fn(windows[:1])
    outs, secs = [], []
    for w in windows:
        t0 = time.perf_counter()
        outs.append(np.asarray(fn(w[None])).reshape(-1))
        secs.append(time.perf_counter() - t0)
    return np.stack(outs), secs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--card", default="femba-tiny")
    p.add_argument("--windows", type=int, default=20)
    p.add_argument("--out", default="bench-jetson.json")
    a = p.parse_args()
    import onnxruntime as ort

    from edgeflow.backends import jetson
    from edgeflow.target import load_target

    with tempfile.TemporaryDirectory(prefix="bench-jetson-") as tmp:
        onnx_path, card = chunked_onnx(a.card, Path(tmp) / "model.chunked.onnx")
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        t0 = time.perf_counter()
        jetson.compile(onnx_path, load_target("jetson-orin-nano"), bundle, card=card, host_only=True)
        compile_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        x = rng.standard_normal((a.windows, card.input.n_channels, card.input.window_samples)).astype(np.float32)
        model = jetson.load_runner(bundle)
        tvm_out, tvm_s = timed(lambda w: model(w[0]), x)
        res = {"card": a.card, "windows": a.windows, "tvm_compile_s": compile_s,
               "tvm_ms": float(np.median(tvm_s)) * 1e3}
        for name, level in (("ort_default", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                            ("ort_disable_all", ort.GraphOptimizationLevel.ORT_DISABLE_ALL)):
            so = ort.SessionOptions()
            so.graph_optimization_level = level
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
            inp = sess.get_inputs()[0].name
            out, secs = timed(lambda w, s=sess, i=inp: s.run(None, {i: w})[0], x)
            res[f"{name}_ms"] = float(np.median(secs)) * 1e3
            res[f"max_abs_diff_vs_{name}"] = float(np.abs(out - tvm_out).max())
    print(json.dumps(res, indent=1))
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
