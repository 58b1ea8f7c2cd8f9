"""The team split (firmware/hal/ef_team_split*.c) on the host: 8 simulated cores, bit-exact, each channel once; the
kernels staged through L1 (ef_team_split_l1.c) against the plain kernels, with every DMA start waited."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeflow.backends.c_pipeline import SPLIT_KERNELS
from edgeflow.codegen.c_tiled_runner import render_runner
from edgeflow.quant.intscan import int_scan

from .conftest import CFLAGS, KERNELS_DIR, SIGNATURES, TEAM8_PARALLEL_FOR, ScanConstsC, c_sources, ptr
from .test_kernels import scan_case

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

# ef_parallel_for as the cluster HALs cut it (TEAM8_PARALLEL_FOR), and every channel a core is handed is logged, so
# the test sees which channels each core computed.
_TEAM = TEAM8_PARALLEL_FOR + r"""
#include <stdint.h>
#include "ef_tiled.h"
int32_t ef_test_log[4096];
int32_t ef_test_n_log;
static int32_t l1_area[16384];
uint32_t ef_test_l1_bytes = 4096; /* the L1 area the staged kernels see (set by the tests) */
uint8_t *ef_l1_scratch(uint32_t *bytes)
{
    *bytes = ef_test_l1_bytes;
    return (uint8_t *)l1_area;
}
void ef_scan_kernel_i8(const void *c, const int8_t *u, int32_t us, const int8_t *dl, int32_t ds, const int8_t *B,
                       const int8_t *C, int32_t bs, int8_t *y, int32_t ys, int32_t *h, int32_t t0, int32_t t1,
                       int32_t d0, int32_t d1, int32_t rev);
void __real_ef_scan_i8(const void *c, const int8_t *u, int32_t us, const int8_t *dl, int32_t ds, const int8_t *B,
                       const int8_t *C, int32_t bs, int8_t *y, int32_t ys, int32_t *h, int32_t t0, int32_t t1,
                       int32_t d0, int32_t d1, int32_t rev)
{
    int32_t d;
    for (d = d0; d < d1 && ef_test_n_log < 4096; ++d)
        ef_test_log[ef_test_n_log++] = d;
    ef_scan_kernel_i8(c, u, us, dl, ds, B, C, bs, y, ys, h, t0, t1, d0, d1, rev);
}
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    d = tmp_path_factory.mktemp("team")
    (d / "ef_tiled.h").write_text(render_runner(1024)[0])
    (d / "team.c").write_text(_TEAM)
    fw = KERNELS_DIR.parent
    out = d / "libteam.so"
    # the kernel's ef_scan_i8 is renamed ef_scan_kernel_i8 (objcopy): the logging shim above is __real_ef_scan_i8
    real = d / "ef_scan_real.o"
    cmd = ["gcc", *CFLAGS, "-fPIC", "-I", str(KERNELS_DIR), "-c", str(KERNELS_DIR / "ef_scan.c"), "-o", str(real)]
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run(["objcopy", "--redefine-sym", "ef_scan_i8=ef_scan_kernel_i8", str(real)], check=True)
    others = [str(p) for p in c_sources() if p.name != "ef_scan.c"]
    cmd = ["gcc", *CFLAGS, "-shared", "-fPIC", "-I", str(KERNELS_DIR), "-I", str(d), str(real), *others,
           str(d / "team.c"), str(fw / "hal" / "ef_team_split.c"), str(fw / "hal" / "ef_team_split_zp.c"),
           str(fw / "hal" / "ef_team_split_l1.c"), str(fw / "hal" / "ef_dma_memcpy.c"), "-I", str(fw / "hal"),
           *(f"-Wl,--wrap={k}" for k in SPLIT_KERNELS if k != "ef_scan_i8"), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"team split does not compile:\n{res.stderr}")
    lib = ctypes.CDLL(str(out))
    lib.__wrap_ef_scan_i8.argtypes = list(SIGNATURES["ef_scan_i8"])
    return lib


@pytest.mark.parametrize("d_cut", [None, 7])
def test_scan_team_split_bit_exact(team, d_cut):
    c, inputs = scan_case(21)
    q_u, q_delta, q_b, q_c = inputs
    n_l, d_in = q_u.shape
    want, h_want = int_scan(*inputs, c, 0, return_state=True)
    keep = [np.ascontiguousarray(a) for a in (c.ka, c.m_in, c.sh_in, c.m_y, c.m_D, c.sh_D, c.sh_y)]
    cc = ScanConstsC(*[ptr(a) for a in keep], c.ka_frac, c.d_inner, c.d_state, None)
    b, cm = np.ascontiguousarray(q_b), np.ascontiguousarray(q_c)
    h = np.zeros((d_in, c.d_state), dtype=np.int32)
    y = np.zeros((n_l, d_in), dtype=np.int8)
    log = (ctypes.c_int32 * 4096).in_dll(team, "ef_test_log")
    n_log = ctypes.c_int32.in_dll(team, "ef_test_n_log")
    ranges = [(0, d_in)] if d_cut is None else [(0, d_cut), (d_cut, d_in)]
    for d0, d1 in ranges:
        n_log.value = 0
        team.__wrap_ef_scan_i8(ctypes.byref(cc), ptr(q_u), d_in, ptr(q_delta), d_in, ptr(b), ptr(cm), c.d_state,
                               ptr(y), d_in, ptr(h), 0, n_l, d0, d1, 0)
        seen = list(log[:n_log.value])
        assert sorted(seen) == list(range(d0, d1))                 # every channel exactly once
    assert np.array_equal(y, want) and np.array_equal(h, h_want)


