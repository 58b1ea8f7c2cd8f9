"""rv32-virt backend: the host backend's C with L1 tiles, a link script sized from target.toml, built for QEMU virt."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.backends.host import Artifact, compile_host
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph
from edgeflow.resources import firmware_dir, targets_dir
from edgeflow.target import Target

CROSS_CC = "riscv64-unknown-elf-gcc"
CROSS_SIZE = "riscv64-unknown-elf-size"
CC_PACKAGES = "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"
# rv32imc: -misa-spec=2.2 implies zicsr and selects the rv32im/ilp32 multilib (`-march=rv32imc_zicsr` picks rv64).
ARCH = ["-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32"]
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *ARCH, "-ffreestanding", "-mcmodel=medany",
          "-ffunction-sections", "-fdata-sections", "--specs=picolibc.specs"]
LDFLAGS = ["-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
           "-Wl,--start-group", "-lc", "-lgcc", "-Wl,--end-group"]
# Generated sources mark their placement with these macros (network.c arena, ef_tiled.c L1 area, weights.h):
# macro -> input section of link.ld.in. The external weight image (src/ef_l3_image.c) goes to L3_WEIGHTS.
PLACEMENT = {"EF_L1_DATA": ".l1", "EF_L2_DATA": ".l2", "EF_WEIGHTS_DATA": ".l2_weights"}
L3_WEIGHTS = ".weights"
L3_IMAGE = "ef_l3_image.c"
RAM_BASE = 0x8000_0000
REGION_ALIGN = 0x10_0000     # levels start on 1 MiB boundaries
ELF = "firmware.elf"
LINK_SCRIPT = "link.ld"
MAINS = ("device", "raw")    # device: firmware/device/device_main.c + link protocol; raw: bring-up main


class FirmwareError(EdgeflowError):
    """The rv32 firmware cannot be built: cross compiler missing, plan too large for a memory region, bad C."""


def target_dir() -> Path:
    return targets_dir() / "rv32-virt"


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def layout(target: Target) -> dict[str, int]:
    """Addresses and sizes of the link script's regions: L2 at the RAM base, then L1 (tiles, then the stack), L3."""
    l1, l2, l3 = target.l1, target.l2, target.level("L3")
    l1_origin = _align(RAM_BASE + l2.size, REGION_ALIGN)
    l3_origin = _align(l1_origin + l1.size, REGION_ALIGN)
    usable = l1.usable // 16 * 16
    return {"L2_ORIGIN": RAM_BASE, "L2_SIZE": l2.size, "L1_ORIGIN": l1_origin, "L1_USABLE": usable,
            "STACK_ORIGIN": l1_origin + usable, "STACK_SIZE": l1.size - usable,
            "L3_ORIGIN": l3_origin, "L3_SIZE": l3.size, "RAM_END": l3_origin + l3.size}


def render_link_script(target: Target) -> str:
    """targets/rv32-virt/link.ld.in with the regions of `target` filled in (hex addresses, decimal sizes)."""
    vals = {k: (f"0x{v:08x}" if k.endswith("ORIGIN") else str(v)) for k, v in layout(target).items()}
    text = re.sub(r"@([A-Z0-9_]+)@", lambda m: vals[m.group(1)], (target_dir() / "link.ld.in").read_text())
    return text


def qemu_ram_mib(target: Target) -> int:
    """RAM QEMU must give the board so every region exists (at least its default 128 MiB)."""
    return max(128, _align(layout(target)["RAM_END"] - RAM_BASE, 1 << 20) >> 20)


def cross_compiler() -> str:
    cc = shutil.which(CROSS_CC)
    if cc is None:
        raise FirmwareError(f"cross compiler {CROSS_CC} not found on PATH (install the Debian packages "
                            f"{CC_PACKAGES}, or run `bash tools/setup.sh` as root)")
    return cc


def main_sources(out: Path, main: str = "device") -> tuple[list[Path], list[str]]:
    """Main-loop sources and extra flags for a rendered build folder: device_main.c + link protocol +
    src/ef_model_info.h (identity of the compiled graph.json) + per-layer counters (network.c's EF_LAYER_HOOK ->
    ef_layer_mark), or the bring-up main."""
    if main not in MAINS:
        raise FirmwareError(f"unknown firmware main '{main}' (known: {', '.join(MAINS)})")
    fw = firmware_dir()
    if main == "raw":
        return [target_dir() / "raw_main.c"], []
    from edgeflow.link.model_info import write_model_info_h

    write_model_info_h(Graph.load(out), out / "src")   # the graph after the passes: what `stream` hashes too
    hook = ["-include", str(fw / "device" / "ef_layer_hook.h"), "-DEF_LAYER_HOOK(i)=ef_layer_mark(i)"]
    return [fw / "device" / "device_main.c", fw / "link" / "ef_link.c"], ["-I", str(fw / "link"), *hook]


def _overflow(stderr: str, target: Target) -> str | None:
    """One line for a region overflow in ld's output, naming the region, the bytes and where its size comes from."""
    m = re.search(r"region [`'](\w+)' overflowed by (\d+) bytes", stderr)
    if m is None:
        return None
    region, over = m.group(1), int(m.group(2))
    if region == "STACK":
        return f"{ELF}: the stack does not fit the rest of L1 (overflowed by {over} bytes)"
    lvl = target.level(region)
    what = {"L1": f"L1 tiles (usable {lvl.usable} of {lvl.size} bytes)",
            "L2": f"L2 (code, data, arena, resident weights; {lvl.size} bytes)",
            "L3": f"L3 weights ({lvl.size} bytes)"}.get(region, region)
    return (f"{ELF}: the plan does not fit memory region {region}: {what} overflowed by {over} bytes "
            f"(sizes from targets/{target.name}/target.toml)")


