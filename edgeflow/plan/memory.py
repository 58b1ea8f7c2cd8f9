"""The memory plan as data: one frozen MemoryPlan (arena, tiles, layouts, placement, external blobs) per build."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeflow.ir.graph import Graph
from edgeflow.plan.arena import ArenaPlan, Buffer, align_up, plan_arena, verify_arena
from edgeflow.plan.layout import constant_bytes, describe, linear_shape, node_constants, packed_requant
from edgeflow.plan.levels import Placement, PlanError, place
from edgeflow.plan.liveness import activation_buffers, aliases, flip_views, fused_luts, lut_aliases, merge_aliases
from edgeflow.plan.scan_tiling import ScanShape, ScanTilePlan, tile_scan
from edgeflow.plan.tiling import LinearShape, TilePlan, tile_linear
from edgeflow.target import Target

ALIGN = 4  # arena offsets, tile block parts and external blobs start on 4-byte boundaries
PARALLEL_RULE = "output rows of each tile: core c of n takes [c*ceil(rn/n), min(rn, (c+1)*ceil(rn/n)))"
DMA_ORDER = {True: "start(0); for tile k: wait(k), start(k+1) into slot (k+1)%2, compute(k) from slot k%2",
             False: "for tile k: start(k), wait(k), compute(k) in slot 0"}


@dataclass(frozen=True)
class LinearPlan:
    """A linear layer run as L1 tiles: its storage layout, tiles, L1 layout and where its weight blob lives."""

    node: str
    shape: LinearShape
    tiles: TilePlan
    sh_base: int                       # shift base of packed m|sh words (0 when not packed)
    block_offsets: tuple[int, ...]     # byte offset of each row tile's block in the blob
    blob_bytes: int
    level: str                         # "L2" (an array in weights.h) or the external level it streams from
    ext_offset: int | None             # offset in the external image (weights.bin) when external

    @property
    def max_block(self) -> int:
        return self.shape.tile_block_bytes(self.tiles.rows_per_tile, ALIGN)

    def to_dict(self) -> dict[str, Any]:
        """Per-node tiling facts for plan.json / report.json (bytes per call of the layer, i.e. per window)."""
        p, s = self.tiles, self.shape
        info = p.to_dict()
        info.update({"tiles": [[t.row_start, t.rows, t.token_start, t.tokens] for t in p.tiles],
                     "param_bytes_per_row": s.param_bytes_per_row, "row_bytes": s.row_bytes,
                     "dma_bytes": sum(t.dma_bytes for t in p.tiles),
                     "dma_weight_param_bytes": self.blob_bytes * p.n_token_tiles,
                     "dma_input_bytes": s.tokens * s.n_in,
                     "dma_out_bytes": s.tokens * s.n_out,
                     # per tile its block and its output (one 2-D transfer back), the input per token tile (one a
                     # row when L1 pads the rows)
                     "dma_starts": 2 * p.n_tiles + (p.n_token_tiles if s.x_stride == s.n_in else s.tokens),
                     "dma_order": DMA_ORDER[p.double_buffer],
                     "storage": {"w_bits": s.w_bits, "bias_bytes": s.bias_bytes if s.has_bias else 0,
                                 "m_bytes": s.m_bytes, "sh_packed": s.sh_packed, "sh_base": self.sh_base,
                                 "block": describe(s) + " | packed rows"},
                     "blob": {"level": self.level, "bytes": self.blob_bytes, "offset": self.ext_offset,
                              "block_offsets": list(self.block_offsets)}})
        return info


@dataclass(frozen=True)
class Constant:
    """One constant array stored in addressable memory (weights.h): tensor, storage kind, bytes."""

    tensor: str
    kind: str
    bytes: int


@dataclass(frozen=True)
class NodeStep:
    """One step of the schedule: the node, what it reads and writes (arena buffers, constants, the input) and
    how it runs ("tiles": the LinearPlan of the same name; "whole": one kernel call on whole tensors; "fused": a
    lut its producer's tiles apply, see MemoryPlan.fused_luts)."""

    index: int
    node: str
    op: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "node": self.node, "op": self.op, "reads": list(self.reads),
                "writes": list(self.writes), "run": self.run}


