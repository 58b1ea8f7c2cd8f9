"""GAP9 cluster stacks: the generated SDK project sets them from targets/gap9/sdk.toml, they fit in the L1 left
outside the tiles, and they hold the worker's deepest kernel call (frames measured with -fstack-usage)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeflow.backends import toolchain
from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.gap9 import sdk_settings
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.resources import firmware_dir
from edgeflow.target import TargetError, load_target

pytestmark = pytest.mark.c
CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"
RV_GCC = "riscv64-unknown-elf-gcc"
# what a worker core runs below its tile_rows frame besides the linear kernel: the team fork's entry and the
# runtime's dispatch (a generous allowance; the measured frames are the kernel's and tile_rows')
RUNTIME_ALLOWANCE = 256


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("gap9-stacks")
    compile_gap9(load_onnx(CASE / "model.onnx"), load_target("gap9"), out)
    return out


def test_makefile_and_hal_set_the_cluster_stacks(project):
    sdk = sdk_settings()
    mk = (project / "src" / "Makefile").read_text()
    assert (f"-DEF_CL_STACK_BYTES={sdk['cluster_stack_bytes']} "
            f"-DEF_CL_MASTER_STACK_BYTES={sdk['cluster_master_stack_bytes']}") in mk
    hal = (project / "src" / "gap9" / "ef_hal_gap9.c").read_text()
    assert "task.slave_stack_size = EF_CL_STACK_BYTES;" in hal
    assert "task.stack_size = EF_CL_MASTER_STACK_BYTES;" in hal
    assert "#error" in hal.split("EF_CL_MASTER_STACK_BYTES)", 1)[1].split("\n", 2)[1]  # no silent default


def test_cluster_stacks_fit_beside_the_tiles():
    sdk, t = sdk_settings(), load_target("gap9")
    stacks = t.cores * sdk["cluster_stack_bytes"] + sdk["cluster_master_stack_bytes"]
    assert stacks <= t.l1.size - t.l1.usable


def _frames(src: Path, out: Path, includes: list[Path]) -> dict[str, int]:
    """Stack frame bytes per function of src, compiled as for the cluster (rv32, -O3) with -fstack-usage."""
    obj = out / (src.stem + ".o")
    stub = out / "inc"  # the bare cross compiler has no libc headers: the string.h declarations used
    stub.mkdir(exist_ok=True)
    (stub / "string.h").write_text("#include <stddef.h>\nvoid *memcpy(void *d, const void *s, size_t n);\n"
                                   "void *memset(void *d, int c, size_t n);\n")   # memset: the tiled scan
    args = [RV_GCC, "-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "-O3", "-ffreestanding", "-std=gnu99",
            "-Wall", "-Wextra", "-Werror", "-fstack-usage",
            "-DEF_HAVE_PARALLEL_FOR", "-DEF_WRAPPED_KERNELS",  # as the SDK Makefile
            f"-I{stub}", *[f"-I{i}" for i in includes], "-c", str(src), "-o", str(obj)]
    subprocess.run(args, check=True, capture_output=True, text=True)
    frames = {}
    for line in obj.with_suffix(".su").read_text().splitlines():
        m = re.match(r".*:(\w+)\s+(\d+)\s+\w+", line)
        if m:
            frames[m.group(1)] = int(m.group(2))
    return frames


def _kernel_frames(name: str, project: Path, out: Path) -> tuple[dict[str, int], list[Path]]:
    """Frames of gap9's variant of kernel source `name` (e.g. ef_linear.c), and the include folders used."""
    kernels = load_target("gap9").compiler.kernels
    src = next(f for f in toolchain.kernel_sources(kernels) if f.name == name)
    inc = [firmware_dir() / "kernels", *[firmware_dir() / "kernels" / v for v in kernels], firmware_dir() / "hal",
           project / "src"]
    return _frames(src, out, inc), inc


