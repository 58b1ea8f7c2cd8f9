/* Depthwise causal conv1d over time, Xpulpv2 variant (pulp-open / GAP9 cluster): four channels a word.
 *
 * Same function, arguments and bit-exact results as firmware/kernels/ef_dwconv1d.c (tests/gvsoc/test_xpulpv2.py runs
 * both on the same inputs on GVSoC). The conv reads and writes the L2 arena, where every core access is a round
 * trip over the cluster bus; for K = 4 with x, y word-aligned alike and strides multiples of 4, four channels go
 * together: one L2 word load a row (the four channels' new inputs), per channel a window word of its last four
 * inputs (oldest in byte 0) rolled by one byte a row, one pv.sdotsp.b against its packed taps (w[0] on the oldest,
 * as the portable sum), the requantization by one mulh ((acc m 2^16) >> 32, then (hi + 2^(s-33)) >> (s-32) for
 * s = sh + 16 in [33, 62]: the identity of xpulpv2/ef_linear.c's xp_emit; |acc m 2^16| < 2^62 so the sum fits),
 * p.clip, and one L2 word store; from t = 0, quads whose constants bound acc m below 2^31 requantize by one p.mac
 * instead (dwconv4_quad15_t0). Other shifts, the channels before the first aligned word and after the last, and
 * other K take the portable code. */
#include "ef_kernels.h"
#include "ef_dwconv_step.h"
#include "ef_xpulp.h"

typedef uint32_t xd_word_t __attribute__((may_alias));

/* Requantization of one channel for s = sh + 16 in [33, 62] (see the header). */
typedef struct {
    int32_t b, m16, s;
    uint32_t w;
} xd_chan_t;

/* (hi + 2^(s-1)) >> s is one p.addRNr (s = 0: hi itself, as the portable rounding); |hi| < 2^30 */
static inline int32_t xd_out(const xd_chan_t *k, uint32_t win)
{
    int32_t acc = ef_xp_sdotsp_b(k->b, win, k->w);
    int32_t hi = (int32_t)(((int64_t)acc * (int64_t)k->m16) >> 32);
    return ef_xp_clip8(ef_xp_add_rn(hi, 0, k->s));
}

/* Channels [c, c + 4) down [t0, t1), x + c and y + c word-aligned, strides multiples of 4, every sh in [17, 46]. */
static void dwconv4_quad(const int8_t *x, int32_t x_stride, const xd_chan_t k[4], int8_t *y, int32_t y_stride,
                         int32_t t0, int32_t t1)
{
    uint32_t v0 = 0, v1 = 0, v2 = 0, v3 = 0; /* window words: inputs t-3 .. t in bytes 0 .. 3 */
    for (int32_t t = t0 - 3 < 0 ? 0 : t0 - 3; t <= t1 - 1; ++t) {
        uint32_t xw = *(const xd_word_t *)(const void *)(x + (ptrdiff_t)t * x_stride);
        v0 = v0 >> 8 | xw << 24;
        v1 = v1 >> 8 | (xw >> 8) << 24;
        v2 = v2 >> 8 | (xw >> 16) << 24;
        v3 = v3 >> 8 | (xw & 0xFF000000u);
        if (t < t0)
            continue;
        int32_t r0 = xd_out(&k[0], v0), r1 = xd_out(&k[1], v1), r2 = xd_out(&k[2], v2), r3 = xd_out(&k[3], v3);
        *(xd_word_t *)(void *)(y + (ptrdiff_t)t * y_stride) = ((uint32_t)r0 & 0xFFu) | ((uint32_t)r1 & 0xFFu) << 8
                                                             | ((uint32_t)r2 & 0xFFu) << 16 | (uint32_t)r3 << 24;
    }
}

/* Both t = 0 quad loops: the four channels' constants (4 words each at q, in the order the loops expect) into
 * fixed registers, the windows zeroed, hardware loop 0 over the rows (n_body instructions), and each row's first 12:
 * the four new inputs by a post-increment register-offset load, each window rolled by a shift and a p.inserti. */
