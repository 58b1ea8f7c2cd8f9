"""Integer ops of the IR in numpy: the exact semantics each C kernel in firmware/kernels/ mirrors bit for bit
(the op registry, edgeflow/ir/opdefs/, binds IR nodes to these functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.ir.ops_norm import (
    LayerNormConsts,
    layernorm,
    layernorm_params,
    softmax_params,
    softmax_rows,
)
from edgeflow.quant.intmath import (
    INT32_MAX,
    INT32_MIN,
    MAX_SHIFT,
    apply_lut,
    quantize_multiplier,
    quantize_multiplier_array,
    requantize,
    rounding_shift,
    saturate,
)
from edgeflow.quant.intscan import ScanConsts, ScanQuant, int_scan

# Conventions (see also firmware/kernels/ef_kernels.h):
# * Activations are int8 codes with zero point 0, given here as any integer numpy array; ops work on ONE sample
#   (no batch axis) with tokens / time steps as rows: (T, C).
# * Accumulators are int32: an op whose exact integer accumulator leaves int32 raises ValueError (the C kernel
#   would overflow); the compiler checks this bound offline from the weights.
# * "requant(acc, m, sh)" is intmath.requantize: sat8((acc * m + 2^(sh-1)) >> sh), int64 product.
# * Weights are integer values (O, n_in) here; the device stores them packed (`pack_weights`).

WEIGHT_BITS = (2, 4, 8)
#: Storage code of ternary weights (2-bit narrow range, values -1..1) packed five to a byte in base 3:
#: byte = sum_k (w_k + 1) * 3^k, k = 0..4 (first element least significant); ~1.6 bits per weight.
TERNARY = 1
PACK_CODES = (TERNARY, *WEIGHT_BITS)
ADD_M_LIMIT = 1 << 30            # add_requant multipliers M_j < 2^30
ADD_MAX_INPUTS = 64              # keeps sum_j |x_j M_j| < 2^43, far inside int64


# ---- weight packing ------------------------------------------------------------------------------------

def row_bytes(n_in: int, bits: int) -> int:
    """Bytes of one packed weight row: ceil(n_in * bits / 8), or ceil(n_in / 5) for TERNARY (C: ef_row_bytes)."""
    if bits not in PACK_CODES:
        raise ValueError(f"weight bits must be one of {PACK_CODES}, got {bits}")
    return (n_in + 4) // 5 if bits == TERNARY else (n_in * bits + 7) // 8


def is_ternary(w_int: ArrayLike) -> bool:
    """True when every weight is -1, 0 or 1 (2-bit narrow range), so TERNARY packing holds it exactly."""
    w = np.asarray(w_int)
    return bool(w.size) and int(w.min()) >= -1 and int(w.max()) <= 1


def _pack_ternary(w: NDArray[np.integer]) -> NDArray[np.uint8]:
    n_out, n_in = w.shape
    nb = row_bytes(n_in, TERNARY)
    digits = np.zeros((n_out, nb * 5), dtype=np.int64)  # padding digit 0 = weight -1, never read
    digits[:, :n_in] = w.astype(np.int64) + 1
    return (digits.reshape(n_out, nb, 5) * 3 ** np.arange(5)).sum(axis=2).astype(np.uint8)


def pack_weights(w_int: ArrayLike, bits: int) -> NDArray[np.uint8]:
    """Pack integer weights (O, n_in) into (O, row_bytes(n_in, bits)) uint8, one padded row per output.

    Element k of a row sits at bits `bits * (k % (8 // bits))` of byte `k // (8 // bits)` (first element in the
    lowest bits), two's complement: 2-bit values -2..1, 4-bit -8..7, 8-bit -128..127. Padding bits are 0.
    `.tobytes()` of the result is the device blob (row o at byte o * row_bytes).
    """
    w = np.asarray(w_int)
    if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"pack_weights takes integer weights (O, n_in), got {w.dtype} {w.shape}")
    if bits == TERNARY:
        if w.size and not is_ternary(w):
            raise ValueError(f"ternary weights must be in [-1, 1], got [{w.min()}, {w.max()}]")
        return _pack_ternary(w)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"{bits}-bit weights must be in [{lo}, {hi}], got [{w.min()}, {w.max()}]")
    n_out, n_in = w.shape
    per = 8 // bits
    nb = row_bytes(n_in, bits)
    field = (w.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint8)
    padded = np.zeros((n_out, nb * per), dtype=np.uint8)
    padded[:, :n_in] = field
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    lanes = padded.reshape(n_out, nb, per) << shifts
    return np.bitwise_or.reduce(lanes, axis=2).astype(np.uint8)


def unpack_weights(packed: ArrayLike | bytes, bits: int, n_in: int) -> NDArray[np.int8]:
    """Inverse of `pack_weights`: (O, row_bytes) uint8 (or the flat blob, bytes) -> int8 values (O, n_in)."""
    nb = row_bytes(n_in, bits)
    raw = np.frombuffer(packed, dtype=np.uint8) if isinstance(packed, bytes | bytearray) else packed
    p = np.asarray(raw, dtype=np.uint8).reshape(-1, nb)
    if bits == TERNARY:
        digits = (p[:, :, None].astype(np.int64) // 3 ** np.arange(5)) % 3
        return (digits.reshape(p.shape[0], nb * 5)[:, :n_in] - 1).astype(np.int8)
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    field = ((p[:, :, None] >> shifts) & ((1 << bits) - 1)).astype(np.int16).reshape(p.shape[0], nb * per)
    half = 1 << (bits - 1)
    return ((field[:, :n_in] ^ half) - half).astype(np.int8)


# ---- offline parameters --------------------------------------------------------------------------------

#: Per-channel requantization multipliers are 15-bit (m in [2^14, 2^15), stored int16 or packed with the shift
#: in 16 bits): their relative error <= 2^-15 moves an int8 output by < 0.004 LSB before its rounding, and it
#: halves the bytes of the per-row parameters streamed with every weight tile.
REQUANT_BITS = 15


def requant_params(s_in: ArrayLike, s_w: ArrayLike, s_out: float) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Per-channel (m, sh) of s_in * s_w[c] / s_out (REQUANT_BITS-bit m, intmath.quantize_multiplier_array), as
    1-d int32 arrays; ValueError if a scale is outside [2^-48, 2^14)."""
    real = np.atleast_1d(np.asarray(s_in, dtype=np.float64) * np.asarray(s_w, dtype=np.float64) / float(s_out))
    return quantize_multiplier_array(real, bits=REQUANT_BITS)


