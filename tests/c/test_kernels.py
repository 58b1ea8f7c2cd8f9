"""C kernels (firmware/kernels) against the numpy integer ops (edgeflow.ir.ops), bit for bit, with tiles."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeflow.ir import ops
from edgeflow.ir.ops_norm import layernorm_params
from edgeflow.quant.intmath import EXP2_TABLE_Q15, exp2_neg_fixed, quantize_multiplier_array, requantize
from edgeflow.quant.intscan import ScanConsts, ScanQuant, calibrate_state_scale, int_scan
from edgeflow.quant.scan_bounds import narrow_steps

from .conftest import CFLAGS, ScanConstsC, c_sources, ptr

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

I8 = np.int8


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def codes(r: np.random.Generator, shape, lo: int = -128, hi: int = 127) -> np.ndarray:
    return r.integers(lo, hi + 1, size=shape).astype(I8)


def mults(r: np.random.Generator, n: int, lo: float, hi: float, bits: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (m, sh) of log-uniform real scales in [lo, hi] (hi large enough to saturate)."""
    return quantize_multiplier_array(np.exp(r.uniform(np.log(lo), np.log(hi), n)), bits=bits)


def splits(n: int, *cuts: int) -> list[tuple[int, int]]:
    edges = [0, *[c for c in cuts if 0 < c < n], n]
    return list(zip(edges[:-1], edges[1:], strict=True))


# ---- build checks ------------------------------------------------------------------------------------

def test_kernels_compile_strict(tmp_path):
    """Every kernel file compiles warning-free with extra warnings, and as ILP32 freestanding without FP registers
    (rv32imc has no FPU) when gcc -m32 works; objects need nothing but libgcc's int64 helpers (and ef_fused.c,
    which composes kernels, the kernels it composes)."""
    extra = ["-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wvla", "-pedantic", "-Wcast-qual"]
    for src in c_sources():
        text = src.read_text()
        assert text.startswith("/* "), f"{src.name} must open with a one-line role comment"
        assert set(re.findall(r"#include\s+<([^>]+)>", text)) <= {"stdint.h", "stddef.h", "string.h"}, src.name
        assert not re.search(r"\b(float|double|malloc|__int128)\b", text), src.name
        subprocess.run(["gcc", *CFLAGS, *extra, "-c", str(src), "-o", str(tmp_path / "a.o")], check=True)
    probe = subprocess.run(["gcc", "-m32", "-ffreestanding", "-c", "-x", "c", "-", "-o", str(tmp_path / "p.o")],
                           input="int x;\n", text=True, capture_output=True)
    if probe.returncode != 0:
        pytest.skip("gcc -m32 unavailable")
    for src in c_sources():
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["gcc", "-m32", "-ffreestanding", "-mgeneral-regs-only", "-fno-pic", *CFLAGS, *extra,
                        "-c", str(src), "-o", str(obj)], check=True)
        undef = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True).stdout.split()
        allowed = {"U", "ef_exp2_neg_q15", "ef_exp2_table_q15", "__udivdi3", "__divdi3", "memcpy", "memset",
                   *(("ef_dwconv1d_causal_i8",) if src.name == "ef_fused.c" else ())}
        assert set(undef) <= allowed, f"{src.name} needs {set(undef) - allowed}"


def test_exp2_table_and_function(kernels):
    table = (ctypes.c_int32 * 257).in_dll(kernels, "ef_exp2_table_q15")
    assert list(table) == EXP2_TABLE_Q15.tolist()
    r = rng(1)
    for frac in (8, 16, 20, 24):
        e = np.concatenate([r.integers(0, 2**31 - 1, 300), r.integers(0, 17 << frac, 300), [0, 2**31 - 1]])
        got = [kernels.ef_exp2_neg_q15(int(v), frac) for v in e]
        assert got == exp2_neg_fixed(e, frac).tolist()


# ---- linear and patch embedding ----------------------------------------------------------------------

def test_pack_layout_and_roundtrip():
    assert ops.pack_weights(np.array([[1, -1, 0, -2, 1]]), 2).tolist() == [[0x8D, 0x01]]
    assert ops.pack_weights(np.array([[-8, 7, 3]]), 4).tolist() == [[0x78, 0x03]]
    r = rng(2)
    for bits, n_in in ((2, 385), (4, 57), (8, 3), (2, 3)):
        w = r.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(7, n_in))
        p = ops.pack_weights(w, bits)
        assert p.shape == (7, ops.row_bytes(n_in, bits)) and p.dtype == np.uint8
        assert np.array_equal(ops.unpack_weights(p.tobytes(), bits, n_in), w)
    assert ops.row_bytes(385, 2) == 97


