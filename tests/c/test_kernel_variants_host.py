"""The host kernel variant (firmware/kernels/host/) equals the portable kernels on the same inputs, on every path."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends import toolchain
from edgeflow.ir import ops
from edgeflow.ir.ops_norm import layernorm_params
from edgeflow.quant.intmath import EXP2_TABLE_Q15
from edgeflow.quant.intscan import int_scan
from edgeflow.quant.scan_bounds import narrow_steps

from .conftest import CFLAGS, KERNELS_DIR, RESTYPES, SIGNATURES, ScanConstsC, c_sources, ptr
from .test_kernels import codes, edge_scan_case, ln_case, mults, rng, run_scan_c, scan_case, splits

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

I8 = np.int8
VARIANT = KERNELS_DIR / "host"
BITS = (ops.TERNARY, 2, 4, 8)
STRICT = ["-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wvla", "-pedantic", "-Wcast-qual"]


def _cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    m = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(m.group(1).split()) if m else set()


def _base_flags() -> list[str]:
    return [f for f in CFLAGS if not f.startswith(("-march=", "-mtune="))]


#: the variant's code paths: its build with the host target's flags (-march=native: VNNI with masked tails here),
#: VNNI without AVX-512BW (no masked tails), AVX2 only, and no vector ISA; with the CPU flag each one needs.
PATHS = {"target": CFLAGS, "vnni": [*_base_flags(), "-mavx2", "-mavx512f", "-mavx512vl", "-mavx512vnni"],
         "avx2": [*_base_flags(), "-mavx2"], "plain": _base_flags()}
NEEDS = {"vnni": "avx512_vnni", "avx2": "avx2"}


def _build(name: str, sources: list[Path], flags: list[str], folder: Path) -> ctypes.CDLL:
    out = folder / f"lib{name}.so"
    cmd = ["gcc", *flags, *STRICT, "-shared", "-fPIC", "-I", str(KERNELS_DIR), *map(str, sources), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{name} does not compile:\n{res.stderr}"
    lib = ctypes.CDLL(str(out))
    for fn_name, args in SIGNATURES.items():
        fn = getattr(lib, fn_name)
        fn.argtypes = list(args)
        fn.restype = RESTYPES.get(fn_name)
    return lib


@pytest.fixture(scope="module")
def portable(tmp_path_factory) -> ctypes.CDLL:
    return _build("portable", c_sources(), CFLAGS, tmp_path_factory.mktemp("portable"))


@pytest.fixture(scope="module", params=sorted(PATHS))
def variant(request, tmp_path_factory) -> ctypes.CDLL:
    need = NEEDS.get(request.param)
    if need and need not in _cpu_flags():
        pytest.skip(f"this CPU has no {need}")
    return _build(f"host_{request.param}", toolchain.kernel_sources(("host",)), PATHS[request.param],
                  tmp_path_factory.mktemp(request.param))


def test_variant_files_replace_portable_ones():
    """Each host file replaces a portable one of the same name; the host target selects the variant."""
    from edgeflow.target import load_target

    files = sorted(p.name for p in VARIANT.glob("*.c"))
    assert files and all((KERNELS_DIR / f).exists() for f in files)
    assert load_target("host").compiler.kernels == ("host",)
    chosen = toolchain.kernel_sources(("host",))
    assert all(VARIANT / f in chosen and KERNELS_DIR / f not in chosen for f in files)


def _weights(r: np.random.Generator, bits: int, shape: tuple[int, int]) -> np.ndarray:
    if bits == ops.TERNARY:
        return r.integers(-1, 2, size=shape)
    return r.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape)


def _run_linear(lib, xbuf, xs, n_in, wp, bits, b, m, sh, n_t, n_out, tiles, pad_y=3):
    y = np.full((n_t, n_out + pad_y), 77, dtype=I8)
    acc = np.full((n_t, n_out + pad_y), 12345, dtype=np.int32)
    for t0, t1, o0, o1 in tiles:
        lib.ef_linear_i8(ptr(xbuf), xs, n_in, ptr(wp), bits, ptr(b), ptr(m), ptr(sh), ptr(y), n_out + pad_y,
                         t0, t1, o0, o1)
        lib.ef_linear_acc_i32(ptr(xbuf), xs, n_in, ptr(wp), bits, ptr(b), ptr(acc), n_out + pad_y,
                              t0, t1, o0, o1)
    return y, acc


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("shape", [(80, 385, 16), (1, 57, 7), (5, 3, 7), (17, 1540, 13), (3, 25, 9),
                                   (9, 33, 5), (4, 1921, 6), (130, 64, 3), (2, 4000, 4)])
def test_linear_variant_equals_portable(portable, variant, bits, shape):
    """Odd sizes, chunk and block edges (inputs 1920 / 1921, tokens past 128), strided rows, sub-ranges; both
    entry points; only the asked tile is written."""
    n_t, n_in, n_out = shape
    r = rng(bits * 7919 + n_in * 31 + n_t)
    pad_x = 7
    xbuf = codes(r, (n_t, n_in + pad_x))
    w = _weights(r, bits, (n_out, n_in))
    wp = ops.pack_weights(w, bits)
    m, sh = mults(r, n_out, 1e-5, 4.0 if bits == ops.TERNARY else 0.5)
    cuts = [splits(n_t, 1, n_t // 2 + 1), splits(n_out, 1, 3)]
    tiles = [(t0, t1, o0, o1) for t0, t1 in cuts[0] for o0, o1 in cuts[1]]
    for b in (r.integers(-5000, 5000, n_out).astype(np.int32), None):
        got = _run_linear(variant, xbuf, n_in + pad_x, n_in, wp, bits, b, m, sh, n_t, n_out, tiles)
        want = _run_linear(portable, xbuf, n_in + pad_x, n_in, wp, bits, b, m, sh, n_t, n_out, tiles)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert np.array_equal(got[1][:, :n_out], ops.linear_acc(xbuf[:, :n_in], w, b))
    sub = [(1, n_t, 1, n_out)] if n_t > 1 and n_out > 1 else [(0, n_t, 0, n_out)]
    got = _run_linear(variant, xbuf, n_in + pad_x, n_in, wp, bits, None, m, sh, n_t, n_out, sub)
    want = _run_linear(portable, xbuf, n_in + pad_x, n_in, wp, bits, None, m, sh, n_t, n_out, sub)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("xv,wsel", [(-128, "min"), (127, "max"), (-128, "max"), (127, "min"), (None, "alt")])
def test_linear_extremes(portable, variant, bits, xv, wsel):
    """Every product at its largest magnitude over long rows (the lane and chunk bounds of the portable kernel and
    the u8 x s8 steps of the host one), against the numpy reference."""
    n_t, n_in, n_out = 6, 1543, 6
    lo, hi = (-1, 1) if bits == ops.TERNARY else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    x = np.full((n_t, n_in), xv if xv is not None else 0, dtype=I8)
    if xv is None:
        x[:, ::2], x[:, 1::2] = -128, 127
    w = {"min": np.full((n_out, n_in), lo), "max": np.full((n_out, n_in), hi)}.get(wsel)
    if w is None:  # lo, hi alternating along a row, rows shifted by one
        w = np.where((np.arange(n_in)[None, :] + np.arange(n_out)[:, None]) % 2 == 0, lo, hi)
    wp = ops.pack_weights(w, bits)
    m, sh = mults(rng(5), n_out, 1e-7, 1e-6)
    tiles = [(0, n_t, 0, n_out)]
    for lib in (portable, variant):
        y, acc = _run_linear(lib, x, n_in, n_in, wp, bits, None, m, sh, n_t, n_out, tiles)
        assert np.array_equal(acc[:, :n_out], ops.linear_acc(x, w, None))
        assert np.array_equal(y[:, :n_out], ops.linear(x, w, None, m, sh))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("kh,kw", [(2, 16), (3, 100)])
def test_conv2d_patch_decoded_and_packed_paths(portable, bits, kh, kw):
    """The patch kernel decodes a channel's weights once when the patch has at most 256 of them (2 x 16) and reads
    them packed otherwise (3 x 100): both against the numpy reference."""
    r = rng(60 + bits + kw)
    rows, n_l, n_e = 2, 5, 3
    x = codes(r, (rows * kh, n_l * kw))
    w = _weights(r, bits, (n_e, kh * kw))
    bias = r.integers(-3000, 3000, n_e).astype(np.int32)
    m, sh = mults(r, n_e, 1e-4, 0.3, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)
    y = np.zeros((n_l, n_e * rows), dtype=I8)
    portable.ef_conv2d_patch_i8(ptr(x), n_l * kw, rows, kh, kw, ptr(ops.pack_weights(w, bits)), bits, ptr(bias),
                                None, None, 0, ptr(m), ptr(sh), ptr(y), n_e * rows, 0, n_l, 0, n_e)
    assert np.array_equal(y, ops.conv2d_patch(x, w, bias, m, sh, (kh, kw)))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("kh,kw,n_l", [(2, 16, 80), (2, 16, 17), (1, 16, 3), (16, 16, 5), (2, 8, 9), (3, 100, 4)])
def test_conv2d_patch_variant_equals_portable(portable, variant, bits, kh, kw, n_l):
    """The 16-wide patches (4 a zmm, 16 a pass, tails under a mask; up to 16 patch rows) and the other shapes, with
    no / int16 / int32 addends, patch and channel sub-ranges and extreme codes: equal to the portable kernel and
    ops.conv2d_patch; only the asked tile is written."""
    r = rng(500 + bits * 13 + kh * 7 + kw + n_l)
    rows, n_e = 3, 5
    x = codes(r, (rows * kh, n_l * kw + 3))                 # rows longer than the patches: a stride
    x[0, :kw] = -128
    w = _weights(r, bits, (n_e, kh * kw))
    wp = ops.pack_weights(w, bits)
    bias = r.integers(-3000, 3000, n_e).astype(np.int32)
    m, sh = mults(r, n_e, 1e-4, 0.3, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)
    add32 = r.integers(-40000, 40000, (n_l, n_e * rows)).astype(np.int32)
    add16 = r.integers(-3000, 3000, (n_l, n_e * rows)).astype(np.int16)
    for a16, a32 in ((None, None), (add16, None), (None, add32)):
        add = a16 if a16 is not None else a32
        want = ops.conv2d_patch(np.ascontiguousarray(x[:, : n_l * kw]), w, bias, m, sh, (kh, kw), add)
        assert len(np.unique(want)) > min(20, want.size // 8)   # codes spread, not all saturated
        for lib in (variant, portable):
            y = np.full((n_l, n_e * rows + 1), 55, dtype=I8)
            for l0, l1 in splits(n_l, *([1, n_l // 2 + 1] if n_l > 2 else [])):
                for e0, e1 in splits(n_e, 2):
                    lib.ef_conv2d_patch_i8(ptr(x), n_l * kw + 3, rows, kh, kw, ptr(wp), bits, ptr(bias), ptr(a16),
                                           ptr(a32), n_e * rows, ptr(m), ptr(sh), ptr(y), n_e * rows + 1, l0, l1,
                                           e0, e1)
            assert np.array_equal(y[:, : n_e * rows], want) and (y[:, n_e * rows] == 55).all()


@pytest.mark.parametrize("k", [1, 3, 4, 5])
def test_dwconv1d_any_taps(portable, k):
    """The 4-tap path (Mamba's d_conv) and the general one, over sub-ranges that start inside the history."""
    r = rng(70 + k)
    n_l, n_c = 23, 11
    x, w = codes(r, (n_l, n_c + 2)), codes(r, (n_c, k))
    bias = r.integers(-2000, 2000, n_c).astype(np.int32)
    m, sh = mults(r, n_c, 1e-4, 0.05, bits=15)
    m, sh = m.astype(np.int16), sh.astype(I8)
    y = np.zeros((n_l, n_c + 1), dtype=I8)
    for t0, t1 in splits(n_l, 1, 2, 3, 9):
        for c0, c1 in splits(n_c, 4):
            portable.ef_dwconv1d_causal_i8(ptr(x), n_c + 2, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(y), n_c + 1,
                                           t0, t1, c0, c1)
    assert np.array_equal(y[:, :n_c], ops.dwconv1d_causal(np.ascontiguousarray(x[:, :n_c]), w, bias, m, sh))


def _run_scan_table(lib, c, inputs, reverse: int, d_cuts=()):
    """The scan with ef_scan_consts_t.exp2_q15 pointing at a copy of the table (the tiled scan's L1 copy)."""
    q_u, q_delta, q_b, q_c = inputs
    n_l, d_in = q_u.shape
    keep = [np.ascontiguousarray(a) for a in (c.ka, c.m_in, c.sh_in, c.m_y, c.m_D, c.sh_D, c.sh_y)]
    tab = np.array(EXP2_TABLE_Q15, dtype=np.int32)
    cc = ScanConstsC(*[ptr(a) for a in keep], c.ka_frac, c.d_inner, c.d_state, ptr(tab))
    h = np.zeros((d_in, c.d_state), dtype=np.int32)
    y = np.zeros((n_l, d_in), dtype=I8)
    for d0, d1 in splits(d_in, *d_cuts):
        lib.ef_scan_i8(ctypes.byref(cc), ptr(q_u), d_in, ptr(q_delta), d_in, ptr(q_b), ptr(q_c), c.d_state,
                       ptr(y), d_in, ptr(h), 0, n_l, d0, d1, reverse)
    return y, h


@pytest.mark.parametrize("sat", [False, True])
@pytest.mark.parametrize("direction", [0, 1])
def test_scan_variant_equals_portable(portable, variant, direction, sat):
    """Trained-like constants (d_state 16, delta-0 steps, the state saturating or not), in time and channel
    chunks, with the default and a caller's exp2 table: the host scan equals the portable one and intscan."""
    c, inputs = scan_case(29 + direction, sat)
    want, h_want = int_scan(*inputs, c, direction, return_state=True)
    for cuts in (((), ()), ((33, 34), (10,)), ((1, 79), (1, 23))):
        got = run_scan_c(variant, c, inputs, direction, *cuts)
        ref = run_scan_c(portable, c, inputs, direction, *cuts)
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1]) and np.array_equal(got[0], want)
    assert np.array_equal(got[1], h_want)
    y, h = _run_scan_table(variant, c, inputs, direction, d_cuts=(7,))
    assert np.array_equal(y, want) and np.array_equal(h, h_want)


