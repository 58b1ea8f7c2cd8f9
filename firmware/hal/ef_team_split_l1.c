/* Whole-tensor kernels staged through L1 for the cluster HALs (see ef_team_split_l1.h). Core 0 drives the DMA
 * between team jobs, as the tiled runner does: chunk c + 1 comes in while the team computes chunk c, and chunk c's
 * output goes back to L2 while chunk c + 1 computes; three chunk slots, so a slot is refilled only after its
 * output has left (waited two chunks later). Every output byte is computed by the same kernel code as in the
 * L2 call, on the same values, so the results are those of the unstaged build. The area is the tiles' static L1
 * area (ef_l1_scratch), free while no tiled layer runs. */
#include <stddef.h>
#include <stdint.h>

#include "ef_dma.h"
#include "ef_kernels.h"
#include "ef_team_split_l1.h"
#include "ef_tiled.h"

#define EF_STAGE_SLOTS 3
#define EF_STAGE_MIN_BYTES 256 /* below this the DMA set-up costs more than the L2 accesses it saves */
#define EF_STAGE_TEAM 8          /* the cluster's cores: row chunks in multiples of it, so every core gets as many */
#define EF_STAGE_TEAM_QUADS 32   /* channels of one quad for each of 8 cores: dwconv blocks in multiples of it */

static uint32_t round4(uint32_t v)
{
    return (v + 3u) & ~3u;
}

typedef struct {
    const ef_stage_t *s;
    ef_stage_chunk_t ch;
} stage_job_t;

static void stage_part(void *ctx, int32_t i0, int32_t i1)
{
    const stage_job_t *j = (const stage_job_t *)ctx;
    j->s->body(j->s->ctx, &j->ch, i0, i1);
}

/* Layout of one slot: input j's buffer at j in_sz (R rows), the output after them (R rows). */
typedef struct {
    uint8_t *slot[EF_STAGE_SLOTS];
    uint32_t in_sz;
    int32_t rows; /* rows per chunk */
} stage_geom_t;

/* Start the loads of the chunk from row row0 into slot q; the chunk's L1 view into *ch. */
static void stage_load(const ef_stage_t *s, const stage_geom_t *g, int32_t q, int32_t row0, ef_stage_chunk_t *ch,
                       ef_dma_handle_t *h)
{
    int32_t row = s->row_bytes, rows = s->n_rows - row0 < g->rows ? s->n_rows - row0 : g->rows, j;
    int32_t end = (row0 + rows) * row < s->total_bytes ? (row0 + rows) * row : s->total_bytes;
    uint8_t *base = g->slot[q];
    ch->row0 = row0;
    ch->rows = rows;
    ch->bytes = end - row0 * row;
    for (j = 0; j < s->n_in; ++j) {
        uint8_t *buf = base + (uint32_t)j * g->in_sz;
        if (s->reverse[j]) { /* output rows [row0, row0 + rows) read memory rows [n - row0 - rows, n - row0) */
            h[j] = ef_dma_start(buf, s->xs[j] + (ptrdiff_t)(s->n_rows - row0 - rows) * row, (uint32_t)(rows * row));
            ch->x[j] = (const int8_t *)(buf + (rows - 1) * row);
        } else {
            h[j] = ef_dma_start(buf, s->xs[j] + (ptrdiff_t)row0 * row, (uint32_t)ch->bytes);
            ch->x[j] = (const int8_t *)buf;
        }
    }
    ch->y = s->in_place ? (int8_t *)(void *)base : (int8_t *)(void *)(base + (uint32_t)s->n_in * g->in_sz);
}

