/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 depthwise causal conv (firmware/kernels/xpulpv2/
 * ef_dwconv1d.c) against the portable one (firmware/kernels/ef_dwconv1d.c, renamed ref_*) on the same pseudo-random
 * inputs: K 3, 4, 5, channel and time sub-ranges (t0 below and above K-1), strides and x / y offsets of every
 * alignment, shifts inside and outside the one-mulh range, large biases. The whole output buffer is compared. Then
 * a femba-sized call (one core's 193 channels x 80 steps, operands in L2) reports cycles.
 * Prints XP_BAD lines, XP_BENCH lines and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K, const int32_t *bias,
                               const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t t0,
                               int32_t t1, int32_t c0, int32_t c1);

#define MAX_C 200
#define MAX_T 80
#define MAX_S (MAX_C + 8)

static uint32_t rng = 0x0BADCAFEu;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int8_t x_[MAX_T * MAX_S + 8], yr_[MAX_T * MAX_S + 8], yv_[MAX_T * MAX_S + 8], w_[MAX_C * 5];
static int32_t b_[MAX_C];
static int16_t m_[MAX_C];
static int8_t sh_[MAX_C];

/* trained: constants as the trained models' convs (taps within +-40, bias within +-40000, m in [2^14, 2^15),
 * sh 20..25), where (128 sum |w| + |b|) m + 2^(sh-1) < 2^31 mostly holds (the kernel's p.mac quads), not always */
static void fill(int32_t C, int32_t K, int32_t sh_lo, int32_t sh_span, int32_t trained)
{
    for (int32_t i = 0; i < MAX_T * MAX_S + 8; ++i)
        x_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < C * K; ++i)
        w_[i] = trained ? (int8_t)((int32_t)(rnd() % 81u) - 40) : (int8_t)rnd();
    for (int32_t c = 0; c < C; ++c) {
        b_[c] = rnd() % 4u == 0 ? (int32_t)rnd() >> 1 : (int32_t)(rnd() % 200001u) - 100000;
        m_[c] = (int16_t)(rnd() % 32768u);
        sh_[c] = (int8_t)(sh_lo + (int32_t)(rnd() % (uint32_t)sh_span));
        if (trained) {
            b_[c] = (int32_t)(rnd() % 80001u) - 40000;
            m_[c] = (int16_t)(16384 + rnd() % 16384u);
            sh_[c] = (int8_t)(20 + rnd() % 6u);
        }
    }
    for (int32_t i = 0; i < MAX_T * MAX_S + 8; ++i)
        yr_[i] = yv_[i] = (int8_t)0x3C;
}

static int32_t diff(void)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < MAX_T * MAX_S + 8; ++i)
        bad += yr_[i] != yv_[i];
    return bad;
}

static int32_t one_case(int32_t k)
{
    static const int32_t KS[] = {4, 4, 4, 3, 5};
    int32_t K = KS[k % 5], C = 1 + (int32_t)(rnd() % 40u), T = 1 + (int32_t)(rnd() % 30u);
    int32_t xs = C + (int32_t)(rnd() % 8u), ys = C + (int32_t)(rnd() % 8u), ox = (int32_t)(rnd() % 4u);
    int32_t oy = k & 8 ? ox : (int32_t)(rnd() % 4u);
    if (k & 16) /* word strides: the four-channel path */
        xs = (xs + 3) & ~3, ys = (ys + 3) & ~3;
    int32_t t0 = (int32_t)(rnd() % (uint32_t)T), t1 = t0 + 1 + (int32_t)(rnd() % (uint32_t)(T - t0));
    int32_t c0 = (int32_t)(rnd() % (uint32_t)C), c1 = c0 + 1 + (int32_t)(rnd() % (uint32_t)(C - c0));
    if (k % 3 == 0)
        t0 = 0, t1 = T, c0 = 0, c1 = C;
    fill(C, K, k % 7 == 0 ? 5 : 17, k % 7 == 0 ? 50 : 30, k % 4 == 1);
    ref_ef_dwconv1d_causal_i8(x_ + ox, xs, w_, K, b_, m_, sh_, yr_ + oy, ys, t0, t1, c0, c1);
    ef_dwconv1d_causal_i8(x_ + ox, xs, w_, K, b_, m_, sh_, yv_ + oy, ys, t0, t1, c0, c1);
    int32_t bad = diff();
    if (bad)
        printf("XP_BAD dwconv k=%d K=%d C=%d T=%d xs=%d ys=%d ox=%d oy=%d t=[%d,%d) c=[%d,%d) bytes=%d\n", (int)k,
               (int)K, (int)C, (int)T, (int)xs, (int)ys, (int)ox, (int)oy, (int)t0, (int)t1, (int)c0, (int)c1,
               (int)bad);
    return bad;
}

static int32_t bench(int32_t trained)
{
    uint32_t c0, c1, c2;
    fill(MAX_C, 4, 20, 12, trained);
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    ref_ef_dwconv1d_causal_i8(x_, MAX_C, w_, 4, b_, m_, sh_, yr_, MAX_C, 0, MAX_T, 3, 196);
    c1 = cpu_perf_get(CSR_PCER_CYCLES);
    ef_dwconv1d_causal_i8(x_, MAX_C, w_, 4, b_, m_, sh_, yv_, MAX_C, 0, MAX_T, 3, 196);
    c2 = cpu_perf_get(CSR_PCER_CYCLES);
    int32_t bad = diff();
    printf("XP_BENCH dwconv channels=193 steps=%d constants=%s portable=%u xpulpv2=%u cycles bad=%d\n", MAX_T,
           trained ? "trained" : "random", (unsigned)(c1 - c0), (unsigned)(c2 - c1), (int)bad);
    return bad != 0;
}

#define N_CASES 300

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
    for (int32_t tr = 0; tr < 2; ++tr, ++cases)
        bad += bench(tr);
    printf("XP_DONE cases=%d bad=%d\n", (int)cases, (int)bad);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
