/* Linear layer, host variant: rows decoded to int8 once per call, dotted 32 inputs a step (VNNI / AVX2 / plain). */
#include "ef_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

/*
 * Same results as the portable firmware/kernels/ef_linear.c (integer sums, exact in any order), for the host CPU:
 *  - a group of 4 weight rows is decoded to int8 once per block of up to TB tokens and chunk of KC inputs;
 *  - 2 tokens x 4 rows per step, 32 inputs at a time: with AVX-512 VNNI (vpdpbusd) or AVX2 (vpmaddubsw, only for
 *    |w| <= 8 where its 16-bit pair sums cannot saturate) on u = x + 128 (an unsigned byte: x ^ 0x80), then
 *    sum x w = sum u w - 128 sum w, with sum w taken at decode; plain C loops otherwise and for the tail.
 * Which path runs is fixed by the build flags (targets/host/target.toml: -march=native, the binary runs where it
 * is built); tests/c/test_kernel_variants.py checks each path against the portable kernels.
 */

#define TB 128    /* tokens per block */
#define KC 1920   /* inputs per chunk: a multiple of 32 and of 4, 2 and 5 elements per byte */

/* Base-3 digits of every byte (digit k at bits 2k, == the portable table): a ternary weight is digit - 1. */
static int32_t t5_digit(uint32_t byte, int32_t k)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return byte < 243u ? (int32_t)((byte / pow3[k]) % 3u) : 1;
}

/* wd[k] = weight k0 + k of the packed row for k < kc; returns sum of wd[0 .. nv). */
static int32_t decode_row(const uint8_t *row, int32_t bits, int32_t k0, int32_t kc, int32_t nv, int8_t *wd)
{
    int32_t s = 0;
    for (int32_t k = 0; k < kc; ++k) {
        int32_t i = k0 + k, v;
        if (bits == 8)
            v = ((const int8_t *)row)[i];
        else if (bits == 4)
            v = (int32_t)((((uint32_t)row[i >> 1] >> (4 * (i & 1))) & 15u) ^ 8u) - 8;
        else if (bits == 2)
            v = (int32_t)((((uint32_t)row[i >> 2] >> (2 * (i & 3))) & 3u) ^ 2u) - 2;
        else
            v = t5_digit(row[i / 5], i % 5) - 1;
        wd[k] = (int8_t)v;
        s += k < nv ? v : 0;
    }
    return s;
}

#if defined(__AVX2__)
static int32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* One 32-input step: acc += u . w per 4-byte group (exact int32). */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define EF_DOT(acc, u, w) ((acc) = _mm256_dpbusd_epi32((acc), (u), (w)))
#else
#define EF_DOT(acc, u, w) ((acc) = _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (w)), ones)))
#endif

/* s[j] = sum_{k < nv} u_a[k] wd[j][k], s[4 + j] likewise for token b; nv a multiple of 32. */
static void dot_vec(const int8_t *xa, const int8_t *xb, const int8_t *const wd[4], int32_t nv, int32_t s[8])
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
#if !(defined(__AVX512VNNI__) && defined(__AVX512VL__))
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int32_t k = 0; k < nv; k += 32) {
        __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xa + k)), flip);
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xb + k)), flip);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[0] + k));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[1] + k));
        __m256i w2 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[2] + k));
        __m256i w3 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[3] + k));
        EF_DOT(a0, u, w0);
        EF_DOT(a1, u, w1);
        EF_DOT(a2, u, w2);
        EF_DOT(a3, u, w3);
        EF_DOT(b0, v, w0);
        EF_DOT(b1, v, w1);
        EF_DOT(b2, v, w2);
        EF_DOT(b3, v, w3);
    }
    s[0] = hsum(a0);
    s[1] = hsum(a1);
    s[2] = hsum(a2);
    s[3] = hsum(a3);
    s[4] = hsum(b0);
    s[5] = hsum(b1);
    s[6] = hsum(b2);
    s[7] = hsum(b3);
}
#endif