def test_ternary_pack_layout_and_roundtrip():
    # five weights a byte, base 3, first weight least significant: [1, -1, 0, 1, 1] -> 2 + 0 + 9 + 54 + 162
    assert ops.pack_weights(np.array([[1, -1, 0, 1, 1, -1]]), ops.TERNARY).tolist() == [[227, 0]]
    r = rng(12)
    for n_in in (385, 1540, 25, 1, 4, 5, 6):
        w = r.integers(-1, 2, size=(9, n_in))
        p = ops.pack_weights(w, ops.TERNARY)
        assert p.shape == (9, -(-n_in // 5)) == (9, ops.row_bytes(n_in, ops.TERNARY))
        assert int(p.max()) < 243 and np.array_equal(ops.unpack_weights(p.tobytes(), ops.TERNARY, n_in), w)
    assert ops.row_bytes(385, ops.TERNARY) == 77 and ops.is_ternary(w) and not ops.is_ternary(w - 1)
    with pytest.raises(ValueError, match="ternary"):
        ops.pack_weights(np.array([[-2, 0]]), ops.TERNARY)


@pytest.mark.parametrize("bits", [ops.TERNARY, 2, 4, 8])
@pytest.mark.parametrize("shape", [(80, 385, 7), (1, 57, 7), (5, 3, 7), (17, 1540, 13), (70, 130, 21)])
def test_linear(kernels, bits, shape):
    n_t, n_in, n_out = shape
    r = rng(bits * 1000 + n_in)
    pad_x, pad_y = 5, 3                                    # strided rows inside wider buffers
    xbuf = codes(r, (n_t, n_in + pad_x))
    x = xbuf[:, :n_in]
    w = (r.integers(-1, 2, size=(n_out, n_in)) if bits == ops.TERNARY
         else r.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n_out, n_in)))
    wp = ops.pack_weights(w, bits)
    bias = r.integers(-5000, 5000, n_out).astype(np.int32)
    m, sh = mults(r, n_out, 1e-5, 4.0 if bits == ops.TERNARY else 0.5)  # ternary sums are smaller: saturate too
    for b in (bias, None):
        want = ops.linear(x, w, b, m, sh)
        assert (want == 127).any() or (want == -128).any() or n_t * n_out < 40
        y = np.zeros((n_t, n_out + pad_y), dtype=I8)
        for t0, t1 in splits(n_t, 3, 51):
            for o0, o1 in splits(n_out, 2, 5):
                kernels.ef_linear_i8(ptr(xbuf), n_in + pad_x, n_in, ptr(wp), bits, ptr(b), ptr(m), ptr(sh),
                                     ptr(y), n_out + pad_y, t0, t1, o0, o1)
        assert np.array_equal(y[:, :n_out], want)
        acc = np.zeros((n_t, n_out), dtype=np.int32)
        kernels.ef_linear_acc_i32(ptr(xbuf), n_in + pad_x, n_in, ptr(wp), bits, ptr(b), ptr(acc), n_out,
                                  0, n_t, 0, n_out)
        assert np.array_equal(acc, ops.linear_acc(x, w, b))


@settings(max_examples=60, deadline=None)
@given(n_t=st.integers(1, 9), n_in=st.integers(1, 70), n_out=st.integers(1, 9), bits=st.sampled_from([1, 2, 4, 8]),
       seed=st.integers(0, 2**31), cut=st.floats(0, 1))
