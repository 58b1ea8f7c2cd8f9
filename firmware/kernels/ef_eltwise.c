/* Elementwise kernels: LUT, requantized product, requantized N-input sum (residual), row flip. */
#include "ef_kernels.h"

void ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    for (int32_t i = 0; i < n; ++i)
        y[i] = lut[(int32_t)x[i] + 128];
}

void ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    for (int32_t i = 0; i < n; ++i)
        y[i] = ef_requant8((int32_t)a[i] * (int32_t)b[i], m, sh);
}

void ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                       int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols)
{
    for (int32_t r = 0; r < n_rows; ++r) {
        for (int32_t c = 0; c < n_cols; ++c) {
            int64_t tot = 0;
            for (int32_t j = 0; j < n_inputs; ++j)
                tot += (int64_t)xs[j][(ptrdiff_t)r * x_strides[j] + c] * (int64_t)M[j];
            y[(ptrdiff_t)r * y_stride + c] = ef_sat8(ef_rshift_round(tot, S));
        }
    }
}

void ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len)
{
    for (int32_t r = 0; r < n_rows; ++r) {
        const int8_t *src = x + (ptrdiff_t)(n_rows - 1 - r) * row_len;
        int8_t *dst = y + (ptrdiff_t)r * row_len;
        for (int32_t i = 0; i < row_len; ++i)
            dst[i] = src[i];
    }
}
