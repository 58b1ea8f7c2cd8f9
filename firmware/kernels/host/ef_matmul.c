/* int8 x int8 matrix product (attention), host variant: 16 output columns a vector when b's rows are contiguous. */
#include "ef_kernels.h"

#include "ef_host_simd.h"

/* The portable kernel under another name: the other strides and builds without AVX-512. */
void ef_matmul_i8_portable(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj,
                           int32_t K, int32_t m, int32_t sh, int8_t *y, int32_t y_stride,
                           int32_t i0, int32_t i1, int32_t j0, int32_t j1);
#define ef_matmul_i8 ef_matmul_i8_portable
#include "../ef_matmul.c"
#undef ef_matmul_i8

/*
 * Same results as the portable firmware/kernels/ef_matmul.c. With AVX-512F/BW and b_sj == 1 (b row-major (K, N), as
 * the generated code calls it: Q K^T on a materialised K^T, P V): for each row i, columns j .. j + 15 as int32 lanes,
 * acc += a[i, k] b[k, j .. j + 15] (a broadcast, b sign-extended, vpmulld), the last partial vector under a byte
 * mask; the per-tensor requantization in 64-bit lanes (ef_rq16). Any other stride runs the portable loop.
 * tests/c/test_kernel_variants_host.py checks both against the portable kernel.
 */
void ef_matmul_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                  int32_t m, int32_t sh, int8_t *y, int32_t y_stride,
                  int32_t i0, int32_t i1, int32_t j0, int32_t j1)
{
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if (b_sj == 1) {
        const ef_rq16_t q = ef_rq16_setup(_mm512_set1_epi32(m), _mm512_set1_epi32(sh));
        for (int32_t i = i0; i < i1; ++i) {
            const int8_t *ai = a + (ptrdiff_t)i * a_stride;
            for (int32_t j = j0; j < j1; j += 16) {
                __mmask16 in = j1 - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (j1 - j)) - 1u);
                __m512i acc = _mm512_setzero_si512();
                for (int32_t k = 0; k < K; ++k) {
                    __m512i bk = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(in, b + (ptrdiff_t)k * b_sk + j));
                    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(ai[k]), bk));
                }
                _mm_mask_storeu_epi8(y + (ptrdiff_t)i * y_stride + j, in, ef_rq16(acc, &q));
            }
        }
        return;
    }
#endif
    ef_matmul_i8_portable(a, a_stride, b, b_sk, b_sj, K, m, sh, y, y_stride, i0, i1, j0, j1);
}
