/* Team split of the zero-point element-wise kernels (ef_zp.c), as firmware/hal/ef_team_split.c does for the others
 * (linked with -Wl,--wrap=<kernel>, names in backends/c_pipeline.py SPLIT_KERNELS): rows of the zero-point sum
 * (each core offsets every input by its first row), elements of the zero-point product in blocks of 4 (whole words
 * per core). Ranges are disjoint and each output element is computed by the same code as in one call. */
#include <stddef.h>
#include <stdint.h>

#include "ef_kernels.h"
#include "ef_tiled.h"

#define EF_SPLIT_ZP_MAX_INPUTS 8

void __real_ef_add_requant_zp_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                                 int32_t S, int64_t C, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);
void __wrap_ef_add_requant_zp_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                                 int32_t S, int64_t C, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);
void __real_ef_mul_requant_zp_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh,
                                 int32_t za, int32_t zb, int32_t zy);
void __wrap_ef_mul_requant_zp_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh,
                                 int32_t za, int32_t zb, int32_t zy);

typedef struct {
    const int8_t *const *xs;
    const int32_t *x_strides, *M;
    int64_t C;
    int8_t *y;
    int32_t n_inputs, S, y_stride, n_cols;
} add_zp_job_t;

static void add_zp_part(void *ctx, int32_t i0, int32_t i1)
{
    const add_zp_job_t *j = (const add_zp_job_t *)ctx;
    const int8_t *xs[EF_SPLIT_ZP_MAX_INPUTS];
    for (int32_t k = 0; k < j->n_inputs; ++k)
        xs[k] = j->xs[k] + (ptrdiff_t)i0 * j->x_strides[k];
    __real_ef_add_requant_zp_i8(xs, j->x_strides, j->M, j->n_inputs, j->S, j->C, j->y + (ptrdiff_t)i0 * j->y_stride,
                                j->y_stride, i1 - i0, j->n_cols);
}

void __wrap_ef_add_requant_zp_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                                 int32_t S, int64_t C, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols)
{
    add_zp_job_t j = {xs, x_strides, M, C, y, n_inputs, S, y_stride, n_cols};
    if (n_inputs > EF_SPLIT_ZP_MAX_INPUTS) {
        __real_ef_add_requant_zp_i8(xs, x_strides, M, n_inputs, S, C, y, y_stride, n_rows, n_cols);
        return;
    }
    ef_parallel_for(n_rows, add_zp_part, &j);
}

typedef struct {
    const int8_t *a, *b;
    int8_t *y;
    int32_t n, m, sh, za, zb, zy;
} mul_zp_job_t;

static void mul_zp_part(void *ctx, int32_t i0, int32_t i1)
{
    const mul_zp_job_t *j = (const mul_zp_job_t *)ctx;
    int32_t e0 = 4 * i0, e1 = 4 * i1 < j->n ? 4 * i1 : j->n;
    __real_ef_mul_requant_zp_i8(j->a + e0, j->b + e0, j->y + e0, e1 - e0, j->m, j->sh, j->za, j->zb, j->zy);
}

void __wrap_ef_mul_requant_zp_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh,
                                 int32_t za, int32_t zb, int32_t zy)
{
    mul_zp_job_t j = {a, b, y, n, m, sh, za, zb, zy};
    ef_parallel_for((n + 3) / 4, mul_zp_part, &j);
}
