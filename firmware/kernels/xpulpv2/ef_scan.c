/* Integer selective scan, Xpulpv2 variant (pulp-open / GAP9 cluster): ef_scan.c's fused int32 step with the
 * per-channel constants in registers and Xpulpv2 rounding / multiply-accumulate instructions.
 *
 * Same function, arguments and bit-exact results as firmware/kernels/ef_scan.c (tests/gvsoc/test_xpulpv2.py runs
 * both on the same inputs on GVSoC); the bounds that make the int32 "narrow" step exact are the portable file's
 * (mirrored by edgeflow/quant/scan_bounds.py). What differs, per state element of a narrow step:
 *  - exp2: the table word offset j 4 = (e >> (lo - 2)) & 0x3fc (lo = frac - 8 >= 3; the f mask folds in), and
 *    both roundings (interpolation >> lo, then >> k) are one p.addRNr each (shift 0 adds no half, as the
 *    reference's lo = 0 / k = 0 cases);
 *  - injection (b Q + 2^(rsh-1) + ((b R) >> k)) >> rsh: (b R) >> k, then p.mac adds b Q and one p.addRNr rounds
 *    (c0 = 2^(sh_in-1-k) = 2^(rsh-1));
 *  - one 32-bit mul a state (b R): on RI5CY (and GVSoC's model of it) mul takes 2 cycles, p.mac and the 16 x 16-bit
 *    p.mulu 1, so e = qd ka (qd 0..127, ka < 2^16) is p.mulu, and the interpolation (T[j+1] - T[j]) r is
 *    -(T[j] - T[j+1]) r with both factors below 2^16 (a decreasing table, r < 2^lo <= 2^16): p.mulu, then
 *    rs(-y, lo) = -((y - 1 + 2^(lo-1)) >> lo) is one p.addRNr with -1;
 *  - decay da (h >> 15) + rs(da (h & 0x7fff), 15) is p.muluNR (da <= 2^15, both operands 16-bit unsigned) + p.mac;
 *  - the lower clip of the saturated add is p.max;
 *  - acc = sum q_C h from two p.mac sums: A_hi = sum q_C (h >> 16) and the low word sum q_C h mod 2^32; then
 *    A_lo = sum q_C (h & 0xFFFF) = low word - A_hi 2^16 (mod 2^32; |A_lo| < 2^31 for d_state <= 256, so exact).
 * The hold (q_delta 0) and int64 steps are the portable file's. Per time step, for channels with 33 <= sh_y <= 62
 * (the trained models': 41..50) and d_state <= 47 (xs_chan_cached): dA comes from a per-channel cache keyed by
 * q_delta (xs_records, xs_fill_missed: a channel's 80 steps take 8..14 distinct values on femba-mini, so the table interpolation
 * runs for those only and the state loop loads dA); the narrow test is one compare on p = q_delta q_u against
 * bounds precomputed per channel, Q and R come from one mul / mulh pair (xs_records, an asm loop); a bound on max
 * |h| grown run by run from sum |Q| lets a run of steps skip the saturation where the reference's clip cannot act
 * (17 instructions a state, 21 with it); the output tot = acc m_y + q_u m_D 2^sh_D + 2^(sh_y-1) is built as its
 * high 32-bit word only (xs_out_hi; xs_outs, an asm loop with one mulhu). GVSoC's RI5CY stalls the pipeline 1 cycle
 * on mul and 4 on mulh* whatever follows (PIPELINE_STALL_THRESHOLD), so 16 x 16-bit p.muls / p.mulu and p.mac
 * (1 cycle) take their place where the operands allow. Other channels take xs_step_narrow (the exp2 above,
 * 37 instructions a state) and the portable file's 64-bit output. -DXS_PROF adds per-phase cycle counters
 * (xs_prof[], printed by tests/gvsoc/xpulpv2_scan_main.c built with it; -DXS_PROF_INS counts instructions).
 * Hardware loops here contain branches in a few places (the narrow step's k >= 16 skip and saturation fix-up, the
 * step loop's hold path); the common path's state loop (XS_ASM_CACHED_STATE_NOSAT) has none. GVSoC's RI5CY model
 * executes them; the CV32E40P manual forbids branches in a loop body, so silicon that enforces that needs a
 * branch-free variant of those (README, Xpulpv2 kernels). */
#include "ef_kernels.h"
#include "ef_xpulp.h"

#ifdef XS_PROF
uint32_t xs_prof[8];
static inline uint32_t xs_ins(void) { uint32_t v; __asm__ volatile("csrr %0, 0x781" : "=r"(v)); return v; }
static inline uint32_t xs_cyc0(void) { uint32_t v; __asm__ volatile("csrr %0, 0x780" : "=r"(v)); return v; }
#ifdef XS_PROF_INS
#define xs_cyc xs_ins
#else
#define xs_cyc xs_cyc0
#endif
#define XS_P0 uint32_t _c0 = xs_cyc();
#define XS_P(i) do { uint32_t _c1 = xs_cyc(); xs_prof[i] += _c1 - _c0; _c0 = _c1; } while (0)
#else
#define XS_P0
#define XS_P(i)
#endif
#define XS_STR_(x) #x
#define XS_STR(x) XS_STR_(x)
#define XS_STATE_MAX 2147483647
#define XS_Q_LIMIT (1 << 23) /* narrow step: |Q| below this (EF_SCAN_Q_LIMIT) */
#define XS_SH_MAX 54         /* narrow step: sh_in at most this (EF_SCAN_SH_MAX) */

/* Per-call exp2 constants: table, frac, lo = frac - 8, lo - 2, mask of the interpolation remainder. */
typedef struct {
    const int32_t *tab;
    int32_t frac, lo, lo2, rmask;
} xs_exp2_t;

/* 2^(-e / 2^frac) in Q15 for 0 <= e < 2^31, exactly intmath.exp2_neg_fixed (see the header). */
static inline int32_t xs_exp2(const int32_t *tab, int32_t e, int32_t frac, int32_t lo, int32_t lo2, int32_t rmask)
{
    int32_t k = e >> frac;
    if (k >= 16)
        return 0;
    const int32_t *p = (const int32_t *)(const void *)((const uint8_t *)tab + ((e >> lo2) & 0x3fc));
    int32_t t0 = p[0];
    int32_t v = t0 + ef_xp_add_rn((p[1] - t0) * (e & rmask), 0, lo);
    return ef_xp_add_rn(v, 0, k);
}