@pytest.mark.parametrize("d_st", [16, 8, 24, 32, 5])
def test_scan_variant_edge_paths(portable, variant, d_st):
    """Every integer path (sh_in 1..62, ka up to 65535, ka_frac 11 and 24, both saturations, int64 steps next to
    int32 ones) on whole vectors (16 lanes with AVX-512F, 8 with AVX2), a state of one masked vector (d_state <= 16
    with AVX-512BW/VL: 5, 8) and the scalar fallback (the other d_state per path): equal to the portable kernel."""
    consts, inputs = edge_scan_case(40 + d_st, d_st)
    fast = narrow_steps(inputs[0], inputs[1], consts[0])[inputs[1] != 0]
    assert fast.mean() > 0.5 and not fast.all()
    for c in consts:
        for direction in (0, 1):
            want, h_want = int_scan(*inputs, c, direction, return_state=True)
            got = run_scan_c(variant, c, inputs, direction, t_cuts=(17,), d_cuts=(5,))
            ref = run_scan_c(portable, c, inputs, direction, t_cuts=(17,), d_cuts=(5,))
            assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
            assert np.array_equal(got[0], want) and np.array_equal(got[1], h_want)


@pytest.mark.parametrize("k", [4, 3])
@pytest.mark.parametrize("n_c", [1540, 37, 16])
def test_dwconv1d_variant_equals_portable(portable, variant, k, n_c):
    """Whole 16-channel blocks and the channels past them, time tiles starting inside the history, requantization
    shifts from 1 to 62 with both saturations: equal to the portable kernel and the numpy reference."""
    r = rng(90 + k + n_c)
    n_l = 23
    x, w = codes(r, (n_l, n_c + 5)), codes(r, (n_c, k))
    x[:4], w[:3] = 127, -128
    bias = r.integers(-40000, 40000, n_c).astype(np.int32)
    bias[:2] = 2**30, -(2**30)
    m = r.integers(1 << 13, 1 << 15, n_c).astype(np.int16)
    sh = r.integers(8, 24, n_c).astype(I8)
    sh[:8] = 1, 2, 46, 47, 62, 30, 3, 16
    want = ops.dwconv1d_causal(np.ascontiguousarray(x[:, :n_c]), w, bias, m, sh)
    for lib in (variant, portable):
        y = np.full((n_l, n_c + 3), 55, dtype=I8)
        for t0, t1 in splits(n_l, 1, 2, 9):
            for c0, c1 in splits(n_c, *([7] if n_c > 7 else [])):
                lib.ef_dwconv1d_causal_i8(ptr(x), n_c + 5, ptr(w), k, ptr(bias), ptr(m), ptr(sh), ptr(y), n_c + 3,
                                          t0, t1, c0, c1)
        assert np.array_equal(y[:, :n_c], want) and (y[:, n_c:] == 55).all()
    assert (want == 127).any() and (want == -128).any()