int32_t ef_stage_l1_run(const ef_stage_t *s)
{
    uint32_t area_bytes, aux_total = 0, slot, fixed, per_row;
    uint8_t *area = ef_l1_scratch(&area_bytes), *aux_at;
    int32_t n_buf = s->n_in + (s->in_place ? 0 : 1), row = s->row_bytes, n_chunks, c, q, j, k, rmax;
    stage_geom_t g;
    stage_job_t job;
    ef_stage_chunk_t next;
    ef_dma_handle_t h_in[EF_STAGE_MAX_IN], h_aux[EF_STAGE_MAX_AUX], h_out[EF_STAGE_SLOTS];
    int32_t out_pending[EF_STAGE_SLOTS] = {0};
    if (s->n_in < 1 || s->n_in > EF_STAGE_MAX_IN || s->n_rows < 1 || row < 1 || s->total_bytes < EF_STAGE_MIN_BYTES
        || s->total_bytes > s->n_rows * row)
        return 0;
    for (j = 0; j < s->n_in; ++j)
        if (s->reverse[j] && s->total_bytes != s->n_rows * row)
            return 0;
    for (k = 0; k < EF_STAGE_MAX_AUX; ++k)
        aux_total += s->aux[k] != NULL ? round4(s->aux_bytes[k]) : 0u;
    if (aux_total >= area_bytes)
        return 0;
    slot = ((area_bytes - aux_total) / EF_STAGE_SLOTS) & ~3u;
    fixed = 4u * (uint32_t)n_buf; /* the rounding of each buffer */
    per_row = (uint32_t)(n_buf * row);
    if (slot < fixed + per_row)
        return 0;
    rmax = (int32_t)((slot - fixed) / per_row);
    if (rmax >= EF_STAGE_TEAM && s->n_rows > rmax)
        rmax -= rmax % EF_STAGE_TEAM; /* chunks split over the team by rows: a multiple of the cores each */
    n_chunks = (s->n_rows + rmax - 1) / rmax;
    g.rows = (s->n_rows + n_chunks - 1) / n_chunks; /* chunks of equal size */
    if (g.rows % EF_STAGE_TEAM && rmax % EF_STAGE_TEAM == 0) /* 80 rows: 5 x 16, not 4 x 20 */
        g.rows = ((g.rows + EF_STAGE_TEAM - 1) / EF_STAGE_TEAM) * EF_STAGE_TEAM <= rmax
                     ? ((g.rows + EF_STAGE_TEAM - 1) / EF_STAGE_TEAM) * EF_STAGE_TEAM
                     : rmax;
    n_chunks = (s->n_rows + g.rows - 1) / g.rows;
    g.in_sz = round4((uint32_t)(g.rows * row));
    for (q = 0; q < EF_STAGE_SLOTS; ++q)
        g.slot[q] = area + (uint32_t)q * slot;
    aux_at = area + EF_STAGE_SLOTS * slot;
    for (k = 0; k < EF_STAGE_MAX_AUX; ++k) {
        next.aux[k] = NULL;
        h_aux[k] = 0u;
        if (s->aux[k] != NULL && s->aux_bytes[k] > 0u) {
            h_aux[k] = ef_dma_start(aux_at, s->aux[k], s->aux_bytes[k]);
            next.aux[k] = aux_at;
            aux_at += round4(s->aux_bytes[k]);
        }
    }
    job.s = s;
    stage_load(s, &g, 0, 0, &next, h_in);
    for (k = 0; k < EF_STAGE_MAX_AUX; ++k)
        if (h_aux[k] != 0u)
            ef_dma_wait(h_aux[k]);
    for (c = 0; c < n_chunks; ++c) {
        q = c % EF_STAGE_SLOTS;
        for (j = 0; j < s->n_in; ++j)
            ef_dma_wait(h_in[j]);
        job.ch = next;
        if (c + 1 < n_chunks) { /* the next chunk's slot: its last output (chunk c - 2) must have left */
            int32_t q1 = (c + 1) % EF_STAGE_SLOTS;
            if (out_pending[q1]) {
                ef_dma_wait(h_out[q1]);
                out_pending[q1] = 0;
            }
            stage_load(s, &g, q1, (c + 1) * g.rows, &next, h_in);
        }
        ef_parallel_for(job.ch.rows, stage_part, &job);
        h_out[q] = ef_dma_start_out(s->y + (ptrdiff_t)job.ch.row0 * row, job.ch.y, (uint32_t)job.ch.bytes);
        out_pending[q] = 1;
    }
    for (q = 0; q < EF_STAGE_SLOTS; ++q)
        if (out_pending[q])
            ef_dma_wait(h_out[q]);
    return 1;
}

const int8_t *ef_stage_copy_in(const int8_t *src, int32_t bytes)
{
    uint32_t area_bytes;
    uint8_t *area = ef_l1_scratch(&area_bytes);
    if (bytes < EF_STAGE_MIN_BYTES || (uint32_t)bytes > area_bytes)
        return NULL;
    ef_dma_wait(ef_dma_start(area, src, (uint32_t)bytes));
    return (const int8_t *)(const void *)area;
}