@pytest.mark.parametrize(("n_rows", "row_len"), [(80, 385), (5, 7), (1, 3), (9, 1)])
def test_flip_team_split_bit_exact(team, n_rows, row_len):
    x = np.random.default_rng(n_rows).integers(-128, 128, (n_rows, row_len), dtype=np.int8)
    y = np.zeros_like(x)
    team.__wrap_ef_flip_rows_i8.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32]
    team.__wrap_ef_flip_rows_i8(ptr(x), ptr(y), n_rows, row_len)
    assert np.array_equal(y, x[::-1])


class _DmaStats(ctypes.Structure):
    _fields_ = [("starts", ctypes.c_uint32), ("waits", ctypes.c_uint32), ("bytes", ctypes.c_uint64),
                ("max_in_flight", ctypes.c_uint32), ("errors", ctypes.c_uint32)]


def _stats(lib) -> _DmaStats:
    st = _DmaStats()
    lib.ef_dma_get_stats(ctypes.byref(st))
    return st


# area bytes: 600 takes the L2 path for the row-wise kernels (a row does not fit), 4096 many small chunks, 65536
# one or a few chunks
@pytest.mark.parametrize("area", [600, 4096, 65536])
def test_staged_kernels_bit_exact(team, kernels, area):
    """LUT, mul, 3-input add with a time-reversed input, LayerNorm, causal dwconv, patch conv and the time flip
    through the staged wrappers equal the plain kernels' bytes; every DMA started is waited once, none in error;
    which calls were staged (DMA starts) follows from the area."""
    rng = np.random.default_rng(area)
    ctypes.c_uint32.in_dll(team, "ef_test_l1_bytes").value = area
    vp, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    starts: dict[str, int] = {}

    def call(name, fn, *args):
        team.ef_dma_reset_stats()
        fn(*args)
        st = _stats(team)
        assert st.starts == st.waits and st.errors == 0, (name, st.starts, st.waits, st.errors)
        starts[name] = st.starts

    n_l, n_c = 80, 385
    for n in (123200 // 10 + 3, 257):  # odd lengths: a short last word
        x = rng.integers(-128, 128, n, dtype=np.int8)
        lut = rng.integers(-128, 128, 256, dtype=np.int8)
        got, want = np.zeros_like(x), np.zeros_like(x)
        team.__wrap_ef_lut_i8.argtypes = [vp, vp, i32, vp]
        call(f"lut{n}", team.__wrap_ef_lut_i8, ptr(x), ptr(got), n, ptr(lut))
        kernels.ef_lut_i8(ptr(x), ptr(want), n, ptr(lut))
        assert np.array_equal(got, want), ("lut", n)
        b = rng.integers(-128, 128, n, dtype=np.int8)
        team.__wrap_ef_mul_requant_i8.argtypes = [vp, vp, vp, i32, i32, i32]
        call(f"mul{n}", team.__wrap_ef_mul_requant_i8, ptr(x), ptr(b), ptr(got), n, 1_234_567, 40)
        kernels.ef_mul_requant_i8(ptr(x), ptr(b), ptr(want), n, 1_234_567, 40)
        assert np.array_equal(got, want), ("mul", n)
    # residual add: x + fwd + flip(rev), the last input read reversed (stride -n_c from its last row)
    xs3 = [rng.integers(-128, 128, (n_l, n_c), dtype=np.int8) for _ in range(3)]
    ptrs = (ctypes.c_void_p * 3)(ptr(xs3[0]), ptr(xs3[1]), xs3[2].ctypes.data + (n_l - 1) * n_c)
    strides = np.array([n_c, n_c, -n_c], dtype=np.int32)
    mm = np.array([3 << 20, 5 << 19, 7 << 18], dtype=np.int32)
    got, want = np.zeros((n_l, n_c), np.int8), np.zeros((n_l, n_c), np.int8)
    team.__wrap_ef_add_requant_i8.argtypes = [vp, vp, vp, i32, i32, vp, i32, i32, i32]
    call("add", team.__wrap_ef_add_requant_i8, ptrs, ptr(strides), ptr(mm), 3, 24, ptr(got), n_c, n_l, n_c)
    kernels.ef_add_requant_i8(ptrs, ptr(strides), ptr(mm), 3, 24, ptr(want), n_c, n_l, n_c)
    assert np.array_equal(got, want), "add"
    g = rng.integers(1 << 10, 1 << 12, n_c).astype(np.int32)
    bb = rng.integers(-(1 << 14), 1 << 14, n_c).astype(np.int32)
    x = xs3[0]
    team.__wrap_ef_layernorm_i8.argtypes = [vp, i32, vp, i32, i32, i64, vp, vp, i32, i32, i32]
    call("layernorm", team.__wrap_ef_layernorm_i8, ptr(x), n_c, ptr(got), n_c, n_c, 1000, ptr(g), ptr(bb), 10, 0,
         n_l)
    kernels.ef_layernorm_i8(ptr(x), n_c, ptr(want), n_c, n_c, 1000, ptr(g), ptr(bb), 10, 0, n_l)
    assert np.array_equal(got, want), "layernorm"
    d_c, k = 1540, 4  # femba's depthwise conv
    xd = rng.integers(-128, 128, (n_l, d_c), dtype=np.int8)
    w = rng.integers(-128, 128, (d_c, k), dtype=np.int8)
    bias = rng.integers(-2000, 2000, d_c).astype(np.int32)
    m16 = rng.integers(1 << 13, 1 << 15, d_c).astype(np.int16)
    sh = rng.integers(18, 24, d_c).astype(np.int8)
    gd, wd = np.zeros_like(xd), np.zeros_like(xd)
    team.__wrap_ef_dwconv1d_causal_i8.argtypes = [vp, i32, vp, i32, vp, vp, vp, vp, i32, i32, i32, i32, i32]
    call("dwconv", team.__wrap_ef_dwconv1d_causal_i8, ptr(xd), d_c, ptr(w), k, ptr(bias), ptr(m16), ptr(sh), ptr(gd),
         d_c, 0, n_l, 0, d_c)
    kernels.ef_dwconv1d_causal_i8(ptr(xd), d_c, ptr(w), k, ptr(bias), ptr(m16), ptr(sh), ptr(wd), d_c, 0, n_l, 0,
                                  d_c)
    assert np.array_equal(gd, wd), "dwconv"
    # patch conv (femba's tokenizer: 22 x 1280 window, 2 x 16 patches, 35 channels, int16 addend), channel sub-range
    n_h, n_w, n_e, kh, kw = 22, 1280, 35, 2, 16
    rows_p, n_lp = n_h // kh, n_w // kw
    xp = rng.integers(-128, 128, (n_h, n_w), dtype=np.int8)
    wp = rng.integers(-128, 128, (n_e, kh * kw), dtype=np.int8)
    bp = rng.integers(-3000, 3000, n_e).astype(np.int32)
    add16 = rng.integers(-2000, 2000, (n_lp, n_e * rows_p)).astype(np.int16)
    mp = rng.integers(1 << 13, 1 << 15, n_e).astype(np.int16)
    shp = rng.integers(18, 24, n_e).astype(np.int8)
    gp, wpo = np.zeros((n_lp, n_e * rows_p), np.int8), np.zeros((n_lp, n_e * rows_p), np.int8)
    team.__wrap_ef_conv2d_patch_i8.argtypes = [vp, i32, i32, i32, i32, vp, i32, vp, vp, vp, i32, vp, vp, vp, i32,
                                               i32, i32, i32, i32]
    call("patch", team.__wrap_ef_conv2d_patch_i8, ptr(xp), n_w, rows_p, kh, kw, ptr(wp), 8, ptr(bp), ptr(add16), None,
         n_e * rows_p, ptr(mp), ptr(shp), ptr(gp), n_e * rows_p, 3, n_lp, 4, n_e)
    kernels.ef_conv2d_patch_i8(ptr(xp), n_w, rows_p, kh, kw, ptr(wp), 8, ptr(bp), ptr(add16), None, n_e * rows_p,
                               ptr(mp), ptr(shp), ptr(wpo), n_e * rows_p, 3, n_lp, 4, n_e)
    assert np.array_equal(gp, wpo) and gp.any(), "patch"
    team.__wrap_ef_flip_rows_i8.argtypes = [vp, vp, i32, i32]
    call("flip", team.__wrap_ef_flip_rows_i8, ptr(x), ptr(got), n_l, n_c)
    assert np.array_equal(got, x[::-1]), "flip"
    staged = {name for name, n in starts.items() if n > 0}
    words = {"lut12323", "mul12323", "lut257", "mul257"}
    assert ("patch" in staged) == (area == 65536), starts  # its whole 28 KB window goes to L1 at once
    staged.discard("patch")
    starts.pop("patch")
    if area == 600:  # words fit, a 385-byte row with its other buffers does not
        assert staged == words, starts
    elif area == 4096:  # one flip row a chunk, dwconv blocks of a few channels; the add's four row buffers and
        assert staged == words | {"flip", "dwconv"}, starts  # LayerNorm's gamma / beta do not fit
        assert starts["flip"] == 2 * n_l and starts["lut12323"] > 2 * 3, starts  # many chunks
    else:
        assert staged == set(starts), starts
