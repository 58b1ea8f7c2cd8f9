"""Tiled scan renderer: the plan's L1 channel tiles of a scan node (descriptor + the runner's C, in ef_tiled.c)."""

from __future__ import annotations

from edgeflow.codegen.c_weights import c_ident
from edgeflow.codegen.emitter import Emitter
from edgeflow.ir.graph import Node
from edgeflow.plan.scan_tiling import TILE_PARTS, ScanTilePlan

#: Descriptor fields holding L1 offsets, in ef_tiled_scan_t order (plan offsets keys).
OFFSET_FIELDS = ("exp2", "B", "C", *TILE_PARTS)

HEADER_C = """
#include "ef_kernels.h"

/** A scan node run as L1 channel tiles (plan/scan_tiling.py): exp2 table, B and C loaded once; per tile of dt
 *  channels its u, delta rows, ka rows and per-channel constants DMA'd in, the state zeroed in L1, the kernel run
 *  on L1 only (channels split across the cores by the team split), y sent back by a 2-D DMA. off_*: L1 byte offsets. */
typedef struct {
    const char *name;
    int32_t steps, d_inner, d_state, dt, n_tiles, reverse;
    int32_t off_exp2, off_B, off_C, off_u, off_delta, off_y, off_h, off_ka, off_m_in, off_m_y, off_m_D;
    int32_t off_sh_in, off_sh_D, off_sh_y, l1_bytes_used;
} ef_tiled_scan_t;

/** y (T, D) = scan(u, delta (T, D), B, C (T, N)) with constants c (whole tensors in L2), bit-exact with the
 *  untiled ef_scan_i8 call. */
void ef_tiled_scan_i8(const ef_tiled_scan_t *S, const ef_scan_consts_t *c, const int8_t *u, const int8_t *delta,
                      const int8_t *B, const int8_t *C, int8_t *y);
"""

