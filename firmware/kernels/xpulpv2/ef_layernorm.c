/* Integer LayerNorm, Xpulpv2 variant (pulp-open / GAP9 cluster): same function, arguments and bit-exact results as
 * firmware/kernels/ef_layernorm.c (tests/gvsoc/test_xpulpv2.py runs both on the same inputs on GVSoC).
 *
 * The row statistics are the portable ones, the sums s and q taken a word at a time with pv.sdotsp.b (s against
 * 0x01010101, q against the word itself) once the row is word-aligned. Per element the portable kernel does two
 * 64 x 64-bit products; here, when inv = 2^(61-k) / sqrt(w) fits int32 (it is at most 2^31), d inv is one widening
 * 32 x 32 product, z g[i] another (z, Q20 of a normalised value, fits int32), and the shifts and sums are done on
 * 32-bit words with their carries (xl_elem): the int64 values are the portable ones, so are the bytes. A row with
 * inv = 2^31 (rt = 2^30: a constant row, w = eps_q = 1) takes inv = 2^30 with one shift less (the same floor);
 * shifts outside those ranges take the portable formula. The row's sqrt: xl_isqrt_6062 (15 digits
 * on the high word, one 32-bit division and at most two corrections; checked against the bit-by-bit one on 22 M
 * values, the squares and their neighbours included, on the host); its bit length: p.fl1. */
#include "ef_kernels.h"
#include "ef_xpulp.h"

typedef uint32_t xl_word_t __attribute__((may_alias));
#ifdef XL_PROF
uint32_t xl_prof[6];
static inline uint32_t xl_cyc(void) { uint32_t v; __asm__ volatile("csrr %0, 0x780" : "=r"(v)); return v; }
#define XL_P0 uint32_t _c0 = xl_cyc();
#define XL_P(i) do { uint32_t _c1 = xl_cyc(); xl_prof[i] += _c1 - _c0; _c0 = _c1; } while (0)
#else
#define XL_P0
#define XL_P(i)
#endif

/* floor(sqrt(v)) for 2^60 <= v < 2^62 (r in [2^30, 2^31)): the top 15 bits from the high word by 32-bit digits,
 * the low 16 by one division and at most a few corrections. */
static uint32_t xl_isqrt_6062(uint64_t v)
{
    uint32_t hi = (uint32_t)(v >> 32), r = 0, rem = 0;
    /* r = floor(sqrt(hi)), hi in [2^28, 2^30): 15 two-bit digits, remainder rem = hi - r^2 <= 2 r */
    for (int32_t i = 28; i >= 0; i -= 2) {
        rem = (rem << 2) | ((hi >> i) & 3u);
        uint32_t t = (r << 2) | 1u;
        r <<= 1;
        if (rem >= t) {
            rem -= t;
            r |= 1u;
        }
    }
    /* sqrt(v) = r 2^16 + d, 0 <= d < 2^16: the largest d with r 2^17 d + d^2 <= R = rem 2^32 + lo (R < 2^48) */
    uint64_t big = ((uint64_t)rem << 32) | (uint32_t)v;
    uint32_t d = (uint32_t)(big >> 17) / r; /* >= the answer: r 2^17 d <= R */
    if (d > 0xFFFFu)
        d = 0xFFFFu;
    while ((uint64_t)r * ((uint64_t)d << 17) + (uint64_t)d * d > big)
        --d;
    return (r << 16) + d;
}

/* The bit length of v (0 for 0): p.fl1 (the index of the highest set bit) on its words. */
static inline int32_t xl_bit_length(uint64_t v)
{
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v, w = hi ? hi : lo;
    int32_t i;
    if (w == 0)
        return 0;
    __asm__(".insn r 0x33, 1, 0x08, %0, %1, x0" : "=r"(i) : "r"(w)); /* p.fl1 */
    return i + 1 + (hi ? 32 : 0);
}