def fold_addend(addend: ArrayLike, s_in: float, s_w: ArrayLike, rows: int = 1) -> NDArray[np.int32]:
    """A float addend (L, F) (e.g. the positional embedding) at accumulator scale s_in * s_w[f // rows]:
    round_half_up(addend / (s_in s_w[e])) as int32, feature f = e * rows + row (token layout)."""
    a = np.asarray(addend, dtype=np.float64)
    scale = float(s_in) * np.repeat(np.asarray(s_w, dtype=np.float64).reshape(-1), rows)
    q = np.floor(a / scale + 0.5)
    if q.size and (q.min() < INT32_MIN or q.max() > INT32_MAX):
        raise ValueError("fold_addend: addend does not fit int32 at the accumulator scale")
    return q.astype(np.int32)


def add_requant_params(scales_in: Sequence[float], scale_out: float) -> tuple[NDArray[np.int32], int]:
    """Multipliers of the N-input requantized sum: M_j = round_half_up(s_j / s_y * 2^S) with ONE common S.

    S is the largest shift in [1, MAX_SHIFT] with max_j M_j < 2^30 (most precision for the largest ratio);
    ValueError if even S = 1 overflows (a ratio >= 2^29) or if there are more than ADD_MAX_INPUTS inputs.
    """
    r = np.asarray(scales_in, dtype=np.float64) / float(scale_out)
    if r.ndim != 1 or not 1 <= r.size <= ADD_MAX_INPUTS or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"add_requant_params: need 1..{ADD_MAX_INPUTS} positive scales, got {scales_in}")
    for s in range(MAX_SHIFT, 0, -1):
        m = np.floor(r * 2.0**s + 0.5)
        if m.max() < ADD_M_LIMIT:
            return m.astype(np.int32), s
    raise ValueError(f"add_requant_params: scale ratio {r.max():.3g} too large (must be < 2^29)")


def meanpool_params(s_x: float, s_y: float, n_tok: int) -> tuple[int, int]:
    """(m, sh) of the token mean: quantize_multiplier(s_x / (n_tok * s_y))."""
    m, sh = quantize_multiplier(float(s_x) / (int(n_tok) * float(s_y)))
    return int(m), int(sh)


# ---- ops -----------------------------------------------------------------------------------------------

def _codes(op: str, name: str, x: ArrayLike, ndim: int, lo: int = -128, hi: int = 127) -> NDArray[np.int64]:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer) or a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be a {ndim}-d integer array, got {a.dtype} {a.shape}")
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{op}: {name} must be in [{lo}, {hi}], got [{a.min()}, {a.max()}]")
    return a.astype(np.int64)


