"""Tiled linear renderer: a linear node as L1 row/token tiles, DMA double-buffered over the HAL's ef_dma engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeflow.codegen.c_tiled_runner import render_runner as render_runner
from edgeflow.codegen.c_weights import c_ident, pack_bits, render_array
from edgeflow.ir.graph import Graph, Node
from edgeflow.ir.ops import TERNARY, is_ternary, pack_weights
from edgeflow.plan.tiling import LinearShape, TilePlan, TilingError, tile_linear

if TYPE_CHECKING:
    from edgeflow.codegen.c_ops import Emitter

ALIGN = 4
SH_SPAN = 4  # a packed shift is sh_base + 0..3 (two bits)
HEADER = "ef_tiled.h"
SOURCE = "ef_tiled.c"

_PLANS: ContextVar[dict[str, TilePlan] | None] = ContextVar("edgeflow_tile_plans", default=None)


#: The shape of a C tile block, [bias int16/int32 | m words (uint16 / uint32 m|sh, or int32 m) | int8 shifts unless
#: packed | packed weight rows]: LinearShape describes it fully (the subclass that added fields is gone).
CLinearShape = LinearShape


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def pack_requant(m: np.ndarray, sh: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(words, sh_base = min(sh)) with each row's shift packed into its multiplier's two free top bits, when the
    shifts span at most SH_SPAN values and every m has its top bit at the same place: 15-bit m in [2^14, 2^15)
    -> uint16 (m - 2^14) | ((sh - sh_base) << 14); Q31 m in [2^30, 2^31) -> uint32 (m - 2^30) | (.. << 30).
    None otherwise (e.g. m == 0): m stays int32 with an int8 shift array.

    >>> w, base = pack_requant(np.array([1 << 30, (1 << 31) - 1]), np.array([9, 12]))
    >>> [hex(v) for v in w], base
    (['0x0', '0xffffffff'], 9)
    >>> w, base = pack_requant(np.array([1 << 14, (1 << 15) - 1]), np.array([20, 21]))
    >>> [hex(v) for v in w], w.dtype.name, base
    (['0x0', '0x7fff'], 'uint16', 20)
    """
    m, sh = np.asarray(m, np.int64).reshape(-1), np.asarray(sh, np.int64).reshape(-1)
    if m.size == 0 or int(sh.max() - sh.min()) >= SH_SPAN:
        return None
    base = int(sh.min())
    for bits, dtype in ((15, np.uint16), (31, np.uint32)):
        top = 1 << (bits - 1)
        if m.min() >= top and m.max() < 2 * top:
            return ((m - top) | ((sh - base) << (bits - 1))).astype(dtype), base
    return None


def unpack_requant(words: np.ndarray, sh_base: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, sh) int64 from packed words, as the C runner does (16-bit: m = (w & 0x3FFF) | 2^14, sh = sh_base +
    (w >> 14); 32-bit: m = (w & 0x3FFFFFFF) | 2^30, sh = sh_base + (w >> 30))."""
    w = np.asarray(words)
    top = 1 << (8 * w.dtype.itemsize - 2)
    w = w.astype(np.int64)
    return (w & (top - 1)) | top, sh_base + (w // top)


def _requant(graph: Graph, n: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(m, sh) of a linear node as int64 row vectors, or None when either is not a constant."""
    m, sh = (graph.tensors[name].data for name in n.inputs[3:5])
    if m is None or sh is None:
        return None
    return np.asarray(m).reshape(-1).astype(np.int64), np.asarray(sh).reshape(-1).astype(np.int64)


def _packed(graph: Graph, n: Node) -> tuple[np.ndarray, int] | None:
    req = _requant(graph, n)
    return None if req is None else pack_requant(*req)


def _bias(graph: Graph, n: Node) -> np.ndarray | None:
    """The stored bias of a linear node: None when absent or all zero, else int64 values."""
    b = graph.tensors[n.inputs[2]].data
    if b is None or not np.any(np.asarray(b) != 0):
        return None
    return np.asarray(b).reshape(-1).astype(np.int64)


