/* Depthwise causal conv1d over time (Mamba's conv1d): K taps per channel, zero history before row 0. */
#include "ef_kernels.h"

void ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                           const int32_t *bias, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride,
                           int32_t t0, int32_t t1, int32_t c0, int32_t c1)
{
    for (int32_t t = t0; t < t1; ++t) {
        int32_t first = t - (K - 1);
        int32_t k0 = first < 0 ? -first : 0;          /* taps reading rows before 0 contribute 0 */
        for (int32_t c = c0; c < c1; ++c) {
            const int8_t *wc = w + (ptrdiff_t)c * K;
            int32_t acc = bias[c];
            for (int32_t k = k0; k < K; ++k)
                acc += (int32_t)wc[k] * (int32_t)x[(ptrdiff_t)(first + k) * x_stride + c];
            y[(ptrdiff_t)t * y_stride + c] = ef_requant8_m15(acc, m[c], sh[c]);
        }
    }
}