def _acc32(op: str, acc: NDArray[np.int64]) -> NDArray[np.int64]:
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError(f"{op}: int32 accumulator overflows: [{acc.min()}, {acc.max()}]")
    return acc


def _bias(op: str, bias: ArrayLike | None, n: int) -> NDArray[np.int64]:
    if bias is None:
        return np.zeros(n, dtype=np.int64)
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    if b.shape != (n,):
        raise ValueError(f"{op}: bias must have {n} entries, got {b.shape}")
    return b


def linear_acc(x: ArrayLike, w: ArrayLike, bias: ArrayLike | None = None) -> NDArray[np.int32]:
    """acc[t, o] = sum_i x[t, i] * w[o, i] + bias[o] as int32 (x (T, I) int8, w (O, I)); C: ef_linear_acc_i32."""
    xa = _codes("linear", "x", x, 2)
    wa = _codes("linear", "w", w, 2)
    if wa.shape[1] != xa.shape[1]:
        raise ValueError(f"linear: x has {xa.shape[1]} inputs, w has {wa.shape[1]}")
    return _acc32("linear", xa @ wa.T + _bias("linear", bias, wa.shape[0])).astype(np.int32)


def linear(x: ArrayLike, w: ArrayLike, bias: ArrayLike | None, m: ArrayLike, sh: ArrayLike) -> NDArray[np.int8]:
    """y[t, o] = requant(sum_i x[t, i] w[o, i] + bias[o], m[o], sh[o]) int8; C: ef_linear_i8."""
    return requantize(linear_acc(x, w, bias), np.reshape(m, (1, -1)), np.reshape(sh, (1, -1)))


def conv2d_patch(x: ArrayLike, w: ArrayLike, bias: ArrayLike, m: ArrayLike, sh: ArrayLike,
                 kernel: tuple[int, int], addend: ArrayLike | None = None) -> NDArray[np.int8]:
    """Conv2d(1 -> E, kernel = stride = (kh, kw)) on x (H, W) int8, written in token layout (L, E * rows).

    rows = H // kh, L = W // kw; w (E, kh*kw) (or (E, 1, kh, kw)) with element i*kw + j = tap (i, j).
    acc[l, e*rows + r] = sum_{i,j} w[e, i*kw + j] x[r*kh + i, l*kw + j] + bias[e] + addend[l, e*rows + r]
    (addend optional int32, e.g. `fold_addend(pos_embed, ...)`); y = requant(acc, m[e], sh[e]).
    C: ef_conv2d_patch_i8.
    """
    kh, kw = kernel
    xa = _codes("conv2d_patch", "x", x, 2)
    wa = np.asarray(w).reshape(np.shape(w)[0], -1)
    wa = _codes("conv2d_patch", "w", wa, 2)
    if wa.shape[1] != kh * kw:
        raise ValueError(f"conv2d_patch: w rows must have {kh * kw} taps, got {wa.shape[1]}")
    rows, n_tok = xa.shape[0] // kh, xa.shape[1] // kw
    n_e = wa.shape[0]
    patches = xa[:rows * kh, :n_tok * kw].reshape(rows, kh, n_tok, kw).transpose(2, 0, 1, 3)
    acc = patches.reshape(n_tok, rows, kh * kw) @ wa.T                     # (L, rows, E)
    acc = acc.transpose(0, 2, 1).reshape(n_tok, n_e * rows) + np.repeat(_bias("conv2d_patch", bias, n_e), rows)
    if addend is not None:
        add = np.asarray(addend, dtype=np.int64)
        if add.shape != acc.shape:
            raise ValueError(f"conv2d_patch: addend must be {acc.shape}, got {add.shape}")
        acc = acc + add
    _acc32("conv2d_patch", acc)
    m_f = np.repeat(np.reshape(m, -1), rows)[None, :]
    sh_f = np.repeat(np.reshape(sh, -1), rows)[None, :]
    return requantize(acc, m_f, sh_f)


def dwconv1d_causal(x: ArrayLike, w: ArrayLike, bias: ArrayLike, m: ArrayLike, sh: ArrayLike) -> NDArray[np.int8]:
    """Depthwise causal conv over time: x (L, C) int8, w (C, K) int8.

    y[t, c] = requant(sum_{k<K} w[c, k] x[t - (K-1) + k, c] + bias[c], m[c], sh[c]), x[t < 0] = 0
    (PyTorch Conv1d(padding=K-1, groups=C) cut to the first L outputs). C: ef_dwconv1d_causal_i8.
    """
    xa = _codes("dwconv1d_causal", "x", x, 2)
    wa = _codes("dwconv1d_causal", "w", w, 2)
    n_t, n_c = xa.shape
    k = wa.shape[1]
    if wa.shape[0] != n_c:
        raise ValueError(f"dwconv1d_causal: w must be ({n_c}, K), got {wa.shape}")
    xp = np.concatenate([np.zeros((k - 1, n_c), dtype=np.int64), xa])
    acc = sum(xp[j:j + n_t] * wa[:, j] for j in range(k)) + _bias("dwconv1d_causal", bias, n_c)
    return requantize(_acc32("dwconv1d_causal", acc), np.reshape(m, (1, -1)), np.reshape(sh, (1, -1)))


