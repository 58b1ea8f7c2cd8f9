/* Integer LayerNorm, host variant: the row sums and the per-channel normalisation in vectors (64-bit lanes). */
#include "ef_kernels.h"

/*
 * Same results as the portable firmware/kernels/ef_layernorm.c, which is included below under another name (its
 * integer square root and the builds without AVX-512 are that file's). With AVX-512F/BW/VL/DQ: S and Q by vpmaddwd on
 * 32 codes a step (the tail under a mask); the row's W, k, 1/sqrt as the portable kernel; then 8 channels a step in
 * int64 lanes: d = n_ch x - S, z = rs(d inv, 41 - k) (vpmullq, vpsraq), y = sat8(rs(z g + b 2^(ysh-16), ysh))
 * (vpmovsqb), the tail under a mask. tests/c/test_kernel_variants_host.py checks it against the portable kernel.
 */
void ef_layernorm_i8_portable(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                              int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                              int32_t r0, int32_t r1);
#define ef_layernorm_i8 ef_layernorm_i8_portable
#include "../ef_layernorm.c"
#undef ef_layernorm_i8

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>

/* x + 2^(s-1) (0 for s = 0), then arithmetic >> s, in 8 int64 lanes: ef_rshift_round. */
static inline __m512i rshift_round8(__m512i v, int32_t s)
{
    if (s == 0)
        return v;
    return _mm512_sra_epi64(_mm512_add_epi64(v, _mm512_set1_epi64((int64_t)1 << (s - 1))), _mm_cvtsi32_si128(s));
}

void ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                     int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                     int32_t r0, int32_t r1)
{
    const int32_t ysh = EF_LN_Z_FRAC + g_frac, bsh = ysh - EF_LN_B_FRAC;
    const __m512i ones = _mm512_set1_epi16(1), vn = _mm512_set1_epi64(n_ch);
    for (int32_t r = r0; r < r1; ++r) {
        const int8_t *xr = x + (ptrdiff_t)r * x_stride;
        int8_t *yr = y + (ptrdiff_t)r * y_stride;
        __m512i vs = _mm512_setzero_si512(), vq = vs;
        for (int32_t i = 0; i < n_ch; i += 32) {
            __mmask32 in = n_ch - i >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n_ch - i)) - 1u);
            __m512i v = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(in, xr + i));
            vs = _mm512_add_epi32(vs, _mm512_madd_epi16(v, ones));
            vq = _mm512_add_epi32(vq, _mm512_madd_epi16(v, v));
        }
        int32_t s = _mm512_reduce_add_epi32(vs), q = _mm512_reduce_add_epi32(vq);
        int64_t w = (int64_t)n_ch * q - (int64_t)s * s + eps_q;       /* = n_ch^2 (var + eps), >= 1 */
        int32_t k = (62 - bit_length((uint64_t)w)) / 2;
        uint64_t rt = isqrt64((uint64_t)w << (2 * k));                /* in [2^30, 2^31) */
        int64_t inv = (int64_t)(((uint64_t)1 << 61) / rt);           /* 2^(61-k) / sqrt(w) */
        int32_t zsh = 61 - k - EF_LN_Z_FRAC;
        const __m512i vinv = _mm512_set1_epi64(inv), vsum = _mm512_set1_epi64(s);
        for (int32_t i = 0; i < n_ch; i += 8) {
            __mmask8 in = n_ch - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n_ch - i)) - 1u);
            __m512i xv = _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(in, xr + i));
            __m512i d = _mm512_sub_epi64(_mm512_mullo_epi64(xv, vn), vsum);
            __m512i z = rshift_round8(_mm512_mullo_epi64(d, vinv), zsh);
            __m512i gv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(in, g + i));
            __m512i bv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(in, b + i));
            __m512i v = _mm512_add_epi64(_mm512_mullo_epi64(z, gv), _mm512_sll_epi64(bv, _mm_cvtsi32_si128(bsh)));
            _mm512_mask_cvtsepi64_storeu_epi8(yr + i, in, rshift_round8(v, ysh));
        }
    }
}
#else
void ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                     int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                     int32_t r0, int32_t r1)
{
    ef_layernorm_i8_portable(x, x_stride, y, y_stride, n_ch, eps_q, g, b, g_frac, r0, r1);
}
#endif
