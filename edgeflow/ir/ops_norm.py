"""Row normalisations in integers: LayerNorm (integer square root) and softmax (exp2 table), with their constants."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.quant.intmath import (
    INT32_MAX,
    exp2_neg_fixed,
    quantize_multiplier,
    requantize,
    rounding_shift,
    saturate,
)

# ---- LayerNorm -----------------------------------------------------------------------------------------
# Per row of C int8 codes x (scale s_x); all integer, no mean rounding (the mean never appears on its own):
#   S = sum_i x_i, Q = sum_i x_i^2                      int32 (|S| <= 128 C, Q <= 16384 C)
#   W = C*Q - S^2 + eps_q                               int64, = C^2 (var_x + eps / s_x^2) exactly up to eps_q
#   d_i = C*x_i - S                                     = C (x_i - mean), exact
#   k = (62 - bitlen(W)) // 2                           normalise: W << 2k in [2^60, 2^62)
#   r = isqrt(W << 2k)                                  floor square root, in [2^30, 2^31)  (= sqrt(W) 2^k)
#   inv = 2^61 // r                                     floor division, in (2^30, 2^31]    (= 2^(61-k) / sqrt(W))
#   z_i = rounding_shift(d_i * inv, 41 - k)             Q20 of (x_i - mean) / sqrt(var + eps), |z| < sqrt(C) 2^20
#   y_i = sat8(rounding_shift(z_i * g[i] + b[i] * 2^(g_frac + 4), 20 + g_frac))
# with g[i] = round_half_up(gamma_i / s_y * 2^g_frac), b[i] = round_half_up(beta_i / s_y * 2^16) (int32).
# The only approximations are eps_q's rounding, floor(sqrt), floor(2^61 / r) (relative 2^-30 each), z's Q20
# rounding and g/b's rounding; the output is rounded once. isqrt is the exact integer floor square root
# (C: bit-by-bit on uint64; numpy: math.isqrt), so both agree on every input.

LN_Z_FRAC = 20                 # EF_LN_Z_FRAC
LN_B_FRAC = 16                 # EF_LN_B_FRAC
LN_MAX_CH = 1 << 16            # keeps C*Q in int32's neighbourhood checks simple and W < 2^47 before eps
LN_G_FRAC_MAX = 62 - LN_Z_FRAC


@dataclass(frozen=True, eq=False)
class LayerNormConsts:
    """Integer LayerNorm constants of one tensor (see the scheme above)."""

    n_ch: int
    eps_q: int                  # round_half_up(eps * C^2 / s_x^2), at least 1 (W > 0 always)
    g: NDArray[np.int32]        # (C,) gamma / s_y in Q(g_frac), signed
    b: NDArray[np.int32]        # (C,) beta / s_y in Q16, signed
    g_frac: int                 # in [0, 42]


def layernorm_params(gamma: ArrayLike, beta: ArrayLike, eps: float, s_x: float, s_y: float,
                     n_ch: int | None = None) -> LayerNormConsts:
    """Fold gamma, beta, eps and the scales into integer constants (offline, float64, round half up).

    g_frac is the largest value in [0, 42] with max|g| < 2^31 and no int64 overflow in the output sum
    (|z| g + |b| 2^(g_frac+4) + 2^(19+g_frac) < 2^63 for |z| <= (isqrt(C)+1) 2^20). ValueError if none fits,
    if |beta / s_y| >= 2^15, or C is outside [1, 2^16].
    """
    g_real = np.asarray(gamma, dtype=np.float64).reshape(-1) / float(s_y)
    b_real = np.asarray(beta, dtype=np.float64).reshape(-1) / float(s_y)
    c = int(n_ch if n_ch is not None else g_real.size)
    if not 1 <= c <= LN_MAX_CH or g_real.size != c or b_real.size != c:
        raise ValueError(f"layernorm_params: need 1 <= C <= {LN_MAX_CH} and gamma, beta of C entries, got C={c}, "
                         f"{g_real.size}, {b_real.size}")
    if not (s_x > 0 and s_y > 0 and eps >= 0) or not np.all(np.isfinite(g_real)) or not np.all(np.isfinite(b_real)):
        raise ValueError(f"layernorm_params: bad scales/eps/params (s_x={s_x}, s_y={s_y}, eps={eps})")
    eps_q = max(1, math.floor(eps * c * c / (s_x * s_x) + 0.5))
    if eps_q >= 1 << 59:
        raise ValueError(f"layernorm_params: eps / s_x^2 = {eps / s_x**2:.3g} too large")
    b = np.floor(b_real * 2.0**LN_B_FRAC + 0.5)
    if np.abs(b).max() > INT32_MAX:
        raise ValueError(f"layernorm_params: |beta / s_y| reaches {np.abs(b_real).max():.3g} (must be < 2^15)")
    zmax = (math.isqrt(c) + 1) << LN_Z_FRAC
    bmax = int(np.abs(b).max())
    for gf in range(LN_G_FRAC_MAX, -1, -1):
        g = np.floor(g_real * 2.0**gf + 0.5)
        gmax = int(np.abs(g).max())
        if gmax <= INT32_MAX and zmax * gmax + (bmax << (gf + 4)) + (1 << (gf + 19)) < 1 << 63:
            return LayerNormConsts(c, eps_q, g.astype(np.int32), b.astype(np.int32), gf)
    raise ValueError(f"layernorm_params: |gamma / s_y| reaches {np.abs(g_real).max():.3g}, too large")


def layernorm(x: ArrayLike, consts: LayerNormConsts) -> NDArray[np.int8]:
    """Integer LayerNorm of int8 rows x (T, C) -> int8 (T, C), scheme in the comment above; C: ef_layernorm_i8."""
    xa = np.asarray(x)
    if not np.issubdtype(xa.dtype, np.integer) or xa.ndim != 2 or xa.shape[1] != consts.n_ch:
        raise ValueError(f"layernorm: x must be integer (T, {consts.n_ch}), got {xa.dtype} {xa.shape}")
    if xa.size and (xa.min() < -128 or xa.max() > 127):
        raise ValueError("layernorm: x must be int8 codes")
    x64 = xa.astype(np.int64)
    c = consts.n_ch
    s = x64.sum(axis=1)
    w = c * (x64 * x64).sum(axis=1) - s * s + consts.eps_q
    k = np.empty_like(w)
    inv = np.empty_like(w)
    for i, wi in enumerate(w.tolist()):
        k[i] = (62 - wi.bit_length()) // 2
        inv[i] = (1 << 61) // math.isqrt(wi << (2 * int(k[i])))
    d = c * x64 - s[:, None]
    z = rounding_shift(d * inv[:, None], (61 - LN_Z_FRAC - k)[:, None])
    gf = consts.g_frac
    tot = z * consts.g.astype(np.int64) + consts.b.astype(np.int64) * (1 << (gf + LN_Z_FRAC - LN_B_FRAC))
    return saturate(rounding_shift(tot, LN_Z_FRAC + gf), 8)


# ---- softmax -------------------------------------------------------------------------------------------
# Per row of n int8 logits x (scale s_x), output probabilities as int8 codes of scale s_y:
#   e_j = (max(x) - x_j) * ke                 0 <= e_j <= 255 ke <= 2^31 - 1, ke = s_x log2(e) in Q(frac)
#   p_j = exp2_neg_fixed(e_j, frac)           Q15 exp(-(max - x_j) s_x); the row max gives exactly 32768
#   s = sum_j p_j                             int32, >= 32768 (n < 2^16)
#   rcp = 2^46 // s                           one integer division per row, <= 2^31
#   q_j = rounding_shift(p_j * rcp, 16)       Q30 probability, <= 2^30
#   y_j = requant(q_j, m, sh)                 (m, sh) = quantize_multiplier(2^-30 / s_y)

SOFTMAX_RCP_BITS = 46


def softmax_params(s_x: float, s_y: float) -> tuple[int, int, int, int]:
    """(ke, frac, m, sh): ke = min(round_half_up(s_x log2(e) 2^frac), 16 2^frac) with frac the largest in [16, 24]
    keeping 255 ke <= 2^31 - 1 (the cap is lossless: an exponent >= 16 already gives 0), and the output
    multiplier of 2^-30 / s_y."""
    if not (s_x > 0 and s_y > 0):
        raise ValueError(f"softmax_params: scales must be > 0, got {s_x}, {s_y}")
    rate = s_x / math.log(2.0)
    for frac in range(24, 15, -1):
        ke = min(math.floor(rate * 2.0**frac + 0.5), 16 << frac)
        if 255 * ke <= INT32_MAX:
            break
    m, sh = quantize_multiplier(2.0**-30 / s_y)
    return int(ke), frac, int(m), int(sh)


def softmax_rows(x: ArrayLike, ke: int, frac: int, m: int, sh: int) -> NDArray[np.int8]:
    """Integer softmax over the last axis of int8 x (R, n) -> int8 (R, n); C: ef_softmax_rows_i8."""
    x64 = np.asarray(x).astype(np.int64)
    if x64.ndim != 2 or not 1 <= x64.shape[1] < 1 << 16:
        raise ValueError(f"softmax_rows: x must be (R, n) with 1 <= n < 65536, got {x64.shape}")
    e = (x64.max(axis=1, keepdims=True) - x64) * int(ke)
    p = exp2_neg_fixed(e, frac).astype(np.int64)
    rcp = (1 << SOFTMAX_RCP_BITS) // p.sum(axis=1, keepdims=True)
    q = rounding_shift(p * rcp, SOFTMAX_RCP_BITS - 30)
    return requantize(q, m, sh)
