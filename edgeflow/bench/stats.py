"""Interleaving schedule, timing statistics and correctness checks of the host peers (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Float peers run the QCDQ model in float arithmetic, the integer reference rounds every requantization: a code
#: near a rounding tie can land one step off and move the logits. Allowed: largest |logit - reference logit| over
#: the windows <= this fraction of the largest |reference logit| (onnxruntime on the golden cases, 100 windows:
#: femba-micro 0.6 %, vit-tiny 2.3 %, femba-mini 3.8 %).
QDQ_RTOL = 0.10


def schedule(peers: Sequence[str], n_windows: int, warmup: int = 1) -> list[tuple[int, str, bool]]:
    """(window, peer, timed) calls: `warmup` untimed rounds on window 0, then window by window every peer once,
    the peer order rotated each window so none always runs first (cache, frequency effects)."""
    calls = [(0, p, False) for _ in range(warmup) for p in peers]
    n = len(peers)
    for w in range(n_windows):
        calls += [(w + 1, peers[(w + k) % n], True) for k in range(n)]
    return calls


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, min, mean and count of timing samples (seconds)."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": float(np.median(a)), "min": float(a.min()), "mean": float(a.mean())}


def ratios(times: dict[str, dict[str, Any]], base: str, key: str = "cpu") -> dict[str, float | None]:
    """Median `key` time of each peer divided by the base peer's (> 1: slower than the base)."""
    ref = times.get(base, {}).get(key, {}).get("median")
    out: dict[str, float | None] = {}
    for peer, t in times.items():
        med = t.get(key, {}).get("median")
        out[peer] = (med / ref) if (ref and med is not None) else None
    return out


def check_exact(got: np.ndarray, acc: np.ndarray) -> dict[str, Any]:
    """Integer peer: int32 accumulators bit for bit equal to the numpy reference."""
    bad = int((np.asarray(got) != np.asarray(acc)).any(axis=1).sum())
    return {"kind": "bit-exact int32 accumulators vs the numpy reference", "windows": int(len(acc)),
            "mismatched": bad, "ok": bad == 0}


def check_close(got: np.ndarray, logits: np.ndarray, rtol: float = QDQ_RTOL) -> dict[str, Any]:
    """Float peer on the quantized model: largest |logit difference| within rtol x the largest |reference logit|."""
    got, logits = np.asarray(got, dtype=np.float64), np.asarray(logits, dtype=np.float64)
    diff = float(np.abs(got - logits).max()) if got.shape == logits.shape else float("inf")
    tol = rtol * float(np.abs(logits).max())
    return {"kind": f"float logits vs the integer reference, max |diff| <= {rtol:.0%} of max |reference logit|",
            "windows": int(len(logits)), "max_abs_diff": diff, "tolerance": tol,
            "argmax_agree": float((got.argmax(1) == logits.argmax(1)).mean()) if np.isfinite(diff) else None,
            "ok": bool(diff <= tol)}


def check_ort(fused: np.ndarray, unfused: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """onnxruntime peer: its QDQ-unfused answers (the model's float semantics) within QDQ_RTOL of the integer
    reference, as any float peer; the timed answers of its default optimizations (QDQ fused into int8 kernels that
    requantize at every node their own way) are reported beside them, their distance not required."""
    check = check_close(unfused, logits)
    fused_check = check_close(fused, logits)
    check["kind"] = ("onnxruntime with QDQ fusion off (session.disable_quant_qdq): " + check["kind"]
                     + "; the timed default-optimization answers (fused int8 kernels) reported, not required")
    check["fused"] = {k: fused_check[k] for k in ("max_abs_diff", "argmax_agree")}
    return check


def check_float(got: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """Float model (not the quantized one): its answers differ by the quantization error, so the check is that
    they are finite and of the right shape; agreement with the integer reference is reported, not required."""
    got, logits = np.asarray(got, dtype=np.float64), np.asarray(logits, dtype=np.float64)
    ok = got.shape == logits.shape and bool(np.isfinite(got).all())
    return {"kind": "float model: finite logits of the reference's shape; agreement reported, not required",
            "windows": int(len(logits)), "max_abs_diff": float(np.abs(got - logits).max()) if ok else None,
            "argmax_agree": float((got.argmax(1) == logits.argmax(1)).mean()) if ok else None, "ok": ok}
