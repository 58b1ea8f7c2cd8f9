/* Mean over tokens: int32 column sums requantized with m/sh = s_x / (T * s_y). */
#include "ef_kernels.h"

void ef_meanpool_tokens_i8(const int8_t *x, int32_t x_stride, int32_t n_tok, int8_t *y,
                           int32_t m, int32_t sh, int32_t c0, int32_t c1)
{
    for (int32_t c = c0; c < c1; ++c) {
        int32_t acc = 0;
        for (int32_t t = 0; t < n_tok; ++t)
            acc += (int32_t)x[(ptrdiff_t)t * x_stride + c];
        y[c] = ef_requant8(acc, m, sh);
    }
}