@pytest.mark.skipif(shutil.which(RV_GCC) is None, reason=f"{RV_GCC} not installed")
def test_worker_stack_holds_the_linear_kernel_chain(project, tmp_path):
    lin, inc = _kernel_frames("ef_linear.c", project, tmp_path)
    tiled = _frames(project / "src" / "ef_tiled.c", tmp_path, inc)
    assert lin and "tile_rows" in tiled and "tile_part" in tiled
    # a worker: fork entry -> tile_rows or tile_tokens -> tile_part -> ef_linear_i8 -> its helpers; every
    # ef_linear.c frame counted once
    chain = max(tiled["tile_rows"], tiled["tile_tokens"]) + tiled["tile_part"] + sum(lin.values()) + RUNTIME_ALLOWANCE
    assert chain <= sdk_settings()["cluster_stack_bytes"], (chain, lin, tiled["tile_rows"])
    assert chain > 1024  # the Xpulpv2 kernel's frame outgrows a 1 KiB stack: why sdk.toml sets them


@pytest.mark.parametrize("text", ["cluster_stack_bytes = 100\ncluster_master_stack_bytes = 2304\n",
                                  "cluster_master_stack_bytes = 2304\n",
                                  "cluster_stack_bytes = 2306\ncluster_master_stack_bytes = 2304\n"])
def test_bad_sdk_settings_are_one_line(tmp_path, text):
    bad = tmp_path / "sdk.toml"
    bad.write_text(text)
    with pytest.raises(TargetError) as e:
        sdk_settings(bad)
    assert "\n" not in str(e.value) and "sdk.toml" in str(e.value) and "cluster_" in str(e.value)


@pytest.mark.skipif(shutil.which(RV_GCC) is None, reason=f"{RV_GCC} not installed")
def test_worker_stack_holds_the_scan_kernel_chain(project, tmp_path):
    """The Xpulpv2 scan keeps its exp2 cache (1 KiB) and a run of step records on the stack."""
    sc, inc = _kernel_frames("ef_scan.c", project, tmp_path)
    split = _frames(firmware_dir() / "hal" / "ef_team_split.c", tmp_path, inc)
    assert "ef_scan_i8" in sc and "scan_part" in split
    # a worker: fork entry -> scan_part -> ef_scan_i8 -> its helpers; every ef_scan.c frame counted once
    chain = split["scan_part"] + sum(sc.values()) + RUNTIME_ALLOWANCE
    assert chain <= sdk_settings()["cluster_stack_bytes"], (chain, sc, split["scan_part"])
    assert sc["ef_scan_i8"] > 1024  # the cache alone: why the stacks are not the SDK's default


@pytest.mark.skipif(shutil.which(RV_GCC) is None, reason=f"{RV_GCC} not installed")
def test_master_stack_holds_the_network_and_its_deepest_kernel(project, tmp_path):
    """The core that runs the network also takes a share of every ef_parallel_for (the team fork runs the body on
    the calling core too): network -> tiled runner -> team split -> the kernel, below the SDK's task entry."""
    sc, inc = _kernel_frames("ef_scan.c", project, tmp_path)
    lin, _ = _kernel_frames("ef_linear.c", project, tmp_path)
    split = _frames(firmware_dir() / "hal" / "ef_team_split.c", tmp_path, inc)
    tiled = _frames(project / "src" / "ef_tiled.c", tmp_path, inc)
    net = _frames(project / "src" / "network.c", tmp_path, inc)
    top = net["ef_network_run"]
    scan = top + tiled["ef_tiled_scan_i8"] + split["__wrap_ef_scan_i8"] + split["scan_part"] + sum(sc.values())
    linear = (top + tiled["ef_tiled_linear_i8"] + max(tiled["tile_rows"], tiled["tile_tokens"]) + tiled["tile_part"]
              + sum(lin.values()))
    chain = max(scan, linear) + RUNTIME_ALLOWANCE
    assert chain <= sdk_settings()["cluster_master_stack_bytes"], (scan, linear)
    # within 128 B of a worker's stack (2,288 of 2,304 B with the allowance, an estimate): why the master gets more
    assert scan + RUNTIME_ALLOWANCE > sdk_settings()["cluster_stack_bytes"] - 128, scan
