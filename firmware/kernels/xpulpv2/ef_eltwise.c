/* Element-wise kernels, Xpulpv2 variant (pulp-open / GAP9 cluster): word-wide passes over operands in L2.
 *
 * Same functions, arguments and bit-exact results as firmware/kernels/ef_eltwise.c (tests/gvsoc/test_xpulpv2.py runs
 * both on the same inputs on GVSoC). The whole-tensor element-wise kernels read and write the L2 arena, where every
 * core access costs a round trip over the cluster bus, so the portable byte loop spends ~50 cycles an element on a
 * LUT. Here, when x and y share word alignment:
 *  - ef_lut_i8: the 256-byte table copied once per call to the core's stack (L1), rotated by 128 so that the raw
 *    byte indexes it, then a hardware loop of 13 instructions per four elements (xe_lut_words);
 *  - ef_mul_requant_i8: for 16 <= sh <= 46 a hardware loop without mul / mulh (xe_mul_words); otherwise a and b
 *    read a word (four elements) at a time; for 33 <= sh <= 62 the requantization is
 *    hi = (a b m) >> 32 (one mulh) and (hi + 2^(sh-33)) >> (sh-32) (the identity of xpulpv2/ef_linear.c's xp_emit:
 *    the low word cannot carry past a multiple of 2^(sh-32); |a b m| < 2^45, so the sum fits), then p.clip;
 *    other shifts: ef_requant8 itself.
 *  - ef_add_requant_i8: the int64 sum and shift in 32-bit words (two p.mac per input and element on the halves
 *    of the multiplier, see the function), a word of each input at a time when they share y's alignment.
 * Heads and tails (and operands of different alignment) take the per-element formula. ef_flip_rows_i8 copies
 * word-aligned rows a word at a time. */
#include "ef_kernels.h"
#include "ef_xpulp.h"

#define XE_LUT_COPY_MIN 256 /* elements from which the table copy to L1 pays */

typedef uint32_t xe_word_t __attribute__((may_alias)); /* four int8 elements read or written as one word */

/* y[4i..4i+3] = t[x bytes] for n_words words at x, y (word-aligned), t the table indexed by the raw byte (the
 * LUT rotated by 128): hardware loop 0, 13 instructions a word (one post-increment word load, three p.extractui and
 * a shift for the bytes, four p.lbu at register offsets, three p.inserti, one post-increment word store). */
static inline void xe_lut_words(const uint8_t *t, const int8_t *x, int8_t *y, int32_t n_words)
{
    uint32_t w, e0, e1, e2, e3;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 13)
                     ".insn i 0x0b, 2, %[w], %[px], 4\n\t"      /* p.lw w, 4(px!) */
                     ".insn i 0x33, 1, %[e0], %[w], -800\n\t"   /* p.extractui e0, w, 7, 0 */
                     ".insn i 0x33, 1, %[e1], %[w], -792\n\t"   /* p.extractui e1, w, 7, 8 */
                     ".insn i 0x33, 1, %[e2], %[w], -784\n\t"   /* p.extractui e2, w, 7, 16 */
                     "srli %[e3], %[w], 24\n\t"
                     ".insn r 0x03, 7, 0x20, %[e0], %[t], %[e0]\n\t" /* p.lbu e0, e0(t) */
                     ".insn r 0x03, 7, 0x20, %[e1], %[t], %[e1]\n\t"
                     ".insn r 0x03, 7, 0x20, %[e2], %[t], %[e2]\n\t"
                     ".insn r 0x03, 7, 0x20, %[e3], %[t], %[e3]\n\t"
                     ".insn i 0x33, 2, %[e0], %[e1], -792\n\t"  /* p.inserti e0, e1, 7, 8 */
                     ".insn i 0x33, 2, %[e0], %[e2], -784\n\t"  /* p.inserti e0, e2, 7, 16 */
                     ".insn i 0x33, 2, %[e0], %[e3], -776\n\t"  /* p.inserti e0, e3, 7, 24 */
                     ".insn s 0x2b, 2, %[e0], 4(%[py])\n\t"      /* p.sw e0, 4(py!) */
                     ".option pop"
                     : [px] "+r"(x), [py] "+r"(y), [w] "=&r"(w), [e0] "=&r"(e0), [e1] "=&r"(e1), [e2] "=&r"(e2),
                       [e3] "=&r"(e3)
                     : [n] "r"(n_words), [t] "r"(t)
                     : "memory");
}

void ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut)
{
    int32_t i = 0;
    if (n >= XE_LUT_COPY_MIN && (((uintptr_t)x ^ (uintptr_t)y) & 3u) == 0) {
        uint32_t tw[64]; /* tw byte u = lut[u ^ 0x80] = lut[(int8)u + 128]: the two halves swapped */
        const uint8_t *t = (const uint8_t *)tw;
        if (((uintptr_t)lut & 3u) == 0)
            for (int32_t k = 0; k < 64; ++k)
                tw[k] = ((const xe_word_t *)(const void *)lut)[(k + 32) & 63];
        else
            for (int32_t k = 0; k < 256; ++k)
                ((uint8_t *)tw)[k] = (uint8_t)lut[k ^ 0x80];
        for (; i < n && ((uintptr_t)(x + i) & 3u) != 0; ++i)
            y[i] = (int8_t)t[(uint8_t)x[i]];
        if (n - i >= 4) {
            xe_lut_words(t, x + i, y + i, (n - i) >> 2);
            i += (n - i) & ~3;
        }
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

/* n_words words of y = requant(a b, m, sh) for 16 <= sh <= 46, 0 <= m < 2^31 (a, b, y word-aligned alike): per
 * lane, p = a_k b_k by one pv.dotsp.b against b's word masked to lane k (|p| <= 2^14, an int16), then with
 * m = mh 2^15 + ml (0 <= ml < 2^15) floor(p m / 2^15) = p mh + ((p ml) >> 15) (p.mulsN, p.mac; |.| <= 2^30) and
 * floor((p m + 2^(sh-1)) / 2^sh) = (that + 2^(sh-16)) >> (sh-15) (p.addRNr; the nested-floor identity), p.clipi to
 * int8; lanes packed by p.inserti. Hardware loop 0, 30 instructions a word, no 2- or 5-cycle mul / mulh. */
static inline void xe_mul_words(const int8_t *a, const int8_t *b, int8_t *y, int32_t n_words, int32_t m, int32_t sh)
{
    uint32_t wa, wb, t, r, q;
    int32_t mh = m >> 15, ml = m & 0x7fff, s = sh - 15;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 30)
                     ".insn i 0x0b, 2, %[wa], %[pa], 4\n\t"         /* p.lw wa, 4(pa!) */
                     ".insn i 0x0b, 2, %[wb], %[pb], 4\n\t"         /* p.lw wb, 4(pb!) */
                     "andi %[t], %[wb], 255\n\t"                    /* lane 0 */
                     ".insn r 0x57, 1, 0x4c, %[t], %[wa], %[t]\n\t" /* pv.dotsp.b: p = a0 b0 */
                     ".insn r 0x5b, 0, 0x4f, %[r], %[t], %[ml]\n\t" /* p.mulsN r, p, ml, 15 */
                     ".insn r 0x33, 0, 0x21, %[r], %[t], %[mh]\n\t" /* p.mac r += p mh */
                     ".insn r 0x5b, 6, 0x20, %[r], x0, %[s]\n\t"    /* p.addRNr */
                     ".insn r 0x33, 1, 0x0a, %[r], %[r], x8\n\t"    /* p.clipi r, r, 8 */
                     "and %[t], %[wb], %[k1]\n\t"                   /* lane 1 */
                     ".insn r 0x57, 1, 0x4c, %[t], %[wa], %[t]\n\t"
                     ".insn r 0x5b, 0, 0x4f, %[q], %[t], %[ml]\n\t"
                     ".insn r 0x33, 0, 0x21, %[q], %[t], %[mh]\n\t"
                     ".insn r 0x5b, 6, 0x20, %[q], x0, %[s]\n\t"
                     ".insn r 0x33, 1, 0x0a, %[q], %[q], x8\n\t"
                     ".insn i 0x33, 2, %[r], %[q], -792\n\t"        /* p.inserti r, q, 7, 8 */
                     "and %[t], %[wb], %[k2]\n\t"                   /* lane 2 */
                     ".insn r 0x57, 1, 0x4c, %[t], %[wa], %[t]\n\t"
                     ".insn r 0x5b, 0, 0x4f, %[q], %[t], %[ml]\n\t"
                     ".insn r 0x33, 0, 0x21, %[q], %[t], %[mh]\n\t"
                     ".insn r 0x5b, 6, 0x20, %[q], x0, %[s]\n\t"
                     ".insn r 0x33, 1, 0x0a, %[q], %[q], x8\n\t"
                     ".insn i 0x33, 2, %[r], %[q], -784\n\t"        /* p.inserti r, q, 7, 16 */
                     "and %[t], %[wb], %[k3]\n\t"                   /* lane 3 */
                     ".insn r 0x57, 1, 0x4c, %[t], %[wa], %[t]\n\t"
                     ".insn r 0x5b, 0, 0x4f, %[q], %[t], %[ml]\n\t"
                     ".insn r 0x33, 0, 0x21, %[q], %[t], %[mh]\n\t"
                     ".insn r 0x5b, 6, 0x20, %[q], x0, %[s]\n\t"
                     ".insn r 0x33, 1, 0x0a, %[q], %[q], x8\n\t"
                     ".insn i 0x33, 2, %[r], %[q], -776\n\t"        /* p.inserti r, q, 7, 24 */
                     ".insn s 0x2b, 2, %[r], 4(%[py])\n\t"          /* p.sw r, 4(py!) */
                     ".option pop"
                     : [pa] "+r"(a), [pb] "+r"(b), [py] "+r"(y), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t),
                       [r] "=&r"(r), [q] "=&r"(q)
                     : [n] "r"(n_words), [ml] "r"(ml), [mh] "r"(mh), [s] "r"(s), [k1] "r"(0xff00u),
                       [k2] "r"(0xff0000u), [k3] "r"(0xff000000u)
                     : "memory");
}

void ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh)
{
    int32_t i = 0, same = ((((uintptr_t)a ^ (uintptr_t)y) | ((uintptr_t)b ^ (uintptr_t)y)) & 3u) == 0;
    if (sh >= 16 && sh <= 46 && m >= 0 && same) {
        for (; i < n && ((uintptr_t)(y + i) & 3u) != 0; ++i)
            y[i] = ef_requant8((int32_t)a[i] * (int32_t)b[i], m, sh);
        if (n - i >= 4) {
            xe_mul_words(a + i, b + i, y + i, (n - i) >> 2, m, sh);
            i += (n - i) & ~3;
        }
    } else if (sh >= 33 && sh <= 62 && same) {
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

#define XE_ADD_MAX_INPUTS 8

/* One element of the add: h, l the sums of x_j mh_j and x_j ml_j (see the header), clipped to int8. */
static inline int32_t xe_add_out(int32_t h, int32_t l, int32_t rnd, int32_t s)
{
    return ef_xp_clip8((h + (l >> 16) + rnd) >> s);
}

/* Lane k (0..3) of the three words: the two sums on the signed halves (h in H, l in L), (h + (l >> 16) + 2^(s-1))
 * >> s clipped, inserted into o at byte k (lane 0: o itself). 13 instructions (12 for lane 0). */
#define XE_A3_EXT(k) ".insn i 0x33, 0, %[xa], %[wa], " #k "\n\t" ".insn i 0x33, 0, %[xb], %[wb], " #k "\n\t"  \
                     ".insn i 0x33, 0, %[xc], %[wc], " #k "\n\t"
#define XE_A3_SUMS(H) EF_XP_MULS(H, xa, h0) EF_XP_MULS(l, xa, l0) ".insn r 0x33, 0, 0x21, %[" #H "], %[xb], %[h1]\n\t" \
                      ".insn r 0x33, 0, 0x21, %[l], %[xb], %[l1]\n\t" ".insn r 0x33, 0, 0x21, %[" #H "], %[xc], %[h2]\n\t" \
                      ".insn r 0x33, 0, 0x21, %[l], %[xc], %[l2]\n\t" "srai %[l], %[l], 16\n\t"                       \
                      EF_XP_ADD_RN(H, l, s) EF_XP_CLIP8(H, H)
#define XE_A3_LANE(k, pos) XE_A3_EXT(pos) XE_A3_SUMS(h) ".insn i 0x33, 2, %[o], %[h], " #k "\n\t"

/* The add of three inputs (or two: the third's multiplier halves zero, any readable pc), n_words words of four
 * elements at word-aligned pa, pb, pc, py: hardware loop 0, 55 instructions a word (three post-increment word
 * loads; per lane three p.extracti, the two sums as one p.muls and two p.mac each on the signed 16-bit halves
 * M = mh 2^16 + ml, -2^15 <= ml < 2^15, srai, p.addRNr by s = S - 16, p.clipi, p.inserti; one post-increment word
 * store). The same floor as xe_add_out's: tot = 2^16 (h + (l >> 16)) + (l & 0xffff), the low part never carries. */
static void xe_add3_words(const int8_t *pa, const int8_t *pb, const int8_t *pc, int8_t *py, int32_t n_words,
                          const int32_t mh[3], const int32_t ml[3], int32_t s)
{
    uint32_t wa, wb, wc;
    int32_t xa, xb, xc, h, l, o;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n, 55)
                     EF_XP_LW4_POSTINC(wa, pa) EF_XP_LW4_POSTINC(wb, pb) EF_XP_LW4_POSTINC(wc, pc)
                     XE_A3_EXT(-800) XE_A3_SUMS(o)
                     XE_A3_LANE(-792, -792) XE_A3_LANE(-784, -784) XE_A3_LANE(-776, -776)
                     EF_XP_SW_POSTINC(o, py, 4) ".option pop"
                     : [pa] "+r"(pa), [pb] "+r"(pb), [pc] "+r"(pc), [py] "+r"(py), [wa] "=&r"(wa), [wb] "=&r"(wb),
                       [wc] "=&r"(wc), [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc), [h] "=&r"(h), [l] "=&r"(l),
                       [o] "=&r"(o)
                     : [n] "r"(n_words), [h0] "r"(mh[0]), [h1] "r"(mh[1]), [h2] "r"(mh[2]), [l0] "r"(ml[0]),
                       [l1] "r"(ml[1]), [l2] "r"(ml[2]), [s] "r"(s)
                     : "memory");
}

