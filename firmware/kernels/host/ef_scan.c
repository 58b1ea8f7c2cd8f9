/* Integer selective scan, host variant: the state update of a channel vectorised over d_state (int32 lanes). */
#include <string.h>

#include "ef_kernels.h"
#include "ef_scan_step.h"

#include "ef_scan_vec.h"

/*
 * Same results as the portable firmware/kernels/ef_scan.c (which documents every bound used here), for the host:
 * one channel at a time over its time steps, the d_state lanes of a narrow (int32) step as int32 vectors
 * (gcc vector extensions: 16 lanes with AVX-512F, 8 with AVX2; without AVX2 the portable scalar code runs):
 *  - exp2: one gather a vector from a per-call table packing T[j] (0..2^15, low half) and T[j+1] - T[j]
 *    (-89..0, high half), so v = T[j] + rs((T[j+1]-T[j]) r, lo) as in exp2_q15; the per-lane shift by k (< 16)
 *    rounds half up, k >= 16 gives 0;
 *  - decay, injection and the saturating add branch-free (the overflow test and the clip as lane masks);
 *  - acc = sum_n q_C h as the same two int32 sums over h >> 16 and h & 0xFFFF, reduced once a step;
 *  - d_state of one vector (FEMBA's 16 and femba-mini's 8: any d_state <= 16 with AVX-512BW/VL masked loads):
 *    the state and the constants stay in registers down the channel (vec_channel); other multiples of the lanes
 *    step through memory (vec_step).
 *  - with AVX-512F/BW/VL/DQ and d_state <= 32: blocks of 16 channels, one channel a lane (blk_channels below),
 *    instead of one channel at a time.
 * Steps outside the narrow range (int64 injection) and any other d_state run the portable scalar code. tests/c/test_kernel_variants_host.py checks every path against the portable kernel.
 */

typedef struct {
    const int32_t *tab;
    const int32_t *ptab;  /* packed exp2 table (see above); NULL: the scalar path */
    const uint16_t *ka;
    int32_t *h;
    int64_t m_in, pm_lo, pm_hi;
    int32_t ds, frac, lo, half, sh_in, k, rsh, c0;
} scan_chan_t;

#if defined(__AVX2__)
/* Vector constants of a channel's narrow steps (kept in registers down a channel whose state is one vector). */
typedef struct {
    vi one, smax, fmask, lmask, half, c0;
    int32_t frac, lo, kk, rsh;
} vconst_t;

static inline void vconst_init(vconst_t *v, const scan_chan_t *k)
{
    const vi zero = {0};
    v->one = zero + 1;
    v->smax = zero + EF_STATE_MAX;
    v->fmask = zero + (int32_t)(((uint32_t)1 << k->frac) - 1u);
    v->lmask = zero + ((1 << k->lo) - 1);
    v->half = zero + k->half;
    v->c0 = zero + k->c0;
    v->frac = k->frac;
    v->lo = k->lo;
    v->kk = k->k;
    v->rsh = k->rsh;
}

/* The narrow update of one vector of states h: exponents e = q_delta ka, injection from q_B b and pm = Q 2^kk + R. */
static inline vi vupdate(const vconst_t *v, const int32_t *ptab, vi h, vi e, vi b, int32_t q, int32_t r)
{
    vi kx = e >> v->frac, f = e & v->fmask;
    vi g = gather(ptab, f >> v->lo);
    vi x = (g & 0xFFFF) + (((g >> 16) * (f & v->lmask) + v->half) >> v->lo);
    vi km = kx < 16, kc = kx & km;                  /* k >= 16: dA = 0 (kc 0 keeps the shifts defined) */
    vi da = ((x + ((v->one << kc) >> 1)) >> kc) & km;
    vi dec = da * (h >> 15) + ((da * (h & 0x7FFF) + 16384) >> 15);
    vi inj = (b * q + v->c0 + ((b * r) >> v->kk)) >> v->rsh;
    vi s = (vi)((vu)dec + (vu)inj);
    vi ov = ((s ^ dec) & (s ^ inj)) < 0, sat = (dec >> 31) ^ v->smax;  /* overflow: +-max by dec's sign */
    return vmax((ov & sat) | (~ov & s), -v->smax);                       /* and -2^31 -> -(2^31-1) */
}

