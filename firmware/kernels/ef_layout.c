/* Data movement kernels: the strided gather behind the transpose and slice ops, the row gather behind the
   gather op (ef_kernels.h). */
#include "ef_kernels.h"

void ef_gather_strided_i8(const int8_t *x, int32_t ndim, const int32_t *shape, const int32_t *strides, int8_t *y)
{
    int32_t idx[EF_MAX_DIMS] = {0};
    int32_t n_outer = 1;
    int32_t inner = 1, inner_stride = 0;

    if (ndim <= 0) {
        y[0] = x[0];
        return;
    }
    for (int32_t k = 0; k < ndim - 1; ++k)
        n_outer *= shape[k];
    inner = shape[ndim - 1];
    inner_stride = strides[ndim - 1];
    for (int32_t o = 0; o < n_outer; ++o) {
        const int8_t *src = x;
        for (int32_t k = 0; k < ndim - 1; ++k)
            src += (ptrdiff_t)idx[k] * strides[k];
        for (int32_t i = 0; i < inner; ++i)
            y[i] = src[(ptrdiff_t)i * inner_stride];
        y += inner;
        for (int32_t k = ndim - 2; k >= 0; --k) {   /* odometer over the outer axes */
            if (++idx[k] < shape[k])
                break;
            idx[k] = 0;
        }
    }
}

void ef_gather_rows_i8(const int8_t *x, const int32_t *offsets, int32_t n_rows, int32_t row_len, int32_t step,
                       int8_t *y)
{
    for (int32_t r = 0; r < n_rows; ++r) {
        const int8_t *src = x + offsets[r];
        for (int32_t i = 0; i < row_len; ++i)
            y[i] = src[(ptrdiff_t)i * step];
        y += row_len;
    }
}