/* Row r of the add on the split multipliers: byte head until y is word-aligned, whole words (when every input
 * shares y's alignment; two or three inputs: xe_add3_words on the signed halves sh, sl), byte tail. */
static void xe_add_row(const int8_t *const *xr, const int32_t *mh, const int32_t *ml, int32_t n_in, int32_t rnd,
                       int32_t s, int8_t *yr, int32_t n_cols, const int32_t *sh, const int32_t *sl)
{
    int32_t c = 0, same = 1;
    for (int32_t j = 0; j < n_in; ++j)
        same &= (((uintptr_t)xr[j] ^ (uintptr_t)yr) & 3u) == 0;
    if (same) {
        for (; c < n_cols && ((uintptr_t)(yr + c) & 3u) != 0; ++c) {
            int32_t h = 0, l = 0;
            for (int32_t j = 0; j < n_in; ++j)
                h = ef_xp_mac(h, xr[j][c], mh[j]), l = ef_xp_mac(l, xr[j][c], ml[j]);
            yr[c] = (int8_t)xe_add_out(h, l, rnd, s);
        }
        if ((n_in == 2 || n_in == 3) && sh != NULL && n_cols - c >= 4) {
            xe_add3_words(xr[0] + c, xr[1] + c, xr[n_in - 1] + c, yr + c, (n_cols - c) >> 2, sh, sl, s);
            c += (n_cols - c) & ~3;
        }
        for (; c + 4 <= n_cols; c += 4) {
            int32_t h0 = 0, h1 = 0, h2 = 0, h3 = 0, l0 = 0, l1 = 0, l2 = 0, l3 = 0;
            for (int32_t j = 0; j < n_in; ++j) {
                uint32_t w = *(const xe_word_t *)(const void *)(xr[j] + c);
                int32_t a = mh[j], b = ml[j];
                h0 = ef_xp_mac(h0, XE_LANE(w, 0), a), l0 = ef_xp_mac(l0, XE_LANE(w, 0), b);
                h1 = ef_xp_mac(h1, XE_LANE(w, 1), a), l1 = ef_xp_mac(l1, XE_LANE(w, 1), b);
                h2 = ef_xp_mac(h2, XE_LANE(w, 2), a), l2 = ef_xp_mac(l2, XE_LANE(w, 2), b);
                h3 = ef_xp_mac(h3, XE_LANE(w, 3), a), l3 = ef_xp_mac(l3, XE_LANE(w, 3), b);
            }
            *(xe_word_t *)(void *)(yr + c) = ((uint32_t)xe_add_out(h0, l0, rnd, s) & 0xFFu)
                                            | ((uint32_t)xe_add_out(h1, l1, rnd, s) & 0xFFu) << 8
                                            | ((uint32_t)xe_add_out(h2, l2, rnd, s) & 0xFFu) << 16
                                            | (uint32_t)xe_add_out(h3, l3, rnd, s) << 24;
        }
    }
    for (; c < n_cols; ++c) {
        int32_t h = 0, l = 0;
        for (int32_t j = 0; j < n_in; ++j)
            h = ef_xp_mac(h, xr[j][c], mh[j]), l = ef_xp_mac(l, xr[j][c], ml[j]);
        yr[c] = (int8_t)xe_add_out(h, l, rnd, s);
    }
}