/* Shared by both narrow steps: per state, loads of ka, B, h, e = qd ka and the injection */
#define XS_ASM_HEAD \
                     ".insn i 0x0b, 5, %[e], %[pk], 2\n\t"         /* p.lhu e, 2(pk!): ka */ \
                     ".insn i 0x0b, 0, %[b], %[pb], 1\n\t"         /* p.lb b, 1(pb!): q_B */ \
                     "lw %[hv], 0(%[ph])\n\t" \
                     ".insn r 0x5b, 0, 0x00, %[e], %[e], %[qd]\n\t" /* p.mulu: e = qd ka (16 x 16 bits, 1 cycle) */ \
                     "mul %[inj], %[b], %[r]\n\t"                  /* b R 2^(24-kk): the one 2-cycle mul */ \
                     "sra %[k], %[e], %[frac]\n\t" \
                     "srai %[inj], %[inj], 24\n\t"                 /* (b R) >> kk */ \
                     ".insn r 0x33, 0, 0x21, %[inj], %[b], %[q]\n\t" /* p.mac: + b Q */ \
                     ".insn r 0x5b, 6, 0x20, %[inj], x0, %[rsh]\n\t" /* inj = (... + 2^(rsh-1)) >> rsh */

/* Shared by both narrow steps: decay, then XS_ASM_SAT_SUMS */
#define XS_ASM_TAIL \
                     "2:\n\t"                                     /* (dA = 0: b is not h >> 16, unused) */ \
                     ".insn r 0x5b, 4, 0x0f, %[dec], %[da], %[hv]\n\t" /* rs(dA (h & 0xFFFF), 15) */ \
                     "slli %[da], %[da], 1\n\t" \
                     ".insn r 0x33, 0, 0x21, %[dec], %[da], %[b]\n\t" /* + 2 dA (h >> 16) = rs(dA h, 15) */ \
                     XS_ASM_SAT_SUMS

/* s = dec + inj saturated to +-(2^31 - 1), stored to h; the two sums (a_hi += q_C (s >> 16), a_w += q_C s); the
 * saturation fix-up out of line (XS_ASM_FIXUP) */
#define XS_ASM_SAT_SUMS \
                     "add %[s], %[dec], %[inj]\n\t" \
                     "slt %[b], %[s], %[dec]\n\t" \
                     "srli %[e], %[inj], 31\n\t" \
                     "bne %[b], %[e], 4f\n\t"    /* overflow iff (s < dec) != (inj < 0): out of line */ \
                     "3:\n\t" \
                     ".insn r 0x33, 6, 0x02, %[s], %[s], %[nmax]\n\t"  /* max(s, -(2^31-1)) */ \
                     ".insn r 0x03, 7, 0x00, %[b], %[pb], %[coff]\n\t" /* p.lb b, coff(pb): q_C */ \
                     ".insn s 0x2b, 2, %[s], 4(%[ph])\n\t"          /* p.sw s, 4(ph!) */ \
                     "srai %[e], %[s], 16\n\t" \
                     ".insn r 0x33, 0, 0x21, %[ah], %[b], %[e]\n\t" \
                     ".insn r 0x33, 0, 0x21, %[aw], %[b], %[s]\n\t" \
                     XS_ASM_FIXUP

/* The saturation fix-up of XS_ASM_SAT_SUMS, after the state loop (6 instructions) */
#define XS_ASM_FIXUP \
                     "j 5f\n\t" \
                     "4:\n\t"                                       /* s = dec < 0 ? -(2^31-1) : 2^31-1 */ \
                     "srai %[b], %[dec], 31\n\t" \
                     "not %[b], %[b]\n\t" \
                     "xor %[s], %[nmax], %[b]\n\t" \
                     "sub %[s], %[s], %[b]\n\t" \
                     "j 3b\n\t" \
                     "5:\n\t"

/* Their outputs (the same C variables in both) */
#define XS_ASM_OUTS \
                     : [ah] "=&r"(acc_hi), [aw] "=&r"(acc_w), [pb] "+r"(bt), [pk] "+r"(ka), [ph] "+r"(h), \
                       [n] "+r"(n), [e] "=&r"(e), [b] "=&r"(b), [hv] "=&r"(hv), [inj] "=&r"(inj), [k] "=&r"(k), \
                       [da] "=&r"(da), [dec] "=&r"(dec), [s] "=&r"(s)

/* One narrow step over the d_state states of a channel (see the header) as one hardware loop of 37 instructions
 * (the rare saturation fix-up out of line); returns acc = sum_n q_C[n] h[n]. Per state: loads ka, B, h
 * (post-increment), e = qd ka; inj; exp2 (skipped, da = 0, for k >= 16); decay; saturated add; store h; the two
 * sums. Inlined into the time loop: a call per step saved and restored a dozen registers (~30 cycles a step). */
static inline __attribute__((always_inline)) int64_t xs_step_narrow(const xs_exp2_t *x, int32_t *h,
                                                                    const uint16_t *ka, const int8_t *bt,
                                                                    const int8_t *ct, int32_t ds, int32_t qd,
                                                                    int32_t q, int32_t r, int32_t kk, int32_t rsh)
{
    /* (b R) >> kk = (b R 2^(24-kk)) >> 24 (R < 2^kk, kk <= 24: |b R 2^(24-kk)| < 2^31); C[n] at B[n] + c_off */
    int32_t r24 = r << (24 - kk), c_off = (int32_t)(ct - bt) - 1, n = ds, acc_hi, acc_w, e, b, hv, inj, k, da, dec, s;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     "li %[ah], 0\n\t"
                     "li %[aw], 0\n\t"
                     EF_XP_LP_SETUP0(n, 37)
                     XS_ASM_HEAD
                     "srli %[b], %[k], 4\n\t"
                     "li %[da], 0\n\t"
                     "bnez %[b], 2f\n\t"                            /* k >= 16: dA = 0 */
                     "sra %[b], %[e], %[lo2]\n\t"
                     "andi %[b], %[b], 1020\n\t"                    /* 4 j */
                     "add %[b], %[b], %[tab]\n\t"
                     "lw %[da], 0(%[b])\n\t"                        /* T[j] */
                     "lw %[n], 4(%[b])\n\t"                         /* T[j+1] */
                     "and %[e], %[e], %[rmask]\n\t"                 /* r */
                     "sub %[n], %[da], %[n]\n\t"                    /* T[j] - T[j+1] >= 0 (a decreasing table) */
                     ".insn r 0x5b, 0, 0x00, %[n], %[n], %[e]\n\t" /* p.mulu: y = (T[j] - T[j+1]) r < 2^16 2^16 */
                     "srai %[b], %[hv], 16\n\t"                    /* h >> 16 */
                     ".insn r 0x5b, 6, 0x20, %[n], %[m1], %[lo]\n\t" /* (y - 1 + 2^(lo-1)) >> lo = -rs(-y, lo) */
                     "sub %[da], %[da], %[n]\n\t"                  /* v = T[j] + rs((T[j+1] - T[j]) r, lo) */
                     ".insn r 0x5b, 6, 0x20, %[da], x0, %[k]\n\t"   /* dA = rs(v, k) */
                     XS_ASM_TAIL
                     ".option pop"
                     XS_ASM_OUTS
                     : [qd] "r"(qd), [q] "r"(q), [r] "r"(r24), [coff] "r"(c_off), [rsh] "r"(rsh), [frac] "r"(x->frac),
                       [lo] "r"(x->lo), [lo2] "r"(x->lo2), [rmask] "r"(x->rmask), [tab] "r"(x->tab),
                       [nmax] "r"(-XS_STATE_MAX), [m1] "r"(-1)
                     : "memory");
    int32_t acc_lo = (int32_t)((uint32_t)acc_w - ((uint32_t)acc_hi << 16));
    return (int64_t)acc_hi * 65536 + acc_lo;
}

