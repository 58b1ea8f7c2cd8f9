/* Depthwise causal conv1d over time (Mamba's conv1d): K taps per channel, zero history before row 0. */
#include "ef_kernels.h"
#include "ef_dwconv_step.h"

void ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                           const int32_t *bias, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride,
                           int32_t t0, int32_t t1, int32_t c0, int32_t c1)
{
    if (K == 4) {
        for (int32_t c = c0; c < c1; ++c)
            dwconv4_channel(x + c, x_stride, w + (ptrdiff_t)c * 4, bias[c], m[c], sh[c], y + c, y_stride, t0, t1);
        return;
    }
    dwconv_any_k(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1);
}
