"""ef_requant_zp_i8 (ef_requant.c) against the numpy reference of the requant op, bit for bit: per-channel
multipliers and shifts over the whole range, output zero points at both ends, saturation after the offset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeflow.ir.opdefs.qdq import requant
from edgeflow.quant.intmath import INT32_MAX, INT32_MIN, quantize_multiplier_array

from .conftest import ptr

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]


@pytest.mark.parametrize("zp", [0, -128, -5, 77, 127])
@pytest.mark.parametrize("bits", [15, 31])
def test_requant_zp_kernel_matches_reference(kernels, zp, bits):
    r = np.random.default_rng(zp + 300 + bits)
    rows, cols = 7, 13
    acc = r.integers(-(1 << 20), 1 << 20, (rows, cols)).astype(np.int32)
    acc[0, :4] = [INT32_MIN, INT32_MAX, -1, 0]                       # the accumulator's extremes
    m, sh = quantize_multiplier_array(np.exp(r.uniform(np.log(1e-7), np.log(2.0), cols)), bits=bits)
    want = requant(acc, m, sh, zp)
    y = np.zeros((rows, cols), np.int8)
    kernels.ef_requant_zp_i8(ptr(acc), rows, cols, ptr(m), ptr(sh), zp, ptr(y))
    assert np.array_equal(y, want)
    assert len(np.unique(want)) > 10 and (want == 127).any() and (want == -128).any()
