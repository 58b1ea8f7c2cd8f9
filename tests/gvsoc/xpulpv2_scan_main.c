/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 scan (firmware/kernels/xpulpv2/ef_scan.c) against the
 * portable one (firmware/kernels/ef_scan.c, built with its symbol renamed ref_ef_scan_i8) on the same
 * pseudo-random inputs: d_state 1..17, ka_frac 11..24, delta 0 (hold) and large (dA = 0), sh_in from 0 to 62 and
 * large m_in (int64 steps), states near +-2^31 (saturation), sh_y below and above 32, time and channel sub-ranges,
 * strides, both directions, the exp2 table passed or not. Every y byte and state word is compared (writes outside
 * the range are caught too). Then a femba-sized call (one core's 33 channels of a tile x 80 steps x 16 states, in
 * L1, and a femba-mini-sized one) reports the cycles of both kernels. Prints XP_BAD lines, XP_BENCH lines and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_scan_i8(const ef_scan_consts_t *c, const int8_t *u, int32_t u_stride, const int8_t *delta,
                    int32_t delta_stride, const int8_t *B, const int8_t *C, int32_t bc_stride, int8_t *y,
                    int32_t y_stride, int32_t *h, int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse);

#define L1 __attribute__((section(".data_l1")))
#define MAX_T 80
#define MAX_D 33
#define MAX_N 17
#define MAX_S (MAX_D + 3)

static uint32_t rng = 0x2468ACE1u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static L1 int8_t u_[MAX_T * MAX_S], dl_[MAX_T * MAX_S], bc_[MAX_T * (2 * MAX_N + 2) + 8];
static L1 int8_t yr_[MAX_T * MAX_S], yv_[MAX_T * MAX_S];
static L1 int32_t hr_[MAX_D * MAX_N], hv_[MAX_D * MAX_N];
static L1 uint16_t ka_[MAX_D * MAX_N];
static L1 int32_t m_in_[MAX_D];
static L1 int16_t m_y_[MAX_D], m_D_[MAX_D];
static L1 int8_t sh_in_[MAX_D], sh_D_[MAX_D], sh_y_[MAX_D];
static L1 int32_t tab_[EF_EXP2_TABLE_SIZE];

typedef struct {
    int32_t T, D, N, frac, us, ds, bcs, ys;
} shape_t;

/* Constants of channel d: kind 0 realistic (narrow steps), 1 any sh_in / m_in (int64 steps too), 2 saturating. */
static void fill_channel(int32_t d, int32_t n_st, int32_t frac, int32_t kind)
{
    uint32_t cap = 16u << frac > 65535u ? 65535u : 16u << frac;
    for (int32_t n = 0; n < n_st; ++n) {
        uint32_t v = rnd() % 8u == 0 ? cap : rnd() % (cap / (1u + rnd() % 64u) + 1u);
        ka_[d * n_st + n] = (uint16_t)v;
    }
    m_in_[d] = (int32_t)(0x40000000u | (rnd() & 0x3FFFFFFFu));
    sh_in_[d] = (int8_t)(20 + rnd() % 20u);
    if (kind == 1) {
        uint32_t w = rnd() % 6u;
        sh_in_[d] = (int8_t)(w == 0 ? 0 : (w == 1 ? 55 + rnd() % 8u : rnd() % 63u));
        m_in_[d] = w == 2 ? 0 : (w == 3 ? (int32_t)0x7FFFFFFF : m_in_[d]);
    }
    if (kind == 2)
        sh_in_[d] = (int8_t)(12 + rnd() % 16u);
    m_y_[d] = (int16_t)(rnd() % 32768u);
    m_D_[d] = (int16_t)((int32_t)(rnd() % 65536u) - 32768);
    /* kind 0 as the trained models (sh_D 26..35, sh_y 41..50); kind 1 also below 32 */
    sh_D_[d] = (int8_t)(kind == 0 ? 24 + rnd() % 14u : rnd() % 24u);
    sh_y_[d] = (int8_t)(kind == 2 ? 40 + rnd() % 16u : (kind == 0 ? 38 + rnd() % 14u : 20 + rnd() % 24u));
}

