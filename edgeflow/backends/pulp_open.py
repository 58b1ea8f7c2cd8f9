"""pulp-open backend: gap9's generated network (L1 tiles, DMA double buffer, 8-core split) + a pulp-runtime HAL,
cross-compiled for the pulp-open cluster and run on GVSoC (edgeflow/runners/gvsoc.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgeflow.backends import toolchain
from edgeflow.backends.base import Artifact, Backend
from edgeflow.backends.c_pipeline import SPLIT_KERNELS, render_build
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph
from edgeflow.resources import firmware_dir, targets_dir
from edgeflow.target import Target

CC = "riscv64-unknown-elf-gcc"
ARCH = ["-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32"]
ELF = "firmware.elf"
L3_IMAGE = "ef_l3_image.c"
# pulp-runtime 415a028: the sources its rules/pulp.mk compiles for chip pulp (crt0, init, cluster, minimal libc)
RT_SOURCES = ["kernel/fll-v1.c", "kernel/freq-domains.c", "kernel/chips/pulp/soc.c", "lib/libc/minimal/io.c",
              "lib/libc/minimal/fprintf.c", "lib/libc/minimal/prf.c", "lib/libc/minimal/sprintf.c", "kernel/init.c",
              "kernel/kernel.c", "kernel/alloc.c", "kernel/alloc_pool.c", "kernel/irq.c", "kernel/soc_event.c",
              "kernel/bench.c", "drivers/uart.c", "kernel/cluster.c", "kernel/crt0.S", "kernel/irq_asm.S"]
SECTIONS = {"EF_L1_DATA": ".ef_l1", "EF_L2_DATA": ".ef_l2", "EF_WEIGHTS_DATA": ".ef_weights"}


class PulpOpenError(EdgeflowError):
    """The pulp-open firmware cannot be built (compiler or GVSoC missing, plan too large, bad C)."""


def target_dir() -> Path:
    return targets_dir() / "pulp-open"


def sim_settings() -> dict:
    return tomllib.loads((target_dir() / "gvsoc.toml").read_text())


def _rt_flags(rt: Path, stack: int) -> list[str]:
    """Flags of pulp-runtime's make flow (platform gvsoc, Debian's gcc); includes as -isystem for our files."""
    return [*ARCH, "-DRV_ISA_RV32", "-ffreestanding", "-O2", "-D__riscv__", "-fdata-sections", "-ffunction-sections",
            "-include", "chips/pulp/config.h", "-fno-jump-tables", "-fno-tree-loop-distribute-patterns",
            "-D__PLATFORM__=ARCHI_PLATFORM_GVSOC", "-DCONFIG_IO_UART=0", "-DCONFIG_IO_UART_BAUDRATE=115200",
            "-DCONFIG_IO_UART_ITF=0", f"-DCLUSTER_STACK_SIZE={stack}",
            *(f for d in ("include/chips/pulp", "lib/libc/minimal/include", "include", "kernel")
              for f in ("-isystem", str(rt / d)))]


def render_link_script(target: Target, ext_base: int) -> str:
    l3 = target.level("L3") if "L3" in target.level_names else None
    vals = {"L2_LENGTH": f"0x{target.l2.size - 4:08x}", "L1_LENGTH": f"0x{target.l1.size - 4:08x}",
            "EXT_ORIGIN": f"0x{ext_base:08x}", "EXT_LENGTH": f"0x{(l3.size if l3 else 1 << 20):08x}"}
    return re.sub(r"@([A-Z0-9_]+)@", lambda m: vals[m.group(1)], (target_dir() / "link.ld.in").read_text())


def _compile_one(args: tuple[list[str], Path, Path]) -> tuple[Path, str | None]:
    cmd, src, obj = args
    res = subprocess.run([*cmd, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.splitlines() if "error" in ln] or res.stderr.strip().splitlines()[:1]
        return obj, f"{src.name}: {CC} failed: {lines[0] if lines else res.returncode}"
    return obj, None


def link_firmware(out: Path, target: Target, sources: list[Path]) -> Path:
    """Cross-compile pulp-runtime + kernels + generated network + pulp-open HAL into out/firmware.elf."""
    from edgeflow.runners.gvsoc import require_install

    if shutil.which(CC) is None:
        raise PulpOpenError(f"cross compiler {CC} not found (apt-get install gcc-riscv64-unknown-elf)")
    rt = require_install().pulp_runtime
    sim = sim_settings()
    l3 = target.level("L3") if "L3" in target.level_names else None
    rt_flags = _rt_flags(rt, int(sim["stack_bytes"]))
    fw, tdir = firmware_dir(), target_dir()
    ours = ["-std=gnu99", "-Wall", "-Wextra", "-Werror", *rt_flags, "-DEF_HAVE_PARALLEL_FOR",
            "-DEF_WRAPPED_KERNELS",  # linked with --wrap for the team split (SPLIT_KERNELS)
            f"-DEF_PO_EXT_BASE={int(sim['ext_base'])}u", f"-DEF_PO_EXT_LATENCY={int(sim['ext_latency'])}u",
            f"-DEF_PO_EXT_BW={l3.bandwidth if l3 else 1}u",
            *(f'-D{k}=__attribute__((section("{v}")))' for k, v in SECTIONS.items()),
            *(f for d in (out / "src", fw / "kernels", fw / "hal", fw / "device", tdir) for f in ("-I", str(d)))]
    hook = ["-include", str(fw / "device" / "ef_layer_hook.h"), "-DEF_LAYER_HOOK(i)=ef_layer_mark(i)"]
    objdir = out / "obj"
    objdir.mkdir(exist_ok=True)
    jobs: list[tuple[list[str], Path, Path]] = []
    for s in RT_SOURCES:
        flags = [CC, *rt_flags, *(["-DLANGUAGE_ASSEMBLY"] if s.endswith(".S") else [])]
        jobs.append((flags, rt / s, objdir / ("rt_" + s.replace("/", "_") + ".o")))
    ext_image = next((s for s in sources if s.name == L3_IMAGE), None)
    for s in sources:
        if s.suffix != ".c":
            continue
        flags = [CC, *ours]
        if s.name == "network.c":
            flags += hook
        if s is ext_image:  # the streamed image lives in the modelled external memory
            flags = [f for f in flags if not f.startswith("-DEF_WEIGHTS_DATA")]
            flags.append('-DEF_WEIGHTS_DATA=__attribute__((section(".ef_ext")))')
        jobs.append((flags, s, objdir / (s.stem + ".o")))
    for s in [*toolchain.kernel_sources(target.compiler.kernels), fw / "hal" / "ef_team_split.c",
              fw / "hal" / "ef_team_split_zp.c", fw / "hal" / "ef_team_split_l1.c"]:
        jobs.append(([CC, *ours], s, objdir / (s.stem + ".o")))
    for s in (tdir / "ef_hal_pulp_open.c", tdir / "ef_main_pulp_open.c"):  # mchan_v7.h declares unused statics
        jobs.append(([CC, *ours, "-Wno-unused-function"], s, objdir / (s.stem + ".o")))
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(_compile_one, jobs))
    errors = [e for _, e in results if e]
    if errors:
        raise PulpOpenError(errors[0])
    (out / "link.ld").write_text(render_link_script(target, int(sim["ext_base"])))
    cmd = [CC, *ARCH, "-nostartfiles", "-nostdlib", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
           *(f"-Wl,--wrap={k}" for k in SPLIT_KERNELS),
           "-T", str(out / "link.ld"), *(str(o) for o, _ in results), "-lgcc", "-o", str(out / ELF)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(objdir, ignore_errors=True)
    if res.returncode != 0:
        m = re.search(r"region [`'](\w+)' overflowed by (\d+) bytes", res.stderr)
        if m:
            raise PulpOpenError(f"{ELF}: region {m.group(1)} (targets/pulp-open) overflowed by {m.group(2)} bytes")
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln or "undefined" in ln), res.stderr[:300])
        raise PulpOpenError(f"{ELF}: link failed: {first}")
    return out / ELF


def compile(graph: Graph, target: Target, out_dir: str | Path) -> Artifact:  # noqa: A001 - the backend contract
    """Plan and render exactly as the gap9 backend does (same L1/L2 budgets, so the same tiles, double buffers
    and parallel split), then build firmware.elf for pulp-open with the pulp-runtime HAL."""
    out = Path(out_dir)
    r = render_build(graph, target, out, "pulp-open")
    elf = link_firmware(out, target, r.sources)
    report = dict(r.report)
    report["backend"] = "pulp-open"
    report["firmware"] = {"elf": ELF, "simulator": "GVSoC 209c147 (pulp-open, L1 128 KiB)",
                          "run": "python -m edgeflow.runners.gvsoc BUILD_DIR --windows N --cores 1,2,4,8"}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return Artifact(out, r.sources, elf, r.plan.to_dict(), report)


def run_windows(binary: Path, windows: np.ndarray, n_out: int) -> np.ndarray:
    """Run firmware.elf on GVSoC (8 cores) over int8 windows; int32 accumulators (N, n_out). The measured
    cycles go to run_report.json beside the binary (edgeflow build merges it into report.json) with a plot."""
    from edgeflow.runners import gvsoc

    binary = Path(binary)
    got, raw = gvsoc.run(binary, windows, n_out)
    try:
        report = json.loads((binary.parent / "report.json").read_text())
    except (OSError, ValueError):
        report = {}
    from edgeflow.target import load_target

    summary = gvsoc.summarize(raw, report.get("nodes", []), load_target("pulp-open").clock_hz)
    png = gvsoc.plot_layers(summary, binary.parent / "pulp_open_layers.png", report.get("model", binary.parent.name))
    if png is not None:
        summary["plot"] = png.name
    (binary.parent / "run_report.json").write_text(json.dumps({"pulp_open": summary}, indent=1))
    return got


BACKEND = Backend("pulp-open", compile, run_windows=run_windows, tolerance=0.0, binary=ELF,
                  description="PULP cluster (8 RI5CY cores, MCHAN DMA) on the GVSoC simulator; the gap9 network")
