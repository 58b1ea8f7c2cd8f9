"""Device integer arithmetic: fixed-point multipliers, round-half-up shifts, saturation, LUTs and exp2."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Conventions shared with the C kernels (firmware/kernels/):
# * All run-time arithmetic is on int64 (C: int64_t); `>>` is an ARITHMETIC right shift, i.e.
#   floor division by 2^s also for negative values (gcc on rv32 does this for signed types).
# * "round-half-up" means floor(x + 1/2): ties go toward +inf, for negatives too (-2.5 -> -2).
# * Floats appear only when building constants offline (multipliers, tables).

MIN_SHIFT = 1    # smallest shift a multiplier may carry (the rounding term 2^(shift-1) needs shift >= 1)
MAX_SHIFT = 62   # |acc| < 2^31 and m < 2^31 give |acc*m| < 2^62; + 2^61 still fits int64
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
EXP2_TABLE_BITS = 8   # exp2 table has 2^8 + 1 entries
Q15_ONE = 1 << 15


def _round_half_up(x: ArrayLike) -> NDArray[np.float64]:
    """Offline only: floor(x + 0.5) in float64."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _shifts(s: ArrayLike) -> NDArray[np.int64]:
    s64 = np.asarray(s, dtype=np.int64)
    if np.any(s64 < 0) or np.any(s64 > 63):
        raise ValueError(f"shift must be in [0, 63], got range [{s64.min()}, {s64.max()}]")
    return s64


def rounding_shift(x: ArrayLike, s: ArrayLike) -> NDArray[np.int64]:
    """Round-half-up right shift on int64: (x + 2^(s-1)) >> s for s >= 1, and x itself for s == 0.

    `>>` is arithmetic (floor), so the result is floor(x / 2^s + 1/2): ties round toward +inf for
    negative x too (-5 >> 1 with rounding -> -2, +5 -> 3). `s` broadcasts against `x` (per-element
    shifts allowed), 0 <= s <= 63. The caller guarantees x + 2^(s-1) does not overflow int64.
    C: `s ? (x + ((int64_t)1 << (s - 1))) >> s : x` on int64_t.
    """
    x64 = np.asarray(x, dtype=np.int64)
    s64 = _shifts(s)
    half = np.where(s64 > 0, np.left_shift(np.int64(1), np.maximum(s64 - 1, 0)), np.int64(0))
    return np.right_shift(x64 + half, s64)


def _int_dtype(bits: int, signed: bool) -> type[np.integer]:
    for width, sd, ud in ((8, np.int8, np.uint8), (16, np.int16, np.uint16), (32, np.int32, np.uint32)):
        if bits <= width:
            return sd if signed else ud
    raise ValueError(f"bits must be <= 32, got {bits}")


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """(lo, hi) of a `bits`-wide integer: [-2^(bits-1), 2^(bits-1)-1] signed, [0, 2^bits-1] unsigned."""
    if not (2 if signed else 1) <= bits <= 32:
        raise ValueError(f"bits must be in [{2 if signed else 1}, 32], got {bits}")
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def saturate(x: ArrayLike, bits: int, signed: bool = True) -> NDArray[np.integer]:
    """Clamp integers to the `bits`-wide range (see `int_range`) and return the smallest numpy dtype
    holding it (int8/uint8 for <= 8 bits, int16/uint16 for <= 16, int32/uint32 for <= 32).
    C: `x < lo ? lo : (x > hi ? hi : x)` on int64_t, then cast."""
    lo, hi = int_range(bits, signed)
    x64 = np.asarray(x)
    if not np.issubdtype(x64.dtype, np.integer):
        raise TypeError(f"saturate takes integers, got dtype {x64.dtype}")
    return np.clip(x64.astype(np.int64), lo, hi).astype(_int_dtype(bits, signed))


def quantize_multiplier_array(real: ArrayLike, bits: int = 31) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Per-channel form of `quantize_multiplier`: arrays m (int32) and shift (int32) of real's shape."""
    if not 2 <= bits <= 31:
        raise ValueError(f"multiplier bits must be in [2, 31], got {bits}")
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"multiplier scale must be finite and > 0, got min {r.min() if r.size else r}")
    frac, exp = np.frexp(r)                       # r = frac * 2^exp, frac in [0.5, 1)
    m = _round_half_up(np.ldexp(frac, bits)).astype(np.int64)
    carry = m == (1 << bits)                      # frac rounded up to 1.0
    m = np.where(carry, 1 << (bits - 1), m)
    shift = bits - (exp.astype(np.int64) + carry)
    if np.any(shift < MIN_SHIFT) or np.any(shift > MAX_SHIFT):
        lo, hi = 2.0 ** (bits - 1 - MAX_SHIFT), 2.0 ** (bits - MIN_SHIFT)
        raise ValueError(f"multiplier scale out of range [{lo:.3g}, {hi:.3g}) for {bits}-bit m: "
                         f"got [{r.min():.3g}, {r.max():.3g}]")
    return m.astype(np.int32), shift.astype(np.int32)