static void fill_inputs(const shape_t *s, int32_t kind)
{
    for (int32_t i = 0; i < s->T * s->us; ++i)
        u_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < s->T * s->ds; ++i) {
        uint32_t r = rnd();
        dl_[i] = (int8_t)(r % 5u == 0 ? 0 : (kind != 1 ? (r >> 8) % 48u : (r >> 8) % 128u));
    }
    for (int32_t i = 0; i < s->T * s->bcs; ++i)
        bc_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < s->T * s->ys; ++i)
        yr_[i] = yv_[i] = (int8_t)0x5A;
    for (int32_t i = 0; i < s->D * s->N; ++i) {
        uint32_t r = rnd();
        int32_t big = (int32_t)(0x7FF00000u | (r >> 12));
        hr_[i] = hv_[i] = kind == 2 && r % 3u == 0 ? (r & 1u ? big : -big) : (int32_t)r >> 8;
    }
}

static int32_t n_saturated; /* state words at +-(2^31 - 1) after a case: the saturation is exercised */

static int32_t compare(const shape_t *s)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < s->D * s->N; ++i)
        n_saturated += hr_[i] == 2147483647 || hr_[i] == -2147483647;
    for (int32_t i = 0; i < s->T * s->ys; ++i)
        bad += yr_[i] != yv_[i];
    for (int32_t i = 0; i < s->D * s->N; ++i)
        bad += hr_[i] != hv_[i];
    return bad;
}

/* One random case: returns the number of differing y bytes and state words (0 = bit-exact). */
static int32_t one_case(int32_t k)
{
    static const int32_t N_ST[] = {1, 2, 3, 4, 5, 16, 17};
    static const int32_t FRAC[] = {11, 12, 16, 20, 24};
    shape_t s;
    int32_t kind = k % 3, rev = (k >> 2) & 1;
    s.T = k % 7 == 3 ? MAX_T : 1 + (int32_t)(rnd() % 24u), s.D = 1 + (int32_t)(rnd() % 12u), s.N = N_ST[rnd() % 7u];
    s.frac = FRAC[rnd() % 5u];
    s.us = s.D + (int32_t)(rnd() % 3u), s.ds = s.D + (int32_t)(rnd() % 3u), s.ys = s.D + (int32_t)(rnd() % 3u);
    s.bcs = 2 * s.N + (int32_t)(rnd() % 3u);
    int32_t t0 = (int32_t)(rnd() % (uint32_t)s.T), t1 = t0 + 1 + (int32_t)(rnd() % (uint32_t)(s.T - t0));
    int32_t d0 = (int32_t)(rnd() % (uint32_t)s.D), d1 = d0 + 1 + (int32_t)(rnd() % (uint32_t)(s.D - d0));
    if (k % 5 == 0)
        t0 = 0, t1 = s.T, d0 = 0, d1 = s.D;
    for (int32_t d = 0; d < s.D; ++d)
        fill_channel(d, s.N, s.frac, kind);
    fill_inputs(&s, kind);
    ef_scan_consts_t c = {ka_, m_in_, sh_in_, m_y_, m_D_, sh_D_, sh_y_, s.frac, s.D, s.N, k & 2 ? tab_ : NULL};
    ref_ef_scan_i8(&c, u_, s.us, dl_, s.ds, bc_, bc_ + s.N, s.bcs, yr_, s.ys, hr_, t0, t1, d0, d1, rev);
    ef_scan_i8(&c, u_, s.us, dl_, s.ds, bc_, bc_ + s.N, s.bcs, yv_, s.ys, hv_, t0, t1, d0, d1, rev);
    int32_t bad = compare(&s);
    if (bad)
        printf("XP_BAD scan k=%d kind=%d T=%d D=%d N=%d frac=%d t=[%d,%d) d=[%d,%d) rev=%d words=%d\n", (int)k,
               (int)kind, (int)s.T, (int)s.D, (int)s.N, (int)s.frac, (int)t0, (int)t1, (int)d0, (int)d1, (int)rev,
               (int)bad);
    return bad;
}

/* A per-core share of a scan tile in L1, realistic constants: femba-tiny's 33 channels x 80 steps x 16 states
 * (ka_frac 16) and femba-mini's 22 channels x 80 steps x 8 states (ka_frac 20, as its second block). */
