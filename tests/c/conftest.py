"""C tier fixtures: the kernel library compiled once per session with the host gcc and loaded with ctypes."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from ctypes import c_int32, c_int64, c_void_p
from pathlib import Path

import numpy as np
import pytest

from edgeflow.target import load_target

KERNELS_DIR = Path(__file__).resolve().parents[2] / "firmware" / "kernels"
CFLAGS = list(load_target("host").compiler.cflags)  # targets/host/target.toml [compiler]

P, I32, I64 = c_void_p, c_int32, c_int64
# kernel name -> argument types (pointers as void*; ctypes converts Python ints to the declared widths)
SIGNATURES: dict[str, tuple[type, ...]] = {
    "ef_linear_i8": (P, I32, I32, P, I32, P, P, P, P, I32, I32, I32, I32, I32),
    "ef_linear_acc_i32": (P, I32, I32, P, I32, P, P, I32, I32, I32, I32, I32),
    "ef_conv2d_patch_i8": (P, I32, I32, I32, I32, P, I32, P, P, P, I32, P, P, P, I32, I32, I32, I32, I32),
    "ef_dwconv1d_causal_i8": (P, I32, P, I32, P, P, P, P, I32, I32, I32, I32, I32),
    "ef_lut_i8": (P, P, I32, P),
    "ef_mul_requant_i8": (P, P, P, I32, I32, I32),
    "ef_add_requant_i8": (P, P, P, I32, I32, P, I32, I32, I32),
    "ef_flip_rows_i8": (P, P, I32, I32),
    "ef_layernorm_i8": (P, I32, P, I32, I32, I64, P, P, I32, I32, I32),
    "ef_meanpool_tokens_i8": (P, I32, I32, P, I32, I32, I32, I32),
    "ef_exp2_neg_q15": (I32, I32),
    "ef_scan_i8": (P, P, I32, P, I32, P, P, I32, P, I32, P, I32, I32, I32, I32, I32),
    "ef_matmul_i8": (P, I32, P, I32, I32, I32, I32, I32, P, I32, I32, I32, I32, I32),
    "ef_softmax_rows_i8": (P, I32, P, I32, I32, I32, I32, I32, I32, I32, I32),
}
RESTYPES = {"ef_exp2_neg_q15": I32}


class ScanConstsC(ctypes.Structure):
    """Mirror of ef_scan_consts_t."""

    _fields_ = [("ka", P), ("m_in", P), ("sh_in", P), ("m_y", P), ("m_D", P), ("sh_D", P), ("sh_y", P),
                ("ka_frac", I32), ("d_inner", I32), ("d_state", I32)]


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