/* The reference's int64 step (a state scale far finer than its input); returns acc. */
static int64_t xs_step_wide(const xs_exp2_t *x, int32_t *h, const uint16_t *ka, const int8_t *bt, const int8_t *ct,
                            int32_t ds, int32_t qd, int32_t pud, int32_t m_in, int32_t sh_in)
{
    int64_t acc = 0;
    for (int32_t n = 0; n < ds; ++n) {
        int32_t da = xs_exp2(x->tab, qd * (int32_t)ka[n], x->frac, x->lo, x->lo2, x->rmask);
        int64_t inj = ef_rshift_round((int64_t)(pud * (int32_t)bt[n]) * m_in, sh_in);
        int64_t hn = ef_rshift_round((int64_t)da * (int64_t)h[n], 15) + inj;
        hn = hn > XS_STATE_MAX ? XS_STATE_MAX : (hn < -XS_STATE_MAX ? -XS_STATE_MAX : hn);
        h[n] = (int32_t)hn;
        acc += (int64_t)ct[n] * hn;
    }
    return acc;
}

/* acc = sum_n q_C[n] h[n] with the state unchanged (q_delta = 0), as the two sums of the narrow step: *a_hi =
 * sum q_C (h >> 16), *a_w = acc mod 2^32. */
static inline __attribute__((always_inline)) void xs_hold_sums(const int32_t *restrict h, const int8_t *restrict ct,
                                                               int32_t ds, int32_t *a_hi, uint32_t *a_w)
{
    int32_t acc_hi = 0, acc_w = 0;
#pragma GCC unroll 4
    for (int32_t n = 0; n < ds; ++n) {
        acc_hi = ef_xp_mac(acc_hi, ct[n], h[n] >> 16);
        acc_w = ef_xp_mac(acc_w, ct[n], h[n]);
    }
    *a_hi = acc_hi;
    *a_w = (uint32_t)acc_w;
}

static inline int64_t xs_hold(const int32_t *restrict h, const int8_t *restrict ct, int32_t ds)
{
    int32_t acc_hi;
    uint32_t acc_w;
    xs_hold_sums(h, ct, ds, &acc_hi, &acc_w);
    return (int64_t)acc_hi * 65536 + (int32_t)(acc_w - ((uint32_t)acc_hi << 16));
}

/* Per-channel constants of the narrow step and the output. */
typedef struct {
    int64_t pm_lo, pm_hi;
    uint64_t m_dd, half_y;
    int32_t m_in, sh_in, kk, rsh, sh_y;
    int64_t m_y;
} xs_chan_t;

static void xs_chan_setup(const ef_scan_consts_t *c, int32_t d, xs_chan_t *k)
{
    k->m_in = c->m_in[d];
    k->sh_in = c->sh_in[d];
    k->kk = k->sh_in - 1 < 24 ? k->sh_in - 1 : 24;
    k->rsh = k->sh_in >= 1 && k->sh_in <= XS_SH_MAX ? k->sh_in - k->kk : 0; /* 0: every step takes int64 */
    if (k->kk < 0)
        k->kk = 0;
    k->pm_hi = k->rsh > 0 && k->m_in > 0 ? (int64_t)XS_Q_LIMIT << k->kk : 0;
    k->pm_lo = k->rsh > 0 && k->m_in > 0 ? -(((int64_t)XS_Q_LIMIT - 1) << k->kk) : 0;
    k->m_y = c->m_y[d];
    k->sh_y = c->sh_y[d];
    k->m_dd = (uint64_t)(int64_t)c->m_D[d] << c->sh_D[d];
    k->half_y = k->sh_y > 0 ? (uint64_t)1 << (k->sh_y - 1) : 0;
}