/* The add in 32-bit words: M_j = mh_j 2^16 + ml_j (mh = M >> 16, 0 <= ml < 2^16), so the int64 sum is
 * tot = 2^16 h + l with h = sum x_j mh_j (|h| <= 2^25), l = sum x_j ml_j (|l| < 2^26); for 17 <= S <= 47,
 * (tot + 2^(S-1)) >> S = (h + (l >> 16) + 2^(S-17)) >> (S-16) (the low 16 bits of l cannot carry past a multiple of
 * 2^S; the sum stays under 2^31). Other shifts or more inputs: the portable int64 loop. */
void ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                       int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols)
{
    if (n_inputs < 1 || n_inputs > XE_ADD_MAX_INPUTS || S < 17 || S > 47) {
        for (int32_t r = 0; r < n_rows; ++r)
            for (int32_t c = 0; c < n_cols; ++c) {
                int64_t tot = 0;
                for (int32_t j = 0; j < n_inputs; ++j)
                    tot += (int64_t)xs[j][(ptrdiff_t)r * x_strides[j] + c] * (int64_t)M[j];
                y[(ptrdiff_t)r * y_stride + c] = ef_sat8(ef_rshift_round(tot, S));
            }
        return;
    }
    int32_t mh[XE_ADD_MAX_INPUTS], ml[XE_ADD_MAX_INPUTS], sh[3] = {0, 0, 0}, sl[3] = {0, 0, 0}, words = n_inputs <= 3;
    const int8_t *xr[XE_ADD_MAX_INPUTS];
    for (int32_t j = 0; j < n_inputs; ++j) {
        mh[j] = M[j] >> 16, ml[j] = M[j] & 0xFFFF;
        if (j < 3) { /* signed halves (xe_add3_words): M = sh 2^16 + sl, -2^15 <= sl < 2^15, |sh| <= 2^15 */
            sh[j] = (int32_t)(((int64_t)M[j] + 32768) >> 16);
            sl[j] = (int32_t)((int64_t)M[j] - ((int64_t)sh[j] << 16));
            words &= sh[j] < 32768; /* p.muls reads 16 bits: M >= 2^31 - 2^15 takes the unsigned-half loop */
        }
    }
    for (int32_t r = 0; r < n_rows; ++r) {
        for (int32_t j = 0; j < n_inputs; ++j)
            xr[j] = xs[j] + (ptrdiff_t)r * x_strides[j];
        xe_add_row(xr, mh, ml, n_inputs, 1 << (S - 17), S - 16, y + (ptrdiff_t)r * y_stride, n_cols, words ? sh : NULL, sl);
    }
}

/* Rows copied a word at a time (hardware loop: one post-increment load and store a word) when x, y and the row
 * length are word-aligned, else byte by byte. */
void ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len)
{
    int32_t words = (((uintptr_t)x | (uintptr_t)y | (uint32_t)row_len) & 3u) == 0 ? row_len >> 2 : 0;
    for (int32_t r = 0; r < n_rows; ++r) {
        const int8_t *src = x + (ptrdiff_t)(n_rows - 1 - r) * row_len;
        int8_t *dst = y + (ptrdiff_t)r * row_len;
        int32_t i = 0;
        if (words > 0) {
            uint32_t w;
            const int8_t *ps = src;
            int8_t *pd = dst;
            __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n, 2)
                             ".insn i 0x0b, 2, %[w], %[ps], 4\n\t"  /* p.lw w, 4(ps!) */
                             ".insn s 0x2b, 2, %[w], 4(%[pd])\n\t"  /* p.sw w, 4(pd!) */
                             ".option pop"
                             : [ps] "+r"(ps), [pd] "+r"(pd), [w] "=&r"(w)
                             : [n] "r"(words)
                             : "memory");
            i = words << 2;
        }
        for (; i < row_len; ++i)
            dst[i] = src[i];
    }
}