/* Vector inputs of a chunk of kc: 32-multiples when the vector step is exact for these weights, else none. */
static int32_t vector_len(int32_t kc, int32_t bits)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    (void)bits;
    return kc & ~31;
#elif defined(__AVX2__)
    return bits == 8 ? 0 : kc & ~31;
#else
    (void)bits;
    (void)kc;
    return 0;
#endif
}

/* tot[t - ta][j] += sum_k x[t, k0 + k] wd[j][k] over k < kc for t in [ta, tb). */
static void block_dot(const int8_t *x, int32_t xs, int32_t k0, int32_t kc, int32_t nv, const int8_t *const wd[4],
                      const int32_t wsum[4], int32_t ta, int32_t tb, int32_t tot[][4])
{
    for (int32_t t = ta; t < tb; t += 2) {
        const int8_t *xa = x + (ptrdiff_t)t * xs + k0;
        int32_t two = t + 1 < tb;
        const int8_t *xb = two ? xa + xs : xa;
        int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#if defined(__AVX2__)
        if (nv > 0) {
            dot_vec(xa, xb, wd, nv, s);
            for (int32_t j = 0; j < 4; ++j) {
                s[j] -= 128 * wsum[j];
                s[4 + j] -= 128 * wsum[j];
            }
        }
#else
        (void)wsum;
#endif
        for (int32_t k = nv; k < kc; ++k) {
            int32_t u = xa[k], v = xb[k];
            for (int32_t j = 0; j < 4; ++j) {
                s[j] += u * wd[j][k];
                s[4 + j] += v * wd[j][k];
            }
        }
        for (int32_t j = 0; j < 4; ++j) {
            tot[t - ta][j] += s[j];
            if (two)
                tot[t + 1 - ta][j] += s[4 + j];
        }
    }
}

static void linear_core(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *w, int32_t bits,
                        const int32_t *bias, const int32_t *m, const int32_t *sh, int8_t *y8, int32_t *y32,
                        int32_t ys, int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    int32_t rb = ef_row_bytes(n_in, bits);
    int8_t wbuf[4][KC];
    int32_t tot[TB][4];
    for (int32_t ta = t0; ta < t1; ta += TB) {
        int32_t tb = t1 - ta < TB ? t1 : ta + TB;
        for (int32_t o = o0; o < o1; o += 4) {
            int32_t no = o1 - o < 4 ? o1 - o : 4;
            for (int32_t t = 0; t < tb - ta; ++t)
                tot[t][0] = tot[t][1] = tot[t][2] = tot[t][3] = 0;
            for (int32_t k0 = 0; k0 < n_in; k0 += KC) {
                int32_t kc = n_in - k0 < KC ? n_in - k0 : KC, nv = vector_len(kc, bits), wsum[4];
                const int8_t *wd[4];
                for (int32_t j = 0; j < 4; ++j) {
                    const uint8_t *row = w + (size_t)(o + (j < no ? j : no - 1)) * (size_t)rb;
                    wsum[j] = decode_row(row, bits, k0, kc, nv, wbuf[j]);
                    wd[j] = wbuf[j];
                }
                block_dot(x, xs, k0, kc, nv, wd, wsum, ta, tb, tot);
            }
            for (int32_t t = ta; t < tb; ++t)
                for (int32_t j = 0; j < no; ++j) {
                    int32_t acc = tot[t - ta][j] + (bias ? bias[o + j] : 0);
                    if (y8)
                        y8[(ptrdiff_t)t * ys + o + j] = ef_requant8(acc, m[o + j], sh[o + j]);
                    else
                        y32[(ptrdiff_t)t * ys + o + j] = acc;
                }
        }
    }
}

void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, m, sh, y, NULL, y_stride, t0, t1, o0, o1);
}

void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, NULL, NULL, NULL, y, y_stride, t0, t1, o0, o1);
}
