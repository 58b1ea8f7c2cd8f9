"""Host backend: plan the activation arena, render network.c/weights.h, build a native binary with gcc."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.codegen import c_tiled
from edgeflow.codegen.c_network import render_network
from edgeflow.codegen.c_ops import CodegenError, activation_buffers, check_supported, flip_views
from edgeflow.ir import opdefs
from edgeflow.ir.graph import DTYPES, Graph, verify
from edgeflow.passes import run_pipeline
from edgeflow.plan.arena import plan_arena, verify_arena
from edgeflow.plan.levels import place
from edgeflow.resources import firmware_dir
from edgeflow.target import Target

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
BINARY = "firmware"


@dataclass
class Artifact:
    """What a backend built: the folder, the C sources, the binary, the arena plan and the report."""

    out_dir: Path
    sources: list[Path]
    binary: Path | None
    plan: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)


def _macs(graph: Graph, op: str, ins: list[tuple[int, ...]], out: tuple[int, ...], attrs: dict[str, Any]) -> int:
    """Multiply-accumulates of one node (0 for data movement; an estimate for the scan), from the op registry."""
    return opdefs.macs(op, ins, [out], attrs)


def _report(graph: Graph, plan: dict[str, Any], node_bytes: dict[str, int], weight_bytes: int) -> dict[str, Any]:
    views = flip_views(graph)
    nodes = []
    for i, n in enumerate(graph.nodes):
        ins = [tuple(graph.tensors[t].shape) for t in n.inputs]
        out = tuple(graph.tensors[n.outputs[0]].shape)
        act = sum(int(np.prod(graph.tensors[o].shape)) * DTYPES[graph.tensors[o].dtype] // 8
                  for o in n.outputs if o not in views)
        nodes.append({"index": i, "name": n.name, "op": n.op, "macs": _macs(graph, n.op, ins, out, n.attrs),
                      "weight_bytes": node_bytes.get(n.name, 0), "output_bytes": act})
    return {"model": graph.name, "backend": "host", "tiling": "none (whole tensors per kernel call)",
            "arena_bytes": plan["size"], "arena_lower_bound": plan["lower_bound"], "weight_bytes": weight_bytes,
            "macs": sum(n["macs"] for n in nodes), "nodes": nodes}


def build(out_dir: Path, sources: list[Path], hal: bool = False, extra_cflags: Sequence[str] = ()) -> Path:
    """gcc the generated sources with the kernel library and firmware/host_main.c into out_dir/firmware
    (with hal: also the memcpy DMA engine of firmware/hal, for tiled builds)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise CodegenError("host backend: gcc not found on PATH")
    fw = firmware_dir()
    kernels = sorted((fw / "kernels").glob("*.c"))
    if hal:  # L1 tiling: the DMA engine interface and its memcpy implementation
        kernels += [fw / "hal" / "ef_dma_memcpy.c"]
    binary = out_dir / BINARY
    cmd = [gcc, *CFLAGS, *extra_cflags, "-I", str(fw / "kernels"), *(["-I", str(fw / "hal")] if hal else []),
           "-I", str(out_dir / "src"),
           *map(str, [s for s in sources if s.suffix == ".c"]), str(fw / "host_main.c"), *map(str, kernels),
           "-o", str(binary)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:300])
        raise CodegenError(f"host backend: gcc failed: {first}")
    return binary


def _stream_bytes(graph: Graph, plans: dict) -> int:
    """Bytes of all tile blobs (packed rows + per-row params), from the plans alone."""
    total = 0
    for n in graph.nodes:
        if n.name in plans:
            shape, plan = c_tiled.linear_shape(graph, n), plans[n.name]
            total += sum(shape.tile_block_bytes(t.rows) for t in plan.tiles[:plan.n_row_tiles])
    return total


def _resident_estimate(graph: Graph, plans: dict) -> int:
    """Upper estimate of the constants that stay resident (everything not in a tile blob)."""
    tiled = {t for n in graph.nodes if n.name in plans for t in n.inputs[1:]}
    return sum(int(np.asarray(t.data).nbytes) for name, t in graph.tensors.items()
               if t.data is not None and name not in tiled)