@dataclass(frozen=True)
class MemoryPlan:
    """Every memory decision of a build: renderers and backends read it, nothing else decides."""

    model: str
    target: str | None
    arena: ArenaPlan
    buffers: tuple[Buffer, ...]
    flip_views: dict[str, str]
    l1_bytes: int | None               # L1 budget of the tiles; None: whole tensors per kernel call
    linears: dict[str, LinearPlan]     # tiled linear nodes by name
    constants: tuple[Constant, ...]    # resident constants (weights.h), tile blobs excluded
    node_weight_bytes: dict[str, int]  # constants (or blob) bytes each node reads
    placement: Placement | None        # None: a target without memory levels
    steps: tuple[NodeStep, ...] = ()   # the schedule, in node order
    cores: int = 1
    aliases: dict[str, str] = field(default_factory=dict)  # reshape view -> the tensor whose buffer it reads
    scans: dict[str, ScanTilePlan] = field(default_factory=dict)  # scan nodes run as L1 channel tiles
    fused_luts: dict[str, str] = field(default_factory=dict)  # lut node -> the tiled linear that applies its table

    def lut_after(self, producer: str) -> str | None:
        """The fused lut node whose table `producer` applies (fused_luts), or None."""
        return next((lut for lut, p in self.fused_luts.items() if p == producer), None)

    @property
    def tiled(self) -> bool:
        return bool(self.linears or self.scans)

    @property
    def has_runner(self) -> bool:
        """The build carries the L1 area, the tiled runner and the DMA interface (ef_tiled.h/.c): a plan with
        an L1 budget, even when no layer is tiled (multi-core HALs split whole-tensor kernels through it)."""
        return self.l1_bytes is not None

    @property
    def resident_bytes(self) -> int:
        return sum(c.bytes for c in self.constants)

    @property
    def stream_bytes(self) -> int:
        return sum(lp.blob_bytes for lp in self.linears.values())

    @property
    def external(self) -> tuple[LinearPlan, ...]:
        """Linear plans whose blob streams from the external image, in image order."""
        return tuple(lp for lp in self.linears.values() if lp.ext_offset is not None)

    @property
    def ext_bytes(self) -> int:
        return sum(align_up(lp.blob_bytes, ALIGN) for lp in self.external)

    @property
    def weight_bytes(self) -> int:
        return self.resident_bytes + self.stream_bytes

    @property
    def max_block(self) -> int:
        return max((lp.max_block for lp in self.linears.values()), default=0)

    def to_dict(self) -> dict[str, Any]:
        """plan.json: the arena, buffers, flip views, tiling (always a dict), memory by level, parallel split."""
        d: dict[str, Any] = self.arena.to_dict()
        d["model"], d["target"] = self.model, self.target
        d["buffers"] = [{"name": b.name, "bytes": b.size, "first": b.first, "last": b.last,
                         "offset": self.arena.offsets[b.name]} for b in self.buffers]
        d["flip_views"] = dict(self.flip_views)
        d["aliases"] = dict(self.aliases)
        d["fused_luts"] = dict(self.fused_luts)
        d["steps"] = [s.to_dict() for s in self.steps]
        d["tiling"] = {"l1_bytes": self.l1_bytes,
                       "ops": (("linear, scan" if self.scans else "linear") + " (others whole tensors in L2)")
                       if self.tiled else "none: whole tensors per kernel call",
                       "nodes": {k: v.to_dict() for k, v in self.linears.items()},
                       "scans": {k: v.to_dict() for k, v in self.scans.items()}}
        d["constants"] = [{"tensor": c.tensor, "kind": c.kind, "bytes": c.bytes} for c in self.constants]
        d["parallel"] = {"cores": self.cores, "split": PARALLEL_RULE}
        if self.placement is not None:
            d["memory"] = self.placement.to_dict()
            if self.external:
                d["memory"]["external_blobs"] = {lp.node: {"offset": lp.ext_offset, "bytes": lp.blob_bytes}
                                                 for lp in self.external}
        return d


def _constants(graph: Graph, tiled: set[str]) -> tuple[tuple[Constant, ...], dict[str, int]]:
    """The resident constant arrays in first-use order and each whole-tensor node's constant bytes."""
    seen: dict[tuple[str, str], Constant] = {}
    per_node: dict[str, int] = {}
    for n in graph.nodes:
        if n.name in tiled:
            continue
        total = 0
        for name, kind in node_constants(graph, n):
            c = seen.setdefault((name, kind), Constant(name, kind, constant_bytes(graph.tensors[name], kind)))
            total += c.bytes
        per_node[n.name] = total
    return tuple(seen.values()), per_node


#: Output rows and tokens a kernel variant's linear computes together (XP_RB, XP_TP of
#: firmware/kernels/xpulpv2/ef_linear.c).
ROW_GROUP = {"xpulpv2": 2}
TOKEN_GROUP = {"xpulpv2": 4}


def _tile_linears(graph: Graph, l1_bytes: int, target: Target | None) -> dict[str, tuple[LinearShape, TilePlan]]:
    """A storage layout and a TilePlan per `linear` node (TilingError names a layer whose smallest tile is too big);
    row tiles sized for the target's team split (its cores, its linear kernel's row group)."""
    cores = 1 if target is None else target.cores
    group = 1 if target is None else next((ROW_GROUP[k] for k in target.compiler.kernels if k in ROW_GROUP), 1)
    tgroup = 1 if target is None else next((TOKEN_GROUP[k] for k in target.compiler.kernels if k in TOKEN_GROUP), 1)
    out = {}
    for n in graph.nodes:
        if n.op == "linear":
            shape = linear_shape(graph, n)
            out[n.name] = (shape, tile_linear(shape, l1_bytes, align=ALIGN, cores=cores, row_group=group,
                                              token_group=tgroup))
    return out