def test_linear_property(kernels, n_t, n_in, n_out, bits, seed, cut):
    """Random shapes, one random output tile: only the tile is written, and it matches the reference."""
    r = rng(seed)
    x = codes(r, (n_t, n_in))
    lo, hi = (-1, 2) if bits == ops.TERNARY else (-(1 << (bits - 1)), 1 << (bits - 1))
    w = r.integers(lo, hi, size=(n_out, n_in))
    bias = r.integers(-(1 << 20), 1 << 20, n_out).astype(np.int32)
    m, sh = mults(r, n_out, 1e-6, 10.0)
    t0, o0 = int(cut * n_t) % n_t, int(cut * n_out) % n_out
    wp = ops.pack_weights(w, bits)
    y = np.full((n_t, n_out), 99, dtype=I8)
    kernels.ef_linear_i8(ptr(x), n_in, n_in, ptr(wp), bits, ptr(bias), ptr(m), ptr(sh),
                         ptr(y), n_out, t0, n_t, o0, n_out)
    want = np.full((n_t, n_out), 99, dtype=I8)
    want[t0:, o0:] = ops.linear(x, w, bias, m, sh)[t0:, o0:]
    assert np.array_equal(y, want)


def test_conv2d_patch_semantics_match_torch():
    r = rng(3)
    x, w = codes(r, (6, 64)), r.integers(-8, 8, size=(3, 32))
    bias = r.integers(-100, 100, 3).astype(np.int32)
    m, sh = np.full(3, 1 << 30, np.int32), np.full(3, 30, np.int32)   # multiplier exactly 1: y = sat8(acc)
    small = (x // 16).astype(I8)
    got = ops.conv2d_patch(small, w, bias, m, sh, (2, 16))
    conv = torch.nn.functional.conv2d(torch.tensor(small, dtype=torch.float64)[None, None],
                                      torch.tensor(w, dtype=torch.float64).reshape(3, 1, 2, 16),
                                      torch.tensor(bias, dtype=torch.float64), stride=(2, 16))
    tok = conv.permute(0, 3, 1, 2).reshape(4, 9)[None].numpy()[0]
    assert np.array_equal(got, np.clip(tok, -128, 127).astype(I8))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_conv2d_patch(kernels, bits):
    r = rng(40 + bits)
    n_h, n_w, n_e, kh, kw = 22, 1280, 35, 2, 16
    rows, n_l = n_h // kh, n_w // kw
    x = codes(r, (n_h, n_w))
    w = r.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n_e, kh * kw))
    wp = ops.pack_weights(w, bits)
    bias = r.integers(-3000, 3000, n_e).astype(np.int32)
    pos = ops.fold_addend(r.normal(0, 0.02, (n_l, n_e * rows)), 0.05, r.uniform(0.001, 0.01, n_e), rows)
    m, sh = mults(r, n_e, 1e-4, 0.3, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)              # per-channel 15-bit multipliers, int8 shifts
    assert np.abs(pos).max() < 1 << 15                     # the small addend is stored int16 ...
    wide = pos * 64 + 1                                    # ... a wide one int32 (beyond int16)
    assert np.abs(wide).max() >= 1 << 15
    for add16, add32 in ((None, None), (pos.astype(np.int16), None), (None, pos), (None, wide)):
        add = add16 if add16 is not None else add32
        want = ops.conv2d_patch(x, w, bias, m, sh, (kh, kw), add)
        y = np.zeros((n_l, n_e * rows), dtype=I8)
        for l0, l1 in splits(n_l, 7, 45):
            for e0, e1 in splits(n_e, 11):
                kernels.ef_conv2d_patch_i8(ptr(x), n_w, rows, kh, kw, ptr(wp), bits, ptr(bias), ptr(add16),
                                           ptr(add32), n_e * rows, ptr(m), ptr(sh), ptr(y), n_e * rows, l0, l1,
                                           e0, e1)
        assert np.array_equal(y, want)
        assert (want == 127).any() and (want == -128).any()


# ---- mixer pieces ------------------------------------------------------------------------------------

