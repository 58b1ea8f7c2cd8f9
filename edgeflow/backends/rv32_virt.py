"""rv32-virt backend: the host backend's C with L1 tiles, a link script sized from target.toml, built for QEMU virt."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.backends import toolchain
from edgeflow.backends.base import Artifact, Backend, Flashed
from edgeflow.backends.c_pipeline import render_build
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph
from edgeflow.plan.arena import align_up as _align
from edgeflow.resources import firmware_dir, targets_dir
from edgeflow.runners import qemu_rv32
from edgeflow.target import Target

# The compiler, its flags and the size tool come from targets/rv32-virt/target.toml [compiler].
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


def cross_compiler(target: Target) -> str:
    """The target's cross compiler; FirmwareError naming the packages to install when it is missing."""
    c = target.compiler
    return toolchain.find(c.cc, f"the Debian packages {c.packages}", FirmwareError)


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
    hit = toolchain.region_overflow(stderr)
    if hit is None:
        return None
    region, over = hit
    if region == "STACK":
        return f"{ELF}: the stack does not fit the rest of L1 (overflowed by {over} bytes)"
    lvl = target.level(region)
    what = {"L1": f"L1 tiles (usable {lvl.usable} of {lvl.size} bytes)",
            "L2": f"L2 (code, data, arena, resident weights; {lvl.size} bytes)",
            "L3": f"L3 weights ({lvl.size} bytes)"}.get(region, region)
    return (f"{ELF}: the plan does not fit memory region {region}: {what} overflowed by {over} bytes "
            f"(sizes from targets/{target.name}/target.toml)")


def link_firmware(out: Path, target: Target, sources: Sequence[Path], extra_flags: Sequence[str] = ()) -> Path:
    """Cross-compile and link sources + kernels + DMA HAL + rv32 HAL + crt0 into out/firmware.elf. Resident
    weights (weights.h) go to L2, the external weight image (src/ef_l3_image.c, when the plan streams weights)
    to L3; crt0 and the image are compiled on their own (they must not see the main loop's -include flags)."""
    cc, c = cross_compiler(target), target.compiler
    fw, tdir = firmware_dir(), target_dir()
    (out / LINK_SCRIPT).write_text(render_link_script(target))
    defines = [f'-D{k}=__attribute__((section("{v}")))' for k, v in PLACEMENT.items()]
    l3_define = f'-DEF_WEIGHTS_DATA=__attribute__((section("{L3_WEIGHTS}")))'
    incs = ["-I", str(out / "src"), "-I", str(fw / "kernels"), "-I", str(fw / "hal"), "-I", str(fw / "device")]

    def explain(stderr: str) -> str | None:
        return _overflow(stderr, target)

    objs: list[Path] = []
    alone = [(tdir / "crt0.S", toolchain.arch_flags(c)),
             *((s, [*c.cflags, l3_define, *incs]) for s in sources if s.name == L3_IMAGE)]
    for src, flags in alone:
        obj = out / (src.stem + ".o")
        toolchain.run([cc, *flags, "-c", str(src), "-o", str(obj)], src.name, FirmwareError, explain)
        objs.append(obj)
    c_files = [*(s for s in sources if s.suffix == ".c" and s.name != L3_IMAGE),
               *toolchain.kernel_sources(c.kernels), fw / "hal" / "ef_dma_memcpy.c", tdir / "ef_hal_rv32.c"]
    cmd = [cc, *c.cflags, *defines, *extra_flags, *incs, *map(str, objs), *map(str, c_files),
           "-T", str(out / LINK_SCRIPT), *c.ldflags, "-o", str(out / ELF)]
    try:
        toolchain.run(cmd, ELF, FirmwareError, explain)
    finally:
        for obj in objs:
            obj.unlink()
    return out / ELF


def section_sizes(elf: Path, target: Target) -> dict[str, int]:
    """Allocated ELF sections and their bytes (the target's size tool, -A), zero-sized ones left out."""
    size = toolchain.find(target.compiler.size, f"the Debian packages {target.compiler.packages}", FirmwareError)
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
    s = section_sizes(elf, target)
    lay = layout(target)
    used = {"L2": sum(s.get(k, 0) for k in (".text", ".rodata", ".l2_weights", ".data", ".bss", ".l2")),
            "L1": s.get(".l1", 0), "L3": s.get(".weights", 0)}
    size = {"L2": lay["L2_SIZE"], "L1": lay["L1_USABLE"], "L3": lay["L3_SIZE"]}
    return {"elf": ELF, "sections": s, "qemu_ram_mib": qemu_ram_mib(target),
            "regions": {k: {"used": used[k], "size": size[k]} for k in used}}


def compile_rv32(graph: Graph, target: Target, out_dir: str | Path, main: str = "device") -> Artifact:
    """Plan `graph` against the target's memory levels and render it (the C pipeline: linear layers in L1 tiles,
    arena in L2, weights in L2 or an L3 image), then cross-compile firmware.elf whose link-script regions come
    from the same target; report.json gains the ELF section sizes and region use."""
    if main not in MAINS:
        raise FirmwareError(f"unknown firmware main '{main}' (known: {', '.join(MAINS)})")
    cross_compiler(target)
    r = render_build(graph, target, out_dir, "rv32-virt")
    mains, flags = main_sources(r.out_dir, main)
    elf = link_firmware(r.out_dir, target, [*r.sources, *mains], flags)
    r.report["firmware"] = {**firmware_report(elf, target), "main": main}
    r.save_report()
    return Artifact(r.out_dir, r.sources, elf, r.plan.to_dict(), r.report)


def compile(graph: Graph, target: Target, out_dir: str | Path) -> Artifact:  # noqa: A001 - the backend contract
    """Backend contract entry: firmware.elf with the device main loop and the link protocol."""
    return compile_rv32(graph, target, out_dir)


def run_windows(elf: Path, windows: np.ndarray, n_out: int) -> np.ndarray:
    """Run firmware.elf on QEMU over int8 windows (N, ...); its int32 accumulators (N, n_out). Same signature as
    runners.native.run_binary, so `edgeflow build --check` runs the windows on the emulated device."""
    elf = Path(elf)
    try:
        main = json.loads((elf.parent / "report.json").read_text())["firmware"]["main"]
    except (OSError, ValueError, KeyError, TypeError):
        main = "device"
    if main == "raw":
        return qemu_rv32.run_raw_windows(elf, windows, n_out)
    return qemu_rv32.run_link_windows(elf, windows, n_out)


def flash(build_dir: str | Path) -> Flashed:
    """Build firmware.elf if needed (from the build's model.onnx) and start QEMU on it in the background
    (device.json in the build folder)."""
    from edgeflow.link.flash import ensure_built

    build = Path(build_dir)
    qemu_rv32.qemu_binary()                       # say QEMU is missing before building anything
    rebuilt = ensure_built(build, "rv32-virt", ELF)
    dev = qemu_rv32.start(build)
    return Flashed("rv32-virt", build, dev.port, dev.pid, rebuilt, f"QEMU pid {dev.pid}, log {dev.log}")


BACKEND = Backend("rv32-virt", compile, run_windows=run_windows, flash=flash, stop=qemu_rv32.stop, tolerance=0.0,
                  binary=ELF, description="firmware.elf for QEMU virt rv32imc; windows over the link protocol")
