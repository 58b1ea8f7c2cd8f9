/* The portable depthwise causal conv1d loops, shared by ef_dwconv1d.c and its variants (host/, xpulpv2/) for the
 * channels and K their vector paths leave to the scalar code. */
#ifndef EF_DWCONV_STEP_H
#define EF_DWCONV_STEP_H

#include "ef_kernels.h"

/* K = 4 (Mamba's d_conv), one channel down [t0, t1): the three previous inputs ride in registers, one load a row. */
static void dwconv4_channel(const int8_t *x, int32_t x_stride, const int8_t *wc, int32_t b, int32_t m, int32_t sh,
                            int8_t *y, int32_t y_stride, int32_t t0, int32_t t1)
{
    int32_t w0 = wc[0], w1 = wc[1], w2 = wc[2], w3 = wc[3];
    const int8_t *xp = x + (ptrdiff_t)t0 * x_stride;
    int32_t a = t0 >= 3 ? xp[-3 * (ptrdiff_t)x_stride] : 0;   /* rows before 0 read as 0 */
    int32_t p = t0 >= 2 ? xp[-2 * (ptrdiff_t)x_stride] : 0;
    int32_t q = t0 >= 1 ? xp[-(ptrdiff_t)x_stride] : 0;
    int8_t *yp = y + (ptrdiff_t)t0 * y_stride;
    for (int32_t t = t0; t < t1; ++t, xp += x_stride, yp += y_stride) {
        int32_t d = *xp;
        *yp = ef_requant8_m15(b + w0 * a + w1 * p + w2 * q + w3 * d, m, sh);
        a = p;
        p = q;
        q = d;
    }
}

/* Any K, channels [c0, c1) x rows [t0, t1): the plain sum (taps reading rows before 0 contribute 0). */
static void dwconv_any_k(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                         const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0, int32_t t1,
                         int32_t c0, int32_t c1)
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

#endif /* EF_DWCONV_STEP_H */