#define XD_ASM_ROWS(n_body) \
    "lw s0, 0(%[q])\n\tlw s8, 4(%[q])\n\tlw t3, 8(%[q])\n\tlw s4, 12(%[q])\n\t" \
    "lw s1, 16(%[q])\n\tlw s9, 20(%[q])\n\tlw t4, 24(%[q])\n\tlw s5, 28(%[q])\n\t" \
    "lw s2, 32(%[q])\n\tlw s10, 36(%[q])\n\tlw t5, 40(%[q])\n\tlw s6, 44(%[q])\n\t" \
    "lw s3, 48(%[q])\n\tlw s11, 52(%[q])\n\tlw t6, 56(%[q])\n\tlw s7, 60(%[q])\n\t" \
    "lw t1, 64(%[q])\n\t" \
    "li a5, 0\n\tli a6, 0\n\tli a7, 0\n\tli t0, 0\n\t" \
    ".option push\n\t.balign 4\n\t.option norvc\n\t" \
    ".insn i 0x7b, 4, x0, t1, " #n_body " * 2\n\t"  /* lp.setup 0, rows, n_body instructions */ \
    ".insn r 0x0b, 7, 0x10, t1, %[x], %[xs]\n\t"  /* p.lw t1, xs(x!): the four new inputs */ \
    "srli a5, a5, 8\n\t" \
    ".insn i 0x33, 2, a5, t1, -776\n\t"            /* p.inserti a5, t1, 7, 24 */ \
    "srli a6, a6, 8\n\t" \
    "srli t2, t1, 8\n\t" \
    ".insn i 0x33, 2, a6, t2, -776\n\t" \
    "srli a7, a7, 8\n\t" \
    "srli t2, t1, 16\n\t" \
    ".insn i 0x33, 2, a7, t2, -776\n\t" \
    "srli t0, t0, 8\n\t" \
    "srli t2, t1, 24\n\t" \
    ".insn i 0x33, 2, t0, t2, -776\n\t"

/* dwconv4_quad from t = 0 (no history rows: the windows start at zero, every row has an output) as one hardware
 * loop of 36 instructions a row, everything in registers: the four channels' bias, taps, multiplier and shift (16)
 * and windows (4) in fixed registers (more than GCC's 30 asm operands allow, so clobbered and loaded from q inside),
 * the new inputs by a post-increment register-offset load, each window rolled by a shift and a p.inserti, per
 * channel mv + pv.sdotsp.b + mulh + p.addRNr + p.clipi, the lanes packed by p.inserti, one post-increment store. */
typedef struct {
    xd_chan_t k[4];
    int32_t rows;
} xd_quad_t;

static void dwconv4_quad_t0(const int8_t *x, int32_t x_stride, const xd_quad_t *q, int8_t *y, int32_t y_stride)
{
    __asm__ volatile(XD_ASM_ROWS(36)
                     "mv t2, s0\n\t"                                 /* channel 0 into t2 (lane 0) */
                     ".insn r 0x57, 1, 0x5c, t2, a5, s4\n\t"
                     "mulh t2, t2, s8\n\t"
                     ".insn r 0x5b, 6, 0x20, t2, x0, t3\n\t"
                     ".insn r 0x33, 1, 0x0a, t2, t2, x8\n\t"        /* p.clipi t2, t2, 8 */
                     "mv t1, s1\n\t"                                 /* channel 1 */
                     ".insn r 0x57, 1, 0x5c, t1, a6, s5\n\t"
                     "mulh t1, t1, s9\n\t"
                     ".insn r 0x5b, 6, 0x20, t1, x0, t4\n\t"
                     ".insn r 0x33, 1, 0x0a, t1, t1, x8\n\t"
                     ".insn i 0x33, 2, t2, t1, -792\n\t"            /* p.inserti t2, t1, 7, 8 */
                     "mv t1, s2\n\t"                                 /* channel 2 */
                     ".insn r 0x57, 1, 0x5c, t1, a7, s6\n\t"
                     "mulh t1, t1, s10\n\t"
                     ".insn r 0x5b, 6, 0x20, t1, x0, t5\n\t"
                     ".insn r 0x33, 1, 0x0a, t1, t1, x8\n\t"
                     ".insn i 0x33, 2, t2, t1, -784\n\t"            /* p.inserti t2, t1, 7, 16 */
                     "mv t1, s3\n\t"                                 /* channel 3 */
                     ".insn r 0x57, 1, 0x5c, t1, t0, s7\n\t"
                     "mulh t1, t1, s11\n\t"
                     ".insn r 0x5b, 6, 0x20, t1, x0, t6\n\t"
                     ".insn r 0x33, 1, 0x0a, t1, t1, x8\n\t"
                     ".insn i 0x33, 2, t2, t1, -776\n\t"            /* p.inserti t2, t1, 7, 24 */
                     ".insn r 0x2b, 6, 0x00, %[ys], %[y], t2\n\t"  /* p.sw t2, ys(y!) */
                     ".option pop"
                     : [x] "+r"(x), [y] "+r"(y)
                     : [xs] "r"(x_stride), [ys] "r"(y_stride), [q] "r"(q)
                     : "memory", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a5", "a6", "a7", "s0", "s1", "s2", "s3",
                       "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11");
}