/* ---- the staged kernels (called by ef_team_split.c's wrappers; 0: not staged, take the L2 path) ----------- */
void __real_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
void __real_ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);
void __real_ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                              int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);
void __real_ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                            int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0, int32_t r1);
void __real_ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                                  const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0,
                                  int32_t t1, int32_t c0, int32_t c1);
void __real_ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);

/* element-wise kernels: rows of one word, so that every core's part starts on a word */
typedef struct {
    int32_t m, sh, n_in, S, n_cols;
    const int32_t *M;
    int32_t strides[EF_STAGE_MAX_IN];
    int64_t eps_q;
    int32_t g_frac;
} stage_args_t;

static void lut_body(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1)
{
    int32_t e0 = 4 * i0, e1 = 4 * i1 < ch->bytes ? 4 * i1 : ch->bytes;
    (void)ctx;
    if (e0 < e1)
        __real_ef_lut_i8(ch->x[0] + e0, ch->y + e0, e1 - e0, (const int8_t *)ch->aux[0]);
}

int32_t ef_staged_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    ef_stage_t s = {.n_in = 1, .xs = {x}, .y = y, .row_bytes = 4, .n_rows = (n + 3) / 4, .total_bytes = n,
                    .in_place = 1, .aux = {lut}, .aux_bytes = {256u}, .body = lut_body};
    return ef_stage_l1_run(&s);
}

static void mul_body(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1)
{
    const stage_args_t *a = (const stage_args_t *)ctx;
    int32_t e0 = 4 * i0, e1 = 4 * i1 < ch->bytes ? 4 * i1 : ch->bytes;
    if (e0 < e1)
        __real_ef_mul_requant_i8(ch->x[0] + e0, ch->x[1] + e0, ch->y + e0, e1 - e0, a->m, a->sh);
}

int32_t ef_staged_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    stage_args_t args = {.m = m, .sh = sh};
    ef_stage_t s = {.n_in = 2, .xs = {a, b}, .y = y, .row_bytes = 4, .n_rows = (n + 3) / 4, .total_bytes = n,
                    .in_place = 1, .body = mul_body, .ctx = &args};
    return ef_stage_l1_run(&s);
}

/* the residual add: rows of n_cols; an input of stride -n_cols (read reversed in time) is staged reversed */
static void add_body(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1)
{
    const stage_args_t *a = (const stage_args_t *)ctx;
    const int8_t *xs[EF_STAGE_MAX_IN];
    int32_t j;
    for (j = 0; j < a->n_in; ++j)
        xs[j] = ch->x[j] + (ptrdiff_t)i0 * a->strides[j];
    __real_ef_add_requant_i8(xs, a->strides, a->M, a->n_in, a->S, ch->y + (ptrdiff_t)i0 * a->n_cols, a->n_cols,
                             i1 - i0, a->n_cols);
}

int32_t ef_staged_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M,
                                 int32_t n_inputs, int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows,
                                 int32_t n_cols)
{
    stage_args_t args = {.n_in = n_inputs, .S = S, .n_cols = n_cols, .M = M};
    ef_stage_t s = {.n_in = n_inputs, .y = y, .row_bytes = n_cols, .n_rows = n_rows, .total_bytes = n_rows * n_cols,
                    .body = add_body, .ctx = &args};
    int32_t j;
    if (n_inputs < 1 || n_inputs > EF_STAGE_MAX_IN || y_stride != n_cols || n_rows < 1)
        return 0;
    for (j = 0; j < n_inputs; ++j) {
        if (x_strides[j] != n_cols && x_strides[j] != -n_cols)
            return 0;
        args.strides[j] = x_strides[j];
        s.reverse[j] = x_strides[j] < 0;
        s.xs[j] = s.reverse[j] ? xs[j] + (ptrdiff_t)(n_rows - 1) * x_strides[j] : xs[j]; /* memory row 0 */
    }
    return ef_stage_l1_run(&s);
}

static void ln_body(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1)
{
    const stage_args_t *a = (const stage_args_t *)ctx;
    __real_ef_layernorm_i8(ch->x[0], a->n_cols, ch->y, a->n_cols, a->n_cols, a->eps_q, (const int32_t *)ch->aux[0],
                           (const int32_t *)ch->aux[1], a->g_frac, i0, i1);
}

