/* Integer selective scan (one Mamba direction), the C port of edgeflow.quant.intscan.int_scan, fused per channel. */
#include "ef_kernels.h"

/*
 * One pass per channel d over its time steps: discretisation (dA, dB u), state update and output, with the
 * per-channel constants hoisted out of the time loop. Every value equals intscan.scan_step's int64 result; the
 * narrower arithmetic below is exact under these bounds (tests/c/test_kernels.py and tests/unit/test_scan_bounds.py
 * check them, the latter over the shipped models' constants):
 *  - e = q_delta ka < 127 * 2^16 < 2^23, so the interpolated exp2 runs in int32 ((T[j+1]-T[j]) r < 89 * 2^16).
 *  - decay rs(dA h, 15) with 0 <= dA <= 2^15, |h| <= 2^31-1: h = hh 2^15 + hl (0 <= hl < 2^15) gives
 *    dA hh + rs(dA hl, 15) with |dA hh| <= 2^31, dA hl + 2^14 < 2^31, and |result| <= |h| (no overflow).
 *  - injection p = q_delta q_u q_B, |p| <= EF_SCAN_P_MAX = 127 * 128 * 128; x = p m_in, |x| < 2^52.
 *    A channel is "narrow" when EF_SCAN_P_MAX m_in >> sh_in < 2^30 (then |inj| < 2^30 for every int8 input) and
 *    sh_in >= 1; its injection is rs(x, sh_in) computed from x's two 32-bit words (sh_in >= 32: the high word
 *    alone). Other channels (a state scale far coarser than its input) take the int64 path, the reference's
 *    own formula.
 *  - h + inj in int32 with explicit overflow detection saturates to +-(2^31-1) exactly like the int64 clip.
 *  - acc = sum_n q_C h stays int64 (|acc| <= d_state 2^38); tot = acc m_y + q_u m_D 2^sh_D as in the reference.
 * The exp2 table is c->exp2_q15 when set (a copy in L1 on cluster targets), else ef_exp2_table_q15.
 */

#define EF_STATE_MAX 2147483647
#define EF_SCAN_P_MAX 2080768  /* max |q_delta q_u q_B| = 127 * 128 * 128 */

/* 2^(-e / 2^frac) in Q15 (intmath.exp2_neg_fixed) in int32; lo = frac - 8, half = lo ? 2^(lo-1) : 0. */
static inline int32_t exp2_q15(const int32_t *tab, int32_t e, int32_t frac, int32_t lo, int32_t half)
{
    int32_t k = e >> frac;
    if (k >= 16)
        return 0;
    int32_t f = e & (int32_t)(((uint32_t)1 << frac) - 1u);
    int32_t j = f >> lo;
    int32_t r = f & (int32_t)(((uint32_t)1 << lo) - 1u);
    int32_t t0 = tab[j];
    int32_t v = t0 + (((tab[j + 1] - t0) * r + half) >> lo);
    return k ? (v + (1 << (k - 1))) >> k : v;
}

/* rs(da * h, 15) for 0 <= da <= 2^15, |h| <= 2^31 - 1, in int32 (see the bound above). */
static inline int32_t decay(int32_t da, int32_t h)
{
    return da * (h >> 15) + ((da * (h & 0x7FFF) + 16384) >> 15);
}

/* clip(a + b, -(2^31-1), 2^31-1) for int32 a, b, as the int64 sum would be clipped. */
static inline int32_t sat_add(int32_t a, int32_t b)
{
    int32_t s = (int32_t)((uint32_t)a + (uint32_t)b);
    if (((s ^ a) & (s ^ b)) < 0)
        return a < 0 ? -EF_STATE_MAX : EF_STATE_MAX;
    return s < -EF_STATE_MAX ? -EF_STATE_MAX : s;
}

/* rs(p * m, sh) for a narrow channel: |result| < 2^30, 1 <= sh <= 62. */
static inline int32_t inject(int32_t p, int32_t m, int32_t sh)
{
    int64_t x = (int64_t)p * m;
    int32_t hi = (int32_t)(x >> 32);
    if (sh > 32)
        return (hi + (1 << (sh - 33))) >> (sh - 32);
    uint32_t lo = (uint32_t)x;
    if (sh == 32)
        return hi + (int32_t)(lo >> 31);
    uint32_t lo2 = lo + (1u << (sh - 1));
    hi += lo2 < lo;
    return (int32_t)((lo2 >> sh) | ((uint32_t)hi << (32 - sh)));
}