/* The narrow step of one channel over all d_state lanes (pm = Q 2^kk + R); returns acc = sum_n q_C[n] h[n]. */
static inline int64_t vec_step(const scan_chan_t *k, int32_t qd, int32_t q, int32_t r, const int8_t *bt,
                               const int8_t *ct)
{
    vconst_t v;
    vconst_init(&v, k);
    vi acc_hi = {0}, acc_lo = {0}, h;
    for (int32_t n = 0; n < k->ds; n += EF_VW) {
        vi c = ld_i8(ct + n);
        memcpy(&h, k->h + n, sizeof h);
        h = vupdate(&v, k->ptab, h, ld_u16(k->ka + n) * qd, ld_i8(bt + n), q, r);
        memcpy(k->h + n, &h, sizeof h);
        acc_hi += c * (h >> 16);
        acc_lo += c * (h & 0xFFFF);
    }
    return hsum2(acc_hi, acc_lo);
}

/* The packed exp2 table of `tab` into p[256]; 0 when an entry does not fit (then the scalar path runs). */
static int32_t pack_table(const int32_t *tab, int32_t *p)
{
    for (int32_t j = 0; j < EF_EXP2_TABLE_SIZE - 1; ++j) {
        int32_t t0 = tab[j], dt = tab[j + 1] - tab[j];
        if (t0 < 0 || t0 > 65535 || dt < -32768 || dt > 32767)
            return 0;
        p[j] = (int32_t)((uint32_t)t0 | ((uint32_t)dt << 16));
    }
    return 1;
}

#endif

/* pm = Q 2^kk + R, 0 <= R < 2^kk (0 <= kk <= 24), from pm's two words; (hi << 1) << (31 - kk) is hi << (32 - kk). */
static inline void split_pm(int64_t pm, int32_t kk, int32_t *q, int32_t *r)
{
    uint32_t lo = (uint32_t)pm, hi = (uint32_t)(pm >> 32);
    *q = (int32_t)((lo >> kk) | ((hi << 1) << (31 - kk)));
    *r = (int32_t)(lo & ((1u << kk) - 1u));
}

/* A call's operands and its step order. */
typedef struct {
    const int8_t *u, *delta, *B, *C;
    int8_t *y;
    int32_t us, dls, bcs, ys, ts, dir, n_t;
} scan_io_t;

/* A channel's output requantization: y = sat8((acc m_y + q_u m_D 2^sh_D + 2^(sh_y-1)) >> sh_y). */
typedef struct {
    int64_t m_y;
    uint64_t m_dd, half_y;
    int32_t sh_y;
} scan_out_t;

/* The D term u m_D 2^sh_D as u (m_D 2^sh_D), modulo 2^64 like the reference's shifted product; the output rounding
 * rides with it; sh_y >= 32: the result is the high word shifted by sh_y - 32. */
