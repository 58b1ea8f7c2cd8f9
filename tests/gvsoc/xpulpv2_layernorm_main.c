/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 LayerNorm (firmware/kernels/xpulpv2/ef_layernorm.c)
 * against the portable one (firmware/kernels/ef_layernorm.c, renamed ref_*) on the same pseudo-random inputs:
 * channel counts 1..120 and 385, row strides and x / y offsets of every alignment, row sub-ranges, random, narrow and
 * constant rows (variance 0, eps 1: inv = 2^31, halved with its shift), eps, g_frac and gamma / beta of several
 * sizes. The whole output buffer is compared. Then a femba-tiny-sized call (one core's 10 tokens x 385 channels,
 * operands in L2) reports cycles. Prints XP_BAD lines, XP_BENCH lines and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                         int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0, int32_t r1);

#define MAX_B 5200
#define MAX_C 400

static uint32_t rng = 0x2468ACE1u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int8_t x_[MAX_B], yr_[MAX_B], yv_[MAX_B];
static int32_t g_[MAX_C], b_[MAX_C];

/* kind 0 random bytes, 1 narrow (-3..3), 2 constant rows, 3 mostly constant with a few outliers */
static void fill(int32_t kind, int32_t g_bits, int32_t b_bits)
{
    int8_t c = (int8_t)rnd();
    for (int32_t i = 0; i < MAX_B; ++i) {
        int8_t v = (int8_t)rnd();
        x_[i] = kind == 0 ? v : (kind == 1 ? (int8_t)(v % 4) : (kind == 2 || rnd() % 16u ? c : v));
        yr_[i] = yv_[i] = (int8_t)0x66;
    }
    for (int32_t i = 0; i < MAX_C; ++i) {
        g_[i] = (int32_t)(rnd() >> (32 - g_bits)) - (int32_t)(rnd() >> (32 - g_bits));
        b_[i] = (int32_t)(rnd() >> (32 - b_bits)) - (int32_t)(rnd() >> (32 - b_bits));
    }
}

static int32_t diff(void)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < MAX_B; ++i)
        bad += yr_[i] != yv_[i];
    return bad;
}

static int32_t one_case(int32_t k)
{
    int32_t C = k % 11 == 0 ? 385 : 1 + (int32_t)(rnd() % 120u), R = 1 + (int32_t)(rnd() % (C > 200 ? 10u : 30u));
    int32_t xs = C + (int32_t)(rnd() % 6u), ys = C + (int32_t)(rnd() % 6u);
    int32_t ox = (int32_t)(rnd() % 4u), oy = (int32_t)(rnd() % 4u);
    if (k & 4)
        xs = (xs + 3) & ~3, ox = 0;
    while (R * (xs > ys ? xs : ys) + 8 > MAX_B)
        --R;
    int32_t r0 = (int32_t)(rnd() % (uint32_t)R), r1 = r0 + 1 + (int32_t)(rnd() % (uint32_t)(R - r0));
    if (k % 3 == 0)
        r0 = 0, r1 = R;
    int32_t g_frac = k % 5 == 0 ? 8 + (int32_t)(rnd() % 22u) : 26;
    int64_t eps = k % 7 == 0 ? (int64_t)(rnd() % 100000u) : 1 + (int64_t)(rnd() % 4u);
    fill(k % 4, k % 5 == 0 ? 22 : 27, k % 3 == 0 ? 14 : 22);
    ref_ef_layernorm_i8(x_ + ox, xs, yr_ + oy, ys, C, eps, g_, b_, g_frac, r0, r1);
    ef_layernorm_i8(x_ + ox, xs, yv_ + oy, ys, C, eps, g_, b_, g_frac, r0, r1);
    int32_t bad = diff();
    if (bad)
        printf("XP_BAD layernorm k=%d C=%d R=%d xs=%d ys=%d ox=%d oy=%d r=[%d,%d) g_frac=%d bytes=%d\n", (int)k,
               (int)C, (int)R, (int)xs, (int)ys, (int)ox, (int)oy, (int)r0, (int)r1, (int)g_frac, (int)bad);
    return bad;
}