static int32_t bench(int32_t rev, int32_t n_d, int32_t n_st, int32_t frac)
{
    shape_t s = {MAX_T, n_d, n_st, frac, n_d, n_d, 2 * n_st, n_d};
    uint32_t c0, c1, c2, i1, i2, l1, l2, f1, f2, b1, b2;
    for (int32_t d = 0; d < s.D; ++d)
        fill_channel(d, s.N, s.frac, 0);
    fill_inputs(&s, 0);
    /* q_delta as the trained models' (femba-mini: 8..14 distinct values a channel over 80 steps, a quarter to a
     * half of the steps 0): per channel 12 values above a random base, 0 in one step of 5 */
    for (int32_t d = 0; d < s.D; ++d) {
        uint32_t base = 1u + rnd() % 40u;
        for (int32_t t = 0; t < s.T; ++t) {
            uint32_t r = rnd();
            dl_[t * s.ds + d] = (int8_t)(r % 5u == 0 ? 0 : base + (r >> 8) % 12u);
        }
    }
    for (int32_t i = 0; i < s.D * s.N; ++i)
        hr_[i] = hv_[i] = 0;
    ef_scan_consts_t c = {ka_, m_in_, sh_in_, m_y_, m_D_, sh_D_, sh_y_, s.frac, s.D, s.N, tab_};
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    ref_ef_scan_i8(&c, u_, s.us, dl_, s.ds, bc_, bc_ + s.N, s.bcs, yr_, s.ys, hr_, 0, s.T, 0, s.D, rev);
    c1 = cpu_perf_get(CSR_PCER_CYCLES), i1 = cpu_perf_get(CSR_PCER_INSTR), l1 = cpu_perf_get(CSR_PCER_LD_STALL);
    f1 = cpu_perf_get(CSR_PCER_IMISS), b1 = cpu_perf_get(CSR_PCER_TAKEN_BRANCH);
    ef_scan_i8(&c, u_, s.us, dl_, s.ds, bc_, bc_ + s.N, s.bcs, yv_, s.ys, hv_, 0, s.T, 0, s.D, rev);
    c2 = cpu_perf_get(CSR_PCER_CYCLES), i2 = cpu_perf_get(CSR_PCER_INSTR), l2 = cpu_perf_get(CSR_PCER_LD_STALL);
    f2 = cpu_perf_get(CSR_PCER_IMISS), b2 = cpu_perf_get(CSR_PCER_TAKEN_BRANCH);
    int32_t bad = compare(&s);
    printf("XP_BENCH scan channels=%d steps=%d states=%d ka_frac=%d reverse=%d portable=%u xpulpv2=%u cycles"
           " (xpulpv2: %u instructions, %u load stalls, %u fetch stalls, %u taken branches, %u cycles per state"
           " update) bad=%d\n", (int)s.D, (int)s.T, (int)s.N, (int)s.frac, (int)rev, (unsigned)(c1 - c0), (unsigned)(c2 - c1),
           (unsigned)(i2 - i1), (unsigned)(l2 - l1), (unsigned)(f2 - f1), (unsigned)(b2 - b1),
           (unsigned)((c2 - c1) / (uint32_t)(s.D * s.T * s.N)), (int)bad);
    return bad != 0;
}

#define N_CASES 400

static int test_main(void)
{
    int32_t cases = 0, bad = 0;
    if (hal_core_id() != 0)
        return 0;
    memcpy(tab_, ef_exp2_table_q15, sizeof tab_);
    cpu_perf_conf_events(CSR_PCER_ALL_EVENTS_MASK);
    cpu_perf_setall(0);
    cpu_perf_start(0);
    for (int32_t k = 0; k < N_CASES; ++k, ++cases)
        bad += one_case(k) != 0;
    for (int32_t r = 0; r < 2; ++r, ++cases)
        bad += bench(r, MAX_D, 16, 16);
#ifdef XS_PROF
    { extern uint32_t xs_prof[8]; memset(xs_prof, 0, sizeof(uint32_t) * 8); }
#endif
    for (int32_t r = 0; r < 2; ++r, ++cases)
        bad += bench(r, 22, 8, 20);
#ifdef XS_PROF
    {
        extern uint32_t xs_prof[8];
        printf("XS_PROF fill %u rec %u bound %u run %u out %u chan %u fast %u clear %u\n", (unsigned)xs_prof[0], (unsigned)xs_prof[1], (unsigned)xs_prof[2], (unsigned)xs_prof[3], (unsigned)xs_prof[4], (unsigned)xs_prof[5], (unsigned)xs_prof[6], (unsigned)xs_prof[7]);
    }
#endif
    printf("XP_DONE cases=%d bad=%d saturated=%d\n", (int)cases, (int)bad, (int)n_saturated);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
