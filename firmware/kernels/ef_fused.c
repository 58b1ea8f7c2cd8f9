/* Kernels with a lookup table fused after them (the plan's fused_luts): the portable composition, in a file no
 * kernel variant replaces, so every build has it; the cluster HALs wrap it with their L1 staging
 * (firmware/hal/ef_team_split.c), where the table is applied to each block before it leaves L1. */
#include "ef_kernels.h"

void ef_dwconv1d_causal_lut_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                               const int32_t *bias, const int16_t *m, const int8_t *sh,
                               int8_t *y, int32_t y_stride,
                               int32_t t0, int32_t t1, int32_t c0, int32_t c1, const int8_t *lut)
{
    ef_dwconv1d_causal_i8(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1);
    for (int32_t t = t0; t < t1; ++t)
        for (int32_t c = c0; c < c1; ++c)
            y[(ptrdiff_t)t * y_stride + c] = lut[(int32_t)y[(ptrdiff_t)t * y_stride + c] + 128];
}