def quantize_multiplier(real: float | ArrayLike,
                        bits: int = 31) -> tuple[int, int] | tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Represent a positive real scale as m * 2^-shift with m in [2^(bits-1), 2^bits) (Q31 by default).

    Offline: real = frac * 2^exp (frexp, frac in [0.5, 1)); m = round_half_up(frac * 2^bits)
    (if that rounds to 2^bits, m = 2^(bits-1) and exp += 1); shift = bits - exp.
    shift must land in [MIN_SHIFT, MAX_SHIFT] = [1, 62], so for bits = 31 the accepted reals are
    [2^-32, 2^30); anything else, and real <= 0 / NaN / inf, raises ValueError. Relative error of
    m * 2^-shift is <= 2^-bits. A scalar gives (int m, int shift); an array gives int32 arrays.
    """
    if np.ndim(real) == 0:
        m, s = quantize_multiplier_array(np.asarray([real], dtype=np.float64), bits)
        return int(m[0]), int(s[0])
    return quantize_multiplier_array(real, bits)


def requantize(acc: ArrayLike, m: ArrayLike, shift: ArrayLike, zero_point: int | ArrayLike = 0,
               bits: int = 8, signed: bool = True) -> NDArray[np.integer]:
    """y = saturate(((acc * m) + 2^(shift-1)) >> shift + zero_point, bits, signed).

    acc: integers within int32 (int32 or int64 container); m: 0 <= m < 2^31; shift in [1, 62];
    m, shift and zero_point broadcast against acc (per-channel: pass arrays shaped for the channel
    axis). The product and rounding are computed in int64 (|acc*m| < 2^62, no overflow); `>>` is an
    arithmetic shift, so the rounding is half-up toward +inf also for negative products
    (acc*m/2^shift = -2.5 -> -2, +2.5 -> 3). Result dtype as in `saturate`.
    """
    a = np.asarray(acc)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"requantize takes integer accumulators, got dtype {a.dtype}")
    a64 = a.astype(np.int64)
    if a64.size and (a64.min() < INT32_MIN or a64.max() > INT32_MAX):
        raise ValueError(f"accumulator outside int32: [{a64.min()}, {a64.max()}]")
    m64 = np.asarray(m, dtype=np.int64)
    if np.any(m64 < 0) or np.any(m64 > INT32_MAX):
        raise ValueError("multiplier m must be in [0, 2^31)")
    s64 = np.asarray(shift, dtype=np.int64)
    if np.any(s64 < MIN_SHIFT) or np.any(s64 > MAX_SHIFT):
        raise ValueError(f"shift must be in [{MIN_SHIFT}, {MAX_SHIFT}]")
    y = rounding_shift(a64 * m64, s64) + np.asarray(zero_point, dtype=np.int64)
    return saturate(y, bits, signed)


# ----------------------------------------------------------------------------------------------------------
# Lookup tables for int8-input non-linearities

def silu(x: ArrayLike) -> NDArray[np.float64]:
    """Float reference SiLU x * sigmoid(x) (offline, for tables)."""
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * (1.0 + np.tanh(0.5 * x))


def softplus(x: ArrayLike) -> NDArray[np.float64]:
    """Float reference softplus log(1 + e^x), computed stably (offline, for tables)."""
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def gelu(x: ArrayLike) -> NDArray[np.float64]:
    """Float reference GELU, exact erf form x * (1 + erf(x / sqrt 2)) / 2 (PyTorch's default, not tanh)."""
    x = np.asarray(x, dtype=np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def build_lut(fn: Callable[[NDArray[np.float64]], ArrayLike], in_scale: float, in_zp: int,
              out_scale: float, out_zp: int, out_bits: int = 8) -> NDArray[np.integer]:
    """Offline table of a non-linearity for int8 input codes: 256 entries, int8 (or int16 for out_bits > 8).

    Index convention: table index i = q + 128 for the int8 code q in [-128, 127].
    Entry i = saturate(round_half_up(fn((i - 128 - in_zp) * in_scale) / out_scale) + out_zp, out_bits),
    evaluated in float64. When fn(x)/out_scale lies within float rounding of a .5 tie the entry depends on
    the last bit of the float evaluation; the stored table, not the formula, is the definition.
    """
    if in_scale <= 0 or out_scale <= 0:
        raise ValueError(f"LUT scales must be > 0, got in {in_scale}, out {out_scale}")
    if not 2 <= out_bits <= 16:
        raise ValueError(f"LUT out_bits must be in [2, 16], got {out_bits}")
    x = (np.arange(256, dtype=np.float64) - 128.0 - in_zp) * in_scale
    y = np.asarray(fn(x), dtype=np.float64) / out_scale
    code = _round_half_up(y).astype(np.int64) + int(out_zp)
    return saturate(code, out_bits, signed=True)


def apply_lut(q: ArrayLike, lut: NDArray[np.integer]) -> NDArray[np.integer]:
    """Table look-up: y = lut[q + 128] for int8 codes q (C: `lut[(int)q + 128]`)."""
    qa = np.asarray(q)
    if lut.shape != (256,):
        raise ValueError(f"LUT must have 256 entries, got shape {lut.shape}")
    if qa.size and (qa.min() < -128 or qa.max() > 127):
        raise ValueError(f"LUT input codes must be int8, got [{qa.min()}, {qa.max()}]")
    return lut[qa.astype(np.int64) + 128]


# ----------------------------------------------------------------------------------------------------------
# exp2 / exp in fixed point

#: Q15 table of 2^(-j/256), j = 0..256 (entry 0 = 32768 = 1.0, entry 256 = 16384 = 0.5); int32.
EXP2_TABLE_Q15: NDArray[np.int32] = _round_half_up(
    Q15_ONE * np.exp2(-np.arange(257, dtype=np.float64) / 256.0)).astype(np.int32)
EXP2_TABLE_Q15.setflags(write=False)

#: log2(e) in Q30 (1549082005), used by exp_neg_q15.
LOG2E_Q30 = int(_round_half_up(math.log2(math.e) * (1 << 30)))


def exp2_neg_fixed(e: ArrayLike, frac_bits: int = 16) -> NDArray[np.int32]:
    """2^(-e / 2^frac_bits) in Q15 (int32 in [0, 32768]) for integer e in [0, 2^31 - 1], 8 <= frac_bits <= 24.

    Integer algorithm (T = EXP2_TABLE_Q15, lo = frac_bits - 8):
        k = e >> frac_bits                 integer part of the exponent
        f = e & (2^frac_bits - 1)          fractional part, split into
        j = f >> lo, r = f & (2^lo - 1)    table index (top 8 bits) and interpolation weight
        v = T[j] + rounding_shift((T[j+1] - T[j]) * r, lo)      (int32 product, |.| < 2^23)
        result = 0 if k >= 16 else rounding_shift(v, k)
    (rounding_shift(x, 0) = x.) Max error vs 32768 * 2^-x is about 1 LSB; the result is non-increasing in e.
    """
    if not 8 <= frac_bits <= 24:
        raise ValueError(f"frac_bits must be in [8, 24], got {frac_bits}")
    e64 = np.asarray(e, dtype=np.int64)
    if e64.size and (e64.min() < 0 or e64.max() > INT32_MAX):
        raise ValueError(f"exp2_neg_fixed exponent must be in [0, 2^31), got [{e64.min()}, {e64.max()}]")
    lo = frac_bits - EXP2_TABLE_BITS
    k = e64 >> frac_bits
    f = e64 & ((1 << frac_bits) - 1)
    j = f >> lo
    r = f & ((1 << lo) - 1)
    t0 = EXP2_TABLE_Q15[j].astype(np.int64)
    t1 = EXP2_TABLE_Q15[j + 1].astype(np.int64)
    v = t0 + rounding_shift((t1 - t0) * r, lo)
    out = np.where(k >= 16, 0, rounding_shift(v, np.minimum(k, 16)))
    return out.astype(np.int32)


def exp_neg_q15(x_fixed: ArrayLike, frac_bits: int = 16) -> NDArray[np.int32]:
    """exp(-x) in Q15 for x = x_fixed / 2^frac_bits >= 0 (x_fixed integer in [0, 2^31)).

    e = min(rounding_shift(x_fixed * LOG2E_Q30, 30), 2^31 - 1)  (int64; x / ln 2 in the same format)
    result = exp2_neg_fixed(e, frac_bits).
    """
    x64 = np.asarray(x_fixed, dtype=np.int64)
    if x64.size and (x64.min() < 0 or x64.max() > INT32_MAX):
        raise ValueError(f"exp_neg_q15 input must be in [0, 2^31), got [{x64.min()}, {x64.max()}]")
    e = np.minimum(rounding_shift(x64 * LOG2E_Q30, 30), INT32_MAX)
    return exp2_neg_fixed(e, frac_bits)
