/* Patch embedding, host variant: 16-wide patches dotted 4 patches a zmm (vpdpbusd), weights decoded once a channel. */
#include "ef_kernels.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif

/*
 * Same results as the portable firmware/kernels/ef_conv2d_patch.c. With AVX-512 VNNI and BW, for patches 16 wide
 * (FEMBA's and the transformer's 2 x 16) with at most 256 weights: consecutive patches of a row are consecutive 16-byte
 * groups, so one 64-byte load covers 4 patches of one patch row; each patch row's 16 decoded weights are broadcast to
 * the 4 lanes and `vpdpbusd` on u = x ^ 0x80 (x + 128) sums them per 128-bit lane (then sum x w = sum u w -
 * 128 sum w); 16 patches a pass (4 zmm), their lane sums reduced and put in patch order by shuffles, blends and one
 * vpermd; the tail under a byte mask; the addend and the requantization per patch as in the portable kernel. Any other
 * shape runs the portable loops. tests/c/test_kernel_variants_host.py checks both against the portable kernel.
 */
/* The portable kernel under another name (with its EF_PATCH_MAX): the other shapes and builds. */
void ef_conv2d_patch_i8_portable(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                                 const uint8_t *w, int32_t w_bits, const int32_t *bias,
                                 const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                                 const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride,
                                 int32_t l0, int32_t l1, int32_t e0, int32_t e1);
#define ef_conv2d_patch_i8 ef_conv2d_patch_i8_portable
#include "../ef_conv2d_patch.c"
#undef ef_conv2d_patch_i8

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* Each 128-bit lane's 4 dwords summed into all 4. */
static inline __m512i lane_sums(__m512i a)
{
    a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
    return _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB));
}

/* s[p] = sum_{i, j} (x[i, 16 p + j] + 128) wd[i, j] for patches p < np (<= 16) starting at xr (patch row i at
 * xr + i x_stride). */
static void dot16_patches(const int8_t *xr, int32_t x_stride, int32_t kh, const __m512i *wv, int32_t np,
                          int32_t s[16])
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc[4];
    for (int32_t q = 0; q < 4; ++q) {
        int32_t left = np - 4 * q;
        __mmask64 in = left >= 4 ? ~(__mmask64)0 : (left <= 0 ? 0 : (((__mmask64)1 << (16 * left)) - 1u));
        acc[q] = _mm512_setzero_si512();
        if (in == 0)
            continue;
        for (int32_t i = 0; i < kh; ++i) {
            __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, xr + (ptrdiff_t)i * x_stride + 64 * q), flip);
            acc[q] = _mm512_dpbusd_epi32(acc[q], u, wv[i]);
        }
    }
    /* acc[q] lane p: the sum of patch 4 q + p; blend bit 4 p + q from acc[q], then vpermd into patch order */
    __m512i r = _mm512_maskz_mov_epi32((__mmask16)0x1111, lane_sums(acc[0]));
    r = _mm512_mask_mov_epi32(r, (__mmask16)0x2222, lane_sums(acc[1]));
    r = _mm512_mask_mov_epi32(r, (__mmask16)0x4444, lane_sums(acc[2]));
    r = _mm512_mask_mov_epi32(r, (__mmask16)0x8888, lane_sums(acc[3]));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(s, _mm512_permutexvar_epi32(order, r));
}
#endif

void ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint8_t *w, int32_t w_bits, const int32_t *bias,
                        const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh,
                        int8_t *y, int32_t y_stride,
                        int32_t l0, int32_t l1, int32_t e0, int32_t e1)
{
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    if (kw == 16 && kh * kw <= EF_PATCH_MAX) {
        int32_t rb = ef_row_bytes(kh * kw, w_bits);
        int8_t wd[EF_PATCH_MAX];
        __m512i wv[EF_PATCH_MAX / 16];
        for (int32_t e = e0; e < e1; ++e) {
            const uint8_t *wr = w + (size_t)e * (size_t)rb;
            int32_t wsum = 0;
            for (int32_t k = 0; k < kh * kw; ++k) { /* once per channel, reused by every patch */
                wd[k] = (int8_t)ef_weight_at(wr, k, w_bits);
                wsum += wd[k];
            }
            for (int32_t i = 0; i < kh; ++i)
                wv[i] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(wd + 16 * i)));
            for (int32_t r = 0; r < n_rows; ++r) {
                int32_t f = e * n_rows + r;
                for (int32_t l = l0; l < l1; l += 16) {
                    int32_t np = l1 - l < 16 ? l1 - l : 16, s[16];
                    dot16_patches(x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * 16, x_stride, kh, wv, np, s);
                    for (int32_t p = 0; p < np; ++p) {
                        ptrdiff_t lp = l + p;
                        int32_t acc = bias[e] + s[p] - 128 * wsum;
                        if (addend16)
                            acc += addend16[lp * addend_stride + f];
                        else if (addend32)
                            acc += addend32[lp * addend_stride + f];
                        y[lp * y_stride + f] = ef_requant8_m15(acc, m[e], sh[e]);
                    }
                }
            }
        }
        return;
    }
#endif
    ef_conv2d_patch_i8_portable(x, x_stride, n_rows, kh, kw, w, w_bits, bias, addend16, addend32, addend_stride, m,
                                sh, y, y_stride, l0, l1, e0, e1);
}
