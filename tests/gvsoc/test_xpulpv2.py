"""Xpulpv2 kernel variants on GVSoC: firmware/kernels/xpulpv2/ef_linear.c and ef_scan.c bit-exact with the portable
ef_linear.c and ef_scan.c.

One pulp-runtime program per kernel (xpulpv2_linear_main.c, xpulpv2_scan_main.c) links both versions (the portable
one with its symbols renamed ref_*), runs them on the same pseudo-random inputs on a pulp-open cluster core, compares
every output word and prints the cycles of femba-sized calls (figures for `edgeflow bench`, never asserted)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from edgeflow.backends import pulp_open, toolchain
from edgeflow.resources import firmware_dir, targets_dir
from edgeflow.target import load_target

from .conftest import need_gvsoc

pytestmark = pytest.mark.gvsoc
HERE = Path(__file__).resolve().parent
N_BENCH = 16  # BENCH[] of the linear program
N_CASES = 4 * 22 * 3 + 4 * 8 * 24 + 4 * 6 * 8 + N_BENCH  # one_case() + short_case() + quad_case() + bench() calls
SCAN_BENCH = 4  # bench() calls of the scan program (femba-tiny and femba-mini sized, forward and reverse)
SCAN_CASES = 400 + SCAN_BENCH
#: kernel -> (portable symbols renamed ref_*, extra portable sources linked once)
ELTWISE_CASES = 240 + 3
PROGRAMS = {"linear": (("ef_linear_i8", "ef_linear_acc_i32"), ()), "scan": (("ef_scan_i8",), ("ef_exp2.c",)),
            "eltwise": (("ef_lut_i8", "ef_mul_requant_i8", "ef_add_requant_i8", "ef_flip_rows_i8"), ()),
            "dwconv1d": (("ef_dwconv1d_causal_i8",), ()), "conv2d_patch": (("ef_conv2d_patch_i8",), ()),
            "layernorm": (("ef_layernorm_i8",), ())}
DWCONV_CASES = 300 + 2
PATCH_CASES = 150 + 1
LAYERNORM_CASES = 160 + 2


def build_program(out: Path, kernel: str = "linear") -> Path:
    """Cross-compile pulp-runtime + both versions of ef_<kernel>.c + the test program into out/xpulpv2_<kernel>.elf."""
    from edgeflow.runners.gvsoc import require_install

    rt = require_install().pulp_runtime
    target = load_target("pulp-open")
    rt_flags = pulp_open._rt_flags(rt, int(pulp_open.sim_settings()["stack_bytes"]))
    kernels = firmware_dir() / "kernels"
    ours = ["-std=gnu99", "-Wall", "-Wextra", "-Werror", *rt_flags, "-I", str(kernels)]
    jobs = [([*rt_flags, *(["-DLANGUAGE_ASSEMBLY"] if s.endswith(".S") else [])], rt / s) for s in pulp_open.RT_SOURCES]
    renamed, extra = PROGRAMS[kernel]
    jobs += [(ours + [f"-D{k}=ref_{k}" for k in renamed], kernels / f"ef_{kernel}.c"),
             (ours, kernels / "xpulpv2" / f"ef_{kernel}.c"), *((ours, kernels / e) for e in extra),
             (ours + ["-Wno-unused-function"], HERE / f"xpulpv2_{kernel}_main.c")]  # mchan_v7.h: unused statics
    objs = []
    for i, (flags, src) in enumerate(jobs):
        obj = out / f"{i:02d}_{src.parent.name}_{src.stem}.o"
        toolchain.run([pulp_open.CC, *flags, "-c", src, "-o", obj], src.name)
        objs.append(obj)
    (out / "link.ld").write_text(pulp_open.render_link_script(target, int(pulp_open.sim_settings()["ext_base"])))
    elf = out / f"xpulpv2_{kernel}.elf"
    toolchain.run([pulp_open.CC, *pulp_open.ARCH, "-nostartfiles", "-nostdlib", "-Wl,--gc-sections",
                   "-Wl,--no-warn-rwx-segments", "-T", out / "link.ld", *objs, "-lgcc", "-o", elf], elf.name)
    return elf


def run_program(elf: Path, work: Path, timeout: float = 600) -> str:
    """Run the program on GVSoC's pulp-open (L1 128 KiB install); its stdout."""
    from edgeflow.runners.gvsoc import GVSOC_TARGET, require_install

    inst = require_install()
    cmd = [str(inst.gvsoc), f"--target-dir={targets_dir() / 'pulp-open' / 'gvsoc'}", f"--target={GVSOC_TARGET}",
           f"--binary={elf}", f"--work-dir={work}", "run"]
    env = {"PATH": f"{inst.venv_bin}:/usr/bin:/bin"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode in (0, 1), f"gvsoc exited {res.returncode}: {res.stderr[-500:]}"
    return res.stdout


@pytest.fixture(scope="module")
def program_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2")
    return run_program(build_program(out), out)


def test_xpulpv2_linear_bit_exact_with_portable(program_output: str) -> None:
    bad = [ln for ln in program_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+)", program_output)
    assert m, program_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (N_CASES, 0)
    bench = [ln for ln in program_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == N_BENCH and all(ln.endswith("bad=0") for ln in bench)
    for ln in bench:
        print(ln)



@pytest.fixture(scope="module")
def scan_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2_scan")
    return run_program(build_program(out, "scan"), out)


def test_xpulpv2_scan_bit_exact_with_portable(scan_output: str) -> None:
    bad = [ln for ln in scan_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+) saturated=(\d+)", scan_output)
    assert m, scan_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (SCAN_CASES, 0)
    assert int(m.group(3)) > 0  # the saturating cases reach the clip
    bench = [ln for ln in scan_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == SCAN_BENCH and all(ln.endswith("bad=0") for ln in bench)
    for ln in bench:
        print(ln)


@pytest.fixture(scope="module")
def eltwise_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2_eltwise")
    return run_program(build_program(out, "eltwise"), out)


def test_xpulpv2_eltwise_bit_exact_with_portable(eltwise_output: str) -> None:
    bad = [ln for ln in eltwise_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+)", eltwise_output)
    assert m, eltwise_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (ELTWISE_CASES, 0)
    bench = [ln for ln in eltwise_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == 3 and all(ln.endswith("bad=0") for ln in bench)
    for ln in bench:
        print(ln)


@pytest.fixture(scope="module")
def dwconv_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2_dwconv1d")
    return run_program(build_program(out, "dwconv1d"), out)


def test_xpulpv2_dwconv1d_bit_exact_with_portable(dwconv_output: str) -> None:
    bad = [ln for ln in dwconv_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+)", dwconv_output)
    assert m, dwconv_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (DWCONV_CASES, 0)
    bench = [ln for ln in dwconv_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == 2 and all(b.endswith("bad=0") for b in bench)  # random and trained-like constants
    print("\n".join(bench))


@pytest.fixture(scope="module")
def patch_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2_conv2d_patch")
    return run_program(build_program(out, "conv2d_patch"), out)


def test_xpulpv2_conv2d_patch_bit_exact_with_portable(patch_output: str) -> None:
    bad = [ln for ln in patch_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+)", patch_output)
    assert m, patch_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (PATCH_CASES, 0)
    bench = [ln for ln in patch_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == 1 and bench[0].endswith("bad=0")
    print(bench[0])


@pytest.fixture(scope="module")
def layernorm_output(tmp_path_factory) -> str:
    need_gvsoc()
    out = tmp_path_factory.mktemp("xpulpv2_layernorm")
    return run_program(build_program(out, "layernorm"), out)


def test_xpulpv2_layernorm_bit_exact_with_portable(layernorm_output: str) -> None:
    bad = [ln for ln in layernorm_output.splitlines() if ln.startswith("XP_BAD")]
    assert not bad, "\n".join(bad[:10])
    m = re.search(r"XP_DONE cases=(\d+) bad=(\d+)", layernorm_output)
    assert m, layernorm_output[-2000:]
    assert (int(m.group(1)), int(m.group(2))) == (LAYERNORM_CASES, 0)
    bench = [ln for ln in layernorm_output.splitlines() if ln.startswith("XP_BENCH")]
    assert len(bench) == 2 and all(ln.endswith("bad=0") for ln in bench)
    for ln in bench:
        print(ln)
