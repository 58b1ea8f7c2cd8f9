"""Tiled linear renderer: a linear node as L1 row/token tiles, DMA double-buffered over the HAL's ef_dma engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeflow.codegen.c_weights import c_ident, pack_bits, render_array
from edgeflow.ir.graph import Graph, Node
from edgeflow.ir.ops import TERNARY, is_ternary, pack_weights
from edgeflow.plan.tiling import LinearShape, TilePlan, TilingError, tile_linear

if TYPE_CHECKING:
    from edgeflow.codegen.c_ops import Emitter

ALIGN = 4
HEADER = "ef_tiled.h"
SOURCE = "ef_tiled.c"

_PLANS: ContextVar[dict[str, TilePlan] | None] = ContextVar("edgeflow_tile_plans", default=None)


class CLinearShape(LinearShape):
    """LinearShape with the number of int32 parameter words per row stored in a tile block (bias, m); the
    shifts follow as int8."""

    @property
    def param_words(self) -> int:
        return 2 if self.has_bias else 1


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def linear_shape(graph: Graph, n: Node) -> CLinearShape:
    """The tiling shape of a `linear` node (x (T, ...) int8, w (O, n_in) packed, bias/m/sh per output row)."""
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
    return CLinearShape(n.name, tokens, n_in, int(w.shape[0]), bits, graph.tensors[n.inputs[2]].data is not None)


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


def _blob(e: Emitter, n: Node, shape: CLinearShape, plan: TilePlan) -> tuple[np.ndarray, list[int]]:
    """Per row tile, one aligned block: [bias | m] int32 little-endian, int8 shifts, then the packed weight
    rows; returns the blob and the byte offset of each row tile's block."""
    g = e.graph
    w = g.tensors[n.inputs[1]]
    packed = pack_weights(np.asarray(w.data).reshape(w.shape[0], -1), shape.w_bits)
    if packed.shape != (shape.n_out, shape.row_bytes):
        raise TilingError(f"layer '{n.name}': packed weights {packed.shape} != ({shape.n_out}, {shape.row_bytes})")
    names = ([n.inputs[2]] if shape.has_bias else []) + [n.inputs[3], n.inputs[4]]
    params = []
    for name in names:
        v = np.asarray(g.tensors[name].data).reshape(-1).astype(np.int64)
        if v.size != shape.n_out or v.min() < -(1 << 31) or v.max() >= 1 << 31:
            raise TilingError(f"layer '{n.name}': per-row parameter '{name}' is not {shape.n_out} int32 values")
        params.append(v)
    if params[-1].min() < -128 or params[-1].max() > 127:
        raise TilingError(f"layer '{n.name}': requantization shifts do not fit int8")
    parts, offsets, off = [], [], 0
    for t in plan.tiles[:plan.n_row_tiles]:
        r0, r1 = t.row_start, t.row_start + t.rows
        words = np.concatenate([p[r0:r1].astype("<i4").view(np.uint8) for p in params[:-1]])
        block = np.concatenate([_pad(words), _pad(params[-1][r0:r1].astype(np.int8).view(np.uint8)),
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


def emit_tiled_linear(e: Emitter, n: Node, plan: TilePlan) -> list[str]:
    """C statements of a tiled linear node; its weight blob, tile table and descriptor go to weights.h (or the
    blob to the external image when external_weights is active)."""
    shape = linear_shape(e.graph, n)
    lay = _layout(shape, plan)
    blob, offsets = _blob(e, n, shape, plan)
    ww = e.weights
    if f'#include "{HEADER}"\n' not in ww.parts:
        ww.parts.append(f'#include "{HEADER}"\n')
    ext = _EXT.get()
    if ext is None:
        ident = ww._new_ident(n.name + ".tiles", "plain")
        ww.parts.append(render_array(ident, "uint8_t", blob, f"{n.name}: {plan.n_row_tiles} row tiles of "
                                     f"{shape.n_out} rows, each [bias|m int32 | sh int8 | packed {shape.w_bits}-bit "
                                     "rows]"))
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
        f"{shape.n_in}, {shape.n_out}, {shape.w_bits}, {shape.row_bytes}, {int(shape.has_bias)}, "
        f"{{0, {lay['slot1']}}}, {lay['in_off']}, {lay['in_bytes']}, {lay['out_off']}, {lay['used']}}};\n"
        f"typedef char {desc}_fits_l1[({lay['used']} <= EF_L1_BYTES) ? 1 : -1];\n")
    return [f"ef_tiled_linear_i8(&{desc}, {e.act(n.inputs[0])}, {e.act(n.outputs[0])});"]


_H = """\
/* ef_tiled.h: tiled linear layers over L1 buffers with DMA double buffering (generated by edgeflow; do not edit). */
#ifndef EF_TILED_H
#define EF_TILED_H

#include <stdint.h>

#define EF_L1_BYTES {l1}  /* L1 budget the tiles were planned for; one static L1 area of this size */
#define EF_HAS_EXT_IMAGE {ext}  /* 1: some tile blobs are streamed from the external weight image (L3) */
#define EF_L3_IMAGE_BYTES {ext_bytes}u  /* size of that image (weights.bin) */
#define EF_MAX_TILE_BLOCK {max_block}  /* largest tile block (params + rows) one DMA moves */

/** One tile: output rows [r0, r0+rn) for tokens [t0, t0+tn); its input sits in L1 input buffer in_slot and
 *  travels (DMA) with this tile when in_load. The tile's parameters + weight rows are one block of bbytes
 *  bytes at boff in the layer's blob. */
typedef struct {{
    int32_t r0, rn, t0, tn, in_slot, in_load, boff, bbytes;
}} ef_tile_t;

/** A linear layer cut into tiles. Its blob is in addressable memory (blob != NULL) or in the external
 *  weight image at ext_off (blob == NULL: streamed with ef_dma_start_ext). A tile block is
 *  [bias int32 x rn if has_bias | m int32 x rn | sh int8 x rn, padded to 4 | packed rows, padded to 4]. */
typedef struct {{
    const char *name;
    const uint8_t *blob;
    uint32_t ext_off;
    const ef_tile_t *tiles;
    int32_t n_tiles, n_in, n_out, w_bits, row_bytes, has_bias;
    int32_t slot_off[2];   /* L1 offsets of the two weight+param slots (tile k uses slot k % 2) */
    int32_t in_off, in_bytes, out_off, l1_bytes_used;
}} ef_tiled_linear_t;

/** y (T, n_out) = linear(x (T, n_in)): start(0); per tile k: wait(k), start(k+1), compute(k) in L1, copy out. */
void ef_tiled_linear_i8(const ef_tiled_linear_t *L, const int8_t *x, int8_t *y);

/** Run body(ctx, i0, i1) over [0, n) split across the target's cores (serial unless the HAL provides it). */
typedef void (*ef_range_fn)(void *ctx, int32_t i0, int32_t i1);
void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx);

#endif /* EF_TILED_H */
"""

_C = """\
/* ef_tiled.c: runner of tiled linear layers, DMA double-buffered into one static L1 area (generated by edgeflow). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ef_dma.h"
#include "ef_kernels.h"
#include "ef_tiled.h"

#ifdef EF_DMA_TRACE
#include <stdio.h>
#define EF_STEP(L, op, k) fprintf(stderr, "ef_tiled %s %s %d\\n", (L)->name, (op), (int)(k))
#else
#define EF_STEP(L, op, k) ((void)(L), (void)(k))
#endif

/* A device build defines EF_L1_DATA as its L1 section attribute, so a plan that does not fit fails to link. */
#ifndef EF_L1_DATA
#define EF_L1_DATA
#endif
static EF_L1_DATA int32_t ef_l1_words[(EF_L1_BYTES + 3) / 4];
#define EF_L1 ((uint8_t *)ef_l1_words)

#ifndef EF_HAVE_PARALLEL_FOR
/* Portable HALs (host, QEMU) have one core: the whole range on it. The GAP9 HAL forks the cluster team. */
void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx)
{
    if (n > 0)
        body(ctx, 0, n);
}
#endif

typedef struct {
    ef_dma_handle_t w, x;  /* weights+params of the tile; its input (0 when none travels) */
} ef_tile_dma_t;

/* One tile's compute, split over output rows (each core takes a row range; rows are independent). */
typedef struct {
    const int8_t *x;
    const int32_t *bias, *m;
    const int8_t *sh;
    const uint8_t *w;
    int8_t *out;
    int32_t n_in, w_bits, row_bytes, rn, tn;
} ef_tile_job_t;

/* Rows [o0, o1) of a tile, in chunks whose int8 shifts are widened to the kernel's int32 on the stack. */
#define EF_ROW_CHUNK 16
static void tile_rows(void *ctx, int32_t o0, int32_t o1)
{
    const ef_tile_job_t *j = (const ef_tile_job_t *)ctx;
    int32_t sh[EF_ROW_CHUNK];
    int32_t o, i, n;
    for (o = o0; o < o1; o += n) {
        n = o1 - o < EF_ROW_CHUNK ? o1 - o : EF_ROW_CHUNK;
        for (i = 0; i < n; ++i)
            sh[i] = j->sh[o + i];
        ef_linear_i8(j->x, j->n_in, j->n_in, j->w + (size_t)o * (size_t)j->row_bytes, j->w_bits,
                     j->bias ? j->bias + o : NULL, j->m + o, sh, j->out + o, j->rn, 0, j->tn, 0, n);
    }
}

static void tile_start(const ef_tiled_linear_t *L, int32_t k, const int8_t *x, ef_tile_dma_t *h)
{
    const ef_tile_t *t = &L->tiles[k];
    uint8_t *dst = EF_L1 + L->slot_off[k & 1];
    EF_STEP(L, "start", k);
#if EF_HAS_EXT_IMAGE
    if (L->blob == NULL)
        h->w = ef_dma_start_ext(dst, L->ext_off + (uint32_t)t->boff, (uint32_t)t->bbytes);
    else
#endif
        h->w = ef_dma_start(dst, L->blob + t->boff, (uint32_t)t->bbytes);
    h->x = 0u;
    if (t->in_load)
        h->x = ef_dma_start(EF_L1 + L->in_off + t->in_slot * L->in_bytes, x + (ptrdiff_t)t->t0 * L->n_in,
                            (uint32_t)(t->tn * L->n_in));
}

static void tile_wait(const ef_tiled_linear_t *L, int32_t k, const ef_tile_dma_t *h)
{
    EF_STEP(L, "wait", k);
    ef_dma_wait(h->w);
    if (h->x != 0u)
        ef_dma_wait(h->x);
}

static void tile_compute(const ef_tiled_linear_t *L, int32_t k, int8_t *y)
{
    const ef_tile_t *t = &L->tiles[k];
    const uint8_t *p = EF_L1 + L->slot_off[k & 1];
    int32_t words = (int32_t)(L->has_bias ? 2 : 1) * t->rn;
    ef_tile_job_t j;
    int32_t i;
    j.bias = L->has_bias ? (const int32_t *)(const void *)p : NULL;
    j.m = (const int32_t *)(const void *)p + (L->has_bias ? t->rn : 0);
    j.sh = (const int8_t *)(const void *)(p + 4 * words);
    j.w = p + 4 * words + ((t->rn + 3) & ~3);
    j.x = (const int8_t *)(const void *)(EF_L1 + L->in_off + t->in_slot * L->in_bytes);
    j.out = (int8_t *)(void *)(EF_L1 + L->out_off);
    j.n_in = L->n_in;
    j.w_bits = L->w_bits;
    j.row_bytes = L->row_bytes;
    j.rn = t->rn;
    j.tn = t->tn;
    EF_STEP(L, "compute", k);
    ef_parallel_for(t->rn, tile_rows, &j);
    for (i = 0; i < t->tn; ++i)
        memcpy(y + (ptrdiff_t)(t->t0 + i) * L->n_out + t->r0, j.out + (ptrdiff_t)i * t->rn, (size_t)t->rn);
}

void ef_tiled_linear_i8(const ef_tiled_linear_t *L, const int8_t *x, int8_t *y)
{
    ef_tile_dma_t h[2];
    int32_t k;
#ifdef EF_DMA_TRACE
    ef_dma_stats_t s0, s1;
    ef_dma_get_stats(&s0);
#endif
    tile_start(L, 0, x, &h[0]);
    for (k = 0; k < L->n_tiles; ++k) {
        tile_wait(L, k, &h[k & 1]);
        if (k + 1 < L->n_tiles)
            tile_start(L, k + 1, x, &h[(k + 1) & 1]);  /* tile k+1 in flight while tile k computes */
        tile_compute(L, k, y);
    }
#ifdef EF_DMA_TRACE
    ef_dma_get_stats(&s1);
    fprintf(stderr, "ef_tiled %s stats starts=%lu waits=%lu bytes=%lu errors=%lu\\n", L->name,
            (unsigned long)(s1.starts - s0.starts), (unsigned long)(s1.waits - s0.waits),
            (unsigned long)(s1.bytes - s0.bytes), (unsigned long)(s1.errors - s0.errors));
#endif
}
"""


def render_runner(l1_bytes: int, ext_bytes: int = 0, max_block: int = 4) -> tuple[str, str]:
    """(ef_tiled.h, ef_tiled.c) for an L1 budget of l1_bytes; ext_bytes > 0: tile blobs streamed from an
    external image of that size; max_block: the largest tile block of the build."""
    return _H.format(l1=l1_bytes, ext=int(ext_bytes > 0), ext_bytes=ext_bytes, max_block=max(max_block, 4)), _C
