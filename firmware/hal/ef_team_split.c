/* Team split of the whole-tensor kernels for multi-core HALs (pulp-open; usable by gap9). Linked with
 * -Wl,--wrap=<kernel> for each kernel below, so the generated network's whole-range call becomes
 * ef_parallel_for over independent ranges, each core calling the real kernel on its part: channels of the scan
 * and of the depthwise conv, tokens of the patch conv, of LayerNorm, of the residual add and of the element-wise
 * ops, output rows of the time flip, channels of the token mean, output channels of the general conv and channels
 * of the pools, rows of the zero-point matmul and softmax. Ranges are disjoint and every output element is computed
 * by exactly the same code as in one call, so the bytes are those of the single-core build. The element-wise,
 * row-wise, depthwise-conv and patch-conv kernels first try ef_team_split_l1.c: the same split on L1 copies of their
 * operands, moved in and out by the cluster DMA. */
#include <stddef.h>
#include <stdint.h>

#include "ef_kernels.h"
#include "ef_team_split_l1.h"
#include "ef_tiled.h"

/* ---- selective scan: channels [d0, d1) (each channel owns its state rows) -------------------------------- */
void __real_ef_scan_i8(const ef_scan_consts_t *c, const int8_t *u, int32_t u_stride, const int8_t *delta,
                       int32_t delta_stride, const int8_t *B, const int8_t *C, int32_t bc_stride, int8_t *y,
                       int32_t y_stride, int32_t *h, int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse);
void __wrap_ef_scan_i8(const ef_scan_consts_t *c, const int8_t *u, int32_t u_stride, const int8_t *delta,
                       int32_t delta_stride, const int8_t *B, const int8_t *C, int32_t bc_stride, int8_t *y,
                       int32_t y_stride, int32_t *h, int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse);

typedef struct {
    const ef_scan_consts_t *c;
    const int8_t *u, *delta, *B, *C;
    int8_t *y;
    int32_t *h;
    int32_t u_stride, delta_stride, bc_stride, y_stride, t0, t1, d0, reverse;
} scan_job_t;

static void scan_part(void *ctx, int32_t i0, int32_t i1)
{
    const scan_job_t *j = (const scan_job_t *)ctx;
    __real_ef_scan_i8(j->c, j->u, j->u_stride, j->delta, j->delta_stride, j->B, j->C, j->bc_stride, j->y,
                      j->y_stride, j->h, j->t0, j->t1, j->d0 + i0, j->d0 + i1, j->reverse);
}

void __wrap_ef_scan_i8(const ef_scan_consts_t *c, const int8_t *u, int32_t u_stride, const int8_t *delta,
                       int32_t delta_stride, const int8_t *B, const int8_t *C, int32_t bc_stride, int8_t *y,
                       int32_t y_stride, int32_t *h, int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse)
{
    scan_job_t j = {c, u, delta, B, C, y, h, u_stride, delta_stride, bc_stride, y_stride, t0, t1, d0, reverse};
    ef_parallel_for(d1 - d0, scan_part, &j);
}

/* ---- depthwise causal conv: channels [c0, c1) ------------------------------------------------------------ */
void __real_ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                                  const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0,
                                  int32_t t1, int32_t c0, int32_t c1);
void __wrap_ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                                  const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0,
                                  int32_t t1, int32_t c0, int32_t c1);

typedef struct {
    const int8_t *x, *w, *sh;
    const int32_t *bias;
    const int16_t *m;
    int8_t *y;
    int32_t x_stride, K, y_stride, t0, t1, c0;
} dw_job_t;

static void dw_part(void *ctx, int32_t i0, int32_t i1)
{
    const dw_job_t *j = (const dw_job_t *)ctx;
    __real_ef_dwconv1d_causal_i8(j->x, j->x_stride, j->w, j->K, j->bias, j->m, j->sh, j->y, j->y_stride, j->t0,
                                 j->t1, j->c0 + i0, j->c0 + i1);
}

void __wrap_ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                                  const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0,
                                  int32_t t1, int32_t c0, int32_t c1)
{
    dw_job_t j = {x, w, sh, bias, m, y, x_stride, K, y_stride, t0, t1, c0};
    if (ef_staged_dwconv1d_causal_i8(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1, NULL))
        return;
    ef_parallel_for(c1 - c0, dw_part, &j);
}