SOURCE_C = """
/* ---- tiled scan (plan/scan_tiling.py): channel tiles over all time steps, every operand in L1 ------------- */
#define EF_SCAN_BATCH 8  /* transfers in flight at once (of EF_DMA_MAX_IN_FLIGHT) */

typedef struct {
    ef_dma_handle_t h[EF_SCAN_BATCH];
    int32_t n;
} ef_scan_batch_t;

static void scan_batch_wait(ef_scan_batch_t *q)
{
    int32_t i;
    for (i = 0; i < q->n; ++i)
        ef_dma_wait(q->h[i]);
    q->n = 0;
}

static void scan_batch_start(ef_scan_batch_t *q, void *dst, const void *src, int32_t bytes)
{
    if (q->n == EF_SCAN_BATCH)
        scan_batch_wait(q);
    q->h[q->n++] = ef_dma_start(dst, src, (uint32_t)bytes);
}

/* rows x row_bytes from src (row stride src_stride) to contiguous dst: one transfer (a 2-D one when strided) */
static void scan_rows_in(ef_scan_batch_t *q, uint8_t *dst, const int8_t *src, int32_t src_stride, int32_t row_bytes,
                         int32_t rows)
{
    if (q->n == EF_SCAN_BATCH)
        scan_batch_wait(q);
    q->h[q->n++] = ef_dma_start_2d(dst, src, (uint32_t)row_bytes, (uint32_t)rows, (uint32_t)src_stride);
}

/* state words [i0, i1) of a tile zeroed (the cores in parallel, while the loads are in flight; word stores: the
 * runtime's memset stores bytes) */
static void scan_zero_state(void *ctx, int32_t i0, int32_t i1)
{
    int32_t *h = (int32_t *)ctx, i;
    for (i = i0; i < i1; ++i)
        h[i] = 0;
}

void ef_tiled_scan_i8(const ef_tiled_scan_t *S, const ef_scan_consts_t *c, const int8_t *u, const int8_t *delta,
                      const int8_t *B, const int8_t *C, int8_t *y)
{
    ef_scan_batch_t q = {{0}, 0};
    ef_scan_consts_t lc = *c;
    int32_t k, n = S->d_state, t = S->steps;
#ifdef EF_DMA_TRACE
    ef_dma_stats_t s0, s1;
    ef_dma_get_stats(&s0);
#endif
    scan_batch_start(&q, EF_L1 + S->off_exp2, ef_exp2_table_q15, (int32_t)sizeof(int32_t) * EF_EXP2_TABLE_SIZE);
    scan_batch_start(&q, EF_L1 + S->off_B, B, t * n);
    scan_batch_start(&q, EF_L1 + S->off_C, C, t * n);
    lc.exp2_q15 = (const int32_t *)(const void *)(EF_L1 + S->off_exp2);
    lc.ka = (const uint16_t *)(const void *)(EF_L1 + S->off_ka);
    lc.m_in = (const int32_t *)(const void *)(EF_L1 + S->off_m_in);
    lc.m_y = (const int16_t *)(const void *)(EF_L1 + S->off_m_y);
    lc.m_D = (const int16_t *)(const void *)(EF_L1 + S->off_m_D);
    lc.sh_in = (const int8_t *)(const void *)(EF_L1 + S->off_sh_in);
    lc.sh_D = (const int8_t *)(const void *)(EF_L1 + S->off_sh_D);
    lc.sh_y = (const int8_t *)(const void *)(EF_L1 + S->off_sh_y);
    for (k = 0; k < S->n_tiles; ++k) {
        int32_t c0 = k * S->dt, dn = S->d_inner - c0 < S->dt ? S->d_inner - c0 : S->dt;
        EF_STEP(S, "start", k);
        scan_batch_start(&q, EF_L1 + S->off_ka, c->ka + (ptrdiff_t)c0 * n, 2 * dn * n);
        scan_batch_start(&q, EF_L1 + S->off_m_in, c->m_in + c0, 4 * dn);
        scan_batch_start(&q, EF_L1 + S->off_m_y, c->m_y + c0, 2 * dn);
        scan_batch_start(&q, EF_L1 + S->off_m_D, c->m_D + c0, 2 * dn);
        scan_batch_start(&q, EF_L1 + S->off_sh_in, c->sh_in + c0, dn);
        scan_batch_start(&q, EF_L1 + S->off_sh_D, c->sh_D + c0, dn);
        scan_batch_start(&q, EF_L1 + S->off_sh_y, c->sh_y + c0, dn);
        scan_rows_in(&q, EF_L1 + S->off_u, u + c0, S->d_inner, dn, t);
        scan_rows_in(&q, EF_L1 + S->off_delta, delta + c0, S->d_inner, dn, t);
        ef_parallel_for(dn * n, scan_zero_state, EF_L1 + S->off_h);  /* a tile covers the whole sequence: h = 0 */
        EF_STEP(S, "wait", k);
        scan_batch_wait(&q);
        lc.d_inner = dn;
        EF_STEP(S, "compute", k);
        ef_scan_i8(&lc, (const int8_t *)(const void *)(EF_L1 + S->off_u), dn,
                   (const int8_t *)(const void *)(EF_L1 + S->off_delta), dn,
                   (const int8_t *)(const void *)(EF_L1 + S->off_B), (const int8_t *)(const void *)(EF_L1 + S->off_C),
                   n, (int8_t *)(void *)(EF_L1 + S->off_y), dn, (int32_t *)(void *)(EF_L1 + S->off_h), 0, t, 0, dn,
                   S->reverse);
        /* y back to the arena: one 2-D transfer (waited at once: the next tile's scan overwrites it) */
        ef_dma_wait(ef_dma_start_out_2d(y + c0, EF_L1 + S->off_y, (uint32_t)dn, (uint32_t)t, (uint32_t)S->d_inner));
    }
#ifdef EF_DMA_TRACE
    ef_dma_get_stats(&s1);
    fprintf(stderr, "ef_tiled %s stats starts=%lu waits=%lu bytes=%lu errors=%lu\\n", S->name,
            (unsigned long)(s1.starts - s0.starts), (unsigned long)(s1.waits - s0.waits),
            (unsigned long)(s1.bytes - s0.bytes), (unsigned long)(s1.errors - s0.errors));
#endif
}
"""


def emit_tiled_scan(e: Emitter, n: Node, sp: ScanTilePlan, consts: str) -> list[str]:
    """C statement of a scan node run as the plan's L1 channel tiles; its descriptor goes to weights.h."""
    s = sp.shape
    desc = c_ident(n.name, "ef_ts_")
    if '#include "ef_tiled.h"\n' not in e.weights.parts:
        e.weights.parts.append('#include "ef_tiled.h"\n')
    offs = ", ".join(str(sp.offsets[f]) for f in OFFSET_FIELDS)
    e.weights.parts.append(
        f"/* {n.name}: scan as {sp.n_tiles} channel tile(s) of {sp.channels_per_tile} x {s.steps} steps, "
        f"L1 {sp.l1_bytes_used} of {sp.l1_bytes} bytes */\n"
        f"static const ef_tiled_scan_t {desc} = {{\"{n.name}\", {s.steps}, {s.d_inner}, {s.d_state}, "
        f"{sp.channels_per_tile}, {sp.n_tiles}, {int(n.attrs.get('direction', 0))}, {offs}, {sp.l1_bytes_used}}};\n"
        f"typedef char {desc}_fits_l1[({sp.l1_bytes_used} <= EF_L1_BYTES) ? 1 : -1];\n")
    u, dl, bb, cc = n.inputs[:4]
    return [f"ef_tiled_scan_i8(&{desc}, &{consts}, {e.act(u)}, {e.act(dl)}, {e.act(bb)}, {e.act(cc)}, "
            f"{e.act(n.outputs[0])});"]