static inline int8_t out_code(const scan_out_t *o, int64_t acc, int32_t qu)
{
    int64_t tot = (int64_t)((uint64_t)(acc * o->m_y) + (uint64_t)(int64_t)qu * o->m_dd + o->half_y);
    if (o->sh_y < 32)
        return ef_sat8(tot >> o->sh_y);
    int32_t v = (int32_t)(tot >> 32) >> (o->sh_y - 32);
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

/* acc = sum_n q_C[n] h[n] with the state unchanged (q_delta = 0: dA = 1, no injection). */
static inline int64_t chan_hold(const scan_chan_t *k, const int8_t *ct)
{
    int32_t n;
#if defined(__AVX2__)
    if (k->ptab != NULL) {
        vi acc_hi = {0}, acc_lo = {0}, h;
        for (n = 0; n < k->ds; n += EF_VW) {
            vi c = ld_i8(ct + n);
            memcpy(&h, k->h + n, sizeof h);
            acc_hi += c * (h >> 16);
            acc_lo += c * (h & 0xFFFF);
        }
        return hsum2(acc_hi, acc_lo);
    }
#endif
    int32_t acc_hi = 0, acc_lo = 0;
    for (n = 0; n < k->ds; ++n) {
        acc_hi += ct[n] * (k->h[n] >> 16);
        acc_lo += ct[n] * (k->h[n] & 0xFFFF);
    }
    return (int64_t)acc_hi * 65536 + acc_lo;
}

/* One time step of channel k->h for q_delta qd != 0 (pud = qd q_u); returns acc = sum_n q_C[n] h[n]. */
static inline int64_t chan_step(const scan_chan_t *k, int32_t qd, int32_t pud, const int8_t *bt, const int8_t *ct)
{
    int64_t pm = (int64_t)pud * k->m_in;
    int32_t n;
    if (pm >= k->pm_lo && pm < k->pm_hi) {
        int32_t kk = k->k, rsh = k->rsh, q, r;
        split_pm(pm, kk, &q, &r);
#if defined(__AVX2__)
        if (k->ptab != NULL)
            return vec_step(k, qd, q, r, bt, ct);
#endif
        int32_t c0 = k->c0, acc_hi = 0, acc_lo = 0;
        for (n = 0; n < k->ds; ++n) {
            int32_t b = bt[n];
            int32_t da = exp2_q15(k->tab, qd * (int32_t)k->ka[n], k->frac, k->lo, k->half);
            int32_t inj = (b * q + c0 + ((b * r) >> kk)) >> rsh;
            int32_t hn = sat_add(decay(da, k->h[n]), inj);
            k->h[n] = hn;
            acc_hi += ct[n] * (hn >> 16);
            acc_lo += ct[n] * (hn & 0xFFFF);
        }
        return (int64_t)acc_hi * 65536 + acc_lo;
    }
    int64_t acc = 0;
    for (n = 0; n < k->ds; ++n) {  /* the reference's int64 step */
        int32_t da = exp2_q15(k->tab, qd * (int32_t)k->ka[n], k->frac, k->lo, k->half);
        int64_t inj = ef_rshift_round((int64_t)(pud * (int32_t)bt[n]) * k->m_in, k->sh_in);
        int64_t hn = ef_rshift_round((int64_t)da * (int64_t)k->h[n], 15) + inj;
        hn = hn > EF_STATE_MAX ? EF_STATE_MAX : (hn < -EF_STATE_MAX ? -EF_STATE_MAX : hn);
        k->h[n] = (int32_t)hn;
        acc += (int64_t)ct[n] * hn;
    }
    return acc;
}

#if defined(__AVX2__)
/* Channel d down the call's steps when d_state fits one vector (EF_SCAN_MASKED: d_state <= 16, else
 * d_state == EF_VW): the state and the constants stay in registers; an int64 step hands the state to chan_step
 * through memory. */
static void vec_channel(scan_chan_t *k, const scan_io_t *io, int32_t d, const scan_out_t *o)
{
    vconst_t v;
    vconst_init(&v, k);
#if EF_SCAN_MASKED
    const lanes_t m = (lanes_t)((1u << k->ds) - 1u);
#else
    const lanes_t m = 0;
#endif
    const vi ka = ld_u16m(k->ka, m);
    vi h = ld_hm(k->h, m);
    for (int32_t step = 0; step < io->n_t; ++step) {
        ptrdiff_t t = io->ts + (ptrdiff_t)io->dir * step;
        const int8_t *bt = io->B + t * io->bcs, *ct = io->C + t * io->bcs;
        int32_t qu = io->u[t * io->us + d], qd = io->delta[t * io->dls + d], q, r;
        int64_t pm = (int64_t)(qd * qu) * k->m_in, acc;
        if (qd != 0 && !(pm >= k->pm_lo && pm < k->pm_hi)) {
            st_hm(k->h, h, m);
            acc = chan_step(k, qd, qd * qu, bt, ct);
            h = ld_hm(k->h, m);
        } else {
            if (qd != 0) {  /* delta 0: dA = 1 and no injection, the state is held */
                split_pm(pm, k->k, &q, &r);
                h = vupdate(&v, k->ptab, h, ka * qd, ld_i8m(bt, m), q, r);
            }
            vi c = ld_i8m(ct, m);  /* lanes past d_state: q_C = 0 (and their state stays 0) */
            acc = hsum2(c * (h >> 16), c * (h & 0xFFFF));
        }
        io->y[t * io->ys + d] = out_code(o, acc, qu);
    }
    st_hm(k->h, h, m);
}
#endif

/* The per-channel constants of channel d (the portable kernel's set-up). */
static void chan_setup(scan_chan_t *k, const ef_scan_consts_t *c, int32_t *h, int32_t d)
{
    k->ka = c->ka + (ptrdiff_t)d * k->ds;
    k->h = h + (ptrdiff_t)d * k->ds;
    k->m_in = c->m_in[d];
    k->sh_in = c->sh_in[d];
    k->k = k->sh_in - 1 < 24 ? k->sh_in - 1 : 24;
    k->rsh = k->sh_in >= 1 && k->sh_in <= EF_SCAN_SH_MAX ? k->sh_in - k->k : 0;
    if (k->k < 0)
        k->k = 0;
    k->c0 = k->rsh > 0 ? 1 << (k->sh_in - 1 - k->k) : 0;
    k->pm_hi = k->rsh > 0 && k->m_in > 0 ? (int64_t)EF_SCAN_Q_LIMIT << k->k : 0;
    k->pm_lo = k->rsh > 0 && k->m_in > 0 ? -(((int64_t)EF_SCAN_Q_LIMIT - 1) << k->k) : 0;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
/* Channel blocks: 16 channels in the lanes of a zmm, one vector a state n, so B[t, n] and C[t, n] are broadcasts, the
 * output sum over n is a vertical add (no horizontal sum a step) and the output requantization, the range test and
 * the split of pm run once a step for the 16 channels (64-bit lanes: vpmuldq, vpmullq, vpsravq, vpmovsqb). A lane
 * whose step needs the int64 injection (pm outside the narrow range) takes chan_step's wide loop on its own column
 * first and is masked out of the vector update. */
#define EF_SCAN_BLOCKS 1
#define BLK 16
#define BLK_DS_MAX 32

/* The int64 step (chan_step's wide loop) of column L of a block's transposed state hT[n][L]. */
static void blk_wide_lane(const scan_chan_t *k, int32_t qd, int32_t pud, const int8_t *bt, int32_t *hT, int32_t L)
{
    for (int32_t n = 0; n < k->ds; ++n) {
        int32_t da = exp2_q15(k->tab, qd * (int32_t)k->ka[n], k->frac, k->lo, k->half);
        int64_t inj = ef_rshift_round((int64_t)(pud * (int32_t)bt[n]) * k->m_in, k->sh_in);
        int64_t hn = ef_rshift_round((int64_t)da * (int64_t)hT[n * BLK + L], 15) + inj;
        hT[n * BLK + L] = (int32_t)(hn > EF_STATE_MAX ? EF_STATE_MAX : (hn < -EF_STATE_MAX ? -EF_STATE_MAX : hn));
    }
}

static inline __m512i lo8(__m512i v)
{
    return _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
}

static inline __m512i hi8(__m512i v)
{
    return _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1));
}

