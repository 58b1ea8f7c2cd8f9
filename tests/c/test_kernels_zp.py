"""The zero-point kernels (ef_zp.c) against their numpy references (ir/ops_zp.py), bit for bit: inputs' and
output's zero points at both ends of the int8 range, saturation after the offset; and each reference against the
float arithmetic it stands for ((x - z) s), so the zero points are carried, not merely matched."""

from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest

from edgeflow.ir import ops_zp
from edgeflow.ir.ops_norm import softmax_params
from edgeflow.quant.intmath import quantize_multiplier

from .conftest import ptr

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

ZPS = [(0, 0, 0), (-128, 127, -128), (17, -90, 33), (127, -128, 127)]


def _codes(r: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = r.integers(-128, 128, shape).astype(np.int8)
    x.reshape(-1)[:2] = [-128, 127]
    return x


def _around(r: np.random.Generator, shape: tuple[int, ...], z: int) -> np.ndarray:
    """Codes spread around zero point z (real values of both signs)."""
    return np.clip(z + r.integers(-90, 91, shape), -128, 127).astype(np.int8)


def _real(q: np.ndarray, s: float, z: int) -> np.ndarray:
    return (q.astype(np.float64) - z) * s


@pytest.mark.parametrize("za, zb, zy", ZPS)
def test_add_zp_kernel_and_reference(kernels, za, zb, zy):
    r = np.random.default_rng(za + 7 * zb + 900)
    a, b = _codes(r, (5, 11)), _codes(r, (5, 11))
    sa, sb, sy = 0.031, 0.017, 0.045
    mm, s, c = ops_zp.add_zp_params([sa, sb], [za, zb], sy, zy)
    want = ops_zp.add_zp([a, b], mm, s, c)
    exact = np.clip(np.rint((_real(a, sa, za) + _real(b, sb, zb)) / sy) + zy, -128, 127)
    assert np.abs(want - exact).max() <= 1 and (want == exact).mean() > 0.9
    y = np.zeros_like(a)
    xs = (ctypes.c_void_p * 2)(ptr(a), ptr(b))
    strides, mult = np.array([11, 11], np.int32), np.ascontiguousarray(mm, np.int32)
    kernels.ef_add_requant_zp_i8(ctypes.addressof(xs), ptr(strides), ptr(mult), 2, s, c, ptr(y), 11, 5, 11)
    assert np.array_equal(y, want)


@pytest.mark.parametrize("za, zb, zy", ZPS)
def test_mul_zp_kernel_and_reference(kernels, za, zb, zy):
    r = np.random.default_rng(za + 7 * zb + 901)
    a, b = _codes(r, (64,)), _codes(r, (64,))
    sa, sb, sy = 0.03, 0.02, 0.6 * 0.03 * 0.02 * 128
    m, sh = quantize_multiplier(sa * sb / sy)
    want = ops_zp.mul_zp(a, b, m, sh, za, zb, zy)
    exact = np.clip(np.rint(_real(a, sa, za) * _real(b, sb, zb) / sy) + zy, -128, 127)
    assert np.abs(want - exact).max() <= 1
    y = np.zeros_like(a)
    kernels.ef_mul_requant_zp_i8(ptr(a), ptr(b), ptr(y), 64, m, sh, za, zb, zy)
    assert np.array_equal(y, want) and ((want == 127).any() or (want == -128).any())   # saturates


@pytest.mark.parametrize("za, zb, zy", [(0, 0, 0), (-128, 127, 0), (17, -90, 33), (-128, 5, -128)])
def test_matmul_zp_kernel_and_reference(kernels, za, zb, zy):
    r = np.random.default_rng(za + 7 * zb + 902)
    a, b = _around(r, (6, 9), za), _around(r, (9, 7), zb)
    sa, sb, sy = 0.02, 0.03, 0.02 * 0.03 * 9 * 60
    m, sh = quantize_multiplier(sa * sb / sy)
    want = ops_zp.matmul_zp(a, b, m, sh, za, zb, zy)
    exact = np.clip(np.rint(_real(a, sa, za) @ _real(b, sb, zb) / sy) + zy, -128, 127)
    assert np.abs(want - exact).max() <= 1 and len(np.unique(want)) > 5
    y = np.zeros((6, 7), np.int8)
    bt = np.ascontiguousarray(b.T)                  # b read as Kᵀ rows: b_sk 1, b_sj K
    kernels.ef_matmul_zp_i8(ptr(a), 9, ptr(bt), 1, 9, 9, m, sh, za, zb, zy, ptr(y), 7, 0, 6, 0, 7)
    assert np.array_equal(y, want)


@pytest.mark.parametrize("zx, zy", [(0, 0), (-128, -128), (40, -128), (-7, 0)])
def test_softmax_zp_kernel_and_reference(kernels, zx, zy):
    r = np.random.default_rng(zx + 903)
    x = _codes(r, (5, 12))
    sx, sy = 0.05, 1.0 / 256
    ke, frac, m, sh = softmax_params(sx, sy)
    want = ops_zp.softmax_zp(x, ke, frac, m, sh, zy)
    p = np.exp(_real(x, sx, zx) - _real(x, sx, zx).max(axis=1, keepdims=True))
    exact = np.clip(np.rint(p / p.sum(axis=1, keepdims=True) / sy) + zy, -128, 127)
    assert np.abs(want - exact).max() <= 1          # the input's zero point cancels: max - x
    y = np.zeros_like(x)
    kernels.ef_softmax_rows_zp_i8(ptr(x), 12, ptr(y), 12, 12, ke, frac, m, sh, zy, 0, 5)
    assert np.array_equal(y, want)
