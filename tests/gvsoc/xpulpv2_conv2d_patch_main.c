/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 patch conv (firmware/kernels/xpulpv2/ef_conv2d_patch.c)
 * against the portable one (firmware/kernels/ef_conv2d_patch.c, renamed ref_*) on the same pseudo-random inputs:
 * patches (kh, kw) with kw a multiple of 4 or not, over 256 weights (the packed loop), 2 / 4 / 8-bit weights, x
 * offsets and strides of every alignment, token and channel sub-ranges, no / 16-bit / 32-bit addend, shifts on both
 * sides of ef_requant8_m15's split. The whole output buffer is compared. Then a femba-tiny-sized call (one core's 20
 * tokens x 35 channels x 11 rows, (2, 16) 8-bit patches) reports cycles.
 * Prints XP_BAD lines, XP_BENCH lines and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                            const uint8_t *w, int32_t w_bits, const int32_t *bias, const int16_t *addend16,
                            const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                            int8_t *y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1);

#define MAX_X 12000
#define MAX_Y 8000
#define MAX_E 40

static uint32_t rng = 0x1234ABCDu;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int8_t x_[MAX_X], yr_[MAX_Y], yv_[MAX_Y];
static uint8_t w_[MAX_E * 300];
static int32_t b_[MAX_E], a32_[MAX_Y];
static int16_t m_[MAX_E], a16_[MAX_Y];
static int8_t sh_[MAX_E];

/* sh_fast: every shift in [17, 46] (the one-mulh requantization for all channels: xc_patch_channels) */
static void fill(int32_t E, int32_t sh_fast)
{
    for (int32_t i = 0; i < MAX_X; ++i)
        x_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < MAX_E * 300; ++i)
        w_[i] = (uint8_t)rnd();
    for (int32_t i = 0; i < MAX_Y; ++i) {
        a32_[i] = (int32_t)(rnd() % 400001u) - 200000;
        a16_[i] = (int16_t)rnd();
        yr_[i] = yv_[i] = (int8_t)0x5A;
    }
    for (int32_t e = 0; e < E; ++e) {
        b_[e] = (int32_t)(rnd() % 200001u) - 100000;
        m_[e] = (int16_t)(rnd() % 32768u);
        sh_[e] = (int8_t)(rnd() % 4u == 0 ? 40 + rnd() % 12u : 14 + rnd() % 16u);
        if (sh_fast)
            sh_[e] = (int8_t)(17 + rnd() % 30u);
    }
}

static int32_t diff(void)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < MAX_Y; ++i)
        bad += yr_[i] != yv_[i];
    return bad;
}

static int32_t one_case(int32_t k)
{
    static const int32_t KH[] = {2, 1, 3, 2, 2}, KW[] = {16, 8, 5, 7, 140}, BITS[] = {8, 4, 2};
    int32_t kh = KH[k % 5], kw = KW[k % 5], bits = BITS[(k / 5) % 3], rows = 1 + (int32_t)(rnd() % 3u);
    int32_t E = 1 + (int32_t)(rnd() % MAX_E), L = 1 + (int32_t)(rnd() % (k % 5 == 4 ? 4u : 12u));
    int32_t xs = L * kw + (int32_t)(rnd() % 8u), ox = (int32_t)(rnd() % 4u);
    if (k & 8) /* aligned rows: the word loads of the patch */
        xs = (xs + 3) & ~3, ox = 0;
    int32_t ys = E * rows + (int32_t)(rnd() % 5u), as = E * rows + (int32_t)(rnd() % 3u);
    int32_t l0 = (int32_t)(rnd() % (uint32_t)L), l1 = l0 + 1 + (int32_t)(rnd() % (uint32_t)(L - l0));
    int32_t e0 = (int32_t)(rnd() % (uint32_t)E), e1 = e0 + 1 + (int32_t)(rnd() % (uint32_t)(E - e0));
    if (k % 3 == 0)
        l0 = 0, l1 = L, e0 = 0, e1 = E;
    const int16_t *a16 = k % 4 == 1 ? a16_ : NULL;
    const int32_t *a32 = k % 4 == 2 ? a32_ : NULL;
    fill(E, k % 2 == 1 && k % 5 == 0); /* with k & 8 and k % 4 == 1: femba's fast path */
    ref_ef_conv2d_patch_i8(x_ + ox, xs, rows, kh, kw, w_, bits, b_, a16, a32, as, m_, sh_, yr_, ys, l0, l1, e0, e1);
    ef_conv2d_patch_i8(x_ + ox, xs, rows, kh, kw, w_, bits, b_, a16, a32, as, m_, sh_, yv_, ys, l0, l1, e0, e1);
    int32_t bad = diff();
    if (bad)
        printf("XP_BAD patch k=%d kh=%d kw=%d bits=%d rows=%d E=%d L=%d xs=%d ox=%d l=[%d,%d) e=[%d,%d) bytes=%d\n",
               (int)k, (int)kh, (int)kw, (int)bits, (int)rows, (int)E, (int)L, (int)xs, (int)ox, (int)l0, (int)l1,
               (int)e0, (int)e1, (int)bad);
    return bad;
}

static int32_t bench(void)
{
    uint32_t c0, c1, c2;
    int32_t L = 20, E = 35, rows = 11, xs = 320;
    fill(E, 1);
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    ref_ef_conv2d_patch_i8(x_, xs, rows, 2, 16, w_, 8, b_, a16_, NULL, E * rows, m_, sh_, yr_, E * rows, 0, L, 0, E);
    c1 = cpu_perf_get(CSR_PCER_CYCLES);
    ef_conv2d_patch_i8(x_, xs, rows, 2, 16, w_, 8, b_, a16_, NULL, E * rows, m_, sh_, yv_, E * rows, 0, L, 0, E);
    c2 = cpu_perf_get(CSR_PCER_CYCLES);
    int32_t bad = diff();
    printf("XP_BENCH patch tokens=%d channels=%d rows=%d portable=%u xpulpv2=%u cycles bad=%d\n", (int)L, (int)E,
           (int)rows, (unsigned)(c1 - c0), (unsigned)(c2 - c1), (int)bad);
    return bad != 0;
}

#define N_CASES 150

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
    printf("XP_DONE cases=%d bad=%d\n", (int)cases, (int)bad);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