/* 16 int64 lanes (two halves) to 16 int32 (their low words). */
static inline __m512i low_words(__m512i a, __m512i b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)), _mm512_cvtepi64_epi32(b), 1);
}

/* Channels [d0, d0 + nb) (nb <= 16) down the call's steps; proto holds the call's table and exp2 fields. */
static void blk_channels(const scan_chan_t *proto, const ef_scan_consts_t *c, int32_t *h, const scan_io_t *io,
                         int32_t d0, int32_t nb)
{
    const int32_t ds = proto->ds;
    scan_chan_t lane[BLK];
    int32_t hT[BLK_DS_MAX * BLK] __attribute__((aligned(64)));
    int32_t kaT[BLK_DS_MAX * BLK] __attribute__((aligned(64)));
    int32_t kk[BLK], rsh[BLK], c0[BLK];
    int64_t m_in[BLK], pm_lo[BLK], pm_hi[BLK], m_y[BLK], m_dd[BLK], half_y[BLK], sh_y[BLK];
    const __mmask16 valid = (__mmask16)((1u << nb) - 1u);
    for (int32_t L = 0; L < BLK; ++L) {
        int32_t live = L < nb;
        if (live) {
            lane[L] = *proto;
            chan_setup(&lane[L], c, h, d0 + L);
        }
        int32_t sy = live ? c->sh_y[d0 + L] : 0;
        kk[L] = live ? lane[L].k : 0;
        rsh[L] = live ? lane[L].rsh : 0;
        c0[L] = live ? lane[L].c0 : 0;
        m_in[L] = live ? lane[L].m_in : 0;
        pm_lo[L] = live ? lane[L].pm_lo : 0;
        pm_hi[L] = live ? lane[L].pm_hi : 0;
        m_y[L] = live ? c->m_y[d0 + L] : 0;
        m_dd[L] = live ? (int64_t)((uint64_t)(int64_t)c->m_D[d0 + L] << c->sh_D[d0 + L]) : 0;
        half_y[L] = sy > 0 ? (int64_t)1 << (sy - 1) : 0;
        sh_y[L] = sy;
        for (int32_t n = 0; n < ds; ++n) {
            hT[n * BLK + L] = live ? lane[L].h[n] : 0;
            kaT[n * BLK + L] = live ? lane[L].ka[n] : 0;
        }
    }
    const __m512i v_kk = _mm512_loadu_si512(kk), v_rsh = _mm512_loadu_si512(rsh), v_c0 = _mm512_loadu_si512(c0);
    const __m512i v_rmask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), v_kk), _mm512_set1_epi32(1));
    const __m512i kk_lo = lo8(v_kk), kk_hi = hi8(v_kk);
    const vi one = (vi)_mm512_set1_epi32(1), smax = (vi)_mm512_set1_epi32(EF_STATE_MAX);
    const vi fmask = (vi)_mm512_set1_epi32((int32_t)(((uint32_t)1 << proto->frac) - 1u));
    const vi lmask = (vi)_mm512_set1_epi32((1 << proto->lo) - 1), half = (vi)_mm512_set1_epi32(proto->half);
    const int32_t frac = proto->frac, lo = proto->lo;
    const int32_t *ptab = proto->ptab;
    for (int32_t step = 0; step < io->n_t; ++step) {
        ptrdiff_t t = io->ts + (ptrdiff_t)io->dir * step;
        const int8_t *bt = io->B + t * io->bcs, *ct = io->C + t * io->bcs;
        __m512i qu = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(valid, io->u + t * io->us + d0));
        __m512i qd = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(valid, io->delta + t * io->dls + d0));
        __m512i pud = _mm512_mullo_epi32(qd, qu);
        __m512i pm_a = _mm512_mul_epi32(lo8(pud), _mm512_loadu_si512(m_in));
        __m512i pm_b = _mm512_mul_epi32(hi8(pud), _mm512_loadu_si512(m_in + 8));
        __mmask8 in_a = _mm512_cmpge_epi64_mask(pm_a, _mm512_loadu_si512(pm_lo))
                        & _mm512_cmplt_epi64_mask(pm_a, _mm512_loadu_si512(pm_hi));
        __mmask8 in_b = _mm512_cmpge_epi64_mask(pm_b, _mm512_loadu_si512(pm_lo + 8))
                        & _mm512_cmplt_epi64_mask(pm_b, _mm512_loadu_si512(pm_hi + 8));
        __mmask16 in = (__mmask16)(in_a | ((uint32_t)in_b << 8));
        __mmask16 nz = _mm512_mask_cmpneq_epi32_mask(valid, qd, _mm512_setzero_si512());
        __mmask16 upd = nz & in, wide = nz & (__mmask16)~in;  /* delta 0: the state is held */
        vi q = (vi)low_words(_mm512_srlv_epi64(pm_a, kk_lo), _mm512_srlv_epi64(pm_b, kk_hi));
        vi r = (vi)_mm512_and_si512(low_words(pm_a, pm_b), v_rmask);
        if (wide) {
            int32_t qd_s[BLK], pud_s[BLK];
            _mm512_storeu_si512(qd_s, qd);
            _mm512_storeu_si512(pud_s, pud);
            for (int32_t L = 0; L < nb; ++L)
                if (wide >> L & 1)
                    blk_wide_lane(&lane[L], qd_s[L], pud_s[L], bt, hT, L);
        }
        vi acc_hi = {0}, acc_lo = {0};
        const vi vqd = (vi)qd;
        for (int32_t n = 0; n < ds; ++n) {
            vi hv = (vi)_mm512_load_si512(hT + n * BLK);
            vi e = (vi)_mm512_load_si512(kaT + n * BLK) * vqd;
            vi kx = e >> frac, f = e & fmask;
            vi g = gather(ptab, f >> lo);
            vi x = (g & 0xFFFF) + (((g >> 16) * (f & lmask) + half) >> lo);
            vi km = kx < 16, kc = kx & km;
            vi da = ((x + ((one << kc) >> 1)) >> kc) & km;
            vi dec = da * (hv >> 15) + ((da * (hv & 0x7FFF) + 16384) >> 15);
            vi b = (vi)_mm512_set1_epi32(bt[n]);
            vi inj = (vi)_mm512_srav_epi32((__m512i)(b * q + (vi)v_c0
                                                     + (vi)_mm512_srav_epi32((__m512i)(b * r), v_kk)), v_rsh);
            vi s = (vi)((vu)dec + (vu)inj);
            vi ov = ((s ^ dec) & (s ^ inj)) < 0, sat = (dec >> 31) ^ smax;
            vi hn = vmax((ov & sat) | (~ov & s), -smax);
            hn = (vi)_mm512_mask_mov_epi32((__m512i)hv, upd, (__m512i)hn);
            _mm512_store_si512(hT + n * BLK, (__m512i)hn);
            vi cb = (vi)_mm512_set1_epi32(ct[n]);
            acc_hi += cb * (hn >> 16);
            acc_lo += cb * (hn & 0xFFFF);
        }
        /* y = sat8((acc m_y + q_u m_D 2^sh_D + 2^(sh_y-1)) >> sh_y), acc = acc_hi 2^16 + acc_lo, modulo 2^64 */
        __m512i tot[2];
        for (int32_t hf = 0; hf < 2; ++hf) {
            __m512i ah = hf ? hi8((__m512i)acc_hi) : lo8((__m512i)acc_hi);
            __m512i al = hf ? hi8((__m512i)acc_lo) : lo8((__m512i)acc_lo);
            __m512i u64 = hf ? hi8(qu) : lo8(qu);
            __m512i acc = _mm512_add_epi64(_mm512_slli_epi64(ah, 16), al);
            __m512i v = _mm512_add_epi64(_mm512_mullo_epi64(acc, _mm512_loadu_si512(m_y + 8 * hf)),
                                         _mm512_mullo_epi64(u64, _mm512_loadu_si512(m_dd + 8 * hf)));
            v = _mm512_add_epi64(v, _mm512_loadu_si512(half_y + 8 * hf));
            tot[hf] = _mm512_srav_epi64(v, _mm512_loadu_si512(sh_y + 8 * hf));
        }
        __m128i y8 = _mm_unpacklo_epi64(_mm512_cvtsepi64_epi8(tot[0]), _mm512_cvtsepi64_epi8(tot[1]));
        _mm_mask_storeu_epi8(io->y + t * io->ys + d0, valid, y8);
    }
    for (int32_t L = 0; L < nb; ++L)
        for (int32_t n = 0; n < ds; ++n)
            lane[L].h[n] = hT[n * BLK + L];
}
#endif

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
#if defined(__AVX2__)
    int32_t ptab[EF_EXP2_TABLE_SIZE - 1];
    int32_t one_vec = EF_SCAN_MASKED ? k.ds >= 1 && k.ds <= EF_VW : k.ds == EF_VW;
    k.ptab = (k.ds % EF_VW == 0 || one_vec) && n_t > 0 && d1 > d0 && pack_table(k.tab, ptab) ? ptab : NULL;