/* ---- depthwise causal conv with a fused lut: the L1 stage applies the table to each block before it leaves;
 * otherwise the conv as above, then the table on each output row's [c0, c1) ---------------------------------- */
void __real_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
void __wrap_ef_dwconv1d_causal_lut_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                                      const int32_t *bias, const int16_t *m, const int8_t *sh, int8_t *y,
                                      int32_t y_stride, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                                      const int8_t *lut);

typedef struct {
    int8_t *y;
    const int8_t *lut;
    int32_t y_stride, t0, c0, n;
} dw_lut_job_t;

static void dw_lut_rows(void *ctx, int32_t r0, int32_t r1)
{
    const dw_lut_job_t *j = (const dw_lut_job_t *)ctx;
    for (int32_t r = r0; r < r1; ++r) {
        int8_t *row = j->y + (ptrdiff_t)(j->t0 + r) * j->y_stride + j->c0;
        __real_ef_lut_i8(row, row, j->n, j->lut);
    }
}

void __wrap_ef_dwconv1d_causal_lut_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                                      const int32_t *bias, const int16_t *m, const int8_t *sh, int8_t *y,
                                      int32_t y_stride, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                                      const int8_t *lut)
{
    dw_job_t j = {x, w, sh, bias, m, y, x_stride, K, y_stride, t0, t1, c0};
    dw_lut_job_t l = {y, lut, y_stride, t0, c0, c1 - c0};
    if (ef_staged_dwconv1d_causal_i8(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1, lut))
        return;
    ef_parallel_for(c1 - c0, dw_part, &j);
    ef_parallel_for(t1 - t0, dw_lut_rows, &l);
}

/* ---- patch conv (the tokenizer): tokens [l0, l1) (few output channels, many tokens) ----------------------------- */
void __real_ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                               const uint8_t *w, int32_t w_bits, const int32_t *bias, const int16_t *addend16,
                               const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                               int8_t *y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1);
void __wrap_ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                               const uint8_t *w, int32_t w_bits, const int32_t *bias, const int16_t *addend16,
                               const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                               int8_t *y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1);

typedef struct {
    const int8_t *x, *sh;
    const uint8_t *w;
    const int32_t *bias, *addend32;
    const int16_t *addend16, *m;
    int8_t *y;
    int32_t x_stride, n_rows, kh, kw, w_bits, addend_stride, y_stride, l0, e0, e1;
} patch_job_t;

static void patch_part(void *ctx, int32_t i0, int32_t i1)
{
    const patch_job_t *j = (const patch_job_t *)ctx;
    __real_ef_conv2d_patch_i8(j->x, j->x_stride, j->n_rows, j->kh, j->kw, j->w, j->w_bits, j->bias, j->addend16,
                              j->addend32, j->addend_stride, j->m, j->sh, j->y, j->y_stride, j->l0 + i0,
                              j->l0 + i1, j->e0, j->e1);
}

void __wrap_ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                               const uint8_t *w, int32_t w_bits, const int32_t *bias, const int16_t *addend16,
                               const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                               int8_t *y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1)
{
    ef_stage_out_t out;
    ef_stage_conv2d_patch_operands(&x, x_stride, n_rows, kh, kw, &w, w_bits, &bias, &m, &sh, &addend16, addend_stride,
                                   &y, y_stride, l0, l1, e0, e1, &out);
    patch_job_t j = {x, sh, w, bias, addend32, addend16, m, y, x_stride, n_rows, kh, kw, w_bits, addend_stride,
                     y_stride, l0, e0, e1};
    ef_parallel_for(l1 - l0, patch_part, &j);
    ef_stage_out_finish(&out);
}

/* ---- LayerNorm: rows (tokens) [r0, r1) ------------------------------------------------------------------- */
void __real_ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                            int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0, int32_t r1);
void __wrap_ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                            int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0, int32_t r1);

typedef struct {
    const int8_t *x;
    int8_t *y;
    const int32_t *g, *b;
    int64_t eps_q;
    int32_t x_stride, y_stride, n_ch, g_frac, r0;
} ln_job_t;

