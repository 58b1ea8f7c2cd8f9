"""Tiled linear renderer: a linear node as L1 row/token tiles, DMA double-buffered over the HAL's ef_dma engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeflow.codegen.c_weights import c_ident, pack_bits, render_array
from edgeflow.ir.graph import Graph, Node
from edgeflow.ir.ops import pack_weights
from edgeflow.plan.tiling import LinearShape, TilePlan, TilingError, tile_linear

if TYPE_CHECKING:
    from edgeflow.codegen.c_ops import Emitter

ALIGN = 4
HEADER = "ef_tiled.h"
SOURCE = "ef_tiled.c"

_PLANS: ContextVar[dict[str, TilePlan] | None] = ContextVar("edgeflow_tile_plans", default=None)


class CLinearShape(LinearShape):
    """LinearShape with the number of int32 parameter words per row of the C kernel's ABI (bias, m, sh)."""

    @property
    def param_words(self) -> int:
        return 3 if self.has_bias else 2


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
    return CLinearShape(n.name, tokens, n_in, int(w.shape[0]), pack_bits(w.bits),
                        graph.tensors[n.inputs[2]].data is not None)


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
    slot = _align(rows * shape.param_bytes_per_row) + _align(rows * shape.row_bytes)
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
                 "dma_weight_param_bytes": shape.n_out * (shape.row_bytes + shape.param_bytes_per_row)
                 * plan.n_token_tiles,
                 "dma_input_bytes": shape.tokens * shape.n_in, "dma_starts": plan.n_tiles + input_loads(plan)})
    return info


def _blob(e: Emitter, n: Node, shape: CLinearShape, plan: TilePlan) -> np.ndarray:
    """Per row tile, contiguous: [bias | m | sh] int32 little-endian, then the packed weight rows."""
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
        params.append(v.astype("<i4"))
    parts = []
    for t in plan.tiles[:plan.n_row_tiles]:
        r0, r1 = t.row_start, t.row_start + t.rows
        parts += [p[r0:r1].view(np.uint8) for p in params] + [packed[r0:r1].reshape(-1)]
    return np.concatenate(parts)


def emit_tiled_linear(e: Emitter, n: Node, plan: TilePlan) -> list[str]:
    """C statements of a tiled linear node; its weight blob, tile table and descriptor go to weights.h."""
    shape = linear_shape(e.graph, n)
    lay = _layout(shape, plan)
    blob = _blob(e, n, shape, plan)
    ww = e.weights
    if f'#include "{HEADER}"\n' not in ww.parts:
        ww.parts.append(f'#include "{HEADER}"\n')
    ident = ww._new_ident(n.name + ".tiles", "plain")
    ww.parts.append(render_array(ident, "uint8_t", blob, f"{n.name}: {plan.n_row_tiles} row tiles of {shape.n_out} "
                                 f"rows, each [bias|m|sh int32 LE | packed {shape.w_bits}-bit rows]"))
    ww.nbytes[ident] = int(blob.size)
    e.node_weights[ident] = int(blob.size)
    rows = []
    for t in plan.tiles:
        ti = t.token_start // (plan.tokens_per_tile or shape.tokens)
        load = 1 if t.row_start == 0 and (lay["in_bufs"] == 2 or ti == 0) else 0
        rows.append(f"{{{t.row_start}, {t.rows}, {t.token_start}, {t.tokens}, {ti % lay['in_bufs']}, {load}}}")
    tab = c_ident(n.name, "ef_tt_")
    desc = c_ident(n.name, "ef_tl_")
    ww.parts.append(
        f"/* {n.name}: {plan.n_tiles} tiles ({plan.n_token_tiles} token x {plan.n_row_tiles} row), "
        f"{plan.tokens_per_tile} tokens x {plan.rows_per_tile} rows, L1 {lay['used']} of {plan.l1_bytes} bytes */\n"
        f"static const ef_tile_t {tab}[{plan.n_tiles}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"
        f"static const ef_tiled_linear_t {desc} = {{\"{n.name}\", {ident}, {tab}, {plan.n_tiles}, {shape.n_in}, "
        f"{shape.n_out}, {shape.w_bits}, {shape.row_bytes}, {shape.param_words}, {{0, {lay['slot1']}}}, "
        f"{lay['in_off']}, {lay['in_bytes']}, {lay['out_off']}, {lay['used']}}};\n"
        f"typedef char {desc}_fits_l1[({lay['used']} <= EF_L1_BYTES) ? 1 : -1];\n")
    return [f"ef_tiled_linear_i8(&{desc}, {e.act(n.inputs[0])}, {e.act(n.outputs[0])});"]


