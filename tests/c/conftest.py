"""C tier fixtures: the kernel library compiled once per session with the host gcc and loaded with ctypes."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from ctypes import c_int32, c_int64, c_void_p
from pathlib import Path

import numpy as np
import pytest

from edgeflow.codegen.prototypes import kernel_prototypes
from edgeflow.ir.opdefs import OPDEFS
from edgeflow.target import load_target

KERNELS_DIR = Path(__file__).resolve().parents[2] / "firmware" / "kernels"
CFLAGS = list(load_target("host").compiler.cflags)  # targets/host/target.toml [compiler]

P, I32, I64 = c_void_p, c_int32, c_int64
HEADER = KERNELS_DIR / "ef_kernels.h"
#: C kernels the tests call that implement no IR op themselves.
HELPER_KERNELS = ("ef_exp2_neg_q15", "ef_dwconv1d_causal_lut_i8")


def header_prototypes(header: Path = HEADER) -> dict[str, tuple[str, tuple[type, ...]]]:
    """kernel name -> (return type, ctypes argument types) of every prototype in ef_kernels.h, read by the parser
    codegen uses (edgeflow.codegen.prototypes); pointers as void*, ctypes converts Python ints to the widths."""
    return {name: (p.ret, tuple(P if q.pointer else I64 if q.ctype == "int64_t" else I32 for q in p.params))
            for name, p in kernel_prototypes(header).items()}


_PROTOS = header_prototypes()
#: kernel name -> argument types: the C kernel of every registry op (OpDef.kernel) plus HELPER_KERNELS, read from
#: the prototypes in ef_kernels.h (the single C source of truth).
SIGNATURES: dict[str, tuple[type, ...]] = {
    k: _PROTOS[k][1] for k in sorted({d.kernel for d in OPDEFS.values() if d.kernel} | set(HELPER_KERNELS))}
RESTYPES = {k: I32 for k in SIGNATURES if _PROTOS[k][0] == "int32_t"}


class ScanConstsC(ctypes.Structure):
    """Mirror of ef_scan_consts_t."""

    _fields_ = [("ka", P), ("m_in", P), ("sh_in", P), ("m_y", P), ("m_D", P), ("sh_D", P), ("sh_y", P),
                ("ka_frac", I32), ("d_inner", I32), ("d_state", I32), ("exp2_q15", P)]


def ptr(a: np.ndarray | None) -> int | None:
    """Address of a C-contiguous array (None -> NULL); the caller keeps the array alive."""
    if a is None:
        return None
    if not a.flags["C_CONTIGUOUS"]:
        raise ValueError("ptr() needs a C-contiguous array")
    return a.ctypes.data


def c_sources() -> list[Path]:
    return sorted(KERNELS_DIR.glob("*.c"))


@pytest.fixture(scope="session")
def kernels(tmp_path_factory) -> ctypes.CDLL:
    """libefkernels.so built from firmware/kernels/*.c with -Werror, argtypes set from SIGNATURES."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found")
    out = tmp_path_factory.mktemp("kernels") / "libefkernels.so"
    cmd = [gcc, *CFLAGS, "-shared", "-fPIC", "-I", str(KERNELS_DIR), *map(str, c_sources()), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"kernel library does not compile:\n{res.stderr}")
    lib = ctypes.CDLL(str(out))
    for name, args in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = list(args)
        fn.restype = RESTYPES.get(name)
    return lib


# ef_parallel_for as the cluster HALs cut it (core c of 8 takes [c ceil(n/8), ...)), the cores run last to first:
# C source for host builds of the cluster code paths (tests/c/test_team_split.py, test_tiled.py)
TEAM8_PARALLEL_FOR = r"""
#include <stdint.h>
#include "ef_tiled.h"
void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx)
{
    int32_t chunk = (n + 7) / 8, core;
    for (core = 7; core >= 0; --core) {
        int32_t i0 = core * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        if (i0 < i1)
            body(ctx, i0, i1);
    }
}
"""
