"""Device integer arithmetic: round-half-up requantization, saturation, multipliers, LUTs and exp2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeflow.quant.intmath import (
    EXP2_TABLE_Q15,
    apply_lut,
    build_lut,
    exp2_neg_fixed,
    exp_neg_q15,
    gelu,
    int_range,
    quantize_multiplier,
    quantize_multiplier_array,
    requantize,
    rounding_shift,
    saturate,
    silu,
    softplus,
)

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------- shifts, requant

def test_rounding_shift_half_up_including_negatives() -> None:
    x = np.array([5, -5, 3, -3, 7, -7, 6, -6, 4, -4, 0, -1, 1])
    # x / 2 = 2.5 -2.5 1.5 -1.5 3.5 -3.5 3 -3 2 -2 0 -0.5 0.5 -> half up (toward +inf)
    assert rounding_shift(x, 1).tolist() == [3, -2, 2, -1, 4, -3, 3, -3, 2, -2, 0, 0, 1]
    # x / 4 = 1.25 -1.25 0.75 -0.75 1.75 -1.75 1.5 -1.5 1 -1 0 -0.25 0.25
    assert rounding_shift(x, 2).tolist() == [1, -1, 1, -1, 2, -2, 2, -1, 1, -1, 0, 0, 0]
    assert rounding_shift(x, 0).tolist() == x.tolist()
    assert rounding_shift(np.array([10, 10, 10]), np.array([0, 1, 2])).tolist() == [10, 5, 3]
    with pytest.raises(ValueError):
        rounding_shift(x, -1)


def test_requantize_hand_cases() -> None:
    half = 1 << 30                                         # m * 2^-31 = 0.5
    acc = np.array([5, -5, 3, -3, -7, 7, 0, 1, -1], dtype=np.int32)
    # acc * 0.5 = 2.5 -2.5 1.5 -1.5 -3.5 3.5 0 0.5 -0.5
    assert requantize(acc, half, 31).tolist() == [3, -2, 2, -1, -3, 4, 0, 1, 0]
    # acc * 0.25 = 1.25 -1.25 0.75 -0.75 -1.75 1.75 0 0.25 -0.25
    assert requantize(acc, half, 32).tolist() == [1, -1, 1, -1, -2, 2, 0, 0, 0]
    # non power of two: 3/4 as m = 3 * 2^29, shift 31; -6 * 0.75 = -4.5 -> -4, 6 * 0.75 = 4.5 -> 5
    assert requantize(np.array([-6, 6, -5, 5]), 3 << 29, 31).tolist() == [-4, 5, -4, 4]
    # the zero point is added after rounding, then saturation
    assert requantize(np.array([5, -5]), half, 31, zero_point=10).tolist() == [13, 8]


def test_requantize_saturates_both_ends_and_picks_dtype() -> None:
    one = (1 << 30, 30)                                    # m * 2^-30 = 1.0
    acc = np.array([-1000, -129, -128, 127, 128, 1000])
    y = requantize(acc, *one)
    assert y.dtype == np.int8 and y.tolist() == [-128, -128, -128, 127, 127, 127]
    yu = requantize(acc, *one, zero_point=128, signed=False)
    assert yu.dtype == np.uint8 and yu.tolist() == [0, 0, 0, 255, 255, 255]
    assert requantize(acc, *one, bits=4).tolist() == [-8, -8, -8, 7, 7, 7]
    assert requantize(acc, *one, bits=16).dtype == np.int16
    big = np.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max])
    assert requantize(big, (1 << 31) - 1, 1, bits=32).tolist() == [-(1 << 31), (1 << 31) - 1]
    with pytest.raises(ValueError, match="int32"):
        requantize(np.array([1 << 31], dtype=np.int64), *one)
    with pytest.raises(ValueError):
        requantize(acc, 1 << 30, 0)
    with pytest.raises(TypeError):
        requantize(np.array([1.5]), *one)


def test_saturate() -> None:
    x = np.array([-300, -129, -128, 0, 127, 128, 300])
    assert saturate(x, 8).tolist() == [-128, -128, -128, 0, 127, 127, 127]
    assert saturate(x, 8, signed=False).tolist() == [0, 0, 0, 0, 127, 128, 255]
    assert saturate(x, 2).tolist() == [-2, -2, -2, 0, 1, 1, 1]
    assert int_range(24) == (-(1 << 23), (1 << 23) - 1)
    with pytest.raises(TypeError):
        saturate(np.array([0.5]), 8)


def test_requantize_per_channel_broadcast() -> None:
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(5, 7)).astype(np.int32)
    m, s = quantize_multiplier(rng.uniform(1e-6, 1e-4, size=7))
    zp = rng.integers(-3, 4, size=7)
    y = requantize(acc, m, s, zp)
    for ch in range(7):
        assert np.array_equal(y[:, ch], requantize(acc[:, ch], int(m[ch]), int(s[ch]), int(zp[ch])))


# ---------------------------------------------------------------------------------------------- multipliers

def test_quantize_multiplier_round_trip() -> None:
    rng = np.random.default_rng(0)
    reals = np.exp2(rng.uniform(-31.9, 29.9, size=20000))
    m, s = quantize_multiplier_array(reals)
    assert m.dtype == np.int32 and m.min() >= 1 << 30 and int(m.max()) < 1 << 31
    assert s.min() >= 1 and s.max() <= 62
    rel = np.abs(m * np.exp2(-s.astype(np.float64)) - reals) / reals
    assert rel.max() <= 2.0**-31 * 1.001                    # measured: <= 2^-31 (half an LSB of 2^30)
    for r in (1.0, 0.5, 0.75, 1e-9, 3.0e8, 1.0 - 2.0**-40):
        mi, si = quantize_multiplier(r)
        assert isinstance(mi, int) and isinstance(si, int) and (1 << 30) <= mi < (1 << 31)
        assert abs(mi * 2.0**-si - r) / r <= 2.0**-31
    assert quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 30)   # rounds up to 2^31: carry into the shift
    m15, s15 = quantize_multiplier(0.3, bits=15)
    assert (1 << 14) <= m15 < (1 << 15) and abs(m15 * 2.0**-s15 - 0.3) / 0.3 <= 2.0**-15


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 2.0**-34, 2.0**31])
def test_quantize_multiplier_rejects(bad: float) -> None:
    with pytest.raises(ValueError):
        quantize_multiplier(bad)


# ---------------------------------------------------------------------------------------------- property test

def _requantize_slow(acc: int, m: int, shift: int, zp: int, bits: int, signed: bool) -> int:
    v = (acc * m + (1 << (shift - 1))) >> shift        # Python ints: >> is floor, no overflow
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return min(max(v + zp, lo), hi)


@settings(max_examples=400, deadline=None)
@given(acc=st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=8),
       m=st.integers(0, (1 << 31) - 1), shift=st.integers(1, 62), zp=st.integers(-300, 300),
       bits=st.integers(2, 32), signed=st.booleans())
def test_requantize_matches_python_int_reference(acc: list[int], m: int, shift: int, zp: int, bits: int,
                                                 signed: bool) -> None:
    got = requantize(np.array(acc, dtype=np.int64), m, shift, zp, bits, signed)
    assert got.tolist() == [_requantize_slow(a, m, shift, zp, bits, signed) for a in acc]


# ---------------------------------------------------------------------------------------------- LUTs

def _silu_ref(x: float) -> float:
    return x / (1.0 + math.exp(-x))


def _softplus_ref(x: float) -> float:
    return x if x > 30 else math.log1p(math.exp(x))


def _gelu_ref(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("fn, ref", [(silu, _silu_ref), (softplus, _softplus_ref), (gelu, _gelu_ref)])
@pytest.mark.parametrize("in_scale, in_zp, out_scale, out_zp, out_bits", [
    (0.05, 0, 0.03, 0, 8), (6.0 / 127, -3, 4.0 / 127, 5, 8), (0.02, 7, 0.0005, -100, 16),
    (0.1, 0, 0.004, 0, 8)])
def test_lut_matches_float_quantisation(fn, ref, in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                                        out_bits: int) -> None:
    lut = build_lut(fn, in_scale, in_zp, out_scale, out_zp, out_bits)
    assert lut.shape == (256,) and lut.dtype == (np.int8 if out_bits == 8 else np.int16)
    lo, hi = int_range(out_bits)
    ties = 0
    for i in range(256):
        v = ref((i - 128 - in_zp) * in_scale) / out_scale
        if abs(v - math.floor(v) - 0.5) < 1e-9:          # documented: ties depend on the float's last bit
            ties += 1
            continue
        assert lut[i] == min(max(math.floor(v + 0.5) + out_zp, lo), hi), (fn.__name__, i)
    assert ties <= 2
    q = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(apply_lut(q, lut), lut)        # index = q + 128
    assert apply_lut(np.array([-128, 127]), lut).tolist() == [lut[0], lut[255]]


def test_lut_float_references() -> None:
    x = np.linspace(-8, 8, 101)
    np.testing.assert_allclose(silu(x), [_silu_ref(v) for v in x], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(softplus(x), [_softplus_ref(v) for v in x], rtol=1e-12)
    np.testing.assert_allclose(gelu(x), [_gelu_ref(v) for v in x], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError):
        apply_lut(np.array([128]), build_lut(silu, 0.05, 0, 0.03, 0))


# ---------------------------------------------------------------------------------------------- exp2 / exp

def test_exp2_table() -> None:
    assert EXP2_TABLE_Q15.shape == (257,) and EXP2_TABLE_Q15[0] == 32768 and EXP2_TABLE_Q15[256] == 16384
    assert np.all(np.diff(EXP2_TABLE_Q15) < 0)


@pytest.mark.parametrize("frac_bits", [8, 12, 16, 20, 24])
def test_exp2_neg_fixed_error_and_monotone(frac_bits: int) -> None:
    step = max(1, (1 << frac_bits) >> 12)
    e = np.arange(0, 17 << frac_bits, step, dtype=np.int64)
    e = np.concatenate([e, np.arange(0, 1 << min(frac_bits, 16))])   # every code of the first octave
    v = exp2_neg_fixed(e, frac_bits)
    assert v.dtype == np.int32
    err = np.abs(v - 32768.0 * np.exp2(-e / 2.0**frac_bits))
    assert err.max() <= 1.0                               # measured: 0.75 (frac 8), 0.984 (frac >= 12)
    order = np.argsort(e, kind="stable")
    assert np.all(np.diff(v[order]) <= 0)                 # non-increasing
    one = 1 << frac_bits
    edges = np.array([0, one, 2 * one, 15 * one, 16 * one, (1 << 31) - 1])
    assert exp2_neg_fixed(edges, frac_bits).tolist() == [32768, 16384, 8192, 1, 0, 0]


def test_exp2_neg_fixed_rejects() -> None:
    with pytest.raises(ValueError):
        exp2_neg_fixed(np.array([-1]))
    with pytest.raises(ValueError):
        exp2_neg_fixed(np.array([1 << 31]))
    with pytest.raises(ValueError):
        exp2_neg_fixed(np.array([0]), frac_bits=7)


def test_exp_neg_q15() -> None:
    x = np.arange(0, 20 << 16, 7, dtype=np.int64)
    v = exp_neg_q15(x)
    assert np.abs(v - 32768.0 * np.exp(-x / 65536.0)).max() <= 1.1   # measured: 1.034 LSB
    assert exp_neg_q15(np.array([0, (1 << 31) - 1])).tolist() == [32768, 0]