def compile_host(graph: Graph, out_dir: str | Path, compile_binary: bool = True,
                 l1_bytes: int | None = None, target: Target | None = None) -> Artifact:
    """Plan, render and (optionally) build the host firmware of `graph` into out_dir (src/, plan.json,
    report.json, graph.json + weights.npz, firmware). With l1_bytes, every linear node runs as L1 tiles
    DMA-double-buffered (codegen/c_tiled.py); a layer whose smallest tile does not fit raises TilingError.
    With a target, L1 defaults to its usable L1 and the memory levels are planned (plan/levels.py): when the
    weights do not fit L2 beside the arena, the tile blobs go to an external image (weights.bin and
    src/ef_l3_image.c) streamed from L3; a model that fits no level raises PlanError."""
    verify(graph)
    graph = run_pipeline(graph)
    check_supported(graph)
    out = Path(out_dir)
    (out / "src").mkdir(parents=True, exist_ok=True)
    buffers = activation_buffers(graph)
    arena = plan_arena(buffers, alignment=4)
    verify_arena(buffers, arena)
    if target is not None and l1_bytes is None:
        l1_bytes = target.l1.usable
    plans = c_tiled.plan_linears(graph, l1_bytes) if l1_bytes is not None else {}
    placement, external = None, False
    l1_peak = max((p.l1_bytes_used for p in plans.values()), default=0)
    if target is not None:  # decide on an upper estimate of the resident bytes; the real sizes are checked below
        resident_estimate = _resident_estimate(graph, plans)
        stream = _stream_bytes(graph, plans)
        external = arena.size + resident_estimate + stream > target.l2.usable
    ext = c_tiled.ExtImage() if external else None
    with c_tiled.tiled_linears(plans), c_tiled.external_weights(ext):
        srcs = render_network(graph, arena.offsets, arena.size)
    if target is not None:  # place with the rendered sizes
        stream = _stream_bytes(graph, plans)
        resident = srcs.weight_bytes - (0 if ext is not None else stream)
        if external and arena.size + resident + stream <= target.l2.usable:
            external, ext = False, None  # the estimate was pessimistic: everything fits L2, render it there
            with c_tiled.tiled_linears(plans), c_tiled.external_weights(None):
                srcs = render_network(graph, arena.offsets, arena.size)
        placement = place(target, arena.size, resident, stream, l1_peak, external=external)
    sources = []
    for name, text in (("network.h", srcs.network_h), ("network.c", srcs.network_c), ("weights.h", srcs.weights_h)):
        (out / "src" / name).write_text(text)
        sources.append(out / "src" / name)
    if plans:  # --- L1 tiling: runner sources
        max_block = max(c_tiled.linear_shape(graph, n).tile_block_bytes(plans[n.name].rows_per_tile)
                        for n in graph.nodes if n.name in plans)
        runner = c_tiled.render_runner(int(l1_bytes or 0), ext.size if ext is not None else 0, max_block)
        for name, text in zip((c_tiled.HEADER, c_tiled.SOURCE), runner, strict=True):
            (out / "src" / name).write_text(text)
            sources.append(out / "src" / name)
    if ext is not None:  # --- weights streamed from L3: the image for the device loader and portable builds
        (out / "weights.bin").write_bytes(ext.data().tobytes())
        (out / "src" / "ef_l3_image.c").write_text(ext.render_c())
        sources.append(out / "src" / "ef_l3_image.c")
    plan = arena.to_dict()
    plan["buffers"] = [{"name": b.name, "bytes": b.size, "first": b.first, "last": b.last,
                        "offset": arena.offsets[b.name]} for b in buffers]
    plan["flip_views"] = flip_views(graph)
    plan["tiling"] = "none: whole tensors per kernel call"
    report = _report(graph, plan, srcs.node_weight_bytes, srcs.weight_bytes + (ext.size if ext is not None else 0))
    if plans:  # --- L1 tiling: per-node tile facts in plan.json and report.json
        infos = {n.name: c_tiled.tile_info(c_tiled.linear_shape(graph, n), plans[n.name])
                 for n in graph.nodes if n.name in plans}
        plan["tiling"] = {"l1_bytes": l1_bytes, "ops": "linear (others whole tensors in L2)", "nodes": infos}
        report["tiling"] = f"linear nodes in L1 tiles of <= {l1_bytes} bytes, DMA double-buffered"
        for node in report["nodes"]:
            if node["name"] in infos:
                node["tiling"] = {k: infos[node["name"]][k] for k in
                                  ("n_tiles", "rows_per_tile", "tokens_per_tile", "l1_bytes_used", "dma_bytes")}
    if placement is not None:
        plan["memory"] = report["memory"] = placement.to_dict()
        if ext is not None:
            plan["memory"]["external_blobs"] = {k: {"offset": o, "bytes": b} for k, (o, b) in ext.blobs.items()}
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    graph.save(out)
    binary = build(out, sources, hal=bool(plans)) if compile_binary else None
    return Artifact(out, sources, binary, plan, report)


def compile(graph: Graph, target: object, out_dir: str | Path) -> Artifact:  # noqa: A001 - the backend contract
    """Backend contract entry: the host target has no memory levels to honour, so `target` is unused."""
    return compile_host(graph, out_dir)


def run_binary(binary: Path, windows: np.ndarray, n_out: int) -> np.ndarray:
    """Run the host firmware once over int8 windows (N, ...); int32 accumulators (N, n_out)."""
    data = np.ascontiguousarray(windows, dtype=np.int8).tobytes()
    res = subprocess.run([str(binary)], input=data, capture_output=True, check=True)
    return np.frombuffer(res.stdout, dtype=np.int32).reshape(len(windows), n_out)