/* s = sum x, q = sum x^2 over the row. */
static void xl_sums(const int8_t *xr, int32_t n_ch, int32_t *s_out, int32_t *q_out)
{
    int32_t s = 0, q = 0, i = 0;
    for (; i < n_ch && ((uintptr_t)(xr + i) & 3u) != 0; ++i)
        s += xr[i], q += (int32_t)xr[i] * (int32_t)xr[i];
    for (; i + 4 <= n_ch; i += 4) {
        uint32_t w = *(const xl_word_t *)(const void *)(xr + i);
        s = ef_xp_sdotsp_b(s, w, 0x01010101u);
        q = ef_xp_sdotsp_b(q, w, w);
    }
    for (; i < n_ch; ++i)
        s += xr[i], q += (int32_t)xr[i] * (int32_t)xr[i];
    *s_out = s;
    *q_out = q;
}

/* Per-row constants of a fast row: z = (d inv + 2^(zsh-1)) >> zsh from the product's two words (1 <= zsh <= 31;
 * z is Q20 of (x - mean) / std, |z| < 2^31), the beta term b 2^bsh (1 <= bsh <= 30) as two words, the rounding
 * 2^(ysh-1) (32 <= ysh <= 62) as two words; y = clip(high word of z g + b 2^bsh + 2^(ysh-1), >> ysh - 32). The int64
 * sums of the portable kernel, each word carried by hand (GCC's int64 shifts by a variable branch and take ~8
 * instructions each). */
typedef struct {
    int32_t n_ch, s, inv32, zsh, zhalf, bsh, rnd_lo, rnd_hi, hs;
} xl_row_t;

static inline int32_t xl_elem(const xl_row_t *k, int32_t xv, int32_t g, int32_t b)
{
    int32_t d = k->n_ch * xv - k->s;
    int64_t p = (int64_t)d * (int64_t)k->inv32;
    uint32_t lo = (uint32_t)p, hi = (uint32_t)((uint64_t)p >> 32), lo2 = lo + (uint32_t)k->zhalf;
    hi += lo2 < lo;
    int32_t z = (int32_t)((hi << (32 - k->zsh)) | (lo2 >> k->zsh));
    int64_t zg = (int64_t)z * (int64_t)g;
    uint32_t zl = (uint32_t)zg, zh = (uint32_t)((uint64_t)zg >> 32);
    uint32_t bl = (uint32_t)b << k->bsh, bh = (uint32_t)(b >> (32 - k->bsh));
    uint32_t s1 = bl + (uint32_t)k->rnd_lo;
    bh += s1 < bl;
    uint32_t s2 = zl + s1;
    uint32_t th = zh + bh + (uint32_t)k->rnd_hi + (s2 < zl);
    return ef_xp_clip8((int32_t)th >> k->hs);
}

/* A row whose inv fits int32: xl_elem for each element as one hardware loop of 28 instructions (two mul / mulh
 * pairs: 14 cycles of them on RI5CY; the C took ~67 cycles an element). */