def linear_shape(graph: Graph, n: Node) -> CLinearShape:
    """The tiling shape of a `linear` node (x (T, ...) int8, w (O, n_in) packed, bias/m/sh per output row); an
    all-zero bias is not stored, one that fits int16 is stored int16, and the shifts are packed into m when
    pack_requant allows (16-bit words for 15-bit multipliers)."""
    if n.op != "linear" or len(n.inputs) != 5:
        raise TilingError(f"node '{n.name}' ({n.op}): only 5-input linear nodes are tiled")
    xs = tuple(graph.tensors[n.inputs[0]].shape)
    tokens, n_in = (1, int(np.prod(xs))) if len(xs) <= 1 else (int(xs[0]), int(np.prod(xs[1:])))
    w = graph.tensors[n.inputs[1]]
    if graph.tensors[n.outputs[0]].dtype != "int8":
        raise TilingError(f"node '{n.name}' (linear): tiled output must be int8")
    bits = pack_bits(w.bits)
    if bits == 2 and w.data is not None and is_ternary(w.data):
        bits = TERNARY  # 2-bit narrow range: five weights a byte instead of four
    bias = _bias(graph, n)
    narrow = bias is not None and bias.min() >= -(1 << 15) and bias.max() < 1 << 15
    packed = _packed(graph, n)
    return CLinearShape(n.name, tokens, n_in, int(w.shape[0]), bits, bias is not None, packed is not None,
                        2 if narrow else 4, 4 if packed is None else packed[0].dtype.itemsize)


def plan_linears(graph: Graph, l1_bytes: int) -> dict[str, TilePlan]:
    """A TilePlan per `linear` node for an L1 of l1_bytes (TilingError names a layer whose smallest tile is too big)."""
    return {n.name: tile_linear(linear_shape(graph, n), l1_bytes) for n in graph.nodes if n.op == "linear"}


@contextmanager
def tiled_linears(plans: dict[str, TilePlan]) -> Iterator[None]:
    """While active, c_ops renders the linear nodes named in `plans` through emit_tiled_linear."""
    token = _PLANS.set(plans or None)
    try:
        yield
    finally:
        _PLANS.reset(token)


def active_plan(name: str) -> TilePlan | None:
    plans = _PLANS.get()
    return None if plans is None else plans.get(name)


def input_loads(plan: TilePlan) -> int:
    """Input DMAs per call: one per token tile, or one in all when the whole input stays resident in L1."""
    return plan.n_token_tiles


def _layout(shape: CLinearShape, plan: TilePlan) -> dict[str, int]:
    """L1 offsets: two slots of [params | weights], input buffer(s), one output tile; total == plan.l1_bytes_used."""
    rows, tokens = plan.rows_per_tile, plan.tokens_per_tile or shape.tokens
    slot = shape.tile_block_bytes(rows, ALIGN)
    in_bufs = 1 if tokens >= shape.tokens else 2
    in_bytes = _align(tokens * shape.n_in)
    out_off = 2 * slot + in_bufs * in_bytes
    used = out_off + _align(tokens * rows)
    if used != plan.l1_bytes_used:
        raise TilingError(f"layer '{shape.name}': L1 layout {used} bytes != planned {plan.l1_bytes_used}")
    return {"slot1": slot, "in_off": 2 * slot, "in_bytes": in_bytes, "in_bufs": in_bufs, "out_off": out_off,
            "used": used}


def tile_info(shape: CLinearShape, plan: TilePlan) -> dict[str, Any]:
    """Per-node tiling facts for plan.json / report.json (bytes per call of the layer, i.e. per window)."""
    info = plan.to_dict()
    info.update({"tiles": [[t.row_start, t.rows, t.token_start, t.tokens] for t in plan.tiles],
                 "param_bytes_per_row": shape.param_bytes_per_row, "row_bytes": shape.row_bytes,
                 "dma_bytes": sum(t.dma_bytes for t in plan.tiles),
                 "dma_weight_param_bytes": sum(shape.tile_block_bytes(t.rows, ALIGN)
                                               for t in plan.tiles[:plan.n_row_tiles]) * plan.n_token_tiles,
                 "dma_input_bytes": shape.tokens * shape.n_in, "dma_starts": plan.n_tiles + input_loads(plan)})
    return info


def _pad(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a, np.zeros(_align(a.size) - a.size, np.uint8)])


