/* Depthwise causal conv1d, host variant: the 4-tap conv over 16 channels at a time (AVX-512F), int32 lanes. */
#include "ef_kernels.h"
#include "ef_dwconv_step.h"

#include "ef_host_simd.h"

/*
 * Same results as the portable firmware/kernels/ef_dwconv1d.c: for K = 4 a block of 16 channels steps down
 * [t0, t1) with its taps, bias, multipliers and the three previous rows in registers, the sum exact in int32 (as
 * the portable one) and ef_requant8_m15 as (acc m + 2^(sh-1)) >> sh in 64-bit lanes (its own comment: the same
 * result); the channels past the last whole block and other K run the portable code.
 */

#if defined(__AVX512F__)
/* K = 4, channels [c, c + 16) down [t0, t1) (x, y, w, bias, m, sh already at channel c). */
static void dwconv4_block16(const int8_t *x, int32_t x_stride, const int8_t *w, const int32_t *bias,
                            const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0, int32_t t1)
{
    int32_t tap[4][16], mm[16], ss[16];
    for (int32_t c = 0; c < 16; ++c) {
        for (int32_t k = 0; k < 4; ++k)
            tap[k][c] = w[c * 4 + k];
        mm[c] = m[c];
        ss[c] = sh[c];
    }
    const __m512i w0 = _mm512_loadu_si512((const void *)tap[0]), w1 = _mm512_loadu_si512((const void *)tap[1]);
    const __m512i w2 = _mm512_loadu_si512((const void *)tap[2]), w3 = _mm512_loadu_si512((const void *)tap[3]);
    const __m512i b = _mm512_loadu_si512((const void *)bias);
    const ef_rq16_t q = ef_rq16_setup(_mm512_loadu_si512((const void *)mm), _mm512_loadu_si512((const void *)ss));
    const int8_t *xp = x + (ptrdiff_t)t0 * x_stride;
    __m512i zero = _mm512_setzero_si512();
    __m512i ha = t0 >= 3 ? ef_ld16_i8(xp - 3 * (ptrdiff_t)x_stride) : zero;   /* rows before 0 read as 0 */
    __m512i hp = t0 >= 2 ? ef_ld16_i8(xp - 2 * (ptrdiff_t)x_stride) : zero;
    __m512i hq = t0 >= 1 ? ef_ld16_i8(xp - (ptrdiff_t)x_stride) : zero;
    int8_t *yp = y + (ptrdiff_t)t0 * y_stride;
    for (int32_t t = t0; t < t1; ++t, xp += x_stride, yp += y_stride) {
        __m512i d = ef_ld16_i8(xp);
        __m512i acc = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_mullo_epi32(w0, ha)),
                                       _mm512_add_epi32(_mm512_mullo_epi32(w1, hp), _mm512_mullo_epi32(w2, hq)));
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(w3, d));
        _mm_storeu_si128((__m128i *)(void *)yp, ef_rq16(acc, &q));
        ha = hp;
        hp = hq;
        hq = d;
    }
}
#endif

void ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                           const int32_t *bias, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride,
                           int32_t t0, int32_t t1, int32_t c0, int32_t c1)
{
    if (K == 4) {
        int32_t c = c0;
#if defined(__AVX512F__)
        for (; c + 16 <= c1; c += 16)
            dwconv4_block16(x + c, x_stride, w + (ptrdiff_t)c * 4, bias + c, m + c, sh + c, y + c, y_stride, t0, t1);
#endif
        for (; c < c1; ++c)
            dwconv4_channel(x + c, x_stride, w + (ptrdiff_t)c * 4, bias[c], m[c], sh[c], y + c, y_stride, t0, t1);
        return;
    }
    dwconv_any_k(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1);
}
