/* Element-wise kernels, Xpulpv2 variant (pulp-open / GAP9 cluster): word-wide passes over operands in L2.
 *
 * Same functions, arguments and bit-exact results as firmware/kernels/ef_eltwise.c (tests/gvsoc/test_xpulpv2.py runs
 * both on the same inputs on GVSoC). The whole-tensor element-wise kernels read and write the L2 arena, where every
 * core access costs a round trip over the cluster bus, so the portable byte loop spends ~50 cycles an element on a
 * LUT. Here, when x and y share word alignment:
 *  - ef_lut_i8: the 256-byte table copied once per call to the core's stack (L1), then one L2 word load and one
 *    word store per four elements, the four lookups in L1;
 *  - ef_mul_requant_i8: a and b read a word (four elements) at a time; for 33 <= sh <= 62 the requantization is
 *    hi = (a b m) >> 32 (one mulh) and (hi + 2^(sh-33)) >> (sh-32) (the identity of xpulpv2/ef_linear.c's xp_emit:
 *    the low word cannot carry past a multiple of 2^(sh-32); |a b m| < 2^45, so the sum fits), then p.clip;
 *    other shifts: ef_requant8 itself.
 * Heads and tails (and operands of different alignment) take the portable per-element formula. ef_add_requant_i8
 * and ef_flip_rows_i8 are the portable ones. */
#include "ef_kernels.h"
#include "ef_xpulp.h"

#define XE_LUT_COPY_MIN 256 /* elements from which the table copy to L1 pays */

typedef uint32_t xe_word_t __attribute__((may_alias)); /* four int8 elements read or written as one word */

static inline uint32_t xe_lut4(const uint8_t *t, uint32_t w)
{
    w ^= 0x80808080u; /* x + 128 in each lane */
    return (uint32_t)t[w & 0xFFu] | (uint32_t)t[(w >> 8) & 0xFFu] << 8 | (uint32_t)t[(w >> 16) & 0xFFu] << 16
           | (uint32_t)t[w >> 24] << 24;
}

void ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    int32_t i = 0;
    if (n >= XE_LUT_COPY_MIN && (((uintptr_t)x ^ (uintptr_t)y) & 3u) == 0) {
        uint32_t tw[64];
        const uint8_t *t = (const uint8_t *)tw;
        if (((uintptr_t)lut & 3u) == 0)
            for (int32_t k = 0; k < 64; ++k)
                tw[k] = ((const xe_word_t *)(const void *)lut)[k];
        else
            for (int32_t k = 0; k < 256; ++k)
                ((uint8_t *)tw)[k] = (uint8_t)lut[k];
        for (; i < n && ((uintptr_t)(x + i) & 3u) != 0; ++i)
            y[i] = (int8_t)t[(uint8_t)x[i] ^ 0x80u];
        for (; i + 4 <= n; i += 4)
            *(xe_word_t *)(void *)(y + i) = xe_lut4(t, *(const xe_word_t *)(const void *)(x + i));
    }
    for (; i < n; ++i)
        y[i] = lut[(int32_t)x[i] + 128];
}

/* int8 lane k of a word, sign-extended */
#define XE_LANE(w, k) ((int32_t)((w) << (24 - 8 * (k))) >> 24)

/* requant(p, m, sh) for 33 <= sh <= 62 and |p| < 2^15: rnd = 2^(sh-33), s = sh - 32 (see the header). */
static inline int32_t xe_rq(int32_t p, int32_t m, int32_t rnd, int32_t s)
{
    int32_t hi = (int32_t)(((int64_t)p * (int64_t)m) >> 32);
    return ef_xp_clip8((hi + rnd) >> s);
}

void ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    int32_t i = 0, same = ((((uintptr_t)a ^ (uintptr_t)y) | ((uintptr_t)b ^ (uintptr_t)y)) & 3u) == 0;
    if (sh >= 33 && sh <= 62 && same) {
        int32_t rnd = 1 << (sh - 33), s = sh - 32;
        for (; i < n && ((uintptr_t)(y + i) & 3u) != 0; ++i)
            y[i] = (int8_t)xe_rq((int32_t)a[i] * (int32_t)b[i], m, rnd, s);
        for (; i + 4 <= n; i += 4) {
            uint32_t wa = *(const xe_word_t *)(const void *)(a + i), wb = *(const xe_word_t *)(const void *)(b + i);
            int32_t r0 = xe_rq(XE_LANE(wa, 0) * XE_LANE(wb, 0), m, rnd, s);
            int32_t r1 = xe_rq(XE_LANE(wa, 1) * XE_LANE(wb, 1), m, rnd, s);
            int32_t r2 = xe_rq(XE_LANE(wa, 2) * XE_LANE(wb, 2), m, rnd, s);
            int32_t r3 = xe_rq(XE_LANE(wa, 3) * XE_LANE(wb, 3), m, rnd, s);
            *(xe_word_t *)(void *)(y + i) = ((uint32_t)r0 & 0xFFu) | ((uint32_t)r1 & 0xFFu) << 8
                                           | ((uint32_t)r2 & 0xFFu) << 16 | (uint32_t)r3 << 24;
        }
    }
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