int32_t ef_staged_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                               int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0,
                               int32_t r1)
{
    stage_args_t args = {.n_cols = n_ch, .eps_q = eps_q, .g_frac = g_frac};
    ef_stage_t s = {.n_in = 1, .xs = {x + (ptrdiff_t)r0 * n_ch}, .y = y + (ptrdiff_t)r0 * n_ch, .row_bytes = n_ch,
                    .n_rows = r1 - r0, .total_bytes = (r1 - r0) * n_ch, .aux = {g, b},
                    .aux_bytes = {4u * (uint32_t)n_ch, 4u * (uint32_t)n_ch}, .body = ln_body, .ctx = &args};
    if (x_stride != n_ch || y_stride != n_ch || g == NULL || b == NULL || r1 <= r0)
        return 0;
    return ef_stage_l1_run(&s);
}

/* The causal depthwise conv: blocks of channels over the whole sequence (no history rows to reload, each
 * channel's taps and requantization set up once), in by a 2-D gather and out by a 2-D scatter; within a block the
 * team splits channel quads (the Xpulpv2 kernel takes four channels a word). Its own loop, not ef_stage_l1_run's:
 * chunks of columns, with the block's slices of the constants. */
typedef struct {
    const int8_t *x, *w, *sh;
    const int32_t *bias;
    const int16_t *m;
    int8_t *y;
    int32_t t1, K, cb;
} dw_stage_t;

static void dw_body(void *ctx, int32_t i0, int32_t i1)
{
    const dw_stage_t *d = (const dw_stage_t *)ctx;
    int32_t c0 = 4 * i0, c1 = 4 * i1 < d->cb ? 4 * i1 : d->cb;
    if (c0 < c1)
        __real_ef_dwconv1d_causal_i8(d->x, d->cb, d->w, d->K, d->bias, d->m, d->sh, d->y, d->cb, 0, d->t1, c0, c1);
}

/* a fused lut on a block's outputs in L1 (words split over the team; the kernel itself, not its L1-staging wrap) */
typedef struct {
    int8_t *y;
    const int8_t *lut;
    int32_t n;
} dw_lut_t;

static void dw_lut_body(void *ctx, int32_t i0, int32_t i1)
{
    const dw_lut_t *j = (const dw_lut_t *)ctx;
    int32_t e0 = 4 * i0, e1 = 4 * i1 < j->n ? 4 * i1 : j->n;
    if (e0 < e1)
        __real_ef_lut_i8(j->y + e0, j->y + e0, e1 - e0, j->lut);
}