def test_dwconv1d_causal(kernels):
    r = rng(5)
    n_l, n_c, k = 80, 37, 4
    x, w = codes(r, (n_l, n_c)), codes(r, (n_c, k))
    bias = r.integers(-2000, 2000, n_c).astype(np.int32)
    m, sh = mults(r, n_c, 1e-4, 0.05, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)              # per-channel 15-bit multipliers, int8 shifts
    want = ops.dwconv1d_causal(x, w, bias, m, sh)
    conv = torch.nn.functional.conv1d(torch.tensor(x.T, dtype=torch.float64)[None],
                                      torch.tensor(w, dtype=torch.float64)[:, None, :],
                                      torch.tensor(bias, dtype=torch.float64), padding=k - 1, groups=n_c)
    acc = conv[0, :, :n_l].T.numpy().astype(np.int64)
    assert np.array_equal(want, requantize(acc, m[None, :], sh[None, :]))
    y = np.zeros_like(x)
    for t0, t1 in splits(n_l, 1, 30):                      # whole-tensor sub-ranges
        for c0, c1 in splits(n_c, 16):
            kernels.ef_dwconv1d_causal_i8(ptr(x), n_c, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(y), n_c,
                                          t0, t1, c0, c1)
    assert np.array_equal(y, want)
    y2 = np.zeros_like(x)                                  # time tile with K-1 halo rows in its own buffer
    t0, t1 = 30, 53
    tile = np.ascontiguousarray(x[t0 - (k - 1):t1])
    out = np.zeros((t1 - t0 + k - 1, n_c), dtype=I8)
    kernels.ef_dwconv1d_causal_i8(ptr(tile), n_c, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(out), n_c,
                                  k - 1, k - 1 + t1 - t0, 0, n_c)
    y2[t0:t1] = out[k - 1:]
    assert np.array_equal(y2[t0:t1], want[t0:t1])


def test_dwconv1d_causal_with_fused_lut(kernels):
    """ef_dwconv1d_causal_lut_i8 (the plan's fused lut: the cluster HALs wrap it) = the lut of the conv, on the
    sub-ranges it writes only."""
    r = rng(15)
    n_l, n_c, k = 40, 21, 4
    x, w = codes(r, (n_l, n_c)), codes(r, (n_c, k))
    bias = r.integers(-2000, 2000, n_c).astype(np.int32)
    m, sh = mults(r, n_c, 1e-4, 0.05, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)
    table = codes(r, 256)
    want = ops.lut(ops.dwconv1d_causal(x, w, bias, m, sh), table)
    y = np.full_like(x, 77)
    for t0, t1 in splits(n_l, 1, 17):
        for c0, c1 in splits(n_c, 8):
            kernels.ef_dwconv1d_causal_lut_i8(ptr(x), n_c, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(y), n_c,
                                              t0, t1, c0, c1, ptr(table))
    assert np.array_equal(y, want)
    part = np.full_like(x, 77)
    kernels.ef_dwconv1d_causal_lut_i8(ptr(x), n_c, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(part), n_c,
                                      5, 9, 3, 11, ptr(table))
    assert np.array_equal(part[5:9, 3:11], want[5:9, 3:11])
    part[5:9, 3:11] = 77
    assert (part == 77).all()                              # nothing outside the range written


def test_lut_mul_flip(kernels):
    r = rng(6)
    table = codes(r, 256)
    x = np.arange(-128, 128, dtype=I8)
    y = np.zeros_like(x)
    kernels.ef_lut_i8(ptr(x), ptr(y), 256, ptr(table))
    assert np.array_equal(y, ops.lut(x, table))
    a, b = codes(r, 1001), codes(r, 1001)
    for real in (0.0123, 0.9, 0.00071):
        (m,), (sh,) = quantize_multiplier_array([real])
        y = np.zeros_like(a)
        kernels.ef_mul_requant_i8(ptr(a), ptr(b), ptr(y), a.size, int(m), int(sh))
        assert np.array_equal(y, ops.mul_requant(a, b, int(m), int(sh)))
    x2 = codes(r, (80, 24))
    y2 = np.zeros_like(x2)
    kernels.ef_flip_rows_i8(ptr(x2), ptr(y2), 80, 24)
    assert np.array_equal(y2, ops.flip_time(x2))


def test_add_requant_residual(kernels):
    r = rng(7)
    n_l, n_c = 80, 385
    scales, s_y = [0.031, 0.012, 0.0047], 0.037
    mm, s = ops.add_requant_params(scales, s_y)
    assert (1 << 29) <= mm.max() < (1 << 30)
    x, fwd, rev = codes(r, (n_l, n_c)), codes(r, (n_l, n_c)), codes(r, (n_l, n_c))
    want = ops.add_requant([x, fwd, ops.flip_time(rev)], mm, s)
    ideal = (x * scales[0] + fwd * scales[1] + rev[::-1] * scales[2]) / s_y
    assert np.abs(want - np.clip(ideal, -128, 127)).max() <= 0.5 + 1e-6
    assert (want == 127).any() and (want == -128).any()
    xs = (ctypes.c_void_p * 3)(ptr(x), ptr(fwd), ptr(rev) + (n_l - 1) * n_c)
    strides = np.array([n_c, n_c, -n_c], dtype=np.int32)
    y = np.zeros_like(x)
    kernels.ef_add_requant_i8(xs, ptr(strides), ptr(mm), 3, s, ptr(y), n_c, n_l, n_c)
    assert np.array_equal(y, want)