static void ln_part(void *ctx, int32_t i0, int32_t i1)
{
    const ln_job_t *j = (const ln_job_t *)ctx;
    __real_ef_layernorm_i8(j->x, j->x_stride, j->y, j->y_stride, j->n_ch, j->eps_q, j->g, j->b, j->g_frac,
                           j->r0 + i0, j->r0 + i1);
}

void __wrap_ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                            int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0, int32_t r1)
{
    ln_job_t j = {x, y, g, b, eps_q, x_stride, y_stride, n_ch, g_frac, r0};
    if (ef_staged_layernorm_i8(x, x_stride, y, y_stride, n_ch, eps_q, g, b, g_frac, r0, r1))
        return;
    ef_parallel_for(r1 - r0, ln_part, &j);
}

/* ---- element-wise: elements [0, n) in blocks of 4 (whole words per core) --------------------------------- */
void __real_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
void __wrap_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
void __real_ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);
void __wrap_ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);

typedef struct {
    const int8_t *a, *b, *lut;
    int8_t *y;
    int32_t n, m, sh;
} elt_job_t;

static void lut_part(void *ctx, int32_t i0, int32_t i1)
{
    const elt_job_t *j = (const elt_job_t *)ctx;
    int32_t e0 = 4 * i0, e1 = 4 * i1 < j->n ? 4 * i1 : j->n;
    __real_ef_lut_i8(j->a + e0, j->y + e0, e1 - e0, j->lut);
}

static void mul_part(void *ctx, int32_t i0, int32_t i1)
{
    const elt_job_t *j = (const elt_job_t *)ctx;
    int32_t e0 = 4 * i0, e1 = 4 * i1 < j->n ? 4 * i1 : j->n;
    __real_ef_mul_requant_i8(j->a + e0, j->b + e0, j->y + e0, e1 - e0, j->m, j->sh);
}

void __wrap_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    elt_job_t j = {x, NULL, lut, y, n, 0, 0};
    if (ef_staged_lut_i8(x, y, n, lut))
        return;
    ef_parallel_for((n + 3) / 4, lut_part, &j);
}

void __wrap_ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    elt_job_t j = {a, b, NULL, y, n, m, sh};
    if (ef_staged_mul_requant_i8(a, b, y, n, m, sh))
        return;
    ef_parallel_for((n + 3) / 4, mul_part, &j);
}

/* ---- residual add with requant: rows [0, n_rows) (each core offsets every input by its first row) -------- */
#define EF_SPLIT_MAX_INPUTS 8
void __real_ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                              int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);
void __wrap_ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                              int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);

typedef struct {
    const int8_t *const *xs;
    const int32_t *x_strides, *M;
    int8_t *y;
    int32_t n_inputs, S, y_stride, n_cols;
} add_job_t;

static void add_part(void *ctx, int32_t i0, int32_t i1)
{
    const add_job_t *j = (const add_job_t *)ctx;
    const int8_t *xs[EF_SPLIT_MAX_INPUTS];
    int32_t k;
    for (k = 0; k < j->n_inputs; ++k)
        xs[k] = j->xs[k] + (ptrdiff_t)i0 * j->x_strides[k];
    __real_ef_add_requant_i8(xs, j->x_strides, j->M, j->n_inputs, j->S, j->y + (ptrdiff_t)i0 * j->y_stride,
                             j->y_stride, i1 - i0, j->n_cols);
}

void __wrap_ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                              int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols)
{
    add_job_t j = {xs, x_strides, M, y, n_inputs, S, y_stride, n_cols};
    if (ef_staged_add_requant_i8(xs, x_strides, M, n_inputs, S, y, y_stride, n_rows, n_cols))
        return;
    if (n_inputs > EF_SPLIT_MAX_INPUTS) {
        __real_ef_add_requant_i8(xs, x_strides, M, n_inputs, S, y, y_stride, n_rows, n_cols);
        return;
    }
    ef_parallel_for(n_rows, add_part, &j);
}

/* ---- time flip: output rows [r0, r1) (y row r = x row n_rows-1-r: a sub-range is a flip of its own) ------- */
void __real_ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);
void __wrap_ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);

