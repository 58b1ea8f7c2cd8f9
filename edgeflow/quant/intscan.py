"""Integer selective scan (one Mamba direction): constants from scales, bit-exact step, float comparison."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.quant.intmath import (
    INT32_MAX,
    exp2_neg_fixed,
    quantize_multiplier_array,
    rounding_shift,
    saturate,
)

# Integer scheme, per time step t, channel d, state n (all int64 in numpy, int32/int64_t in C):
#   e[d,n]   = q_delta[d] * ka[d,n]                        int32: 0 <= e <= 127 * 65535 < 2^23
#   dA[d,n]  = exp2_neg_fixed(e, ka_frac)                   Q15 in [0, 32768], = exp(delta * A)
#   p[d,n]   = q_delta[d] * q_u[d] * q_B[n]                 int32, |p| <= 127 * 128 * 128 < 2^21
#   inj[d,n] = rounding_shift(p * m_in[d], sh_in[d])        int64 product < 2^52, result in state units
#   h[d,n]   = clip(rounding_shift(dA * h, 15) + inj, -STATE_MAX, STATE_MAX)   int64 math, int32 storage
#   acc[d]   = sum_n q_C[n] * h[d,n]                        int64, |acc| <= d_state * 2^38
#   tot[d]   = acc * m_y[d] + q_u[d] * m_D[d] * 2^sh_D[d]   int64 (m_y, m_D 15-bit), |tot| <= 3 * 2^61
#   y[d]     = saturate(rounding_shift(tot, sh_y[d]), 8)    int8, the only rounding of the output
# h starts at 0. Reverse direction: flip all inputs in time, scan, flip the output back.
# Storage is compact (the scan constants of femba-tiny are ~100 K parameters): ka uint16, m_y and m_D 15-bit
# in int16, every shift int8: 2 bytes per (d, n) plus 11 bytes per channel. m_in stays Q31: trained models
# need input/state scale ratios up to ~2^15 (femba-mini: 2.3e4), beyond a 15-bit multiplier's 2^14.

STATE_MAX = INT32_MAX          # state saturates symmetrically to [-(2^31-1), 2^31-1]
QDELTA_MAX = 127               # delta codes are softplus outputs, int8 with zero point 0: 0..127
KA_MAX = (1 << 16) - 1         # ka is stored as uint16
KA_FRAC_MAX = 24               # ka fractional bits are chosen per tensor in [KA_FRAC_MIN, KA_FRAC_MAX]
KA_FRAC_MIN = 11               # 16 * 2^11 (the lossless cap) fits uint16, so some ka_frac always fits
MULT_BITS = 15                 # m_y in [2^14, 2^15) and m_D a signed 15-bit mantissa: int16
D_STATE_MAX = 256              # |acc * m_y| < d_state * 2^53 <= 2^61
TOT_LIMIT = 3 << 61            # |acc * m_y| + |q_u * m_D * 2^sh_D| must stay <= this (+ 2^(sh_y-1) fits int64)


@dataclass(frozen=True, eq=False)
class ScanConsts:
    """Integer constants of one scan direction; everything the C kernel needs (see module comment)."""

    ka: NDArray[np.uint16]       # (d_inner, d_state) exponent of 2 per delta code, Q(ka_frac), 0..65535
    ka_frac: int                 # fractional bits of ka / e, in [11, 24]
    m_in: NDArray[np.int32]      # (d_inner,) Q31 multiplier in [2^30, 2^31): s_delta s_B s_u / s_h[d]
    sh_in: NDArray[np.int8]      # (d_inner,) its shift in [1, 62]
    m_y: NDArray[np.int16]       # (d_inner,) 15-bit multiplier in [2^14, 2^15): s_C s_h[d] / s_y
    m_D: NDArray[np.int16]       # (d_inner,) signed mantissa: m_D * 2^sh_D ~ D[d] s_u / s_y * 2^sh_y[d]
    sh_D: NDArray[np.int8]       # (d_inner,) its left shift, >= 0
    sh_y: NDArray[np.int8]       # (d_inner,) common shift of both output terms, in [1, 62]

    @property
    def d_inner(self) -> int:
        return int(self.ka.shape[0])

    @property
    def d_state(self) -> int:
        return int(self.ka.shape[1])


def _frozen(x: ArrayLike, shape: tuple[int, ...] | None, name: str) -> NDArray[np.float64]:
    a = np.array(x, dtype=np.float64)
    if shape is not None and a.shape != shape:
        raise ValueError(f"ScanQuant.{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"ScanQuant.{name} has non-finite values")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ScanQuant:
    """Scales of one scan direction (int8 codes, zero points 0) and the float A, D it implements.

    s_u, s_delta, s_B, s_C: per-tensor input scales (q_delta >= 0 since delta = softplus(.)).
    A: (d_inner, d_state), <= 0; D: (d_inner,); s_h: per-channel state scale (d_inner,) from
    `calibrate_state_scale`; s_y: output scale. Build with `ScanQuant.build(...)`, then `.constants()`.
    """

    s_u: float
    s_delta: float
    s_B: float
    s_C: float
    A: NDArray[np.float64]
    D: NDArray[np.float64]
    s_h: NDArray[np.float64]
    s_y: float

    @classmethod
    def build(cls, s_u: float, s_delta: float, s_B: float, s_C: float, A: ArrayLike, D: ArrayLike,
              s_h: ArrayLike, s_y: float) -> ScanQuant:
        """Validate and freeze (arrays are copied read-only); raises ValueError naming the bad field."""
        for name, v in (("s_u", s_u), ("s_delta", s_delta), ("s_B", s_B), ("s_C", s_C), ("s_y", s_y)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"ScanQuant.{name} must be a finite scale > 0, got {v}")
        a = _frozen(A, None, "A")
        if a.ndim != 2 or a.shape[1] > D_STATE_MAX:
            raise ValueError(f"ScanQuant.A must be (d_inner, d_state<= {D_STATE_MAX}), got {a.shape}")
        if np.any(a > 0):
            raise ValueError("ScanQuant.A must be <= 0 (A = -exp(A_log))")
        d = _frozen(D, (a.shape[0],), "D")
        sh = _frozen(s_h, (a.shape[0],), "s_h")
        if np.any(sh <= 0):
            raise ValueError("ScanQuant.s_h must be > 0 in every channel")
        return cls(float(s_u), float(s_delta), float(s_B), float(s_C), a, d, sh, float(s_y))

    def constants(self) -> ScanConsts:
        """Derive the integer constants (offline, float64 then rounded half up).

        ka: for ka_frac from 24 down to 11 take the first with max(ka) <= 65535 (uint16), where
        ka = min(round_half_up(-A * s_delta / ln2 * 2^ka_frac), 16 * 2^ka_frac). The cap is lossless
        (for q_delta >= 1 an exponent >= 16 already gives dA = 0) and makes ka_frac = 11 always fit.
        m_in, sh_in from quantize_multiplier(s_delta s_B s_u / s_h); sh_y, m_y from
        quantize_multiplier(s_C s_h / s_y, 15); (m_D, sh_D) = `signed_mantissa(D s_u / s_y * 2^sh_y, 15)`.
        ValueError if d_state * 2^53 + 128 * max|m_D 2^sh_D| > 3 * 2^61 (|tot| + 2^(sh_y-1) must fit int64;
        only a state scale absurdly fine for its output scale trips it).
        """
        rate = -self.A * self.s_delta / math.log(2.0)
        for frac in range(KA_FRAC_MAX, KA_FRAC_MIN - 1, -1):
            ka = np.minimum(np.floor(rate * 2.0**frac + 0.5), 16.0 * 2**frac)
            if ka.max(initial=0.0) <= KA_MAX:
                break
        try:
            m_in, sh_in = quantize_multiplier_array(self.s_delta * self.s_B * self.s_u / self.s_h)
            m_y, sh_y = quantize_multiplier_array(self.s_C * self.s_h / self.s_y, bits=MULT_BITS)
        except ValueError as err:
            raise ValueError(f"ScanQuant: s_h does not fit the input (s_delta s_B s_u / s_h) or output "
                             f"(s_C s_h / s_y) multiplier: {err}") from None
        m_d, sh_d = signed_mantissa(self.D * self.s_u / self.s_y * np.exp2(sh_y.astype(np.float64)), MULT_BITS)
        big = np.abs(m_d.astype(np.float64)) * np.exp2(sh_d.astype(np.float64))
        if self.A.shape[1] * 2.0**53 + 128.0 * big.max(initial=0.0) > TOT_LIMIT:
            raise ValueError(f"ScanQuant: m_D = D * s_u / s_y * 2^sh_y reaches {big.max():.3g}, the "
                             "int64 output sum could overflow; s_h is too fine relative to s_y")
        return ScanConsts(ka.astype(np.uint16), frac, m_in, sh_in.astype(np.int8),
                          m_y.astype(np.int16), m_d, sh_d, sh_y.astype(np.int8))


def signed_mantissa(x: ArrayLike, bits: int = MULT_BITS) -> tuple[NDArray[np.int16], NDArray[np.int8]]:
    """x ~ m * 2^k per element: m = round_half_up(x / 2^k) a signed `bits`-bit integer (|m| < 2^bits), k >= 0
    the smallest shift that fits (k = 0 keeps |x| < 2^bits exact to the rounding); (m int16, k int8)."""
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("signed_mantissa: non-finite value")
    k = np.zeros(a.shape, dtype=np.int64)
    m = np.floor(a + 0.5)
    while np.any(big := np.abs(m) >= 2.0**bits):
        k = np.where(big, k + 1, k)
        m = np.floor(a / np.exp2(k) + 0.5)
    if k.max(initial=0) > 62:
        raise ValueError("signed_mantissa: value too large")
    return m.astype(np.int16), k.astype(np.int8)


def calibrate_state_scale(u: ArrayLike, delta: ArrayLike, A: ArrayLike, B: ArrayLike,
                          C: ArrayLike | None = None, headroom: float = 2.0,
                          state_bits: int = 24) -> NDArray[np.float64]:
    """Per-channel state scale s_h (d_inner,) from float calibration activations.

    u, delta: (batch, L, d_inner) or (L, d_inner); B: (batch, L, d_state) or (L, d_state); A (d_inner,
    d_state). Runs the float64 scan, takes hmax[d] = max |h| over batch, time and state, and sets
    s_h[d] = hmax[d] * headroom / 2^(state_bits - 1): the calibrated peak lands at 2^(state_bits-1) /
    headroom, leaving headroom x 2^(31 - state_bits) before the int32 state saturates. Channels whose
    state never moved get the largest s_h of the others (1 / 2^(state_bits-1) if all are 0).
    C is accepted to mirror selective_scan_ref's arguments; the state does not depend on it.
    """
    if headroom < 1.0 or not 2 <= state_bits <= 31:
        raise ValueError(f"need headroom >= 1 and state_bits in [2, 31], got {headroom}, {state_bits}")
    u3, d3, b3 = (np.asarray(x, dtype=np.float64) for x in (u, delta, B))
    if u3.ndim == 2:
        u3, d3, b3 = u3[None], d3[None], b3[None]
    a = np.asarray(A, dtype=np.float64)
    h = np.zeros((u3.shape[0], a.shape[0], a.shape[1]))
    hmax = np.zeros(a.shape[0])
    for t in range(u3.shape[1]):
        h = np.exp(d3[:, t, :, None] * a) * h + (d3[:, t] * u3[:, t])[:, :, None] * b3[:, t, None, :]
        hmax = np.maximum(hmax, np.abs(h).max(axis=(0, 2)))
    s_h = hmax * headroom / 2.0 ** (state_bits - 1)
    fallback = s_h.max() if np.any(s_h > 0) else 1.0 / 2.0 ** (state_bits - 1)
    return np.where(s_h > 0, s_h, fallback)


def _codes(name: str, q: ArrayLike, shape: tuple[int, ...], lo: int = -128,
           hi: int = 127) -> NDArray[np.int64]:
    a = np.asarray(q)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"int_scan: {name} must be integer codes, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"int_scan: {name} must have shape {shape}, got {a.shape}")
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"int_scan: {name} codes must be in [{lo}, {hi}], got [{a.min()}, {a.max()}]")
    return a.astype(np.int64)


def scan_step(h: NDArray[np.int64], q_u: NDArray[np.int64], q_delta: NDArray[np.int64],
              q_B: NDArray[np.int64], q_C: NDArray[np.int64],
              c: ScanConsts) -> tuple[NDArray[np.int64], NDArray[np.int8]]:
    """One time step for all channels: state h (d_inner, d_state) int64 -> (new h, y (d_inner,) int8).

    q_u, q_delta: (d_inner,); q_B, q_C: (d_state,); exact semantics in the module comment.
    """
    e = q_delta[:, None] * c.ka.astype(np.int64)
    d_a = exp2_neg_fixed(e, c.ka_frac).astype(np.int64)
    p = (q_delta * q_u)[:, None] * q_B[None, :]
    inj = rounding_shift(p * c.m_in.astype(np.int64)[:, None], c.sh_in.astype(np.int64)[:, None])
    h = np.clip(rounding_shift(d_a * h, 15) + inj, -STATE_MAX, STATE_MAX)
    acc = h @ q_C                                              # int64 matmul: exact integer sum over n
    m_d = c.m_D.astype(np.int64) << c.sh_D.astype(np.int64)
    tot = acc * c.m_y.astype(np.int64) + q_u * m_d
    return h, saturate(rounding_shift(tot, c.sh_y.astype(np.int64)), 8)


def int_scan(q_u: ArrayLike, q_delta: ArrayLike, q_B: ArrayLike, q_C: ArrayLike,
             consts: ScanConsts | ScanQuant, direction: int = 0,
             return_state: bool = False) -> NDArray[np.int8] | tuple[NDArray[np.int8], NDArray[np.int64]]:
    """Integer selective scan of one sequence: q_u, q_delta (L, d_inner); q_B, q_C (L, d_state) -> q_y int8.

    direction 0 scans t = 0..L-1; direction 1 is the reverse scan flip(scan(flip(inputs))) in time.
    With return_state=True returns (q_y, final state (d_inner, d_state) int64, values within int32).
    """
    c = consts.constants() if isinstance(consts, ScanQuant) else consts
    if direction not in (0, 1):
        raise ValueError(f"int_scan: direction must be 0 (forward) or 1 (reverse), got {direction}")
    length = np.shape(q_u)[0] if np.ndim(q_u) == 2 else -1
    u = _codes("q_u", q_u, (length, c.d_inner))
    dl = _codes("q_delta", q_delta, (length, c.d_inner), 0, QDELTA_MAX)
    b = _codes("q_B", q_B, (length, c.d_state))
    cc = _codes("q_C", q_C, (length, c.d_state))
    order = range(length) if direction == 0 else range(length - 1, -1, -1)
    h = np.zeros((c.d_inner, c.d_state), dtype=np.int64)
    y = np.zeros((length, c.d_inner), dtype=np.int8)
    for t in order:
        h, y[t] = scan_step(h, u[t], dl[t], b[t], cc[t], c)
    return (y, h) if return_state else y


def int_scan_batch(q_u: ArrayLike, q_delta: ArrayLike, q_B: ArrayLike, q_C: ArrayLike,
                   consts: ScanConsts | ScanQuant, direction: int = 0) -> NDArray[np.int8]:
    """`int_scan` over a leading batch axis: (batch, L, d_inner) / (batch, L, d_state) -> (batch, L, d_inner).

    Sequences are independent (each starts from h = 0).
    """
    c = consts.constants() if isinstance(consts, ScanQuant) else consts
    return np.stack([int_scan(a, b, bb, cc, c, direction) for a, b, bb, cc in zip(q_u, q_delta, q_B, q_C,
                                                                                  strict=True)])


def float_scan_from_codes(q_u: ArrayLike, q_delta: ArrayLike, q_B: ArrayLike, q_C: ArrayLike,
                          quant: ScanQuant, direction: int = 0) -> NDArray[np.float64]:
    """Float64 scan on the dequantized codes (what the QAT model computes), in real units (L, d_inner).

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;  y_t = C_t . h_t + D u_t;  reverse = flip/scan/flip.
    """
    u = np.asarray(q_u, dtype=np.float64) * quant.s_u
    dl = np.asarray(q_delta, dtype=np.float64) * quant.s_delta
    b = np.asarray(q_B, dtype=np.float64) * quant.s_B
    c = np.asarray(q_C, dtype=np.float64) * quant.s_C
    if direction == 1:
        u, dl, b, c = u[::-1], dl[::-1], b[::-1], c[::-1]
    h = np.zeros(quant.A.shape)
    y = np.zeros(u.shape)
    for t in range(u.shape[0]):
        h = np.exp(dl[t, :, None] * quant.A) * h + (dl[t] * u[t])[:, None] * b[t][None, :]
        y[t] = h @ c[t] + quant.D * u[t]
    return y[::-1].copy() if direction == 1 else y


def scan_error_report(q_y: ArrayLike, y_float: ArrayLike, s_y: float) -> dict[str, float]:
    """Gap between integer output codes and the float scan, in LSB of y (= s_y).

    The float is taken unrounded and clipped to the int8 range (so saturation is not counted as error):
    err = q_y - clip(y_float / s_y, -128, 127). Keys: max_abs_lsb, mean_abs_lsb, frac_gt1_lsb (share of
    outputs with |err| > 1), max_abs (real units), code_mismatch (share of q_y != round_half_up(clipped
    float)), float_saturated (share of float outputs outside the int8 range).
    """
    q = np.asarray(q_y, dtype=np.float64)
    ideal = np.asarray(y_float, dtype=np.float64) / s_y
    clipped = np.clip(ideal, -128.0, 127.0)
    err = np.abs(q - clipped)
    return {
        "max_abs_lsb": float(err.max(initial=0.0)),
        "mean_abs_lsb": float(err.mean()) if err.size else 0.0,
        "frac_gt1_lsb": float((err > 1.0).mean()) if err.size else 0.0,
        "max_abs": float(err.max(initial=0.0) * s_y),
        "code_mismatch": float((q != np.floor(clipped + 0.5)).mean()) if err.size else 0.0,
        "float_saturated": float((ideal != clipped).mean()) if err.size else 0.0,
    }


__all__ = ["QDELTA_MAX", "STATE_MAX", "ScanConsts", "ScanQuant", "calibrate_state_scale", "signed_mantissa",
           "float_scan_from_codes", "int_scan", "int_scan_batch", "scan_error_report", "scan_step"]