@pytest.mark.parametrize("n", [1, 15, 16, 63, 64, 65, 1000])
def test_eltwise_variant_equals_portable(portable, variant, n):
    """The LUT (also in place) and the requantized product over whole vectors and tails, multipliers up to
    2^31 - 1 and shifts 1..62: equal to the portable kernels."""
    r = rng(110 + n)
    x, b = codes(r, (n,)), codes(r, (n + 1,))
    lut = codes(r, (256,))
    for lib in (variant, portable):
        y = np.full(n + 1, 9, dtype=I8)
        lib.ef_lut_i8(ptr(x), ptr(y), n, ptr(lut))
        assert np.array_equal(y[:n], lut[x.astype(np.int32) + 128]) and y[n] == 9
        z = x.copy()
        lib.ef_lut_i8(ptr(z), ptr(z), n, ptr(lut))
        assert np.array_equal(z, y[:n])
    for m, sh in ((2**31 - 1, 62), (2**31 - 1, 38), (1 << 20, 1), (12345, 2), (987654321, 40), (3, 2)):
        got, ref = np.full(n + 1, 9, dtype=I8), np.full(n + 1, 9, dtype=I8)
        variant.ef_mul_requant_i8(ptr(x), ptr(b), ptr(got), n, m, sh)
        portable.ef_mul_requant_i8(ptr(x), ptr(b), ptr(ref), n, m, sh)
        assert np.array_equal(got, ref) and got[n] == 9