def test_meanpool(kernels):
    r = rng(8)
    x = codes(r, (80, 385))
    x[:, :5] = 127
    m, sh = ops.meanpool_params(0.02, 0.01, 80)
    want = ops.meanpool_tokens(x, m, sh)
    assert np.abs(want - np.clip(x.mean(axis=0) * 2, -128, 127)).max() <= 0.5 + 1e-6
    y = np.zeros(385, dtype=I8)
    for c0, c1 in splits(385, 100, 101):
        kernels.ef_meanpool_tokens_i8(ptr(x), 385, 80, ptr(y), m, sh, c0, c1)
    assert np.array_equal(y, want)


# ---- scan --------------------------------------------------------------------------------------------

def scan_case(seed: int, sat: bool = False):
    r = rng(seed)
    n_l, d_in, d_st = 80, 24, 16
    a = -np.tile(np.arange(1, d_st + 1, dtype=np.float64), (d_in, 1))
    a[:4] *= 40.0 / 16.0                                   # channels with A down to -40
    d = r.uniform(0.5, 1.5, d_in) * np.where(np.arange(d_in) % 3 == 1, -1.0, 1.0)   # negative D too
    d[5] = 1e-6                                            # a D term small enough for sh_D = 0
    s_u, s_delta, s_b, s_c, s_y = 3.0 / 127, 0.4 / 127, 4.0 / 127, 4.0 / 127, 2.0 / 127
    q_u = codes(r, (n_l, d_in))
    q_delta = np.clip(r.gamma(1.5, 20.0, (n_l, d_in)), 0, 127).astype(I8)
    q_delta[::7, ::3] = 0                                  # delta 0: the kernel's no-change fast path
    q_b, q_c = codes(r, (n_l, d_st)), codes(r, (n_l, d_st))
    s_h = calibrate_state_scale(q_u * s_u, q_delta * s_delta, a, q_b * s_b)
    if sat:
        s_h = s_h / 2000.0                                 # the int32 state saturates
    quant = ScanQuant.build(s_u, s_delta, s_b, s_c, a, d, s_h, s_y)
    return quant.constants(), (q_u, q_delta, q_b, q_c)


def run_scan_c(kernels, c, inputs, reverse: int, t_cuts=(), d_cuts=()):
    q_u, q_delta, q_b, q_c = inputs
    n_l, d_in = q_u.shape
    keep = [np.ascontiguousarray(a) for a in (c.ka, c.m_in, c.sh_in, c.m_y, c.m_D, c.sh_D, c.sh_y)]
    cc = ScanConstsC(*[ptr(a) for a in keep], c.ka_frac, c.d_inner, c.d_state)
    bc = np.ascontiguousarray(np.concatenate([q_b, q_c], axis=1))   # B and C interleaved like x_proj's output
    h = np.zeros((d_in, c.d_state), dtype=np.int32)
    y = np.zeros((n_l, d_in), dtype=I8)
    chunks = splits(n_l, *t_cuts)
    for t0, t1 in (reversed(chunks) if reverse else chunks):
        for d0, d1 in splits(d_in, *d_cuts):
            kernels.ef_scan_i8(ctypes.byref(cc), ptr(q_u), d_in, ptr(q_delta), d_in, ptr(bc),
                               ptr(bc) + c.d_state, 2 * c.d_state, ptr(y), d_in, ptr(h), t0, t1, d0, d1, reverse)
    return y, h


