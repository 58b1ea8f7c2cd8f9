"""Integer references of the zero-point ops (onnxruntime QDQ: asymmetric int8 activations): the N-input sum, the
product, the matrix product of two activations and the row softmax, each with its inputs' and output's zero points
carried exactly (C: firmware/kernels/ef_zp.c)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.ir.ops import add_requant_params
from edgeflow.ir.ops_norm import SOFTMAX_RCP_BITS
from edgeflow.quant.intmath import INT32_MAX, INT32_MIN, exp2_neg_fixed, requantize, rounding_shift, saturate


def add_zp_params(scales: Sequence[float], zps: Sequence[int], s_out: float, zp_out: int
                  ) -> tuple[NDArray[np.int32], int, int]:
    """(M, S, C) of y = sat8(rounding_shift(C + sum_j x_j M_j, S)), the requantized sum of (x_j - z_j) s_j with
    output zero point z: M, S as add_requant_params, C = z 2^S - sum_j M_j z_j (int64; z 2^S is a whole number of
    output steps, so it is added exactly after the one rounding)."""
    m, s = add_requant_params(list(scales), s_out)
    c = (int(zp_out) << int(s)) - sum(int(mj) * int(zj) for mj, zj in zip(m.tolist(), zps, strict=True))
    return m, int(s), int(c)


def add_zp(xs: Sequence[ArrayLike], M: ArrayLike, S: int, C: int) -> NDArray[np.int8]:
    """y = sat8(rounding_shift(C + sum_j x_j M_j, S)) over int64; C: ef_add_requant_zp_i8."""
    ma = np.asarray(M, dtype=np.int64).reshape(-1)
    arrs = [np.asarray(x, dtype=np.int64) for x in xs]
    if len(arrs) != ma.size or any(a.shape != arrs[0].shape for a in arrs):
        raise ValueError(f"add_zp: {len(arrs)} inputs of shapes {[a.shape for a in arrs]}, {ma.size} multipliers")
    tot = sum((a * mj for a, mj in zip(arrs, ma.tolist(), strict=True)), np.full(arrs[0].shape, int(C), np.int64))
    return saturate(rounding_shift(tot, int(S)), 8).astype(np.int8)


def mul_zp(a: ArrayLike, b: ArrayLike, m: int, sh: int, za: int, zb: int, zy: int) -> NDArray[np.int8]:
    """y = sat8(rounding_shift((a - za)(b - zb) m, sh) + zy) elementwise; C: ef_mul_requant_zp_i8."""
    aa, ba = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if aa.shape != ba.shape:
        raise ValueError(f"mul_zp: shapes differ: {aa.shape} vs {ba.shape}")
    return requantize((aa - za) * (ba - zb), m, sh, zy).astype(np.int8)


def matmul_zp(a: ArrayLike, b: ArrayLike, m: int, sh: int, za: int, zb: int, zy: int) -> NDArray[np.int8]:
    """y = sat8(rounding_shift(((a - za) @ (b - zb)) m, sh) + zy) for int8 a (M, K), b (K, N), int32 accumulator;
    C: ef_matmul_zp_i8."""
    aa, ba = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if aa.ndim != 2 or ba.ndim != 2 or aa.shape[1] != ba.shape[0]:
        raise ValueError(f"matmul_zp: a {aa.shape} and b {ba.shape} do not multiply")
    acc = (aa - za) @ (ba - zb)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError(f"matmul_zp: int32 accumulator overflows: [{acc.min()}, {acc.max()}]")
    return requantize(acc, m, sh, zy).astype(np.int8)


def softmax_zp(x: ArrayLike, ke: int, frac: int, m: int, sh: int, zy: int) -> NDArray[np.int8]:
    """ops_norm.softmax_rows with an output zero point zy added after the rounding (before saturation); the
    input's zero point needs nothing (softmax reads max - x); C: ef_softmax_rows_zp_i8."""
    x64 = np.asarray(x).astype(np.int64)
    if x64.ndim != 2 or not 1 <= x64.shape[1] < 1 << 16:
        raise ValueError(f"softmax_zp: x must be (R, n) with 1 <= n < 65536, got {x64.shape}")
    p = exp2_neg_fixed((x64.max(axis=1, keepdims=True) - x64) * int(ke), frac).astype(np.int64)
    q = rounding_shift(p * ((1 << SOFTMAX_RCP_BITS) // p.sum(axis=1, keepdims=True)), SOFTMAX_RCP_BITS - 30)
    return requantize(q, m, sh, zy).astype(np.int8)
