"""The C pipeline shared by host, gap9, rv32-virt and pulp-open: passes -> plan_memory -> render -> files -> gcc."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.backends import toolchain
from edgeflow.backends.report import build_report
from edgeflow.codegen.c_network import render_network
from edgeflow.codegen.c_ops import check_supported
from edgeflow.codegen.emitter import CodegenError
from edgeflow.ir.graph import Graph, verify
from edgeflow.passes import run_pipeline
from edgeflow.plan.memory import MemoryPlan, plan_memory
from edgeflow.resources import firmware_dir
from edgeflow.target import Target

#: Whole-tensor kernels cut across the team by firmware/hal/ef_team_split.c and ef_team_split_zp.c
#: (linked with -Wl,--wrap=NAME)
SPLIT_KERNELS = ("ef_scan_i8", "ef_dwconv1d_causal_i8", "ef_dwconv1d_causal_lut_i8", "ef_conv2d_patch_i8",
                 "ef_layernorm_i8", "ef_lut_i8", "ef_mul_requant_i8", "ef_add_requant_i8", "ef_meanpool_tokens_i8",
                 "ef_conv_i8", "ef_pool_i8", "ef_flip_rows_i8", "ef_matmul_zp_i8", "ef_softmax_rows_zp_i8",
                 "ef_add_requant_zp_i8", "ef_mul_requant_zp_i8")

WEIGHTS_BIN = "weights.bin"
HOST_BINARY = "firmware"


@dataclass
class Rendered:
    """A build folder after rendering: the lowered graph, its MemoryPlan, the C sources, report.json's content."""

    out_dir: Path
    graph: Graph
    plan: MemoryPlan
    sources: list[Path]
    report: dict[str, Any]

    def save_report(self) -> None:
        (self.out_dir / "report.json").write_text(json.dumps(self.report, indent=1))


def lower(graph: Graph) -> Graph:
    """The verified graph after the pass pipeline, checked renderable by the C backend."""
    verify(graph)
    graph = run_pipeline(graph)
    check_supported(graph)
    return graph


def render_build(graph: Graph, target: Target | None, out_dir: str | Path, backend: str,
                 l1_bytes: int | None = None) -> Rendered:
    """Lower, plan and render `graph` into out_dir: src/*.{c,h}, weights.bin (when blobs stream from an external
    level), plan.json (the MemoryPlan), report.json, graph.json + weights.npz. target None or l1_bytes: see
    plan_memory."""
    graph = lower(graph)
    plan = plan_memory(graph, target, l1_bytes=l1_bytes)
    srcs = render_network(graph, plan)
    out = Path(out_dir)
    (out / "src").mkdir(parents=True, exist_ok=True)
    sources = []
    for name, text in srcs.files.items():
        (out / "src" / name).write_text(text)
        sources.append(out / "src" / name)
    if srcs.image is not None:
        (out / WEIGHTS_BIN).write_bytes(np.asarray(srcs.image, np.uint8).tobytes())
    (out / "plan.json").write_text(json.dumps(plan.to_dict(), indent=1))
    graph.save(out)
    rendered = Rendered(out, graph, plan, sources, build_report(graph, plan, srcs.weight_bytes, backend))
    rendered.save_report()
    return rendered


def build_host_binary(out_dir: Path, sources: Sequence[Path], hal: bool = False,
                      extra_cflags: Sequence[str] = ()) -> Path:
    """Compile the generated sources with the kernel library and firmware/host_main.c into out_dir/firmware with
    the host target's compiler (with hal: also the memcpy DMA engine of firmware/hal, for tiled builds)."""
    c = toolchain.host_compiler()
    gcc = toolchain.cc(c, CodegenError)
    fw = firmware_dir()
    kernels = toolchain.kernel_sources(c.kernels)
    if hal:  # L1 tiling: the DMA engine interface and its memcpy implementation
        kernels += [fw / "hal" / "ef_dma_memcpy.c"]
    binary = out_dir / HOST_BINARY
    cmd = [gcc, *c.cflags, *extra_cflags, "-I", str(fw / "kernels"), *(["-I", str(fw / "hal")] if hal else []),
           "-I", str(out_dir / "src"),
           *map(str, [s for s in sources if s.suffix == ".c"]), str(fw / "host_main.c"), *map(str, kernels),
           "-o", str(binary)]
    toolchain.run(cmd, "host backend", CodegenError)
    return binary
