/* Integer row softmax, host variant: 16 entries of a row a vector (exp2 by table gathers, 64-bit products). */
#include "ef_kernels.h"

#include "ef_host_simd.h"

/* The portable kernel under another name: the path without AVX-512 (one copy of the reference code). */
void ef_softmax_rows_i8_portable(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                                 int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t r0, int32_t r1);
#define ef_softmax_rows_i8 ef_softmax_rows_i8_portable
#include "../ef_softmax.c"
#undef ef_softmax_rows_i8

/*
 * Same results as the portable firmware/kernels/ef_softmax.c. With AVX-512F/BW, a row of n entries in vectors of 16
 * (the last one under a mask): the max by vpmaxsd; p = ef_exp2_neg_q15((max - x) ke, frac) with the table's T[j] and
 * T[j+1] gathered, the interpolation rs((T[j+1] - T[j]) r, lo) in int32 (|T[j+1] - T[j]| <= 90, r < 2^16) and the
 * rounding shift by k < 16 per lane (k >= 16: 0); s = sum p; rcp = 2^46 / s once a row (scalar, as the portable
 * kernel); q = rs(p rcp, 16) in 64-bit lanes (vpmuludq: p <= 2^15, rcp <= 2^31); y = requant(q, m, sh) (ef_rq16).
 * p is computed twice a row, as in the portable kernel (no scratch). tests/c/test_kernel_variants_host.py checks it.
 */
#if defined(__AVX512F__) && defined(__AVX512BW__)
static inline __m512i exp2_neg16(__m512i e, int32_t frac)
{
    const int32_t lo = frac - 8;
    const __m512i one = _mm512_set1_epi32(1);
    __m512i k = _mm512_srai_epi32(e, frac);
    __m512i f = _mm512_and_si512(e, _mm512_set1_epi32((int32_t)(((uint32_t)1 << frac) - 1u)));
    __m512i j = _mm512_srai_epi32(f, lo);
    __m512i r = _mm512_and_si512(f, _mm512_set1_epi32((int32_t)(((uint32_t)1 << lo) - 1u)));
    __m512i t0 = _mm512_i32gather_epi32(j, (const void *)ef_exp2_table_q15, 4);
    __m512i t1 = _mm512_i32gather_epi32(_mm512_add_epi32(j, one), (const void *)ef_exp2_table_q15, 4);
    __m512i d = _mm512_mullo_epi32(_mm512_sub_epi32(t1, t0), r);
    __m512i half = _mm512_srli_epi32(_mm512_sllv_epi32(one, _mm512_set1_epi32(lo)), 1);  /* 2^(lo-1); 0 for lo 0 */
    __m512i v = _mm512_add_epi32(t0, _mm512_srai_epi32(_mm512_add_epi32(d, half), lo));
    __mmask16 small = _mm512_cmplt_epi32_mask(k, _mm512_set1_epi32(16));
    __m512i kc = _mm512_maskz_mov_epi32(small, k);
    __m512i rnd = _mm512_srli_epi32(_mm512_sllv_epi32(one, kc), 1);
    return _mm512_maskz_srav_epi32(small, _mm512_add_epi32(v, rnd), kc);
}
#endif

void ef_softmax_rows_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                        int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t r0, int32_t r1)
{
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const ef_rq16_t rq = ef_rq16_setup(_mm512_set1_epi32(m), _mm512_set1_epi32(sh));
    const __m512i vke = _mm512_set1_epi32(ke), r16 = _mm512_set1_epi64(1 << 15);
    for (int32_t r = r0; r < r1; ++r) {
        const int8_t *xr = x + (ptrdiff_t)r * x_stride;
        int8_t *yr = y + (ptrdiff_t)r * y_stride;
        __m512i vmx = _mm512_set1_epi32(-128);
        for (int32_t j = 0; j < n; j += 16) {
            __mmask16 in = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
            vmx = _mm512_mask_max_epi32(vmx, in, vmx, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(in, xr + j)));
        }
        const __m512i mx = _mm512_set1_epi32(_mm512_reduce_max_epi32(vmx));
        __m512i vs = _mm512_setzero_si512();
        for (int32_t j = 0; j < n; j += 16) {
            __mmask16 in = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
            __m512i xv = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(in, xr + j));
            __m512i p = exp2_neg16(_mm512_mullo_epi32(_mm512_sub_epi32(mx, xv), vke), frac);
            vs = _mm512_mask_add_epi32(vs, in, vs, p);
        }
        int32_t s = _mm512_reduce_add_epi32(vs);
        int64_t rcp = (int64_t)(((uint64_t)1 << 46) / (uint64_t)s);   /* s >= 32768: rcp <= 2^31 */
        const __m512i vr = _mm512_set1_epi64(rcp);
        for (int32_t j = 0; j < n; j += 16) {
            __mmask16 in = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
            __m512i xv = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(in, xr + j));
            __m512i p = exp2_neg16(_mm512_mullo_epi32(_mm512_sub_epi32(mx, xv), vke), frac);
            __m512i qa = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(
                _mm512_cvtepu32_epi64(_mm512_castsi512_si256(p)), vr), r16), 16);
            __m512i qb = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(
                _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(p, 1)), vr), r16), 16);
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(qa)),
                                           _mm512_cvtepi64_epi32(qb), 1);
            _mm_mask_storeu_epi8(yr + j, in, ef_rq16(q, &rq));
        }
    }
#else
    ef_softmax_rows_i8_portable(x, x_stride, y, y_stride, n, ke, frac, m, sh, r0, r1);
#endif
}