def _row_params(g: Graph, n: Node, shape: CLinearShape) -> list[tuple[np.ndarray, str]]:
    """The per-row parameter arrays of a tile block in order, each with its little-endian storage dtype."""
    names = ([n.inputs[2]] if shape.has_bias else []) + [n.inputs[3], n.inputs[4]]
    for name in names:
        v = np.asarray(g.tensors[name].data).reshape(-1).astype(np.int64)
        if v.size != shape.n_out or v.min() < -(1 << 31) or v.max() >= 1 << 31:
            raise TilingError(f"layer '{n.name}': per-row parameter '{name}' is not {shape.n_out} int32 values")
    parts = []
    if shape.has_bias:
        parts.append((np.asarray(g.tensors[n.inputs[2]].data).reshape(-1).astype(np.int64),
                      "<i2" if shape.bias_bytes == 2 else "<i4"))
    packed = _packed(g, n)
    if shape.sh_packed != (packed is not None):
        raise TilingError(f"layer '{n.name}': shift packing of the shape and the parameters disagree")
    if packed is not None:
        return [*parts, (packed[0].astype(np.int64), "<u2" if shape.m_bytes == 2 else "<u4")]
    m, sh = _requant(g, n) or (None, None)
    if sh is None or sh.min() < -128 or sh.max() > 127:
        raise TilingError(f"layer '{n.name}': requantization shifts do not fit int8")
    return [*parts, (m, "<i4"), (sh, "i1")]


def _blob(e: Emitter, n: Node, shape: CLinearShape, plan: TilePlan) -> tuple[np.ndarray, list[int]]:
    """Per row tile, one aligned block: [bias | m words | int8 shifts unless packed], each part padded to 4, then
    the packed weight rows; returns the blob and the byte offset of each row tile's block."""
    g = e.graph
    w = g.tensors[n.inputs[1]]
    packed = pack_weights(np.asarray(w.data).reshape(w.shape[0], -1), shape.w_bits)
    if packed.shape != (shape.n_out, shape.row_bytes):
        raise TilingError(f"layer '{n.name}': packed weights {packed.shape} != ({shape.n_out}, {shape.row_bytes})")
    params = _row_params(g, n, shape)
    parts, offsets, off = [], [], 0
    for t in plan.tiles[:plan.n_row_tiles]:
        r0, r1 = t.row_start, t.row_start + t.rows
        block = np.concatenate([*(_pad(p[r0:r1].astype(dt).view(np.uint8)) for p, dt in params),
                                _pad(packed[r0:r1].reshape(-1))])
        if block.size != shape.tile_block_bytes(t.rows, ALIGN):
            raise TilingError(f"layer '{n.name}': tile block {block.size} bytes != planned")
        parts.append(block)
        offsets.append(off)
        off += block.size
    return np.concatenate(parts), offsets