_H = """\
/* ef_tiled.h: tiled linear layers over L1 buffers with DMA double buffering (generated by edgeflow; do not edit). */
#ifndef EF_TILED_H
#define EF_TILED_H

#include <stdint.h>

#define EF_L1_BYTES {l1}  /* L1 budget the tiles were planned for; one static L1 area of this size */

/** One tile: output rows [r0, r0+rn) for tokens [t0, t0+tn); its input sits in L1 input buffer in_slot and
 *  travels (DMA) with this tile when in_load. Weights+params of the tile are one contiguous block. */
typedef struct {{
    int32_t r0, rn, t0, tn, in_slot, in_load;
}} ef_tile_t;

/** A linear layer cut into tiles; blob holds per row tile [bias | m | sh] int32 then the packed weight rows. */
typedef struct {{
    const char *name;
    const uint8_t *blob;
    const ef_tile_t *tiles;
    int32_t n_tiles, n_in, n_out, w_bits, row_bytes, param_words;
    int32_t slot_off[2];   /* L1 offsets of the two weight+param slots (tile k uses slot k % 2) */
    int32_t in_off, in_bytes, out_off, l1_bytes_used;
}} ef_tiled_linear_t;

/** y (T, n_out) = linear(x (T, n_in)): start(0); per tile k: wait(k), start(k+1), compute(k) in L1, copy out. */
void ef_tiled_linear_i8(const ef_tiled_linear_t *L, const int8_t *x, int8_t *y);

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

typedef struct {
    ef_dma_handle_t w, x;  /* weights+params of the tile; its input (0 when none travels) */
} ef_tile_dma_t;

static void tile_start(const ef_tiled_linear_t *L, int32_t k, const int8_t *x, ef_tile_dma_t *h)
{
    const ef_tile_t *t = &L->tiles[k];
    int32_t per_row = L->row_bytes + 4 * L->param_words;
    EF_STEP(L, "start", k);
    h->w = ef_dma_start(EF_L1 + L->slot_off[k & 1], L->blob + (size_t)t->r0 * (size_t)per_row,
                        (uint32_t)(t->rn * per_row));
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
    const int32_t *p = (const int32_t *)(const void *)(EF_L1 + L->slot_off[k & 1]);
    const int32_t *bias = L->param_words == 3 ? p : NULL;
    const int32_t *m = p + (L->param_words - 2) * t->rn;
    const int32_t *sh = m + t->rn;
    const uint8_t *w = (const uint8_t *)(const void *)(sh + t->rn);
    const int8_t *xt = (const int8_t *)(const void *)(EF_L1 + L->in_off + t->in_slot * L->in_bytes);
    int8_t *out = (int8_t *)(void *)(EF_L1 + L->out_off);
    int32_t i;
    EF_STEP(L, "compute", k);
    ef_linear_i8(xt, L->n_in, L->n_in, w, L->w_bits, bias, m, sh, out, t->rn, 0, t->tn, 0, t->rn);
    for (i = 0; i < t->tn; ++i)
        memcpy(y + (ptrdiff_t)(t->t0 + i) * L->n_out + t->r0, out + (ptrdiff_t)i * t->rn, (size_t)t->rn);
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


def render_runner(l1_bytes: int) -> tuple[str, str]:
    """(ef_tiled.h, ef_tiled.c) for an L1 budget of l1_bytes."""
    return _H.format(l1=l1_bytes), _C