/* y = requant(acc m_y + q_u m_D 2^sh_D) as in ef_scan.c (modulo 2^64, high word for sh_y >= 32). */
static inline int8_t xs_out(const xs_chan_t *k, int64_t acc, int32_t qu)
{
    int64_t tot = (int64_t)((uint64_t)(acc * k->m_y) + (uint64_t)(int64_t)qu * k->m_dd + k->half_y);
    if (k->sh_y >= 32) {
        int32_t v = (int32_t)(tot >> 32) >> (k->sh_y - 32);
        return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
    return ef_sat8(tot >> k->sh_y);
}

/* Per-channel constants of xs_chan_cached: the narrow-step test on p = q_delta q_u and the output in 32-bit words. */
typedef struct {
    int32_t p_min;   /* a step is narrow iff 0 <= p - p_min <= p_span (as unsigned: one compare) */
    uint32_t p_span;
    int32_t m_in, kk, rsh;
    int32_t m_y, m_D;     /* 0 <= m_y < 2^15; the D term's 32-bit product q_u m_D */
    int32_t dl_sh;        /* low word of q_u m_D 2^sh_D: (q_u m_D << dl_sh) & dl_mask */
    uint32_t dl_mask;
    int32_t dh_a, dh_c1, dh_c2; /* its high word: ((q_u m_D << dh_a) >> dh_c1) >> dh_c2 */
    int32_t half_hi, ysh;       /* 2^(sh_y-1) = half_hi 2^32 (sh_y >= 33); y = (high word of tot) >> ysh */
} xs_fast_t;

/* min(16384, n / m) for m >= 1 by 15 steps of long division (no 64-bit divide: __udivdi3 took ~300 cycles) */
static uint32_t xs_div_clamp(uint64_t n, uint32_t m)
{
    uint64_t t = (uint64_t)m << 14;
    if (n >= t)
        return 16384;
    uint32_t q = 0;
    for (int32_t b = 13; b >= 0; --b) {
        t >>= 1;
        q <<= 1;
        if (n >= t)
            n -= t, q |= 1u;
    }
    return q;
}

/* Fills f and returns 1 when channel d can take xs_chan_cached: narrow steps possible (rsh > 0, m_in > 0, 1 <= kk),
 * 33 <= sh_y <= 62 (the output from the high word of tot alone), 0 <= m_y, 0 <= sh_D <= 63. */
static int32_t xs_fast_setup(const ef_scan_consts_t *c, int32_t d, const xs_chan_t *k, xs_fast_t *f)
{
    int32_t sh_y = c->sh_y[d], sh_D = c->sh_D[d];
    if (k->rsh <= 0 || k->m_in <= 0 || k->kk < 1 || sh_y < 33 || sh_y > 62 || c->m_y[d] < 0 || sh_D < 0 || sh_D > 63)
        return 0;
    /* pm_lo <= p m_in < pm_hi  <=>  -((-pm_lo) / m_in) <= p <= (pm_hi - 1) / m_in; |p| <= 127 * 128 always */
    int32_t p_max = (int32_t)xs_div_clamp((uint64_t)(k->pm_hi - 1), (uint32_t)k->m_in);
    int32_t p_min = -(int32_t)xs_div_clamp((uint64_t)(-k->pm_lo), (uint32_t)k->m_in);
    f->p_min = p_min;
    f->p_span = (uint32_t)(p_max - p_min);
    f->m_in = k->m_in;
    f->kk = k->kk;
    f->rsh = k->rsh;
    f->m_y = c->m_y[d];
    f->m_D = c->m_D[d];
    f->dl_sh = sh_D & 31;
    f->dl_mask = sh_D < 32 ? 0xFFFFFFFFu : 0u;
    f->dh_a = sh_D < 32 ? 0 : sh_D - 32;
    f->dh_c1 = sh_D < 32 ? 1 : 0;
    f->dh_c2 = sh_D < 32 ? 31 - sh_D : 0;
    f->half_hi = 1 << (sh_y - 33);
    f->ysh = sh_y - 32;
    return 1;
}

/* y = requant(acc m_y + q_u m_D 2^sh_D) (xs_out) from the two sums acc = a_hi 2^16 + (a_w - a_hi 2^16), in 32-bit
 * words: acc = acc_h 2^32 + a_w, then the high word of tot = acc m_y + D 2^sh_D + 2^(sh_y-1) modulo 2^32 (the
 * reference's tot modulo 2^64), shifted by sh_y - 32 and saturated. */
static inline __attribute__((always_inline)) int8_t xs_out_hi(const xs_fast_t *f, int32_t a_hi, uint32_t a_w,
                                                              int32_t qu)
{
    uint32_t ahs = (uint32_t)a_hi << 16;
    int32_t a_lo = (int32_t)(a_w - ahs);
    int32_t acc_h = (a_hi >> 16) + (a_lo >> 31) + (int32_t)(a_w < ahs);
    uint64_t xm = (uint64_t)a_w * (uint32_t)f->m_y;
    uint32_t x_lo = (uint32_t)xm;
    int32_t x_hi = (int32_t)(uint32_t)(xm >> 32) + acc_h * f->m_y;
    int32_t dd = qu * f->m_D;
    uint32_t d_lo = ((uint32_t)dd << f->dl_sh) & f->dl_mask;
    int32_t d_hi = ((int32_t)((uint32_t)dd << f->dh_a) >> f->dh_c1) >> f->dh_c2;
    uint32_t lo = x_lo + d_lo;
    int32_t t_hi = (int32_t)((uint32_t)x_hi + (uint32_t)d_hi + (uint32_t)(lo < x_lo) + (uint32_t)f->half_hi);
    return (int8_t)ef_xp_clip8(t_hi >> f->ysh);
}

/* The exp2 cache of xs_chan_cached: dA = 2^(-q_delta ka[n] / 2^frac) depends on the step only through q_delta
 * (0..127), and a channel's steps take few distinct values (femba-mini, 80 steps: 8..14 on average), so each value's
 * d_state factors are computed once a channel (xs_exp2, from the table in L1) into a slot and the state loop loads
 * them (one p.lhu a state instead of the 12 instructions of the table interpolation). A slot holds the d_state
 * factors and 2^15 minus their maximum (the state bound's decay); off[q_delta] is where its slot starts. The
 * XS_CACHE_HW halfwords hold XS_CACHE_HW / (d_state + 1) slots, all forgotten before a run that could find none
 * free. On the stack (1 KiB) in place of the packed table it replaced. off[q_delta] = gen 2^9 + the slot's first
 * halfword is valid while gen (1..127) is the cache's: a clear moves gen on (every 127th clear rewrites off). */
#define XS_REC 3 /* words a step record: the dA row, Q, R 2^(24-kk) */
#define XS_RUN 8      /* steps a run, at most */
#define XS_RUN_LONG 16 /* when the cache holds 2.5 runs of these (d_state <= 8: femba-mini; 16 flushed too often) */
#define XS_CACHE_HW 360 /* 40 slots at d_state 8 (2.5 runs of 16), 21 at 16 */
typedef struct {
    uint16_t da[XS_CACHE_HW];
    int32_t off_w[64]; /* uint16_t off[128]: gen 2^9 + the slot's first halfword (XS_CACHE_HW < 2^9) */
    int32_t next;      /* the next free slot's first halfword */
    int32_t gen;       /* 1..127 after a clear; 0 after xs_cache_reset */
    int32_t slot;      /* d_state + 1 halfwords a slot */
    int32_t n_miss;    /* q_delta values given a slot by xs_records, their rows not computed yet: */
    uint8_t miss[XS_RUN_LONG];
} xs_cache_t;
/* xs_records reaches these fields from off_w (XS_CO_* bytes on) */
#define XS_CO_NEXT 256
#define XS_CO_GEN 260
#define XS_CO_SLOT 264
#define XS_CO_NMISS 268
#define XS_CO_MISS 272
_Static_assert(offsetof(xs_cache_t, next) - offsetof(xs_cache_t, off_w) == XS_CO_NEXT, "xs_cache_t layout");
_Static_assert(offsetof(xs_cache_t, gen) - offsetof(xs_cache_t, off_w) == XS_CO_GEN, "xs_cache_t layout");
_Static_assert(offsetof(xs_cache_t, slot) - offsetof(xs_cache_t, off_w) == XS_CO_SLOT, "xs_cache_t layout");
_Static_assert(offsetof(xs_cache_t, n_miss) - offsetof(xs_cache_t, off_w) == XS_CO_NMISS, "xs_cache_t layout");
_Static_assert(offsetof(xs_cache_t, miss) - offsetof(xs_cache_t, off_w) == XS_CO_MISS, "xs_cache_t layout");

static inline int32_t xs_cache_slots(int32_t ds)
{
    return XS_CACHE_HW / (ds + 1);
}

/* off all invalid (gen 0 matches no clear's gen) */
static void xs_cache_reset(xs_cache_t *cc)
{
    for (int32_t i = 0; i < 64; ++i)
        cc->off_w[i] = 0;
    cc->gen = 0;
}

static inline void xs_cache_clear(xs_cache_t *cc)
{
    if (++cc->gen == 128) {
        xs_cache_reset(cc);
        cc->gen = 1;
    }
    cc->next = 0;
}

/* row[n] = 2^(-qd ka[n] / 2^frac) in Q15 for n < ds (xs_exp2 on a decreasing table: differences below 2^16,
 * r < 2^lo <= 2^16), as one branch-free hardware loop of 19 instructions; returns the largest. k >= 16 (dA = 0)
 * shifts by min(k + (k >> 4), 17) instead: rs(v, 17) = 0 for v <= 2^15, and k < 16 is unchanged. */
static inline uint32_t xs_fill_row(const xs_exp2_t *x, const uint16_t *ka, uint16_t *row, int32_t ds, int32_t qd)
{
    int32_t n = ds, m = 0, e, j, r, k, c, t0, t1, y;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 19)
                     ".insn i 0x0b, 5, %[e], %[pk], 2\n\t"          /* p.lhu e, 2(pk!): ka */
                     ".insn r 0x5b, 0, 0x00, %[e], %[e], %[qd]\n\t" /* p.mulu: e = qd ka */
                     "sra %[j], %[e], %[lo2]\n\t"                   /* e >> (lo - 2) */
                     "and %[r], %[e], %[rmask]\n\t"                 /* r */
                     "andi %[c], %[j], 1020\n\t"                    /* 4 j */
                     "srai %[k], %[j], 10\n\t"                      /* k = e >> frac */
                     "add %[c], %[c], %[tab]\n\t"
                     "srli %[j], %[k], 4\n\t"
                     "lw %[t0], 0(%[c])\n\t"                        /* T[j] */
                     "lw %[t1], 4(%[c])\n\t"                        /* T[j+1] */
                     "add %[k], %[k], %[j]\n\t"
                     ".insn r 0x33, 4, 0x02, %[k], %[k], %[c17]\n\t" /* p.min: the shift, <= 17 */
                     "sub %[y], %[t0], %[t1]\n\t"                   /* T[j] - T[j+1] >= 0 */
                     ".insn r 0x5b, 0, 0x00, %[y], %[y], %[r]\n\t" /* p.mulu: y = (T[j] - T[j+1]) r */
                     ".insn r 0x5b, 6, 0x20, %[y], %[m1], %[lo]\n\t" /* (y - 1 + 2^(lo-1)) >> lo = -rs(-y, lo) */
                     "sub %[t0], %[t0], %[y]\n\t"                   /* v */
                     ".insn r 0x5b, 6, 0x20, %[t0], x0, %[k]\n\t"   /* rs(v, k) */
                     ".insn r 0x33, 6, 0x02, %[m], %[m], %[t0]\n\t" /* p.max */
                     ".insn s 0x2b, 1, %[t0], 2(%[pr])\n\t"         /* p.sh v, 2(pr!) */
                     ".option pop"
                     : [n] "+r"(n), [m] "+r"(m), [pk] "+r"(ka), [pr] "+r"(row), [e] "=&r"(e), [j] "=&r"(j),
                       [r] "=&r"(r), [k] "=&r"(k), [c] "=&r"(c), [t0] "=&r"(t0), [t1] "=&r"(t1), [y] "=&r"(y)
                     : [qd] "r"(qd), [lo2] "r"(x->lo2), [rmask] "r"(x->rmask), [tab] "r"(x->tab), [lo] "r"(x->lo),
                       [m1] "r"(-1), [c17] "r"(17)
                     : "memory");
    return (uint32_t)m;
}