class ExtImage:
    """The external weight image (L3 / MRAM): tile blobs appended at aligned offsets, written as weights.bin
    for the device loader and as src/ef_l3_image.c for portable builds (host, QEMU)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0
        self.blobs: dict[str, tuple[int, int]] = {}

    def add(self, name: str, blob: np.ndarray) -> int:
        off = self.size
        pad = _align(blob.size) - blob.size
        self.parts.append(np.concatenate([blob, np.zeros(pad, np.uint8)]))
        self.size += blob.size + pad
        self.blobs[name] = (off, int(blob.size))
        return off

    def data(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint8)

    def render_c(self) -> str:
        return ("/* ef_l3_image.c: the external weight image for portable builds (generated by edgeflow). A device\n"
                " * with real external memory loads weights.bin instead and provides ef_dma_start_ext itself. */\n"
                "#include <stdint.h>\n\n#include \"ef_dma.h\"\n\n"
                "#ifndef EF_WEIGHTS_DATA\n#define EF_WEIGHTS_DATA\n#endif\n"
                + render_array("ef_l3_image", "uint8_t", self.data(), f"{len(self.blobs)} tile blobs, "
                               f"{self.size} bytes")
                + "\n#ifndef EF_HAVE_DMA_EXT\n"
                  "ef_dma_handle_t ef_dma_start_ext(void *dst, uint32_t ext_off, uint32_t bytes)\n{\n"
                  "    return ef_dma_start(dst, ef_l3_image + ext_off, bytes);\n}\n#endif\n")


_EXT: ContextVar[ExtImage | None] = ContextVar("edgeflow_ext_image", default=None)


@contextmanager
def external_weights(image: ExtImage | None) -> Iterator[None]:
    """While active (image not None), tile blobs go to `image` (streamed from L3) instead of weights.h (L2)."""
    token = _EXT.set(image)
    try:
        yield
    finally:
        _EXT.reset(token)


def _describe(shape: CLinearShape) -> str:
    bias = f"bias int{8 * shape.bias_bytes} | " if shape.has_bias else ""
    return bias + (f"m|sh uint{8 * shape.m_bytes}" if shape.sh_packed else "m int32 | sh int8")


def emit_tiled_linear(e: Emitter, n: Node, plan: TilePlan) -> list[str]:
    """C statements of a tiled linear node; its weight blob, tile table and descriptor go to weights.h (or the
    blob to the external image when external_weights is active)."""
    shape = linear_shape(e.graph, n)
    packed = _packed(e.graph, n)
    sh_base = 0 if packed is None else packed[1]
    lay = _layout(shape, plan)
    blob, offsets = _blob(e, n, shape, plan)
    ww = e.weights
    if f'#include "{HEADER}"\n' not in ww.parts:
        ww.parts.append(f'#include "{HEADER}"\n')
    ext = _EXT.get()
    if ext is None:
        ident = ww._new_ident(n.name + ".tiles", "plain")
        ww.parts.append(render_array(ident, "uint8_t", blob, f"{n.name}: {plan.n_row_tiles} row tiles of "
                                     f"{shape.n_out} rows, each [{_describe(shape)} | packed "
                                     f"{shape.w_bits}-bit rows]"))
        ww.nbytes[ident] = int(blob.size)
        e.node_weights[ident] = int(blob.size)
        blob_ref, ext_off = ident, 0
    else:
        ext_off = ext.add(n.name, blob)
        e.node_weights[n.name + "@L3"] = int(blob.size)
        blob_ref = "NULL"
    rows = []
    for t in plan.tiles:
        ti = t.token_start // (plan.tokens_per_tile or shape.tokens)
        ri = t.row_start // plan.rows_per_tile
        load = 1 if t.row_start == 0 and (lay["in_bufs"] == 2 or ti == 0) else 0
        rows.append(f"{{{t.row_start}, {t.rows}, {t.token_start}, {t.tokens}, {ti % lay['in_bufs']}, {load}, "
                    f"{offsets[ri]}, {shape.tile_block_bytes(t.rows, ALIGN)}}}")
    tab = c_ident(n.name, "ef_tt_")
    desc = c_ident(n.name, "ef_tl_")
    ww.parts.append(
        f"/* {n.name}: {plan.n_tiles} tiles ({plan.n_token_tiles} token x {plan.n_row_tiles} row), "
        f"{plan.tokens_per_tile} tokens x {plan.rows_per_tile} rows, L1 {lay['used']} of {plan.l1_bytes} bytes"
        f"{'' if ext is None else f', blob streamed from L3 at offset {ext_off}'} */\n"
        f"static const ef_tile_t {tab}[{plan.n_tiles}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"
        f"static const ef_tiled_linear_t {desc} = {{\"{n.name}\", {blob_ref}, {ext_off}u, {tab}, {plan.n_tiles}, "
        f"{shape.n_in}, {shape.n_out}, {shape.w_bits}, {shape.row_bytes}, "
        f"{shape.bias_bytes if shape.has_bias else 0}, {shape.m_bytes}, {int(shape.sh_packed)}, {sh_base}, "
        f"{{0, {lay['slot1']}}}, {lay['in_off']}, {lay['in_bytes']}, {lay['out_off']}, {lay['used']}}};\n"
        f"typedef char {desc}_fits_l1[({lay['used']} <= EF_L1_BYTES) ? 1 : -1];\n")
    return [f"ef_tiled_linear_i8(&{desc}, {e.act(n.inputs[0])}, {e.act(n.outputs[0])});"]