#else
    k.ptab = NULL;  /* no vector ISA: the portable scalar steps */
#endif
#if defined(__AVX2__)
    const scan_io_t io = {u, delta, B, C, y, u_stride, delta_stride, bc_stride, y_stride, ts, dir, n_t};
#endif
    for (int32_t d = d0; d < d1; ++d) {
        chan_setup(&k, c, h, d);
        int32_t sh_y = c->sh_y[d];
        const scan_out_t o = {c->m_y[d], (uint64_t)(int64_t)c->m_D[d] << c->sh_D[d],
                              sh_y > 0 ? (uint64_t)1 << (sh_y - 1) : 0, sh_y};
#if defined(EF_SCAN_BLOCKS)
        if (k.ptab != NULL && k.ds <= BLK_DS_MAX) {  /* channel blocks of 16 lanes (above) */
            int32_t nb = d1 - d < BLK ? d1 - d : BLK;
            blk_channels(&k, c, h, &io, d, nb);
            d += nb - 1;
            continue;
        }
#endif
#if defined(__AVX2__)
        if (k.ptab != NULL && one_vec) {
            vec_channel(&k, &io, d, &o);
            continue;
        }
#endif
        for (int32_t step = 0; step < n_t; ++step) {
            ptrdiff_t t = ts + (ptrdiff_t)dir * step;
            const int8_t *bt = B + t * bc_stride, *ct = C + t * bc_stride;
            int32_t qu = u[t * u_stride + d], qd = delta[t * delta_stride + d];
            int64_t acc = qd == 0 ? chan_hold(&k, ct) : chan_step(&k, qd, qd * qu, bt, ct);
            y[t * y_stride + d] = out_code(&o, acc, qu);
        }
    }
}