/* One state of the narrow step with dA from the cache, up to the decay (11 instructions): loads h, q_B, dA
 * (post-increment; each load 3 instructions before its use); the injection (b R) >> kk + b Q rounded by rsh; the
 * decay rs(dA h, 15) as rs(dA (h & 0xFFFF), 15) + 2 dA (h >> 16). */
#define XS_ASM_CACHED_HEAD \
    "lw %[hv], 0(%[ph])\n\t" \
    ".insn i 0x0b, 0, %[b], %[pb], 1\n\t"          /* p.lb b, 1(pb!): q_B */ \
    ".insn i 0x0b, 5, %[da], %[pd], 2\n\t"         /* p.lhu da, 2(pd!): dA */ \
    "srai %[e], %[hv], 16\n\t"                     /* h >> 16 */ \
    "mul %[inj], %[b], %[r]\n\t"                   /* b R 2^(24-kk) */ \
    ".insn r 0x5b, 4, 0x0f, %[dec], %[da], %[hv]\n\t" /* rs(dA (h & 0xFFFF), 15) */ \
    "srai %[inj], %[inj], 24\n\t"                  /* (b R) >> kk */ \
    ".insn r 0x33, 0, 0x21, %[inj], %[b], %[q]\n\t" /* p.mac: + b Q */ \
    "slli %[da], %[da], 1\n\t" \
    ".insn r 0x5b, 6, 0x20, %[inj], x0, %[rsh]\n\t" /* inj = (... + 2^(rsh-1)) >> rsh */ \
    ".insn r 0x33, 0, 0x21, %[dec], %[da], %[e]\n\t" /* + 2 dA (h >> 16) = rs(dA h, 15) */

/* The whole state (the body of hardware loop 0, 21 instructions): the head, the saturated add, store h, the sums */
#define XS_ASM_CACHED_STATE XS_ASM_CACHED_HEAD XS_ASM_SAT_SUMS

/* The same state without the saturation (17 instructions, no branch): for steps whose state bound (xs_chan_cached)
 * shows |dec| + |inj| <= 2^31 - 1 for every state, where the reference's clip cannot act. */
#define XS_ASM_CACHED_STATE_NOSAT \
    XS_ASM_CACHED_HEAD \
    ".insn r 0x03, 7, 0x00, %[b], %[pb], %[coff]\n\t" /* p.lb b, coff(pb): q_C */ \
    "add %[s], %[dec], %[inj]\n\t" \
    ".insn s 0x2b, 2, %[s], 4(%[ph])\n\t"          /* p.sw s, 4(ph!) */ \
    "srai %[e], %[s], 16\n\t" \
    ".insn r 0x33, 0, 0x21, %[ah], %[b], %[e]\n\t" \
    ".insn r 0x33, 0, 0x21, %[aw], %[b], %[s]\n\t"

/* A run of a channel's steps, none of them wide, in one asm block: hardware loop 1 over the steps, hardware loop 0
 * over the states. Each step's record (XS_REC words, written by xs_chan_cached) holds the step's dA row in the
 * cache (NULL for q_delta 0), Q and R 2^(24-kk) (B rows from bt, sb apart); the asm overwrites its first two words with the
 * step's two sums (a_hi, a_w). A NULL row takes the hold loop (the sums alone, h unchanged), any other the narrow
 * step (STATE: XS_ASM_CACHED_STATE, N_STATE instructions, or XS_ASM_CACHED_STATE_NOSAT). 9 instructions a step
 * outside the state loops; N_LOOP1 counts loop 1's instructions (the 10, the lp.setup, STATE, the 3 stores). */