def _failure(res: subprocess.CompletedProcess, target: Target, what: str) -> FirmwareError:
    line = _overflow(res.stderr, target)
    if line is None:
        lines = [ln for ln in res.stderr.splitlines() if "error" in ln or "undefined reference" in ln]
        first = next((ln for ln in lines if "collect2" not in ln), lines[0] if lines else res.stderr.strip()[:300])
        line = f"{what}: {CROSS_CC} failed: {first}"
    return FirmwareError(line)


def link_firmware(out: Path, target: Target, sources: Sequence[Path], extra_flags: Sequence[str] = ()) -> Path:
    """Cross-compile and link sources + kernels + DMA HAL + rv32 HAL + crt0 into out/firmware.elf. Resident
    weights (weights.h) go to L2, the external weight image (src/ef_l3_image.c, when the plan streams weights)
    to L3; crt0 and the image are compiled on their own (they must not see the main loop's -include flags)."""
    cc = cross_compiler()
    fw, tdir = firmware_dir(), target_dir()
    (out / LINK_SCRIPT).write_text(render_link_script(target))
    defines = [f'-D{k}=__attribute__((section("{v}")))' for k, v in PLACEMENT.items()]
    l3_define = f'-DEF_WEIGHTS_DATA=__attribute__((section("{L3_WEIGHTS}")))'
    incs = ["-I", str(out / "src"), "-I", str(fw / "kernels"), "-I", str(fw / "hal"), "-I", str(fw / "device")]
    objs: list[Path] = []
    alone = [(tdir / "crt0.S", [*ARCH]), *((s, [*CFLAGS, l3_define, *incs]) for s in sources if s.name == L3_IMAGE)]
    for src, flags in alone:
        obj = out / (src.stem + ".o")
        res = subprocess.run([cc, *flags, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
        if res.returncode != 0:
            raise _failure(res, target, src.name)
        objs.append(obj)
    c_files = [*(s for s in sources if s.suffix == ".c" and s.name != L3_IMAGE),
               *sorted((fw / "kernels").glob("*.c")), fw / "hal" / "ef_dma_memcpy.c", tdir / "ef_hal_rv32.c"]
    cmd = [cc, *CFLAGS, *defines, *extra_flags, *incs, *map(str, objs), *map(str, c_files),
           "-T", str(out / LINK_SCRIPT), *LDFLAGS, "-o", str(out / ELF)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    for obj in objs:
        obj.unlink()
    if res.returncode != 0:
        raise _failure(res, target, ELF)
    return out / ELF


def section_sizes(elf: Path) -> dict[str, int]:
    """Allocated ELF sections and their bytes (riscv64-unknown-elf-size -A), zero-sized ones left out."""
    size = shutil.which(CROSS_SIZE)
    if size is None:
        raise FirmwareError(f"{CROSS_SIZE} not found on PATH (install the Debian package gcc-riscv64-unknown-elf)")
    res = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True, check=True)
    sizes: dict[str, int] = {}
    for ln in res.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit() and int(parts[1]) > 0:
            if parts[0] not in (".riscv.attributes",) and not parts[0].startswith(".debug"):
                sizes[parts[0]] = int(parts[1])
    return sizes


def firmware_report(elf: Path, target: Target) -> dict[str, Any]:
    """Section sizes and how full each region is (for report.json)."""
    s = section_sizes(elf)
    lay = layout(target)
    used = {"L2": sum(s.get(k, 0) for k in (".text", ".rodata", ".l2_weights", ".data", ".bss", ".l2")),
            "L1": s.get(".l1", 0), "L3": s.get(".weights", 0)}
    size = {"L2": lay["L2_SIZE"], "L1": lay["L1_USABLE"], "L3": lay["L3_SIZE"]}
    return {"elf": ELF, "sections": s, "qemu_ram_mib": qemu_ram_mib(target),
            "regions": {k: {"used": used[k], "size": size[k]} for k in used}}


def compile_rv32(graph: Graph, target: Target, out_dir: str | Path, main: str = "device") -> Artifact:
    """Plan `graph` against the target's memory levels and render it (host backend: linear layers in L1 tiles,
    arena in L2, weights in L2 or an L3 image), then cross-compile firmware.elf whose link-script regions come
    from the same target; report.json gains the ELF section sizes and region use."""
    if main not in MAINS:
        raise FirmwareError(f"unknown firmware main '{main}' (known: {', '.join(MAINS)})")
    cross_compiler()
    out = Path(out_dir)
    art = compile_host(graph, out, compile_binary=False, target=target)
    mains, flags = main_sources(out, main)
    elf = link_firmware(out, target, [*art.sources, *mains], flags)
    report = dict(art.report)
    report["backend"] = "rv32-virt"
    report["firmware"] = {**firmware_report(elf, target), "main": main}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return Artifact(out, art.sources, elf, art.plan, report)


def compile(graph: Graph, target: Target, out_dir: str | Path) -> Artifact:  # noqa: A001 - the backend contract
    """Backend contract entry: firmware.elf with the device main loop and the link protocol."""
    return compile_rv32(graph, target, out_dir)


def run_windows(elf: Path, windows: np.ndarray, n_out: int) -> np.ndarray:
    """Run firmware.elf on QEMU over int8 windows (N, ...); its int32 accumulators (N, n_out). Same signature as
    backends.host.run_binary, so `edgeflow build --check` runs the windows on the emulated device."""
    from edgeflow.link import emulator

    elf = Path(elf)
    try:
        main = json.loads((elf.parent / "report.json").read_text())["firmware"]["main"]
    except (OSError, ValueError, KeyError, TypeError):
        main = "device"
    if main == "raw":
        return emulator.run_raw_windows(elf, windows, n_out)
    return emulator.run_link_windows(elf, windows, n_out)