/* The int64 state step of the reference (wide channels). */
static inline int32_t step_wide(int32_t da, int32_t h, int32_t p, int64_t m_in, int32_t sh_in)
{
    int64_t inj = ef_rshift_round((int64_t)p * m_in, sh_in);
    int64_t hn = ef_rshift_round((int64_t)da * (int64_t)h, 15) + inj;
    return (int32_t)(hn > EF_STATE_MAX ? EF_STATE_MAX : (hn < -EF_STATE_MAX ? -EF_STATE_MAX : hn));
}

typedef struct {
    const int32_t *tab;
    const uint16_t *ka;
    int32_t *h;
    int32_t ds, frac, lo, half, m_in, sh_in, narrow;
} scan_chan_t;

/* One time step of channel k->h: state update for q_delta qd != 0, returns acc = sum_n q_C[n] h[n]. */
static inline int64_t chan_step(const scan_chan_t *k, int32_t qd, int32_t pud, const int8_t *bt, const int8_t *ct)
{
    int64_t acc = 0;
    int32_t n;
    if (k->narrow) {
        for (n = 0; n < k->ds; ++n) {
            int32_t da = exp2_q15(k->tab, qd * (int32_t)k->ka[n], k->frac, k->lo, k->half);
            int32_t hn = sat_add(decay(da, k->h[n]), inject(pud * (int32_t)bt[n], k->m_in, k->sh_in));
            k->h[n] = hn;
            acc += (int64_t)ct[n] * hn;
        }
    } else {
        for (n = 0; n < k->ds; ++n) {
            int32_t da = exp2_q15(k->tab, qd * (int32_t)k->ka[n], k->frac, k->lo, k->half);
            int32_t hn = step_wide(da, k->h[n], pud * (int32_t)bt[n], k->m_in, k->sh_in);
            k->h[n] = hn;
            acc += (int64_t)ct[n] * hn;
        }
    }
    return acc;
}

void ef_scan_i8(const ef_scan_consts_t *c,
                const int8_t *u, int32_t u_stride, const int8_t *delta, int32_t delta_stride,
                const int8_t *B, const int8_t *C, int32_t bc_stride,
                int8_t *y, int32_t y_stride, int32_t *h,
                int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse)
{
    scan_chan_t k;
    int32_t n_t = t1 - t0, ts = reverse ? t1 - 1 : t0, dir = reverse ? -1 : 1;
    k.tab = c->exp2_q15 != NULL ? c->exp2_q15 : ef_exp2_table_q15;
    k.ds = c->d_state;
    k.frac = c->ka_frac;
    k.lo = c->ka_frac - 8;
    k.half = k.lo ? 1 << (k.lo - 1) : 0;
    for (int32_t d = d0; d < d1; ++d) {
        k.ka = c->ka + (ptrdiff_t)d * k.ds;
        k.h = h + (ptrdiff_t)d * k.ds;
        k.m_in = c->m_in[d];
        k.sh_in = c->sh_in[d];
        k.narrow = k.sh_in >= 1 && k.m_in >= 0
                   && (((int64_t)EF_SCAN_P_MAX * k.m_in) >> k.sh_in) < ((int64_t)1 << 30);
        int64_t m_y = c->m_y[d];
        int32_t m_d = c->m_D[d], sh_d = c->sh_D[d], sh_y = c->sh_y[d];
        for (int32_t step = 0; step < n_t; ++step) {
            ptrdiff_t t = ts + (ptrdiff_t)dir * step;
            const int8_t *bt = B + t * bc_stride, *ct = C + t * bc_stride;
            int32_t qu = u[t * u_stride + d], qd = delta[t * delta_stride + d];
            /* the D term u m_D 2^sh_D: |u m_D| < 2^22 in 32 bits, then shifted as unsigned (two's complement) */
            int64_t du = (int64_t)((uint64_t)(int64_t)(qu * m_d) << sh_d);
            int64_t acc = 0;
            if (qd == 0) {  /* delta 0: dA = 1 and no injection, so h is unchanged (exactly, see intscan) */
                for (int32_t n = 0; n < k.ds; ++n)
                    acc += (int64_t)ct[n] * k.h[n];
            } else {
                acc = chan_step(&k, qd, qd * qu, bt, ct);
            }
            y[t * y_stride + d] = ef_sat8(ef_rshift_round(acc * m_y + du, sh_y));
        }
    }
}
