"""Instructions per window and per MAC of the generated C on the emulated rv32imc board (QEMU -icount: exact counts).

    python tools/bench_rv32.py                          # femba-mini (shipped 2-bit QAT checkpoint), 3 windows
    python tools/bench_rv32.py --cards femba-mini femba-tiny --windows 1

femba-mini uses models/femba-mini-w2.quant.pt; other cards an untrained 2-bit model calibrated on synthetic EEG
(the instruction count depends on shapes and bit widths, not on trained values). Every answer is also checked
against the numpy reference. Writes <out>/bench-rv32.json; not part of CI (femba-tiny runs ~7 G instructions).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np


def export_card(card_name: str, out: Path, sample: np.ndarray) -> Path:
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.resources import models_dir

    card = load_card(card_name)
    shipped = models_dir() / f"{card_name}-w2.quant.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if shipped.exists():
            from edgeflow.quant.qat import load_quant

            model, _ = load_quant(card, shipped)
        else:
            from edgeflow.quant.ptq import untrained_quant_model

            model, _ = untrained_quant_model(card, 2)
        path = out / f"{card_name}.onnx"
        export_qcdq(model, sample[:1], path, form="scan")
    return path


def bench_card(card_name: str, out: Path, n_windows: int, edf: Path) -> dict:
    from edgeflow.build import build
    from edgeflow.ir.graph import Graph
    from edgeflow.ir.reference import run
    from edgeflow.link.harness import load_stream_windows, quantized_windows
    from edgeflow.link.model_info import model_hash
    from edgeflow.link.session import Session, open_port
    from edgeflow.runners import qemu_rv32 as emulator

    x, _ = load_stream_windows(edf, card_name, n_windows=n_windows)
    build_dir = out / f"{card_name}-rv32-virt"
    t0 = time.monotonic()
    report = build(export_card(card_name, out, x), "rv32-virt", build_dir)
    build_s = time.monotonic() - t0
    graph = Graph.load(build_dir)
    xq = quantized_windows(x, graph)
    instret, layers, exact, wall = [], None, 0, []
    dev = emulator.start(build_dir)
    try:
        port = open_port(dev.port, write_timeout=emulator.WRITE_TIMEOUT_S)
        try:
            session = Session(port, model_hash(build_dir), timeout_s=600.0, retries=1, name=dev.port)
            session.handshake()
            for i, w in enumerate(xq):
                t = time.monotonic()
                ans = session.infer(i + 1, np.ascontiguousarray(w, dtype=np.int8).tobytes())
                wall.append(time.monotonic() - t)
                want = np.asarray(run(graph, w)[graph.outputs[0]]).reshape(-1)
                exact += int(np.array_equal(np.asarray(ans.output.values), want))
                instret.append(ans.output.instret)
                layers = ans.output.layer_instret
        finally:
            port.close()
    finally:
        emulator.stop(build_dir)
    macs = report["macs"]
    by_op: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for node, n in zip(report["nodes"], layers or [], strict=False):
        by_op[node["op"]][0] += n
        by_op[node["op"]][1] += node["macs"]
    mean = float(np.mean(instret))
    return {"card": card_name, "windows": len(instret), "bit_exact": exact, "macs": macs,
            "instret_per_window": int(mean), "instret_min": int(min(instret)), "instret_max": int(max(instret)),
            "instret_per_mac": mean / macs, "wall_s_per_window": float(np.mean(wall)), "build_s": build_s,
            "firmware": report["firmware"], "weights_level": report.get("memory", {}).get("weights_level"),
            "by_op": {op: {"instret": v[0], "macs": v[1], "share": v[0] / mean,
                           "instret_per_mac": (v[0] / v[1]) if v[1] else None}
                      for op, v in sorted(by_op.items(), key=lambda kv: -kv[1][0])}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", nargs="+", default=["femba-mini"])
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--out", default="build/bench-rv32")
    a = ap.parse_args(argv)
    from edgeflow.link.harness import synth_recording

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    edf = synth_recording(out / "recording.edf", 5.0 * a.windows + 1.0, seed=11)
    rows = []
    for card in a.cards:
        r = bench_card(card, out, a.windows, edf)
        rows.append(r)
        print(f"{card}: {r['macs']:,} MACs, {r['instret_per_window']:,} instructions / window "
              f"({r['instret_per_mac']:.2f} / MAC), {r['bit_exact']}/{r['windows']} windows bit-exact, "
              f"{r['wall_s_per_window']:.1f} s / window on QEMU", flush=True)
        for op, v in list(r["by_op"].items())[:6]:
            per = f"{v['instret_per_mac']:.2f} / MAC" if v["instret_per_mac"] else ""
            print(f"    {op:16s} {v['instret']:>14,} instructions ({v['share']:.0%}) {per}")
    cmd = "python tools/bench_rv32.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "bench-rv32.json").write_text(json.dumps({"command": cmd.strip(), "results": rows}, indent=1) + "\n")
    print(f"wrote {out / 'bench-rv32.json'}")
    return 0 if all(r["bit_exact"] == r["windows"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