def lut(x: ArrayLike, table: ArrayLike) -> NDArray[np.int8]:
    """y = table[x + 128] (256-entry int8 table, intmath.build_lut); C: ef_lut_i8."""
    return apply_lut(x, np.asarray(table)).astype(np.int8)


def mul_requant(a: ArrayLike, b: ArrayLike, m: int, sh: int) -> NDArray[np.int8]:
    """y = requant(a * b, m, sh) elementwise on int8 a, b (same shape); C: ef_mul_requant_i8."""
    aa, ba = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if aa.shape != ba.shape:
        raise ValueError(f"mul_requant: shapes differ: {aa.shape} vs {ba.shape}")
    return requantize(aa * ba, m, sh)


def add_requant(xs: Sequence[ArrayLike], M: ArrayLike, S: int) -> NDArray[np.int8]:
    """y = sat8(rounding_shift(sum_j x_j * M_j, S)): one rounding over int64 (`add_requant_params`).

    Real meaning: y s_y ~= sum_j x_j s_j. The FEMBA residual is add_requant([x, fwd, flip_time(rev)], ...);
    the C kernel reads flip(rev) through a negative row stride. C: ef_add_requant_i8.
    """
    ma = np.asarray(M, dtype=np.int64).reshape(-1)
    if len(xs) != ma.size or not 1 <= ma.size <= ADD_MAX_INPUTS:
        raise ValueError(f"add_requant: {len(xs)} inputs but {ma.size} multipliers")
    if np.any(ma < 0) or np.any(ma >= ADD_M_LIMIT) or not 1 <= S <= MAX_SHIFT:
        raise ValueError("add_requant: need 0 <= M_j < 2^30 and 1 <= S <= 62")
    arrs = [np.asarray(x, dtype=np.int64) for x in xs]
    if any(a.shape != arrs[0].shape for a in arrs):
        raise ValueError(f"add_requant: input shapes differ: {[a.shape for a in arrs]}")
    tot = sum(a * mj for a, mj in zip(arrs, ma.tolist(), strict=True))
    return saturate(rounding_shift(tot, S), 8)


def meanpool_tokens(x: ArrayLike, m: int, sh: int) -> NDArray[np.int8]:
    """y[c] = requant(sum_t x[t, c], m, sh) with (m, sh) = `meanpool_params`; C: ef_meanpool_tokens_i8."""
    xa = _codes("meanpool_tokens", "x", x, 2)
    return requantize(_acc32("meanpool_tokens", xa.sum(axis=0)), m, sh)


def matmul(a: ArrayLike, b: ArrayLike, m: int, sh: int) -> NDArray[np.int8]:
    """y = requant(a @ b, m, sh) for int8 a (M, K), b (K, N) (Q.K^T: pass b = K.T); C: ef_matmul_i8."""
    aa, ba = _codes("matmul", "a", a, 2), _codes("matmul", "b", b, 2)
    return requantize(_acc32("matmul", aa @ ba), m, sh)


def scan(q_u: ArrayLike, q_delta: ArrayLike, q_B: ArrayLike, q_C: ArrayLike, consts: ScanConsts | ScanQuant,
         direction: int = 0) -> NDArray[np.int8]:
    """The integer selective scan, intscan.int_scan (direction 1 = flip/scan/flip); C: ef_scan_i8."""
    return int_scan(q_u, q_delta, q_B, q_C, consts, direction)


def flip_time(x: ArrayLike) -> NDArray[np.integer]:
    """Rows in reverse order (time flip of (L, C)); C: ef_flip_rows_i8."""
    return np.ascontiguousarray(np.asarray(x)[::-1])


__all__ = ["WEIGHT_BITS", "LayerNormConsts", "add_requant", "add_requant_params", "conv2d_patch",
           "dwconv1d_causal", "flip_time", "fold_addend", "layernorm", "layernorm_params", "linear", "linear_acc",
           "lut", "matmul", "meanpool_params", "meanpool_tokens", "mul_requant", "pack_weights", "requant_params",
           "row_bytes", "scan", "softmax_params", "softmax_rows", "unpack_weights"]