typedef struct {
    const int8_t *x;
    int8_t *y;
    int32_t n_rows, row_len;
} flip_job_t;

static void flip_part(void *ctx, int32_t r0, int32_t r1)
{
    const flip_job_t *j = (const flip_job_t *)ctx;
    __real_ef_flip_rows_i8(j->x + (ptrdiff_t)(j->n_rows - r1) * j->row_len, j->y + (ptrdiff_t)r0 * j->row_len, r1 - r0,
                           j->row_len);
}

void __wrap_ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len)
{
    flip_job_t j = {x, y, n_rows, row_len};
    if (ef_staged_flip_rows_i8(x, y, n_rows, row_len))
        return;
    ef_parallel_for(n_rows, flip_part, &j);
}

/* ---- token mean: channels [c0, c1) ----------------------------------------------------------------------- */
void __real_ef_meanpool_tokens_i8(const int8_t *x, int32_t x_stride, int32_t n_tok, int8_t *y, int32_t m, int32_t sh,
                                  int32_t c0, int32_t c1);
void __wrap_ef_meanpool_tokens_i8(const int8_t *x, int32_t x_stride, int32_t n_tok, int8_t *y, int32_t m, int32_t sh,
                                  int32_t c0, int32_t c1);

typedef struct {
    const int8_t *x;
    int8_t *y;
    int32_t x_stride, n_tok, m, sh, c0;
} pool_job_t;

static void pool_part(void *ctx, int32_t i0, int32_t i1)
{
    const pool_job_t *j = (const pool_job_t *)ctx;
    __real_ef_meanpool_tokens_i8(j->x, j->x_stride, j->n_tok, j->y, j->m, j->sh, j->c0 + i0, j->c0 + i1);
}

void __wrap_ef_meanpool_tokens_i8(const int8_t *x, int32_t x_stride, int32_t n_tok, int8_t *y, int32_t m, int32_t sh,
                                  int32_t c0, int32_t c1)
{
    /* the tokens read column-wise (a stride apart): from an L1 copy of the rows, not one L2 round trip a byte */
    const int8_t *xl = NULL;
    if (c1 > c0 && n_tok > 0 && x_stride > 0)
        xl = ef_stage_copy_in(x, (n_tok - 1) * x_stride + c1);
    pool_job_t j = {xl != NULL ? xl : x, y, x_stride, n_tok, m, sh, c0};
    ef_parallel_for(c1 - c0, pool_part, &j);
}

/* ---- general conv: output channels [o0, o1); pool: channels [c0, c1) ------------------------------------- */
void __real_ef_conv_i8(const ef_conv_geom_t *g, const int8_t *x, const uint8_t *w, int32_t w_bits,
                       const int32_t *bias, const int32_t *m, const int32_t *sh, int32_t lo, int32_t hi,
                       int8_t *y, int32_t o0, int32_t o1);
void __wrap_ef_conv_i8(const ef_conv_geom_t *g, const int8_t *x, const uint8_t *w, int32_t w_bits,
                       const int32_t *bias, const int32_t *m, const int32_t *sh, int32_t lo, int32_t hi,
                       int8_t *y, int32_t o0, int32_t o1);

typedef struct {
    const ef_conv_geom_t *g;
    const int8_t *x;
    const uint8_t *w;
    const int32_t *bias, *m, *sh;
    int8_t *y;
    int32_t w_bits, lo, hi, o0;
} conv_job_t;

static void conv_part(void *ctx, int32_t i0, int32_t i1)
{
    const conv_job_t *j = (const conv_job_t *)ctx;
    __real_ef_conv_i8(j->g, j->x, j->w, j->w_bits, j->bias, j->m, j->sh, j->lo, j->hi, j->y, j->o0 + i0,
                      j->o0 + i1);
}

void __wrap_ef_conv_i8(const ef_conv_geom_t *g, const int8_t *x, const uint8_t *w, int32_t w_bits,
                       const int32_t *bias, const int32_t *m, const int32_t *sh, int32_t lo, int32_t hi,
                       int8_t *y, int32_t o0, int32_t o1)
{
    conv_job_t j = {g, x, w, bias, m, sh, y, w_bits, lo, hi, o0};
    ef_parallel_for(o1 - o0, conv_part, &j);
}

