"""`edgeflow quantize --report`: float vs PTQ vs QAT at 8/4/2-bit weights on the held-out split."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rich.table import Table

from edgeflow.quant.layers import WEIGHT_BITS, QuantPolicy
from edgeflow.quant.qat import QuantConfig, load_splits, run_quantize


def float_row(card, ckpt: Path, splits) -> dict:
    from edgeflow.train.checkpoint import load_model
    from edgeflow.train.common import predict_proba
    from edgeflow.train.metrics import binary_metrics

    model, _ = load_model(card, ckpt)
    params = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] not in ("mask_token", "rec_head"))
    return {"method": "float", "weight_bits": 32, "test": binary_metrics(splits["test"].y,
                                                                         predict_proba(model, splits["test"].x)),
            "weights": {"total_bytes": 4 * params, "by_bits": {"32": {"params": params, "bytes": 4 * params}}}}


def run_report(base: QuantConfig, bits: tuple[int, ...] = (8, 4, 2), methods=("ptq", "qat"), on_row=None) -> dict:
    """Every (method, bits) cell with the same splits and seed; returns the rows and writes report.json."""
    splits = load_splits(base.card, base.seed)
    rows = [float_row(base.card, base.float_ckpt, splits)]
    if on_row:
        on_row(rows[-1])
    for b in bits:
        if b not in WEIGHT_BITS:
            continue
        for method in methods:
            policy = QuantPolicy(b, base.policy.act_bits, base.policy.overrides)
            cfg = replace(base, policy=policy, method=method, out=base.out / f"w{b}-{method}")
            m = run_quantize(cfg, splits)
            rows.append(m)
            if on_row:
                on_row(m)
    report = {"card": base.card.name, "rows": rows, "note": "test split = held-out subjects"}
    base.out.mkdir(parents=True, exist_ok=True)
    (base.out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def render(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("method", "weights", "AUROC", "AUPR", "bal. acc", "ΔAUROC vs float", "weight bytes",
                "params by bits", "scan gap (LSB)"):
        t.add_column(col, justify="right")
    base = rows[0]["test"]["auroc"] if rows and rows[0]["method"] == "float" else None
    for r in rows:
        m = r["test"]
        by = ", ".join(f"{k}b:{v['params']:,}" for k, v in r["weights"]["by_bits"].items())
        gap = r.get("scan_gap", {}).get("max_abs_lsb")
        t.add_row(r["method"], f"{r['weight_bits']}-bit" if r["method"] != "float" else "fp32",
                  f"{m['auroc']:.3f}", f"{m['aupr']:.3f}", f"{m['balanced_accuracy']:.3f}",
                  "" if base is None or r["method"] == "float" else f"{m['auroc'] - base:+.3f}",
                  f"{r['weights']['total_bytes']:,}", by, "" if gap is None else f"{gap:.2f}")
    return t
