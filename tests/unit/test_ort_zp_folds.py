"""The zero-point folds the onnxruntime frontend (ir/qdq_ort_ops.py) relies on, on the numpy references: LayerNorm
ignores its input's zero point and takes the output's in beta (Q16: exactly + zp after the rounding); the identity
table of a Concat input and the ReduceMean pool carry both zero points to within one code of the float value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeflow.ir import ops_cnn
from edgeflow.ir.ops_norm import LN_B_FRAC, layernorm, layernorm_params
from edgeflow.quant.intmath import build_lut

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("zx, zy", [(-128, -128), (37, 0), (0, 91), (-60, -5)])
def test_layernorm_input_zero_point_cancels_and_output_zero_point_folds_into_beta(zx, zy):
    r = np.random.default_rng(zx + 1000)
    x = np.clip(zx + r.integers(-60, 61, (9, 16)), -128, 127).astype(np.int8)
    shifted = (x.astype(np.int16) - zx)
    assert shifted.min() >= -128 and shifted.max() <= 127
    c = layernorm_params(r.uniform(0.5, 1.5, 16), r.uniform(-0.3, 0.3, 16), 1e-5, 0.05, 0.04)
    y = layernorm(x, c)
    assert np.array_equal(y, layernorm(shifted.astype(np.int8), c))         # mean and variance ignore zx
    folded = dataclasses.replace(c, b=(c.b.astype(np.int64) + (zy << LN_B_FRAC)).astype(np.int32))
    want = np.clip(y.astype(np.int32) + zy, -128, 127)
    inside = (y > -128) & (y < 127)                                           # y itself not saturated
    assert np.array_equal(layernorm(x, folded)[inside], want[inside]) and inside.mean() > 0.9


@pytest.mark.parametrize("z_in, z_out", [(-128, 5), (40, -128), (0, 0)])
def test_identity_table_requantizes_with_both_zero_points(z_in, z_out):
    s_in, s_out = 0.021, 0.033
    codes = np.arange(-128, 128)
    table = build_lut(lambda t: t, s_in, z_in, s_out, z_out)
    exact = np.clip(np.rint((codes - z_in) * s_in / s_out) + z_out, -128, 127)
    assert np.abs(table.astype(np.int32) - exact).max() <= 1 and (table == exact).mean() > 0.95


@pytest.mark.parametrize("z_in, z_out", [(-128, -100), (23, 7)])
def test_token_mean_pool_carries_both_zero_points(z_in, z_out):
    r = np.random.default_rng(z_in + 2000)
    x = r.integers(-128, 128, (6, 10)).astype(np.int8)      # (C, T): ReduceMean over tokens, transposed
    s_in, s_out = 0.03, 0.011
    m, sh = ops_cnn.pool_params("avg", s_in, s_out, 10)
    y = ops_cnn.pool(x, m, sh, "avg", [10], [1], [0, 0], 0, z_in, z_out).reshape(-1)
    exact = np.clip(np.rint(((x.astype(np.float64) - z_in) * s_in).mean(axis=1) / s_out) + z_out, -128, 127)
    assert np.abs(y.astype(np.int32) - exact).max() <= 1