/* dwconv4_quad_t0 without mulh (5 cycles on RI5CY) for quads whose four channels all satisfy
 * (128 sum |w| + |b|) |m| + 2^(sh-1) < 2^31: then acc m + 2^(sh-1) never leaves int32, and
 * y = (rnd + dot m) >> sh with rnd = b m + 2^(sh-1) is the portable requantization exactly (one p.mac, one sra).
 * 36 instructions a row (the dots by pv.dotsp.b, no zeroing; 36 with mulh too, whose stalls made them ~52 cycles).
 * Per channel: rnd, m, sh, taps. */
typedef struct {
    int32_t rnd, m, sh;
    uint32_t w;
} xd_chan15_t;

typedef struct {
    xd_chan15_t k[4];
    int32_t rows;
} xd_quad15_t;

static void dwconv4_quad15_t0(const int8_t *x, int32_t x_stride, const xd_quad15_t *q, int8_t *y, int32_t y_stride)
{
    __asm__ volatile(XD_ASM_ROWS(36)
                     ".insn r 0x57, 1, 0x4c, t1, a5, s4\n\t"        /* pv.dotsp.b: channel 0's dot into t1 */
                     "mv t2, s0\n\t"
                     ".insn r 0x33, 0, 0x21, t2, t1, s8\n\t"        /* p.mac: rnd + dot m */
                     "sra t2, t2, t3\n\t"
                     ".insn r 0x33, 1, 0x0a, t2, t2, x8\n\t"        /* p.clipi t2, t2, 8 */
                     ".insn r 0x57, 1, 0x4c, t1, a6, s5\n\t"        /* channel 1 */
                     "mv ra, s1\n\t"
                     ".insn r 0x33, 0, 0x21, ra, t1, s9\n\t"
                     "sra ra, ra, t4\n\t"
                     ".insn r 0x33, 1, 0x0a, ra, ra, x8\n\t"
                     ".insn i 0x33, 2, t2, ra, -792\n\t"            /* p.inserti t2, ra, 7, 8 */
                     ".insn r 0x57, 1, 0x4c, t1, a7, s6\n\t"        /* channel 2 */
                     "mv ra, s2\n\t"
                     ".insn r 0x33, 0, 0x21, ra, t1, s10\n\t"
                     "sra ra, ra, t5\n\t"
                     ".insn r 0x33, 1, 0x0a, ra, ra, x8\n\t"
                     ".insn i 0x33, 2, t2, ra, -784\n\t"            /* p.inserti t2, ra, 7, 16 */
                     ".insn r 0x57, 1, 0x4c, t1, t0, s7\n\t"        /* channel 3 */
                     "mv ra, s3\n\t"
                     ".insn r 0x33, 0, 0x21, ra, t1, s11\n\t"
                     "sra ra, ra, t6\n\t"
                     ".insn r 0x33, 1, 0x0a, ra, ra, x8\n\t"
                     ".insn i 0x33, 2, t2, ra, -776\n\t"            /* p.inserti t2, ra, 7, 24 */
                     ".insn r 0x2b, 6, 0x00, %[ys], %[y], t2\n\t"  /* p.sw t2, ys(y!) */
                     ".option pop"
                     : [x] "+r"(x), [y] "+r"(y)
                     : [xs] "r"(x_stride), [ys] "r"(y_stride), [q] "r"(q)
                     : "memory", "ra", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a5", "a6", "a7", "s0", "s1", "s2",
                       "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11");
}