def _tile_scans(graph: Graph, l1_bytes: int, cores: int = 1) -> dict[str, ScanTilePlan]:
    """A ScanTilePlan per `scan` node whose one-channel tile fits L1 (the others run on whole tensors in L2)."""
    out = {}
    for n in graph.nodes:
        if n.op == "scan":
            t, d = graph.tensors[n.inputs[0]].shape
            sp = tile_scan(ScanShape(n.name, int(t), int(d), int(graph.tensors[n.inputs[4]].shape[1])), l1_bytes,
                           ALIGN, cores)
            if sp is not None:
                out[n.name] = sp
    return out


def _linear_plans(graph: Graph, tiled: dict[str, tuple[LinearShape, TilePlan]], level: str) -> dict[str, LinearPlan]:
    plans: dict[str, LinearPlan] = {}
    ext = 0
    for name, (shape, tp) in tiled.items():
        offsets, off = [], 0
        for t in tp.tiles[:tp.n_row_tiles]:
            offsets.append(off)
            off += shape.tile_block_bytes(t.rows, ALIGN)
        packed = packed_requant(graph, graph.node(name))
        ext_off = None if level == "L2" else ext
        if ext_off is not None:
            ext += align_up(off, ALIGN)
        plans[name] = LinearPlan(name, shape, tp, 0 if packed is None else packed[1], tuple(offsets), off, level,
                                 ext_off)
    return plans


def _peak_step(graph: Graph, buffers: list[Buffer]) -> str:
    """'name' (op, N bytes live) of the step with the most live activation bytes (whole tensors in L2)."""
    live = [sum(b.size for b in buffers if b.first <= i <= b.last) for i in range(len(graph.nodes))]
    i = max(range(len(live)), key=live.__getitem__)
    return f"'{graph.nodes[i].name}' ({graph.nodes[i].op}, {live[i]} bytes live)"


def plan_memory(graph: Graph, target: Target | None = None, l1_bytes: int | None = None) -> MemoryPlan:
    """The MemoryPlan of a lowered graph on `target`: liveness arena (verified), L1 tiles of every linear node
    (budget l1_bytes, else the target's usable L1; none for a target without memory levels) and of every scan
    that fits (not on a target with tile_scans = false: whole tensors in L2 there), the storage layout
    of every constant, and the placement by level from exact byte counts (PlanError / TilingError when it does
    not fit)."""
    levels = target is not None and bool(target.memory)
    if levels and l1_bytes is None:
        l1_bytes = target.l1.usable
    # a multi-core target's tiled linears apply a following lut to their tiles in L1 (its layer runs no code)
    fused = fused_luts(graph) if l1_bytes is not None and target is not None and target.cores > 1 else {}
    lut_alias = lut_aliases(graph, fused)
    buffers = activation_buffers(graph, lut_alias)
    arena = plan_arena(buffers, alignment=ALIGN)
    verify_arena(buffers, arena)
    tiled = _tile_linears(graph, l1_bytes, target) if l1_bytes is not None else {}
    tile_scans = l1_bytes is not None and (target is None or target.tile_scans)
    scans = _tile_scans(graph, l1_bytes, 1 if target is None else target.cores) if tile_scans else {}
    constants, per_node = _constants(graph, set(tiled))
    resident = sum(c.bytes for c in constants)
    stream = sum(sum(s.tile_block_bytes(t.rows, ALIGN) for t in p.tiles[:p.n_row_tiles]) for s, p in tiled.values())
    placement = None
    if levels:
        l1_peak = max([p.l1_bytes_used for _, p in tiled.values()] + [p.l1_bytes_used for p in scans.values()],
                      default=0)
        try:
            placement = place(target, arena.size, resident, stream, l1_peak)
        except PlanError as e:
            if arena.size + resident <= target.l2.usable:
                raise
            raise PlanError(f"{e}; the most live activations are at node {_peak_step(graph, buffers)}") from None
    linears = _linear_plans(graph, tiled, placement.weights_level if placement is not None else "L2")
    per_node.update({k: lp.blob_bytes for k, lp in linears.items()})
    for lut, producer in fused.items():  # a fused lut's table is read by its producer's runner
        per_node[producer] += per_node[lut]
        per_node[lut] = 0
    node_bytes = {n.name: per_node[n.name] for n in graph.nodes}
    steps = tuple(NodeStep(i, n.name, n.op, tuple(n.inputs), tuple(n.outputs),
                           "tiles" if n.name in linears or n.name in scans else "fused" if n.name in fused
                           else "whole")
                  for i, n in enumerate(graph.nodes))
    return MemoryPlan(graph.name, None if target is None else target.name, arena, tuple(buffers),
                      flip_views(graph), l1_bytes, linears, constants, node_bytes, placement, steps,
                      1 if target is None else target.cores, merge_aliases(aliases(graph), lut_alias), scans, fused)