static void xl_norm_row(const int8_t *xr, int8_t *yr, const xl_row_t *k, const int32_t *g, const int32_t *b)
{
    int32_t n = k->n_ch, xv, gv, bv, d, lo, hi, t;
    if (n <= 0)
        return;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 28)
                     ".insn i 0x0b, 0, %[xv], %[px], 1\n\t"          /* p.lb xv, 1(px!) */
                     ".insn i 0x0b, 2, %[gv], %[pg], 4\n\t"          /* p.lw g, 4(pg!) */
                     ".insn i 0x0b, 2, %[bv], %[pb], 4\n\t"          /* p.lw b, 4(pb!) */
                     "mv %[d], %[negs]\n\t"
                     ".insn r 0x33, 0, 0x21, %[d], %[nch], %[xv]\n\t" /* p.mac: d = n_ch x - s */
                     "mul %[lo], %[d], %[inv]\n\t"
                     "mulh %[hi], %[d], %[inv]\n\t"                  /* p = d inv */
                     "add %[t], %[lo], %[zhalf]\n\t"
                     "sltu %[lo], %[t], %[lo]\n\t"
                     "add %[hi], %[hi], %[lo]\n\t"
                     "sll %[hi], %[hi], %[zshc]\n\t"
                     "srl %[t], %[t], %[zsh]\n\t"
                     "or %[d], %[hi], %[t]\n\t"                      /* z = (p + 2^(zsh-1)) >> zsh */
                     "mul %[lo], %[d], %[gv]\n\t"
                     "mulh %[hi], %[d], %[gv]\n\t"                   /* z g */
                     "sll %[t], %[bv], %[bsh]\n\t"                   /* b 2^bsh: low word */
                     "sra %[bv], %[bv], %[bshc]\n\t"                 /* high word */
                     "add %[xv], %[t], %[rlo]\n\t"
                     "sltu %[t], %[xv], %[t]\n\t"
                     "add %[bv], %[bv], %[t]\n\t"                    /* + 2^(ysh-1) (its low word) */
                     "add %[t], %[lo], %[xv]\n\t"
                     "sltu %[lo], %[t], %[lo]\n\t"
                     "add %[hi], %[hi], %[bv]\n\t"
                     "add %[hi], %[hi], %[rhi]\n\t"
                     "add %[hi], %[hi], %[lo]\n\t"                   /* high word of the sum */
                     "sra %[hi], %[hi], %[hs]\n\t"
                     EF_XP_CLIP8(hi, hi)
                     ".insn s 0x2b, 0, %[hi], 1(%[py])\n\t"           /* p.sb y, 1(py!) */
                     ".option pop"
                     : [px] "+r"(xr), [py] "+r"(yr), [pg] "+r"(g), [pb] "+r"(b), [xv] "=&r"(xv), [gv] "=&r"(gv),
                       [bv] "=&r"(bv), [d] "=&r"(d), [lo] "=&r"(lo), [hi] "=&r"(hi), [t] "=&r"(t)
                     : [n] "r"(n), [negs] "r"(-k->s), [nch] "r"(k->n_ch), [inv] "r"(k->inv32), [zhalf] "r"(k->zhalf),
                       [zsh] "r"(k->zsh), [zshc] "r"(32 - k->zsh), [bsh] "r"(k->bsh), [bshc] "r"(32 - k->bsh),
                       [rlo] "r"(k->rnd_lo), [rhi] "r"(k->rnd_hi), [hs] "r"(k->hs)
                     : "memory");
}

void ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                     int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                     int32_t r0, int32_t r1)
{
    int32_t ysh = EF_LN_Z_FRAC + g_frac, bsh = ysh - EF_LN_B_FRAC;
    int64_t bscale = (int64_t)1 << bsh;
    for (int32_t r = r0; r < r1; ++r) {
        const int8_t *xr = x + (ptrdiff_t)r * x_stride;
        int8_t *yr = y + (ptrdiff_t)r * y_stride;
        int32_t s, q;
        XL_P0
        xl_sums(xr, n_ch, &s, &q);
        XL_P(0);
        int64_t w = (int64_t)n_ch * q - (int64_t)s * s + eps_q;       /* = n_ch^2 (var + eps), >= 1 */
        int32_t k = (62 - xl_bit_length((uint64_t)w)) / 2;
        XL_P(1);
        uint64_t rt = xl_isqrt_6062((uint64_t)w << (2 * k));          /* in [2^30, 2^31): w << 2k in [2^60, 2^62) */
        XL_P(2);
        int64_t inv = (int64_t)(((uint64_t)1 << 61) / rt);           /* 2^(61-k) / sqrt(w) */
        XL_P(3);
        int32_t zsh = 61 - k - EF_LN_Z_FRAC;
        if (inv == (int64_t)1 << 31) { /* rt = 2^30 (a constant row: w = eps_q = 1): d 2^31 >> zsh = d 2^30 >> zsh-1 */
            inv >>= 1;
            zsh -= 1;
        }
        if (inv > INT32_MAX || n_ch > 65536 || ysh < 32 || ysh > 62 || bsh < 1 || bsh > 30 || zsh < 1 || zsh > 31) {
            for (int32_t i = 0; i < n_ch; ++i) {
                int64_t d = (int64_t)n_ch * xr[i] - s;
                int64_t z = ef_rshift_round(d * inv, zsh);
                yr[i] = ef_sat8(ef_rshift_round(z * g[i] + (int64_t)b[i] * bscale, ysh));
            }
            continue;
        }
        xl_row_t k_row = {n_ch, s, (int32_t)inv, zsh, 1 << (zsh - 1), bsh, ysh == 32 ? (int32_t)0x80000000u : 0,
                          ysh >= 33 ? 1 << (ysh - 33) : 0, ysh - 32};
        XL_P(4);
        xl_norm_row(xr, yr, &k_row, g, b);
        XL_P(5);
    }
}
