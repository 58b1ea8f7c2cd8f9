"""Integer CNN ops in numpy (general conv, max/average pooling): the semantics ef_conv.c and ef_pool.c mirror."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.quant.intmath import INT32_MAX, INT32_MIN, quantize_multiplier_array, requantize

# Layout: channel-first as ONNX has it, batch stripped: x (C, W) for 1-D, (C, H, W) for 2-D. A 1-D op is the 2-D
# op with H = 1 (kernel height 1, no vertical padding). `pads` are ONNX's: begins then ends, per spatial axis.

REQUANT_BITS = 15  # as ops.REQUANT_BITS: m in [2^14, 2^15), the C kernels call ef_requant8_m15


def out_size(n: int, k: int, stride: int, dil: int, pad_b: int, pad_e: int) -> int:
    """Output length of one spatial axis (ONNX, ceil_mode 0): floor((n + pads - ((k-1) d + 1)) / s) + 1."""
    return (n + pad_b + pad_e - ((k - 1) * dil + 1)) // stride + 1


def as_2d(spatial: Sequence[int], vals: Sequence[int], fill: int) -> tuple[int, int]:
    """(h, w) of a per-axis attribute of a 1-D or 2-D op (1-D: h = fill)."""
    return (fill, int(vals[0])) if len(spatial) == 1 else (int(vals[0]), int(vals[1]))


def geometry(x_shape: Sequence[int], kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
             dilations: Sequence[int]) -> dict[str, int]:
    """The 2-D geometry (h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, ho, wo) of a 1-D or 2-D window op."""
    sp = tuple(int(d) for d in x_shape[1:])
    nd = len(sp)
    if nd not in (1, 2) or len(kernel) != nd or len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd:
        raise ValueError(f"window op: input {tuple(x_shape)} needs 1 or 2 spatial axes with kernel, strides, "
                         f"dilations of that length and 2x pads, got {kernel}, {strides}, {dilations}, {pads}")
    h, w = (1, sp[0]) if nd == 1 else sp
    kh, kw = as_2d(sp, kernel, 1)
    s_h, s_w = as_2d(sp, strides, 1)
    dh, dw = as_2d(sp, dilations, 1)
    pt, pl = as_2d(sp, pads[:nd], 0)
    pb, pr = as_2d(sp, pads[nd:], 0)
    if min(kh, kw, s_h, s_w, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise ValueError(f"window op: kernel, strides, dilations must be >= 1 and pads >= 0, got {kernel}, "
                         f"{strides}, {dilations}, {pads}")
    ho, wo = out_size(h, kh, s_h, dh, pt, pb), out_size(w, kw, s_w, dw, pl, pr)
    if ho < 1 or wo < 1:
        raise ValueError(f"window op: input {tuple(x_shape)} is smaller than the kernel {tuple(kernel)}")
    return {"h": h, "w": w, "kh": kh, "kw": kw, "sh": s_h, "sw": s_w, "dh": dh, "dw": dw, "pt": pt, "pl": pl,
            "pb": pb, "pr": pr, "ho": ho, "wo": wo}


def out_shape(x_shape: Sequence[int], channels: int, g: dict[str, int]) -> tuple[int, ...]:
    return (channels, g["wo"]) if len(x_shape) == 2 else (channels, g["ho"], g["wo"])


def _taps(xp: NDArray[np.int64], g: dict[str, int]):
    """(i, j, view) for every kernel tap: view[c, oh, ow] = xp[c, oh*sh + i*dh, ow*sw + j*dw]."""
    for i in range(g["kh"]):
        for j in range(g["kw"]):
            r0, c0 = i * g["dh"], j * g["dw"]
            yield i, j, xp[:, r0:r0 + (g["ho"] - 1) * g["sh"] + 1:g["sh"], c0:c0 + (g["wo"] - 1) * g["sw"] + 1:g["sw"]]


def _pad(x: NDArray[np.int64], g: dict[str, int], value: int) -> NDArray[np.int64]:
    return np.pad(x, ((0, 0), (g["pt"], g["pb"]), (g["pl"], g["pr"])), constant_values=value)


def conv(x: ArrayLike, w: ArrayLike, bias: ArrayLike, m: ArrayLike, sh: ArrayLike, strides: Sequence[int],
         pads: Sequence[int], dilations: Sequence[int], group: int, lo: int = -128, hi: int = 127,
         zp_in: int = 0, zp_out: int = 0) -> NDArray[np.int8]:
    """Conv1d / Conv2d of int8 x (C, [H,] W) with int weights w (O, C/group, [kh,] kw), padding with code zp_in:
    acc[o, p] = sum_{c < C/g, taps} w[o, c, tap] x[(o // (O/g)) * C/g + c, p*s + tap*d - pad] + bias[o] (int32),
    y = min(hi, max(lo, sat8(requant(acc, m[o], sh[o]) + zp_out))) int8 (lo/hi: a folded ReLU / Clip; zp_in,
    zp_out: the zero points of onnxruntime QDQ activations, the bias holding - zp_in sum w). C: ef_conv_i8."""
    xa, wa = np.asarray(x, dtype=np.int64), np.asarray(w, dtype=np.int64)
    n_o, cg = wa.shape[0], wa.shape[1]
    g = geometry(xa.shape, wa.shape[2:], strides, pads, dilations)
    if group < 1 or xa.shape[0] != cg * group or n_o % group:
        raise ValueError(f"conv: input {xa.shape} and weight {wa.shape} do not fit {group} groups")
    xp = _pad(xa.reshape(xa.shape[0], g["h"], g["w"]), g, int(zp_in))
    w4 = wa.reshape(n_o, cg, g["kh"], g["kw"])
    og = n_o // group
    acc = np.zeros((n_o, g["ho"], g["wo"]), dtype=np.int64)
    for i, j, v in _taps(xp, g):
        for k in range(group):
            o, c = slice(k * og, (k + 1) * og), slice(k * cg, (k + 1) * cg)
            acc[o] += np.einsum("oc,chw->ohw", w4[o, :, i, j], v[c])
    acc += np.asarray(bias, dtype=np.int64).reshape(-1, 1, 1)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError(f"conv: int32 accumulator overflows: [{acc.min()}, {acc.max()}]")
    y = requantize(acc, np.reshape(m, (-1, 1, 1)), np.reshape(sh, (-1, 1, 1)), int(zp_out))
    return np.clip(y, lo, hi).astype(np.int8).reshape(out_shape(xa.shape, n_o, g))


def pool_params(mode: str, s_in: float, s_out: float, taps: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """(m, sh) tables of a pool: max -> one entry (s_in / s_out); avg -> entry n = s_in / (n s_out) for a window
    of n counted taps, n = 0..taps (entry 0 unused, equal to entry 1)."""
    if mode == "max":
        return quantize_multiplier_array(np.array([s_in / s_out]), bits=REQUANT_BITS)
    n = np.maximum(np.arange(taps + 1), 1).astype(np.float64)
    return quantize_multiplier_array(s_in / (n * s_out), bits=REQUANT_BITS)


def pool(x: ArrayLike, m: ArrayLike, sh: ArrayLike, mode: str, kernel: Sequence[int], strides: Sequence[int],
         pads: Sequence[int], count_include_pad: int = 0, zp_in: int = 0, zp_out: int = 0) -> NDArray[np.int8]:
    """MaxPool / AveragePool of int8 x (C, [H,] W) (ONNX, ceil_mode 0, no dilation).
    max: y = requant(max over the window's in-bounds taps - zp_in, m[0], sh[0]) + zp_out (padding never wins);
    avg: n = kh*kw if count_include_pad else the in-bounds taps, y = requant(sum of in-bounds (x - zp_in), m[n],
    sh[n]) + zp_out; saturated to int8 (zp_in, zp_out: onnxruntime QDQ zero points). C: ef_pool_i8."""
    xa = np.asarray(x, dtype=np.int64)
    g = geometry(xa.shape, kernel, strides, pads, [1] * len(kernel))
    x3 = xa.reshape(xa.shape[0], g["h"], g["w"])
    ma, sa = np.asarray(m, np.int64).reshape(-1), np.asarray(sh, np.int64).reshape(-1)
    if mode == "max":
        best = np.full((xa.shape[0], g["ho"], g["wo"]), -(1 << 20), dtype=np.int64)
        for _, _, v in _taps(_pad(x3, g, -(1 << 20)), g):
            best = np.maximum(best, v)
        y = requantize(best - int(zp_in), int(ma[0]), int(sa[0]), int(zp_out))
    elif mode == "avg":
        tot = sum(v for _, _, v in _taps(_pad(x3, g, 0), g))
        cnt = sum(v for _, _, v in _taps(_pad(np.ones((1, g["h"], g["w"]), np.int64), g, 0), g))
        tot = tot - int(zp_in) * cnt                      # the in-bounds taps as x - zp_in (padding is 0)
        if count_include_pad:
            cnt = np.full_like(cnt, g["kh"] * g["kw"])
        y = requantize(tot, ma[cnt], sa[cnt], int(zp_out))
    else:
        raise ValueError(f"pool: mode must be 'max' or 'avg', got {mode!r}")
    return np.asarray(y, dtype=np.int8).reshape(out_shape(xa.shape, xa.shape[0], g))