int32_t ef_staged_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                                     const int32_t *bias, const int16_t *m, const int8_t *sh, int8_t *y,
                                     int32_t y_stride, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                                     const int8_t *lut)
{
    uint32_t area_bytes, slot;
    uint8_t *area = ef_l1_scratch(&area_bytes);
    int32_t C = c1 - c0, cb, n_blocks, kb, q;
    ef_dma_handle_t h_out[EF_STAGE_SLOTS], h_in[5];
    int32_t out_pending[EF_STAGE_SLOTS] = {0};
    dw_stage_t d[2];
    int8_t *lut_l1 = NULL;
    if (t0 != 0 || t1 < 1 || K < 1 || K > 16 || C < 4 || w == NULL || bias == NULL || m == NULL || sh == NULL
        || (int64_t)t1 * C < EF_STAGE_MIN_BYTES || area_bytes < 1024u)
        return 0;
    if (lut != NULL) { /* the table in L1 past the slots, copied once (waited before the first block's lut) */
        area_bytes -= 256u;
        lut_l1 = (int8_t *)(void *)(area + area_bytes);
    }
    slot = (area_bytes / EF_STAGE_SLOTS) & ~3u;
    /* a block of cb channels: x and y (t1 cb each), taps (K cb), bias (4 cb), m (2 cb), sh (cb), each padded */
    if (slot < 6u * 4u + (uint32_t)(2 * t1 + K + 7) * 4u)
        return 0;
    cb = (int32_t)((slot - 6u * 4u) / (uint32_t)(2 * t1 + K + 7)) & ~3;
    if (cb >= EF_STAGE_TEAM_QUADS)
        cb &= ~(EF_STAGE_TEAM_QUADS - 1);
    if (cb > C)
        cb = C;
    n_blocks = (C + cb - 1) / cb;
    { /* blocks of equal size in whole quads for every core where that fits (the last block takes the rest) */
        int32_t even = ((C + n_blocks - 1) / n_blocks + 3) & ~3;
        int32_t team = (even + EF_STAGE_TEAM_QUADS - 1) & ~(EF_STAGE_TEAM_QUADS - 1);
        cb = team <= cb ? team : even;
        n_blocks = (C + cb - 1) / cb;
    }
    if (lut_l1 != NULL)
        ef_dma_wait(ef_dma_start(lut_l1, lut, 256u));
    for (kb = 0; kb <= n_blocks; ++kb) {
        if (kb < n_blocks) { /* block kb's loads into slot kb % 3 (its last output, block kb - 3, has left) */
            int32_t b0 = kb * cb, bn = C - b0 < cb ? C - b0 : cb;
            uint8_t *p = area + (uint32_t)(kb % EF_STAGE_SLOTS) * slot;
            dw_stage_t *e = &d[kb & 1];
            q = kb % EF_STAGE_SLOTS;
            if (out_pending[q]) {
                ef_dma_wait(h_out[q]);
                out_pending[q] = 0;
            }
            e->cb = bn;
            e->t1 = t1;
            e->K = K;
            e->x = (const int8_t *)(const void *)p;
            e->y = (int8_t *)(void *)(p + round4((uint32_t)(t1 * bn)));
            e->w = (const int8_t *)(const void *)((const uint8_t *)e->y + round4((uint32_t)(t1 * bn)));
            e->bias = (const int32_t *)(const void *)((const uint8_t *)e->w + round4((uint32_t)(K * bn)));
            e->m = (const int16_t *)(const void *)((const uint8_t *)e->bias + 4u * (uint32_t)bn);
            e->sh = (const int8_t *)(const void *)((const uint8_t *)e->m + round4(2u * (uint32_t)bn));
            h_in[0] = ef_dma_start_2d((void *)e->x, x + c0 + b0, (uint32_t)bn, (uint32_t)t1, (uint32_t)x_stride);
            h_in[1] = ef_dma_start((void *)e->w, w + (ptrdiff_t)(c0 + b0) * K, (uint32_t)(K * bn));
            h_in[2] = ef_dma_start((void *)e->bias, bias + c0 + b0, 4u * (uint32_t)bn);
            h_in[3] = ef_dma_start((void *)e->m, m + c0 + b0, 2u * (uint32_t)bn);
            h_in[4] = ef_dma_start((void *)e->sh, sh + c0 + b0, (uint32_t)bn);
        }
        if (kb > 0) { /* block kb - 1 (its loads were waited below) computes while block kb's are in flight */
            dw_stage_t *e = &d[(kb - 1) & 1];
            int32_t b0 = (kb - 1) * cb;
            ef_parallel_for((e->cb + 3) / 4, dw_body, e);
            if (lut_l1 != NULL) {
                dw_lut_t j = {e->y, lut_l1, e->t1 * e->cb};
                ef_parallel_for((j.n + 3) / 4, dw_lut_body, &j);
            }
            q = (kb - 1) % EF_STAGE_SLOTS;
            h_out[q] = ef_dma_start_out_2d(y + c0 + b0, e->y, (uint32_t)e->cb, (uint32_t)t1, (uint32_t)y_stride);
            out_pending[q] = 1;
        }
        if (kb < n_blocks)
            for (q = 0; q < 5; ++q)
                ef_dma_wait(h_in[q]);
    }
    for (q = 0; q < EF_STAGE_SLOTS; ++q)
        if (out_pending[q])
            ef_dma_wait(h_out[q]);
    return 1;
}

/* the time flip: output rows [row0, row0 + rows) are the chunk's buffer (memory rows, staged reversed) flipped */
static void flip_body(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1)
{
    const stage_args_t *a = (const stage_args_t *)ctx;
    const int8_t *buf = ch->x[0] - (ptrdiff_t)(ch->rows - 1) * a->n_cols;
    __real_ef_flip_rows_i8(buf + (ptrdiff_t)(ch->rows - i1) * a->n_cols, ch->y + (ptrdiff_t)i0 * a->n_cols, i1 - i0,
                           a->n_cols);
}