#define XS_RUN_ASM(STATE, N_STATE, N_LOOP1) \
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" \
                     ".insn i 0x7b, 4, x1, %[n], " #N_LOOP1 " * 2\n\t" /* lp.setup 1: the steps, to the addi */ \
                     "lw %[pd], 0(%[rec])\n\t" \
                     "lw %[q], 4(%[rec])\n\t" \
                     "lw %[r], 8(%[rec])\n\t" \
                     "mv %[pb], %[bt]\n\t"                           /* the step's B row */ \
                     "add %[bt], %[bt], %[sb]\n\t" \
                     "mv %[ph], %[h0]\n\t" \
                     "mv %[n], %[ds]\n\t" \
                     "li %[ah], 0\n\t" \
                     "li %[aw], 0\n\t" \
                     "beqz %[pd], 7f\n\t"                           /* q_delta 0: the hold loop (out of line) */ \
                     EF_XP_LP_SETUP0(n, N_STATE) \
                     STATE \
                     "6:\n\t" \
                     "sw %[ah], 0(%[rec])\n\t" \
                     "sw %[aw], 4(%[rec])\n\t" \
                     "addi %[rec], %[rec], 12\n\t"                /* XS_REC words; the last instruction of loop 1 */ \
                     "j 8f\n\t" \
                     "7:\n\t"                                     /* hold: C[n] = B[n] + c_off + 1 */ \
                     "add %[pb], %[pb], %[coff]\n\t" \
                     "addi %[pb], %[pb], 1\n\t" \
                     EF_XP_LP_SETUP0(n, 5) \
                     ".insn i 0x0b, 2, %[hv], %[ph], 4\n\t"        /* p.lw hv, 4(ph!) */ \
                     ".insn i 0x0b, 0, %[b], %[pb], 1\n\t"         /* p.lb b, 1(pb!): q_C */ \
                     "srai %[e], %[hv], 16\n\t" \
                     ".insn r 0x33, 0, 0x21, %[ah], %[b], %[e]\n\t" \
                     ".insn r 0x33, 0, 0x21, %[aw], %[b], %[hv]\n\t" \
                     "j 6b\n\t" \
                     "8:\n\t" \
                     ".option pop" \
                     : [rec] "+r"(rec), [n] "+r"(n), [bt] "+r"(bt), [ah] "=&r"(acc_hi), [aw] "=&r"(acc_w), \
                       [q] "=&r"(q), [r] "=&r"(r), [pb] "=&r"(pb), [pd] "=&r"(pd), [ph] "=&r"(h), [e] "=&r"(e), [b] "=&r"(b), \
                       [hv] "=&r"(hv), [inj] "=&r"(inj), [da] "=&r"(da), [dec] "=&r"(dec), [s] "=&r"(s) \
                     : [coff] "r"(c_off), [rsh] "r"(rsh), [nmax] "r"(-XS_STATE_MAX), [h0] "r"(h0), [ds] "r"(ds), \
                       [sb] "r"(sb) \
                     : "memory")

static inline __attribute__((always_inline)) void xs_run_cached(int32_t *rec, int32_t n_rec, int32_t *h0,
                                                                int32_t ds, const int8_t *bt, ptrdiff_t sb,
                                                                int32_t c_off, int32_t rsh, int32_t sat)
{
    int32_t n = n_rec, acc_hi, acc_w, q, r, e, b, hv, inj, da, dec, s;
    int32_t pb, pd, h; /* pointers: the step's B row, dA row (from its record) and state */
    if (sat)
        XS_RUN_ASM(XS_ASM_CACHED_STATE, 21, 41);
    else
        XS_RUN_ASM(XS_ASM_CACHED_STATE_NOSAT, 17, 31);
}

/* max_n |h[n]|: the state bound at the start of a channel and after a saturating run */
static inline uint32_t xs_state_max(const int32_t *h, int32_t ds)
{
    uint32_t m = 0;
    for (int32_t n = 0; n < ds; ++n) {
        uint32_t a = (uint32_t)(h[n] < 0 ? -h[n] : h[n]);
        m = a > m ? a : m;
    }
    return m;
}

/* The rows of the q_delta values xs_records gave a slot (cc->miss), computed before the run reads them. */
static __attribute__((noinline)) void xs_fill_missed(xs_cache_t *cc, const xs_exp2_t *x, const uint16_t *ka,
                                                     int32_t ds)
{
    const uint16_t *off = (const uint16_t *)(const void *)cc->off_w;
    for (int32_t i = 0; i < cc->n_miss; ++i) {
        int32_t qd = cc->miss[i];
        uint16_t *row = cc->da + (off[qd] & 0x1FFu);
        row[ds] = (uint16_t)(32768 - xs_fill_row(x, ka, row, ds, qd));
    }
    cc->n_miss = 0;
}

/* The walk of a channel's steps in scan order: u, q_delta, the B row and y, with their strides. */
typedef struct {
    const int8_t *pu, *pdl, *bt;
    int8_t *py;
    ptrdiff_t su, sdl, sb, sy;
} xs_walk_t;

/* The records of up to lim >= 1 steps from w (advanced past them): the narrow test on p = q_delta q_u alone, Q and R
 * from one mul / mulh pair, the dA row from the cache: a q_delta value not cached gets a slot and joins cc->miss
 * (xs_fill_missed computes those rows before the run). Stops before a wide step. Returns the
 * steps recorded; *sq = sum over their narrow steps of |Q| + 2 (the run's state bound). One hardware loop: 25
 * instructions a narrow step, 6 a hold. */