@pytest.mark.parametrize("sat", [False, True])
@pytest.mark.parametrize("direction", [0, 1])
def test_scan(kernels, direction, sat):
    c, inputs = scan_case(9 + direction, sat)
    want, h_want = int_scan(*inputs, c, direction, return_state=True)
    h_peak = max(np.abs(int_scan(*(a[:t] for a in inputs), c, 0, return_state=True)[1]).max()
                 for t in range(1, 81, 4))
    assert int(c.ka.max()) * 127 < 2**31 and (h_peak == 2**31 - 1) == sat
    y, h = run_scan_c(kernels, c, inputs, direction)
    assert np.array_equal(y, want) and np.array_equal(h, h_want)
    y2, _ = run_scan_c(kernels, c, inputs, direction, t_cuts=(33, 34), d_cuts=(10,))
    assert np.array_equal(y2, want)
    assert np.array_equal(ops.scan(*inputs, c, direction), want)


def edge_scan_case(seed: int, d_st: int):
    """Raw constants that reach every integer path of the kernel: sh_in from 1 to 62 (cuts k = sh_in - 1 and 24,
    and sh_in 62 beyond the int32 path), ka up to 65535 with ka_frac 11 and 24, and inputs at the code extremes
    (q_delta 127, q_u / q_B -128) so the state saturates both ways and fine-scale channels take int64 steps."""
    r = rng(seed)
    n_l, d_in = 48, 12
    sh_in = np.array([54, 33, 32, 31, 24, 22, 21, 16, 1, 62, 55, 28], dtype=np.int8)  # 54: last int32 one
    m_in = r.integers(1 << 30, 1 << 31, d_in).astype(np.int32)
    m_in[1] = (1 << 31) - 1
    ka = r.integers(0, 1 << 16, (d_in, d_st)).astype(np.uint16)
    ka[0, 0], ka[1, :2], ka[2, 0] = 65535, 0, 1
    m_y = r.integers(1 << 14, 1 << 15, d_in).astype(np.int16)
    m_d = r.integers(-(1 << 14), 1 << 14, d_in).astype(np.int16)
    sh_d = r.integers(0, 8, d_in).astype(np.int8)
    sh_y = r.integers(30, 46, d_in).astype(np.int8)
    sh_y[:3] = 20, 31, 32                               # the output from both words and from the high word
    q_u, q_b, q_c = codes(r, (n_l, d_in)), codes(r, (n_l, d_st)), codes(r, (n_l, d_st))
    q_delta = codes(r, (n_l, d_in), 0, 127)
    q_u[:8], q_b[:8], q_delta[:8] = -128, -128, 127     # extreme injections: + saturation
    q_u[8:14], q_b[8:14] = 127, -128                    # then - saturation
    q_delta[20::5] = 0
    return [ScanConsts(ka, frac, m_in, sh_in, m_y, m_d, sh_d, sh_y) for frac in (11, 24)], (q_u, q_delta, q_b, q_c)


@pytest.mark.parametrize("d_st", [8, 16, 5])
def test_scan_edge_paths(kernels, d_st):
    consts, inputs = edge_scan_case(d_st, d_st)
    fast = narrow_steps(inputs[0], inputs[1], consts[0])[inputs[1] != 0]
    assert fast.mean() > 0.5 and not fast.all()          # both kernel paths are exercised
    for c in consts:
        for direction in (0, 1):
            want, h_want = int_scan(*inputs, c, direction, return_state=True)
            y, h = run_scan_c(kernels, c, inputs, direction, t_cuts=(17,), d_cuts=(5,))
            assert np.array_equal(y, want) and np.array_equal(h, h_want)
            assert np.abs(h_want).max() == 2**31 - 1    # the clip was reached


# ---- LayerNorm ---------------------------------------------------------------------------------------

def ln_case(seed: int, n_ch: int, n_t: int = 80):
    """Residual-stream-like rows (per-row offset and spread, a few outliers) and trained-like gamma/beta."""
    r = rng(seed)
    rows = r.normal(r.normal(0, 0.3, (n_t, 1)), r.uniform(0.3, 1.5, (n_t, 1)), (n_t, n_ch))
    rows[:, :3] *= 3.0
    s_x = np.abs(rows).max() / 127
    x = np.clip(np.floor(rows / s_x + 0.5), -128, 127).astype(I8)
    x[0] = 5                                               # constant row: variance 0, eps only
    x[1] = np.where(np.arange(n_ch) % 2, 127, -128)        # extremes
    gamma, beta = r.normal(1.0, 0.2, n_ch), r.normal(0.0, 0.1, n_ch)
    return x, s_x, gamma, beta, 4.0 / 127