# ---- attention ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_i,k,n_j", [(80, 22, 80), (80, 80, 22), (3, 1, 1), (5, 7, 15), (2, 33, 17), (4, 16, 47)])
def test_matmul_variant_equals_portable(portable, variant, n_i, k, n_j):
    """Both stride forms (b row-major: the vector path; b transposed: the portable loop), column tails, tile
    sub-ranges, code extremes and multipliers up to 2^31 - 1: equal to the portable kernel and ops.matmul; only the
    asked tile is written."""
    r = rng(300 + n_i * 7 + k * 3 + n_j)
    a, b = codes(r, (n_i, k)), codes(r, (k, n_j))
    a[0], b[:, 0] = -128, -128                            # the largest products
    bt = np.ascontiguousarray(b.T)
    for m, sh in ((1 << 20, 28), (2**31 - 1, 45), (12345, 9), (7, 1)):
        want = ops.matmul(a, b, m, sh)
        for i0, i1 in splits(n_i, n_i // 2):
            for j0, j1 in splits(n_j, 1, n_j // 2 + 1):
                for lib in (variant, portable):
                    for bb, b_sk, b_sj in ((b, n_j, 1), (bt, 1, k)):
                        y = np.full((n_i, n_j + 1), 77, dtype=I8)
                        lib.ef_matmul_i8(ptr(a), k, ptr(bb), b_sk, b_sj, k, m, sh, ptr(y), n_j + 1, i0, i1, j0, j1)
                        assert np.array_equal(y[i0:i1, j0:j1], want[i0:i1, j0:j1])
                        y[i0:i1, j0:j1] = 77
                        assert (y == 77).all()


@pytest.mark.parametrize("n", [1, 15, 16, 17, 80, 100])
@pytest.mark.parametrize("s_x", [0.05, 0.4, 1e-3, 2.0])
@pytest.mark.parametrize("s_y", [1.0 / 128, 2.0**-20])
def test_softmax_variant_equals_portable(portable, variant, n, s_x, s_y):
    """Rows of any length (vector tails), flat rows, one-hot rows and rows at the code extremes, each exponent scale
    (frac 16..24, exponents past 16), and an output scale of 2^-20 where the smallest probabilities (the exp2's
    deepest shifts) set the codes: equal to the portable kernel and ops.softmax_rows; other rows untouched."""
    r = rng(400 + n)
    x = codes(r, (12, n))
    x[0], x[1], x[2, :] = 7, -128, -128
    x[2, n // 2] = 127
    x[3, ::2] = 127
    ke, frac, m, sh = ops.softmax_params(s_x, s_y)
    want = ops.softmax_rows(x, ke, frac, m, sh)
    if s_y < 1e-3 and n > 1 and s_x in (0.05, 0.4):        # (1e-3: near-uniform rows; 2.0: p 0 or ~1)
        assert ((want > 0) & (want < 127)).sum() > 0        # codes set by small probabilities
    for lib in (variant, portable):
        y = np.full((12, n + 1), 55, dtype=I8)
        for r0, r1 in splits(12, 1, 5):
            lib.ef_softmax_rows_i8(ptr(x), n, ptr(y), n + 1, n, ke, frac, m, sh, r0, r1)
        assert np.array_equal(y[:, :n], want) and (y[:, n] == 55).all()


# ---- LayerNorm ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_ch", [1, 7, 8, 9, 31, 33, 88, 385])
@pytest.mark.parametrize("s_y", [4.0 / 127, 0.5 / 127])
def test_layernorm_variant_equals_portable(portable, variant, n_ch, s_y):
    """Row lengths around the vectors (8 channels a step, 32 codes a sum step), a constant row (eps only), extreme
    rows, strided rows and row sub-ranges, two output scales: equal to the portable kernel and ops.layernorm."""
    x, s_x, gamma, beta, _ = ln_case(600 + n_ch, n_ch, 20)
    k = layernorm_params(gamma, beta, 1e-5, s_x, s_y)
    want = ops.layernorm(x, k)
    if n_ch > 8:
        assert len(np.unique(want)) > 20
    xs = np.zeros((20, n_ch + 3), dtype=I8)
    xs[:, :n_ch] = x
    for lib in (variant, portable):
        y = np.full((20, n_ch + 1), 55, dtype=I8)
        for r0, r1 in splits(20, 1, 11):
            lib.ef_layernorm_i8(ptr(xs), n_ch + 3, ptr(y), n_ch + 1, n_ch, k.eps_q, ptr(k.g), ptr(k.b), k.g_frac,
                                r0, r1)
        assert np.array_equal(y[:, :n_ch], want) and (y[:, n_ch] == 55).all()