static inline __attribute__((always_inline)) int32_t xs_records(const xs_fast_t *f, xs_cache_t *cc, xs_walk_t *w,
                                                    int32_t lim, int32_t *rec, uint32_t *sq)
{
    const int8_t *pu = w->pu, *pdl = w->pdl;
    int32_t n = lim, qd, qu, t, lw, hw, o, q, *rec0 = rec;
    uint32_t sum_q = 0;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 28)
                     ".insn r 0x0b, 7, 0x00, %[qd], %[pdl], %[sdl]\n\t" /* p.lb qd, sdl(pdl!) */
                     ".insn r 0x0b, 7, 0x00, %[qu], %[pu], %[su]\n\t"   /* p.lb qu, su(pu!) */
                     "beqz %[qd], 2f\n\t"                               /* q_delta 0: a hold (out of line) */
                     ".insn r 0x5b, 0, 0x40, %[qu], %[qd], %[qu]\n\t"  /* p.muls: p = q_delta q_u */
                     "sub %[t], %[qu], %[pmin]\n\t"
                     "bltu %[pspan], %[t], 9f\n\t"                      /* wide: the run ends before it */
                     "mul %[lw], %[qu], %[min]\n\t"
                     "mulh %[hw], %[qu], %[min]\n\t"
                     "srl %[q], %[lw], %[kk]\n\t"
                     "sll %[hw], %[hw], %[ik]\n\t"
                     "or %[q], %[q], %[hw]\n\t"                         /* Q = (p m_in) >> kk */
                     "slli %[hw], %[qd], 1\n\t"
                     "add %[hw], %[hw], %[off]\n\t"
                     "lhu %[o], 0(%[hw])\n\t"                           /* off[q_delta] */
                     "srli %[t], %[o], 9\n\t"
                     "bne %[t], %[gen], 5f\n\t"                         /* not cached: a new slot (below) */
                     "6:\n\t"
                     "sll %[lw], %[lw], %[ik]\n\t"
                     "srli %[lw], %[lw], 8\n\t"                         /* R 2^(24-kk) */
                     "andi %[o], %[o], 511\n\t"
                     "slli %[o], %[o], 1\n\t"
                     "add %[o], %[o], %[da]\n\t"                        /* the dA row */
                     ".insn r 0x33, 0, 0x02, %[t], %[q], x0\n\t"       /* p.abs */
                     "add %[sq], %[sq], %[t]\n\t"
                     "addi %[sq], %[sq], 2\n\t"
                     "sw %[o], 0(%[rec])\n\t"
                     "sw %[q], 4(%[rec])\n\t"
                     "sw %[lw], 8(%[rec])\n\t"
                     "3:\n\t"
                     "addi %[rec], %[rec], 12\n\t"                      /* the last instruction of the loop */
                     "j 4f\n\t"
                     "2:\n\t"
                     "sw x0, 0(%[rec])\n\t"                             /* no row: the hold loop */
                     "j 3b\n\t"
                     "5:\n\t"                  /* off[q_delta] = gen 2^9 + next, next += slot, miss[n_miss++] = q_delta */
                     "lw %[t], " XS_STR(XS_CO_NEXT) "(%[off])\n\t"
                     "slli %[o], %[gen], 9\n\t"
                     "or %[o], %[o], %[t]\n\t"
                     "sh %[o], 0(%[hw])\n\t"
                     "lw %[hw], " XS_STR(XS_CO_SLOT) "(%[off])\n\t"
                     "add %[hw], %[hw], %[t]\n\t"
                     "sw %[hw], " XS_STR(XS_CO_NEXT) "(%[off])\n\t"
                     "lw %[hw], " XS_STR(XS_CO_NMISS) "(%[off])\n\t"
                     "add %[t], %[hw], %[off]\n\t"
                     "sb %[qd], " XS_STR(XS_CO_MISS) "(%[t])\n\t"
                     "addi %[hw], %[hw], 1\n\t"
                     "sw %[hw], " XS_STR(XS_CO_NMISS) "(%[off])\n\t"
                     "j 6b\n\t"
                     "9:\n\t"                                           /* back to the wide step */
                     "sub %[pu], %[pu], %[su]\n\t"
                     "sub %[pdl], %[pdl], %[sdl]\n\t"   /* (leaves loop 0 early: its next lp.setup resets it) */
                     "4:\n\t"
                     ".option pop"
                     : [rec] "+r"(rec), [pu] "+r"(pu), [pdl] "+r"(pdl), [sq] "+r"(sum_q),
                       [qd] "=&r"(qd), [qu] "=&r"(qu), [t] "=&r"(t), [lw] "=&r"(lw), [hw] "=&r"(hw), [o] "=&r"(o),
                       [q] "=&r"(q)
                     : [n] "r"(n), [su] "r"(w->su), [sdl] "r"(w->sdl), [pmin] "r"(f->p_min),
                       [pspan] "r"(f->p_span), [min] "r"(f->m_in), [kk] "r"(f->kk), [ik] "r"(32 - f->kk),
                       [off] "r"(cc->off_w), [da] "r"(cc->da), [gen] "r"(cc->gen)
                     : "memory");
    int32_t m = (int32_t)(rec - rec0) / XS_REC;
    w->pu = pu, w->pdl = pdl, w->bt += m * w->sb;
    *sq = sum_q;
    return m;
}

/* The outputs of m >= 1 recorded steps from w->py on: xs_out_hi from each record's two sums and the step's q_u, as one
 * hardware loop of 28 instructions (the one multi-cycle multiply: mulhu; q_u m_D is p.muls, the rest p.mac). */
static inline __attribute__((always_inline)) void xs_outs(const xs_fast_t *f, const int32_t *rec, int32_t m, const int8_t *pu,
                                              ptrdiff_t su, xs_walk_t *w)
{
    int8_t *py = w->py;
    int32_t n = m, ah, aw, qu, ta, tb, xh, dd;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 28)
                     "lw %[ah], 0(%[rec])\n\t"
                     "lw %[aw], 4(%[rec])\n\t"
                     ".insn r 0x0b, 7, 0x00, %[qu], %[pu], %[su]\n\t"   /* p.lb qu, su(pu!) */
                     "addi %[rec], %[rec], 12\n\t"                      /* XS_REC words */
                     "slli %[ta], %[ah], 16\n\t"                        /* a_hi 2^16 */
                     "sub %[tb], %[aw], %[ta]\n\t"                      /* a_lo */
                     "sltu %[ta], %[aw], %[ta]\n\t"
                     "srai %[tb], %[tb], 31\n\t"
                     "srai %[ah], %[ah], 16\n\t"
                     "add %[ah], %[ah], %[tb]\n\t"
                     "add %[ah], %[ah], %[ta]\n\t"                      /* acc_h: acc = acc_h 2^32 + a_w */
                     "mulhu %[xh], %[aw], %[my]\n\t"
                     ".insn r 0x5b, 0, 0x40, %[dd], %[qu], %[mD]\n\t"  /* p.muls: q_u m_D */
                     ".insn r 0x33, 0, 0x21, %[xh], %[ah], %[my]\n\t"  /* p.mac: high word of acc m_y */
                     "sll %[ta], %[dd], %[dls]\n\t"
                     "and %[ta], %[ta], %[dlm]\n\t"                     /* d_lo */
                     "sll %[tb], %[dd], %[dha]\n\t"
                     "sra %[tb], %[tb], %[dh1]\n\t"
                     "sra %[tb], %[tb], %[dh2]\n\t"                     /* d_hi */
                     "mv %[dd], %[ta]\n\t"
                     ".insn r 0x33, 0, 0x21, %[dd], %[aw], %[my]\n\t"  /* lo = d_lo + low word of a_w m_y */
                     "sltu %[ta], %[dd], %[ta]\n\t"                     /* its carry */
                     "add %[xh], %[xh], %[tb]\n\t"
                     "add %[xh], %[xh], %[ta]\n\t"
                     "add %[xh], %[xh], %[hh]\n\t"
                     "sra %[xh], %[xh], %[ysh]\n\t"
                     ".insn r 0x33, 5, 0x0a, %[xh], %[xh], %[c127]\n\t" /* p.clip to [-128, 127] */
                     ".insn r 0x2b, 4, 0x00, %[sy], %[py], %[xh]\n\t"   /* p.sb xh, sy(py!) */
                     ".option pop"
                     : [n] "+r"(n), [rec] "+r"(rec), [pu] "+r"(pu), [py] "+r"(py), [ah] "=&r"(ah), [aw] "=&r"(aw),
                       [qu] "=&r"(qu), [ta] "=&r"(ta), [tb] "=&r"(tb), [xh] "=&r"(xh), [dd] "=&r"(dd)
                     : [su] "r"(su), [sy] "r"(w->sy), [my] "r"(f->m_y), [mD] "r"(f->m_D), [dls] "r"(f->dl_sh),
                       [dlm] "r"(f->dl_mask), [dha] "r"(f->dh_a), [dh1] "r"(f->dh_c1), [dh2] "r"(f->dh_c2),
                       [hh] "r"(f->half_hi), [ysh] "r"(f->ysh), [c127] "r"(127)
                     : "memory");
    w->py = py;
}