int32_t ef_staged_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len)
{
    stage_args_t args = {.n_cols = row_len};
    ef_stage_t s = {.n_in = 1, .xs = {x}, .reverse = {1}, .y = y, .row_bytes = row_len, .n_rows = n_rows,
                    .total_bytes = n_rows * row_len, .body = flip_body, .ctx = &args};
    return ef_stage_l1_run(&s);
}

/* The patch conv (the tokenizer): its whole input (the window) and its weights and per-channel constants copied to
 * L1 once (waited here); the wrapper then splits tokens over the team as in L2, on these copies. The addend and
 * the output stay in L2 (one access an output). */
int32_t ef_stage_conv2d_patch_operands(const int8_t **x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                                       const uint8_t **w, int32_t w_bits, const int32_t **bias, const int16_t **m,
                                       const int8_t **sh, const int16_t **addend16, int32_t addend_stride,
                                       int8_t **y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1,
                                       ef_stage_out_t *out)
{
    uint32_t area_bytes, xb, wb, ne, need, ab, yb;
    uint8_t *area = ef_l1_scratch(&area_bytes), *p;
    int32_t rb = ef_row_bytes(kh * kw, w_bits), k, n = 5;
    ef_dma_handle_t h[6];
    out->bytes = 0u;
    if (l1 <= l0 || e1 <= e0 || n_rows < 1 || kh < 1 || kw < 1 || x_stride < l1 * kw || *bias == NULL || *m == NULL
        || *sh == NULL)
        return 0;
    ne = (uint32_t)(e1 - e0);
    xb = round4((uint32_t)(n_rows * kh * x_stride));
    wb = round4(ne * (uint32_t)rb);
    need = xb + wb + 4u * ne + round4(2u * ne) + round4(ne);
    if (need > area_bytes || ((uint32_t)e0 * (uint32_t)rb) % 4u != 0u)
        return 0;
    /* the addend's rows [l0, l1) and the output's, when they fit beside (the addend read once an output, y written
     * once: each an L2 round trip per output otherwise) */
    ab = *addend16 != NULL && addend_stride >= e1 * n_rows ? round4(2u * (uint32_t)((l1 - l0) * addend_stride)) : 0u;
    if (need + ab > area_bytes)
        ab = 0u;
    yb = e0 == 0 && e1 * n_rows == y_stride ? round4((uint32_t)((l1 - l0) * y_stride)) : 0u;
    if (need + ab + yb > area_bytes)
        yb = 0u;
    p = area;
    h[0] = ef_dma_start(p, *x, (uint32_t)(n_rows * kh * x_stride));
    *x = (const int8_t *)(const void *)p;
    p += xb;
    h[1] = ef_dma_start(p, *w + (size_t)e0 * (size_t)rb, ne * (uint32_t)rb);
    *w = p - (size_t)e0 * (size_t)rb; /* channel e at its place: e0.. are in L1 */
    p += wb;
    h[2] = ef_dma_start(p, *bias + e0, 4u * ne);
    *bias = (const int32_t *)(const void *)p - e0;
    p += 4u * ne;
    h[3] = ef_dma_start(p, *m + e0, 2u * ne);
    *m = (const int16_t *)(const void *)p - e0;
    p += round4(2u * ne);
    h[4] = ef_dma_start(p, *sh + e0, ne);
    *sh = (const int8_t *)(const void *)p - e0;
    p += round4(ne);
    if (ab) {
        h[n++] = ef_dma_start(p, *addend16 + (ptrdiff_t)l0 * addend_stride, 2u * (uint32_t)((l1 - l0) * addend_stride));
        *addend16 = (const int16_t *)(const void *)p - (ptrdiff_t)l0 * addend_stride;
        p += ab;
    }
    if (yb) {
        out->l2 = *y + (ptrdiff_t)l0 * y_stride;
        out->l1 = (const int8_t *)(const void *)p;
        out->bytes = (uint32_t)((l1 - l0) * y_stride);
        *y = (int8_t *)(void *)p - (ptrdiff_t)l0 * y_stride;
    }
    for (k = 0; k < n; ++k)
        ef_dma_wait(h[k]);
    return 1;
}

void ef_stage_out_finish(const ef_stage_out_t *out)
{
    if (out->bytes)
        ef_dma_wait(ef_dma_start_out(out->l2, out->l1, out->bytes));
}
