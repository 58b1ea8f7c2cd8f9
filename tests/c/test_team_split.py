"""The scan's team split (firmware/hal/ef_team_split.c) on the host: 8 simulated cores, bit-exact, each channel once."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeflow.backends.c_pipeline import SPLIT_KERNELS
from edgeflow.codegen.c_tiled_runner import render_runner
from edgeflow.quant.intscan import int_scan

from .conftest import CFLAGS, KERNELS_DIR, SIGNATURES, ScanConstsC, c_sources, ptr
from .test_kernels import scan_case

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

# ef_parallel_for as the cluster HALs cut it (core c of 8 takes [c ceil(n/8), ...)), the cores run last to first
# and every channel a core is handed is logged, so the test sees which channels each core computed.
_TEAM = r"""
#include <stdint.h>
#include "ef_tiled.h"
int32_t ef_test_log[4096];
int32_t ef_test_n_log;
void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx)
{
    int32_t chunk = (n + 7) / 8, core;
    for (core = 7; core >= 0; --core) {
        int32_t i0 = core * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        if (i0 < i1)
            body(ctx, i0, i1);
    }
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