/* the bench call again with its operands copied to L1 (as the tiled runner stages a tile there) */
#define L1 __attribute__((section(".data_l1")))
static L1 int8_t x1_[10 * 385], y1_[10 * 385];
static L1 int32_t g1_[385], b1_[385];

static int32_t bench(void)
{
    uint32_t c0, c1, c2, c3, c4;
    fill(0, 27, 22);
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    ref_ef_layernorm_i8(x_, 385, yr_, 385, 385, 1, g_, b_, 26, 0, 10);
    c1 = cpu_perf_get(CSR_PCER_CYCLES);
    ef_layernorm_i8(x_, 385, yv_, 385, 385, 1, g_, b_, 26, 0, 10);
    c2 = cpu_perf_get(CSR_PCER_CYCLES);
    memcpy(x1_, x_, sizeof x1_);
    memcpy(g1_, g_, sizeof g1_);
    memcpy(b1_, b_, sizeof b1_);
    c3 = cpu_perf_get(CSR_PCER_CYCLES);
    ef_layernorm_i8(x1_, 385, y1_, 385, 385, 1, g1_, b1_, 26, 0, 10);
    c4 = cpu_perf_get(CSR_PCER_CYCLES);
    int32_t bad = diff();
    for (int32_t i = 0; i < 10 * 385; ++i)
        bad += y1_[i] != yv_[i];
    printf("XP_BENCH layernorm rows=10 channels=385 portable=%u xpulpv2=%u cycles (operands in L1: %u) bad=%d\n",
           (unsigned)(c1 - c0), (unsigned)(c2 - c1), (unsigned)(c4 - c3), (int)bad);
    return bad != 0;
}

/* femba-mini's LayerNorm share of one core (10 tokens x 88 channels, operands in L1): row statistics weigh more */
static int32_t bench_mini(void)
{
    uint32_t c0, c1, c2;
    fill(0, 27, 22);
    memcpy(x1_, x_, 10 * 88);
    memcpy(g1_, g_, 88 * sizeof(int32_t));
    memcpy(b1_, b_, 88 * sizeof(int32_t));
#ifdef XL_PROF
    { extern uint32_t xl_prof[6]; memset(xl_prof, 0, sizeof(uint32_t) * 6); }
#endif
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    ref_ef_layernorm_i8(x1_, 88, yr_, 88, 88, 1, g1_, b1_, 26, 0, 10);
    c1 = cpu_perf_get(CSR_PCER_CYCLES);
    ef_layernorm_i8(x1_, 88, y1_, 88, 88, 1, g1_, b1_, 26, 0, 10);
    c2 = cpu_perf_get(CSR_PCER_CYCLES);
    int32_t bad = 0;
    for (int32_t i = 0; i < 10 * 88; ++i)
        bad += y1_[i] != yr_[i];
#ifdef XL_PROF
    { extern uint32_t xl_prof[6]; printf("XL_PROF sums %u bitlen %u isqrt %u div %u setup %u elems %u\n", (unsigned)xl_prof[0], (unsigned)xl_prof[1], (unsigned)xl_prof[2], (unsigned)xl_prof[3], (unsigned)xl_prof[4], (unsigned)xl_prof[5]); }
#endif
    printf("XP_BENCH layernorm rows=10 channels=88 (L1) portable=%u xpulpv2=%u cycles bad=%d\n", (unsigned)(c1 - c0),
           (unsigned)(c2 - c1), (int)bad);
    return bad != 0;
}

#define N_CASES 160

static int test_main(void)
{
    int32_t cases = 0, bad = 0;
    if (hal_core_id() != 0)
        return 0;
    cpu_perf_conf_events(CSR_PCER_ALL_EVENTS_MASK);
    cpu_perf_setall(0);
    cpu_perf_start(0);
    for (int32_t k = 0; k < N_CASES; ++k, ++cases)
        bad += one_case(k) != 0;
    bad += bench();
    ++cases;
    bad += bench_mini();
    ++cases;
    printf("XP_DONE cases=%d bad=%d\n", (int)cases, (int)bad);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
