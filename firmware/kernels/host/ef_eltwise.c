/* Elementwise kernels, host variant: the LUT by vpermi2b (AVX-512 VBMI), the requantized product in 16 lanes. */
#include "ef_kernels.h"

#include "ef_host_simd.h"

/*
 * Same results as the portable firmware/kernels/ef_eltwise.c: the LUT as two 128-byte halves in four zmm
 * (vpermi2b picks by the index's low 7 bits, its bit 7 picks the half) on x ^ 0x80 = x + 128, 64 codes a step;
 * the product a b (|a b| <= 2^14, exact in int32) requantized in 64-bit lanes (ef_host_simd.h), 16 a step;
 * plain C for the tails and without the ISA. The residual sum and the row flip are the portable code.
 */

void ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    int32_t i = 0;
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
    const __m512i t0 = _mm512_loadu_si512((const void *)lut), t1 = _mm512_loadu_si512((const void *)(lut + 64));
    const __m512i t2 = _mm512_loadu_si512((const void *)(lut + 128));
    const __m512i t3 = _mm512_loadu_si512((const void *)(lut + 192));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (; i + 64 <= n; i += 64) {
        __m512i idx = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + i)), flip);
        __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1), hi = _mm512_permutex2var_epi8(t2, idx, t3);
        _mm512_storeu_si512((void *)(y + i), _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
    }
#endif
    for (; i < n; ++i)
        y[i] = lut[(int32_t)x[i] + 128];
}

void ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    int32_t i = 0;
#if defined(__AVX512F__)
    const ef_rq16_t q = ef_rq16_setup(_mm512_set1_epi32(m), _mm512_set1_epi32(sh));
    for (; i + 16 <= n; i += 16) {
        __m512i p = _mm512_mullo_epi32(ef_ld16_i8(a + i), ef_ld16_i8(b + i));
        _mm_storeu_si128((__m128i *)(void *)(y + i), ef_rq16(p, &q));
    }
#endif
    for (; i < n; ++i)
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