/* All n_t steps of one channel whose constants xs_fast_setup accepted, in runs of up to XS_RUN steps: the run's
 * records (xs_records), the dA rows it found missing (xs_fill_missed), xs_run_cached, then the outputs (xs_outs: no 64-bit
 * arithmetic). A wide step ends its run and is taken alone (xs_step_wide). */
static void xs_chan_cached(const xs_exp2_t *x, const xs_fast_t *f, const xs_chan_t *k, xs_cache_t *cc,
                           int32_t *h, const uint16_t *ka, int32_t ds, xs_walk_t *w, int32_t c_off, int32_t n_t)
{
    int32_t rec[XS_RUN_LONG * XS_REC], rsh = f->rsh, slots = xs_cache_slots(ds);
    int32_t run = 2 * slots >= 5 * XS_RUN_LONG ? XS_RUN_LONG : XS_RUN, last = (slots - run) * (ds + 1);
    /* hb >= max_n |h[n]| throughout. A narrow step maps it to at most hb + 1 + I: the decay |rs(dA h, 15)| <= hb + 1
     * (dA <= 2^15), the injection (b Q + (b R) >> kk + 2^(rsh-1)) >> rsh with |b| <= 128, 0 <= R < 2^kk at most
     * I = (128 (|Q| + 2)) >> rsh + 2; a hold keeps h. Over a run (the sum of floors below the floor of the sum):
     * hb + (128 (sum |Q| + 2 n)) >> rsh + 3 n for its n narrow steps. While that is <= 2^31 - 1 the reference's clip
     * cannot act and the run takes the state loop without it; else hb is first tightened to the state's max. */
    XS_P0
    uint32_t hb = xs_state_max(h, ds);
    xs_cache_clear(cc);
    cc->slot = ds + 1;
    cc->n_miss = 0;
    XS_P(7);
    while (n_t > 0) {
        const int8_t *pu0 = w->pu, *bt0 = w->bt;
        int32_t lim = n_t < run ? n_t : run, sat = 0;
        uint32_t sq;
        XS_P0
        if (cc->next > last) /* a run may need run new slots */
            xs_cache_clear(cc);
        int32_t m = xs_records(f, cc, w, lim, rec, &sq), wide = m < lim;
        XS_P(1);
        if (cc->n_miss > 0)
            xs_fill_missed(cc, x, ka, ds);
        XS_P(0);
        if (m > 0) {
            /* sq + 2 nn < 2^27 (nn <= XS_RUN_LONG <= 16, |Q| < 2^23): the product by 2^7 >> rsh in 32 bits */
            uint32_t t = sq, grow;
            if (rsh >= 7)
                grow = t >> (rsh - 7);
            else /* t 2^(7-rsh) < 2^31 or take the clip */
                grow = t >= 1u << (24 + rsh) ? (uint32_t)XS_STATE_MAX : t << (7 - rsh);
            grow += 3u * (uint32_t)m; /* hb + grow < 2^32 */
            if (hb + grow > (uint32_t)XS_STATE_MAX)
                hb = xs_state_max(h, ds);
            hb += grow;
            sat = hb > (uint32_t)XS_STATE_MAX;
            XS_P(2);
            xs_run_cached(rec, m, h, ds, bt0, w->sb, c_off, rsh, sat);
            XS_P(3);
            if (sat)
                hb = xs_state_max(h, ds);
            xs_outs(f, rec, m, pu0, w->su, w);
            XS_P(4);
        }
        n_t -= m;
        if (wide) {
            int32_t qu = *w->pu, qd = *w->pdl;
            int64_t acc = xs_step_wide(x, h, ka, w->bt, w->bt + c_off + 1, ds, qd, qd * qu, k->m_in, k->sh_in);
            *w->py = xs_out_hi(f, (int32_t)(acc >> 16), (uint32_t)acc, qu); /* |acc| < 2^46 */
            w->pu += w->su, w->pdl += w->sdl, w->bt += w->sb, w->py += w->sy, --n_t;
            hb = xs_state_max(h, ds);
        }
    }
}

void ef_scan_i8(const ef_scan_consts_t *c,
                const int8_t *u, int32_t u_stride, const int8_t *delta, int32_t delta_stride,
                const int8_t *B, const int8_t *C, int32_t bc_stride,
                int8_t *y, int32_t y_stride, int32_t *h,
                int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse)
{
    xs_exp2_t x;
    xs_chan_t k;
    xs_fast_t f;
    xs_cache_t cache;
    int32_t n_t = t1 - t0, ts = reverse ? t1 - 1 : t0, dir = reverse ? -1 : 1, ds = c->d_state;
    x.tab = c->exp2_q15 != NULL ? c->exp2_q15 : ef_exp2_table_q15;
    x.frac = c->ka_frac;
    x.lo = c->ka_frac - 8;
    x.lo2 = x.lo - 2;
    x.rmask = (1 << x.lo) - 1;
    xs_cache_reset(&cache);
    for (int32_t d = d0; d < d1; ++d) {
        const uint16_t *ka = c->ka + (ptrdiff_t)d * ds;
        int32_t *hd = h + (ptrdiff_t)d * ds;
        XS_P0
        xs_chan_setup(c, d, &k);
        XS_P(5);
        if (ds >= 1 && xs_cache_slots(ds) >= XS_RUN && xs_fast_setup(c, d, &k, &f)) {
            XS_P(6);
            xs_walk_t w = {u + ts * u_stride + d, delta + ts * delta_stride + d, B + ts * bc_stride,
                           y + ts * y_stride + d, dir * u_stride, dir * delta_stride, dir * bc_stride, dir * y_stride};
            xs_chan_cached(&x, &f, &k, &cache, hd, ka, ds, &w, (int32_t)(C - B) - 1, n_t);
            continue;
        }
        for (int32_t step = 0; step < n_t; ++step) {
            ptrdiff_t t = ts + (ptrdiff_t)dir * step;
            const int8_t *bt = B + t * bc_stride, *ct = C + t * bc_stride;
            int32_t qu = u[t * u_stride + d], qd = delta[t * delta_stride + d];
            int64_t acc;
            if (qd == 0) {
                acc = xs_hold(hd, ct, ds);
            } else {
                int64_t pm = (int64_t)(qd * qu) * k.m_in;
                if (pm >= k.pm_lo && pm < k.pm_hi) {
                    /* Q = pm >> kk from pm's two words (0 <= kk <= 24), R = pm mod 2^kk */
                    uint32_t lw = (uint32_t)pm, hw = (uint32_t)(pm >> 32);
                    int32_t q = (int32_t)((lw >> k.kk) | ((hw << 1) << (31 - k.kk)));
                    int32_t r = (int32_t)(lw & ((1u << k.kk) - 1u));
                    acc = xs_step_narrow(&x, hd, ka, bt, ct, ds, qd, q, r, k.kk, k.rsh);
                } else {
                    acc = xs_step_wide(&x, hd, ka, bt, ct, ds, qd, qd * qu, k.m_in, k.sh_in);
                }
            }
            y[t * y_stride + d] = xs_out(&k, acc, qu);
        }
    }
}