void __real_ef_pool_i8(const ef_pool_geom_t *g, const int8_t *x, const int32_t *m, const int32_t *sh, int8_t *y,
                       int32_t c0, int32_t c1);
void __wrap_ef_pool_i8(const ef_pool_geom_t *g, const int8_t *x, const int32_t *m, const int32_t *sh, int8_t *y,
                       int32_t c0, int32_t c1);

typedef struct {
    const ef_pool_geom_t *g;
    const int8_t *x;
    const int32_t *m, *sh;
    int8_t *y;
    int32_t c0;
} pool2d_job_t;

static void pool2d_part(void *ctx, int32_t i0, int32_t i1)
{
    const pool2d_job_t *j = (const pool2d_job_t *)ctx;
    __real_ef_pool_i8(j->g, j->x, j->m, j->sh, j->y, j->c0 + i0, j->c0 + i1);
}

void __wrap_ef_pool_i8(const ef_pool_geom_t *g, const int8_t *x, const int32_t *m, const int32_t *sh, int8_t *y,
                       int32_t c0, int32_t c1)
{
    pool2d_job_t j = {g, x, m, sh, y, c0};
    ef_parallel_for(c1 - c0, pool2d_part, &j);
}

/* ---- zero-point kernels (ef_zp.c): rows of the attention matmul and of the softmax, elements of the product -- */
void __real_ef_matmul_zp_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                            int32_t m, int32_t sh, int32_t za, int32_t zb, int32_t zy, int8_t *y, int32_t y_stride,
                            int32_t i0, int32_t i1, int32_t j0, int32_t j1);
void __wrap_ef_matmul_zp_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                            int32_t m, int32_t sh, int32_t za, int32_t zb, int32_t zy, int8_t *y, int32_t y_stride,
                            int32_t i0, int32_t i1, int32_t j0, int32_t j1);
void __real_ef_softmax_rows_zp_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                                  int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t zy, int32_t r0, int32_t r1);
void __wrap_ef_softmax_rows_zp_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                                  int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t zy, int32_t r0, int32_t r1);

typedef struct {
    const int8_t *a, *b;
    int8_t *y;
    int32_t a_stride, b_sk, b_sj, K, m, sh, za, zb, zy, y_stride, r0, j0, j1;
} zp_rows_job_t;

static void matmul_zp_part(void *ctx, int32_t i0, int32_t i1)
{
    const zp_rows_job_t *j = (const zp_rows_job_t *)ctx;
    __real_ef_matmul_zp_i8(j->a, j->a_stride, j->b, j->b_sk, j->b_sj, j->K, j->m, j->sh, j->za, j->zb, j->zy, j->y,
                           j->y_stride, j->r0 + i0, j->r0 + i1, j->j0, j->j1);
}

void __wrap_ef_matmul_zp_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                            int32_t m, int32_t sh, int32_t za, int32_t zb, int32_t zy, int8_t *y, int32_t y_stride,
                            int32_t i0, int32_t i1, int32_t j0, int32_t j1)
{
    zp_rows_job_t j = {a, b, y, a_stride, b_sk, b_sj, K, m, sh, za, zb, zy, y_stride, i0, j0, j1};
    ef_parallel_for(i1 - i0, matmul_zp_part, &j);
}

/* the softmax's fields in zp_rows_job_t: a = x, K = n, b_sk = ke, b_sj = frac, a_stride / y_stride the strides */
static void softmax_zp_part(void *ctx, int32_t i0, int32_t i1)
{
    const zp_rows_job_t *j = (const zp_rows_job_t *)ctx;
    __real_ef_softmax_rows_zp_i8(j->a, j->a_stride, j->y, j->y_stride, j->K, j->b_sk, j->b_sj, j->m, j->sh, j->zy,
                                 j->r0 + i0, j->r0 + i1);
}

void __wrap_ef_softmax_rows_zp_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                                  int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t zy, int32_t r0, int32_t r1)
{
    zp_rows_job_t j = {x, NULL, y, x_stride, ke, frac, n, m, sh, 0, 0, zy, y_stride, r0, 0, 0};
    ef_parallel_for(r1 - r0, softmax_zp_part, &j);
}