def layernorm_float(x, s_x, gamma, beta, eps, s_y):
    v = x.astype(np.float64) * s_x
    mu, var = v.mean(axis=1, keepdims=True), v.var(axis=1, keepdims=True)
    return ((v - mu) / np.sqrt(var + eps) * gamma + beta) / s_y


@pytest.mark.parametrize("n_ch", [385, 44])
def test_layernorm(kernels, n_ch):
    x, s_x, gamma, beta, s_y = ln_case(10 + n_ch, n_ch)
    k = layernorm_params(gamma, beta, 1e-5, s_x, s_y)
    want = ops.layernorm(x, k)
    y = np.zeros_like(x)
    for r0, r1 in splits(x.shape[0], 1, 37):
        kernels.ef_layernorm_i8(ptr(x), n_ch, ptr(y), n_ch, n_ch, k.eps_q, ptr(k.g), ptr(k.b), k.g_frac, r0, r1)
    assert np.array_equal(y, want)


@pytest.mark.parametrize("n_ch", [385, 44])
def test_layernorm_vs_float(n_ch):
    """Integer LayerNorm vs float LayerNorm on the dequantized input, in output LSB (unrounded float, clipped).

    Measured (20 seeds x 80 rows; C=385: 616,000 outputs, C=44: 70,400): max error 0.50001 LSB, i.e. 100 % within
    1 LSB and 99.999 % (C=385) / 99.997 % (C=44) equal to round(float); the misses are float .5 ties.
    Required: <= 1 LSB for >= 99 %; asserted here on 5 seeds with the tighter measured bounds."""
    errs = []
    for seed in range(5):
        x, s_x, gamma, beta, s_y = ln_case(seed, n_ch)
        got = ops.layernorm(x, layernorm_params(gamma, beta, 1e-5, s_x, s_y)).astype(np.float64)
        ideal = np.clip(layernorm_float(x, s_x, gamma, beta, 1e-5, s_y), -128, 127)
        errs.append(np.abs(got - ideal))
    err = np.concatenate(errs).ravel()
    assert (err <= 1.0).mean() >= 0.99
    assert err.max() <= 0.51 and (err <= 0.5 + 1e-9).mean() >= 0.999


# ---- attention ---------------------------------------------------------------------------------------

def test_matmul_qk_and_pv(kernels):
    r = rng(11)
    n_t, d_h = 80, 24
    q, k, v = codes(r, (n_t, d_h)), codes(r, (n_t, d_h)), codes(r, (n_t, d_h))
    (m,), (sh,) = quantize_multiplier_array([1.0 / 3000])
    want = ops.matmul(q, k.T, int(m), int(sh))
    y = np.zeros((n_t, n_t), dtype=I8)
    for i0, i1 in splits(n_t, 13):
        for j0, j1 in splits(n_t, 50):
            kernels.ef_matmul_i8(ptr(q), d_h, ptr(k), 1, d_h, d_h, int(m), int(sh), ptr(y), n_t, i0, i1, j0, j1)
    assert np.array_equal(y, want)
    p = codes(r, (n_t, n_t), 0, 127)
    want = ops.matmul(p, v, int(m), int(sh))
    y = np.zeros((n_t, d_h), dtype=I8)
    kernels.ef_matmul_i8(ptr(p), n_t, ptr(v), d_h, 1, n_t, int(m), int(sh), ptr(y), d_h, 0, n_t, 0, d_h)
    assert np.array_equal(y, want)


@pytest.mark.parametrize("s_x", [0.05, 0.4, 1e-3])
def test_softmax_rows(kernels, s_x):
    r = rng(12)
    x = codes(r, (40, 80))
    x[0] = 7
    s_y = 1.0 / 128
    ke, frac, m, sh = ops.softmax_params(s_x, s_y)
    want = ops.softmax_rows(x, ke, frac, m, sh)
    v = x.astype(np.float64) * s_x
    p = np.exp(v - v.max(axis=1, keepdims=True))
    ideal = np.clip(p / p.sum(axis=1, keepdims=True) / s_y, -128, 127)
    assert np.abs(want - ideal).max() <= 1.0
    y = np.zeros_like(x)
    for r0, r1 in splits(40, 9):
        kernels.ef_softmax_rows_i8(ptr(x), 80, ptr(y), 80, 80, ke, frac, m, sh, r0, r1)
    assert np.array_equal(y, want)
