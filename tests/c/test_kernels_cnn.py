"""CNN kernels (ef_conv.c, ef_pool.c) against the numpy reference (edgeflow.ir.ops_cnn), bit for bit, and the
reference against PyTorch's float conv / pooling on exactly representable values."""

from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeflow.ir import ops, ops_cnn
from edgeflow.quant.intmath import quantize_multiplier_array

from .conftest import ptr

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

I32 = ctypes.c_int32


class ConvGeom(ctypes.Structure):
    """Mirror of ef_conv_geom_t."""

    _fields_ = [(k, I32) for k in ("c_in", "h", "w", "c_out", "h_out", "w_out", "kh", "kw", "stride_h",
                                   "stride_w", "dil_h", "dil_w", "pad_t", "pad_l", "groups", "zp_in", "zp_out")]


class PoolGeom(ctypes.Structure):
    """Mirror of ef_pool_geom_t."""

    _fields_ = [(k, I32) for k in ("c", "h", "w", "h_out", "w_out", "kh", "kw", "stride_h", "stride_w", "pad_t",
                                   "pad_l", "mode", "count_include_pad", "zp_in", "zp_out")]


def _geom(x_shape, kernel, strides, pads, dil):
    return ops_cnn.geometry(x_shape, kernel, strides, pads, dil)