/* Channel c's constants for dwconv4_quad15_t0; 0 when its bound (above) does not hold. */
static int32_t xd_chan15(const int8_t *w, const int32_t *bias, const int16_t *m, const int8_t *sh, int32_t c,
                         xd_chan15_t *k)
{
    const int8_t *wc = w + (ptrdiff_t)c * 4;
    int32_t mc = m[c], b = bias[c], s = sh[c];
    uint32_t l1 = (uint32_t)((wc[0] < 0 ? -wc[0] : wc[0]) + (wc[1] < 0 ? -wc[1] : wc[1]) + (wc[2] < 0 ? -wc[2] : wc[2])
                             + (wc[3] < 0 ? -wc[3] : wc[3]));
    uint32_t ab = b < 0 ? 0u - (uint32_t)b : (uint32_t)b, am = (uint32_t)(mc < 0 ? -mc : mc);
    /* 32 x 32 -> 64-bit unsigned products (mul + mulhu, no library call); |b| < 2^30 keeps 128 l1 + |b| in 32 bits */
    if (s < 1 || s > 30 || ab >= (1u << 30)
        || (uint64_t)(128u * l1 + ab) * am + ((uint64_t)1 << (s - 1)) >= ((uint64_t)1 << 31))
        return 0;
    k->rnd = (int32_t)((uint32_t)b * (uint32_t)mc + (1u << (s - 1))); /* = b m + 2^(sh-1), below 2^31 in magnitude */
    k->m = mc;
    k->sh = s;
    k->w = (uint32_t)(uint8_t)wc[0] | (uint32_t)(uint8_t)wc[1] << 8 | (uint32_t)(uint8_t)wc[2] << 16
           | (uint32_t)(uint8_t)wc[3] << 24;
    return 1;
}

/* Channel c's constants for dwconv4_quad; 0 when its shift is outside the one-mulh range. */
static int32_t xd_chan(const int8_t *w, const int32_t *bias, const int16_t *m, const int8_t *sh, int32_t c,
                       xd_chan_t *k)
{
    const uint8_t *wc = (const uint8_t *)w + (ptrdiff_t)c * 4;
    k->b = bias[c];
    k->m16 = (int32_t)m[c] * 65536;
    k->s = sh[c] + 16 - 32;
    k->w = (uint32_t)wc[0] | (uint32_t)wc[1] << 8 | (uint32_t)wc[2] << 16 | (uint32_t)wc[3] << 24;
    return sh[c] >= 17 && sh[c] <= 46;
}

void ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                           const int32_t *bias, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride,
                           int32_t t0, int32_t t1, int32_t c0, int32_t c1)
{
    if (K == 4) {
        int32_t c = c0, words = ((((uintptr_t)x ^ (uintptr_t)y) & 3u) | ((uint32_t)x_stride & 3u)
                                 | ((uint32_t)y_stride & 3u)) == 0 && t1 > t0;
        for (; c < c1 && (!words || ((uintptr_t)(x + c) & 3u) != 0); ++c)
            dwconv4_channel(x + c, x_stride, w + (ptrdiff_t)c * 4, bias[c], m[c], sh[c], y + c, y_stride, t0, t1);
        for (; words && c + 4 <= c1; c += 4) {
            xd_chan_t k[4];
            int32_t ok = xd_chan(w, bias, m, sh, c, &k[0]) & xd_chan(w, bias, m, sh, c + 1, &k[1])
                         & xd_chan(w, bias, m, sh, c + 2, &k[2]) & xd_chan(w, bias, m, sh, c + 3, &k[3]);
            xd_quad15_t q15;
            if (t0 == 0 && xd_chan15(w, bias, m, sh, c, &q15.k[0]) && xd_chan15(w, bias, m, sh, c + 1, &q15.k[1])
                && xd_chan15(w, bias, m, sh, c + 2, &q15.k[2]) && xd_chan15(w, bias, m, sh, c + 3, &q15.k[3])) {
                q15.rows = t1;
                dwconv4_quad15_t0(x + c, x_stride, &q15, y + c, y_stride);
            } else if (ok && t0 == 0) {
                xd_quad_t q = {{k[0], k[1], k[2], k[3]}, t1};
                dwconv4_quad_t0(x + c, x_stride, &q, y + c, y_stride);
            } else if (ok) {
                dwconv4_quad(x + c, x_stride, k, y + c, y_stride, t0, t1);
            } else {
                for (int32_t j = 0; j < 4; ++j)
                    dwconv4_channel(x + c + j, x_stride, w + (ptrdiff_t)(c + j) * 4, bias[c + j], m[c + j],
                                    sh[c + j], y + c + j, y_stride, t0, t1);
            }
        }
        for (; c < c1; ++c)
            dwconv4_channel(x + c, x_stride, w + (ptrdiff_t)c * 4, bias[c], m[c], sh[c], y + c, y_stride, t0, t1);
        return;
    }
    dwconv_any_k(x, x_stride, w, K, bias, m, sh, y, y_stride, t0, t1, c0, c1);
}