# (x shape, O, kernel, strides, pads, dilations, group): 1-D and 2-D, padding, stride, dilation, depthwise, grouped
CONV_CASES = [
    ((4, 37), 6, (7,), (2,), (3, 3), (1,), 1),
    ((8, 40), 8, (5,), (1,), (4, 4), (2,), 2),
    ((6, 19), 6, (3,), (1,), (2, 0), (1,), 6),
    ((1, 8, 33), 4, (1, 9), (1, 1), (0, 4, 0, 4), (1, 1), 1),
    ((4, 8, 16), 8, (8, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    ((3, 9, 11), 6, (3, 3), (2, 2), (1, 1, 2, 0), (2, 1), 3),
]


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(kernels, case, bits):
    x_shape, n_o, kernel, strides, pads, dil, group = case
    r = np.random.default_rng(bits * 100 + n_o + len(x_shape))
    x = r.integers(-128, 128, x_shape).astype(np.int8)
    w = r.integers(-(1 << (bits - 1)), 1 << (bits - 1), (n_o, x_shape[0] // group, *kernel)).astype(np.int8)
    spread = 74 * (1 << (bits - 1)) / np.sqrt(3) * np.sqrt(w[0].size)         # ~ std of the accumulator
    b = r.integers(-spread, spread, n_o).astype(np.int32)
    m, sh = quantize_multiplier_array(np.exp(r.uniform(np.log(20 / spread), np.log(300 / spread), n_o)), bits=15)
    for lo, hi in ((-128, 127), (0, 127), (0, 50)):
        want = ops_cnn.conv(x, w, b, m, sh, strides, pads, dil, group, lo, hi)
        assert lo == -128 or want.min() >= lo
        g = _geom(x_shape, kernel, strides, pads, dil)
        geom = ConvGeom(x_shape[0], g["h"], g["w"], n_o, g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"],
                        g["dh"], g["dw"], g["pt"], g["pl"], group)
        wp = ops.pack_weights(w.reshape(n_o, -1), bits)
        y = np.zeros(want.shape, np.int8)
        for o0, o1 in ((0, 1), (1, n_o // 2), (n_o // 2, n_o)):        # output-channel ranges (the team split)
            kernels.ef_conv_i8(ctypes.byref(geom), ptr(x), ptr(wp), bits, ptr(b), ptr(m), ptr(sh), lo, hi,
                               ptr(y), o0, o1)
        assert np.array_equal(y, want)
        assert len(np.unique(want)) > 4


ZERO_POINTS = ((-37, 0), (0, -128), (23, 41), (-128, 127))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_zero_points(kernels, case):
    """onnxruntime QDQ zero points: padding reads zp_in, zp_out added before saturation; the kernel equals the
    reference, and the reference equals the conv of x - zp_in with zero padding (bias - zp_in sum w folded)."""
    x_shape, n_o, kernel, strides, pads, dil, group = case
    r = np.random.default_rng(7 + n_o + len(x_shape))
    x = r.integers(-128, 128, x_shape).astype(np.int8)
    w = r.integers(-128, 128, (n_o, x_shape[0] // group, *kernel)).astype(np.int8)
    spread = 74 * 128 / np.sqrt(3) * np.sqrt(w[0].size)
    b = r.integers(-spread, spread, n_o).astype(np.int32)
    m, sh = quantize_multiplier_array(np.exp(r.uniform(np.log(20 / spread), np.log(300 / spread), n_o)), bits=15)
    g = _geom(x_shape, kernel, strides, pads, dil)
    for zp_in, zp_out in ZERO_POINTS:
        folded = (b - zp_in * w.reshape(n_o, -1).astype(np.int64).sum(1)).astype(np.int32)
        want = ops_cnn.conv(x, w, folded, m, sh, strides, pads, dil, group, zp_in=zp_in, zp_out=zp_out)
        shifted = ops_cnn.conv(x.astype(np.int64) - zp_in, w, b, m, sh, strides, pads, dil, group, -(1 << 20),
                               1 << 20)
        inside = (shifted > -128) & (shifted < 127)                  # not saturated before the offset
        assert inside.mean() > 0.3
        assert np.array_equal(want[inside], np.clip(shifted[inside].astype(np.int64) + zp_out, -128, 127))
        geom = ConvGeom(x_shape[0], g["h"], g["w"], n_o, g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"],
                        g["dh"], g["dw"], g["pt"], g["pl"], group, zp_in, zp_out)
        y = np.zeros(want.shape, np.int8)
        kernels.ef_conv_i8(ctypes.byref(geom), ptr(x), ptr(ops.pack_weights(w.reshape(n_o, -1), 8)), 8, ptr(folded),
                           ptr(m), ptr(sh), -128, 127, ptr(y), 0, n_o)
        assert np.array_equal(y, want), (zp_in, zp_out)
        assert len(np.unique(want)) > 4


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_semantics_match_torch(case):
    """With m/sh an exact power of two (2^-sh) and small values the integer conv equals torch's float conv."""
    x_shape, n_o, kernel, strides, pads, dil, group = case
    r = np.random.default_rng(7)
    x = r.integers(-8, 8, x_shape).astype(np.int8)
    w = r.integers(-4, 4, (n_o, x_shape[0] // group, *kernel)).astype(np.int8)
    b = r.integers(-50, 50, n_o).astype(np.int32)
    m, sh = np.full(n_o, 1 << 14, np.int32), np.full(n_o, 14, np.int32)        # multiplier 1.0
    got = ops_cnn.conv(x, w, b, m, sh, strides, pads, dil, group)
    nd = len(kernel)
    xt = torch.tensor(x, dtype=torch.float64)[None]
    xt = F.pad(xt, [p for ax in reversed(range(nd)) for p in (pads[ax], pads[nd + ax])])
    fn = F.conv1d if nd == 1 else F.conv2d
    want = fn(xt, torch.tensor(w, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), stride=strides,
              dilation=dil, groups=group)[0].numpy()
    assert np.array_equal(got, np.clip(want, -128, 127))


POOL_CASES = [
    ((4, 37), "max", (3,), (2,), (1, 1), 0),
    ((4, 37), "avg", (4,), (4,), (0, 0), 0),
    ((4, 37), "avg", (3,), (2,), (1, 1), 0),
    ((4, 37), "avg", (3,), (2,), (1, 1), 1),
    ((3, 8, 16), "avg", (1, 4), (1, 4), (0, 0, 0, 0), 0),
    ((3, 9, 10), "max", (3, 2), (2, 2), (1, 0, 1, 1), 0),
    ((3, 9, 10), "avg", (3, 3), (2, 1), (1, 1, 1, 1), 0),
    ((5, 1, 30), "avg", (1, 30), (1, 1), (0, 0, 0, 0), 0),                # a global average pool
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool(kernels, case):
    x_shape, mode, kernel, strides, pads, cip = case
    r = np.random.default_rng(len(kernel) + sum(kernel))
    x = r.integers(-128, 128, x_shape).astype(np.int8)
    taps = int(np.prod(kernel))
    for s_out in (0.05, 0.02):
        m, sh = ops_cnn.pool_params(mode, 0.03, s_out, taps)
        want = ops_cnn.pool(x, m, sh, mode, kernel, strides, pads, cip)
        g = _geom(x_shape, kernel, strides, pads, [1] * len(kernel))
        geom = PoolGeom(x_shape[0], g["h"], g["w"], g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"], g["pt"],
                        g["pl"], 0 if mode == "max" else 1, cip)
        y = np.zeros(want.shape, np.int8)
        kernels.ef_pool_i8(ctypes.byref(geom), ptr(x), ptr(m), ptr(sh), ptr(y), 0, 1)
        kernels.ef_pool_i8(ctypes.byref(geom), ptr(x), ptr(m), ptr(sh), ptr(y), 1, x_shape[0])
        assert np.array_equal(y, want)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_zero_points(kernels, case):
    """Pool with zero points: taps read as x - zp_in (padding 0 in that domain), zp_out added, kernel = reference."""
    x_shape, mode, kernel, strides, pads, cip = case
    r = np.random.default_rng(3 + len(kernel) + sum(kernel))
    x = r.integers(-128, 128, x_shape).astype(np.int8)
    m, sh = ops_cnn.pool_params(mode, 0.03, 0.02, int(np.prod(kernel)))
    g = _geom(x_shape, kernel, strides, pads, [1] * len(kernel))
    for zp_in, zp_out in ZERO_POINTS:
        want = ops_cnn.pool(x, m, sh, mode, kernel, strides, pads, cip, zp_in, zp_out)
        if mode == "max":   # max commutes with the shift: the zero-point-free pool of x - zp_in, shifted by zp_out
            base = ops_cnn.pool(x.astype(np.int64) - zp_in, m, sh, mode, kernel, strides, pads, cip)
            assert zp_out != 0 or np.array_equal(want, base)
        geom = PoolGeom(x_shape[0], g["h"], g["w"], g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"], g["pt"],
                        g["pl"], 0 if mode == "max" else 1, cip, zp_in, zp_out)
        y = np.zeros(want.shape, np.int8)
        kernels.ef_pool_i8(ctypes.byref(geom), ptr(x), ptr(m), ptr(sh), ptr(y), 0, x_shape[0])
        assert np.array_equal(y, want), (zp_in, zp_out)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_semantics_match_torch(case):
    """Scale 1 -> 1: max pool equals torch's; average pool is torch's average rounded half up (within 2^-15)."""
    x_shape, mode, kernel, strides, pads, cip = case
    x = np.random.default_rng(3).integers(-100, 100, x_shape).astype(np.int8)
    m, sh = ops_cnn.pool_params(mode, 1.0, 1.0, int(np.prod(kernel)))
    got = ops_cnn.pool(x, m, sh, mode, kernel, strides, pads, cip).astype(np.float64)
    nd = len(kernel)
    xt = torch.tensor(x, dtype=torch.float64)[None]
    if nd == 1 or (pads[0] == pads[nd] and pads[1] == pads[nd + 1]):
        sym = tuple(pads[:nd])
        if mode == "max":
            fn = F.max_pool1d if nd == 1 else F.max_pool2d
            want = fn(xt, kernel, strides, sym)[0].numpy()
        else:
            fn = F.avg_pool1d if nd == 1 else F.avg_pool2d
            avg = fn(xt, kernel, strides, sym, count_include_pad=bool(cip))[0].numpy()
            want = np.floor(avg + 0.5)
            tie = np.isclose(avg - np.floor(avg), 0.5)   # x.5 exactly: the 15-bit multiplier of 1/n may round down
            got = np.where(tie & (got == want - 1), want, got)
        if all(p <= k // 2 for p, k in zip(pads[:nd], kernel, strict=True)):
            assert np.array_equal(got, want)
