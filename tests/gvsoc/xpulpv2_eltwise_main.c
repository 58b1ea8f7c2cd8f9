/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 element-wise kernels (firmware/kernels/xpulpv2/
 * ef_eltwise.c) against the portable ones (firmware/kernels/ef_eltwise.c, symbols renamed ref_*) on the same
 * pseudo-random inputs: every length 0..40 and long ones, every alignment of x / a / b / y (same and different),
 * in place, tables at odd addresses, shifts inside and outside the fast ranges ([16, 46] and [33, 62] mul,
 * [17, 47] add), negative multipliers, 1..4 add inputs. The
 * whole output buffer is compared. Then femba-sized calls (one core's share, operands in L2) report cycles.
 * Prints XP_BAD lines, XP_BENCH lines and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
void ref_ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);
void ref_ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                           int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);
void ref_ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);

#define MAX_N 16400

static uint32_t rng = 0x13579BDFu;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int8_t a_[MAX_N + 8], b_[MAX_N + 8], yr_[MAX_N + 8], yv_[MAX_N + 8], lut_[260];

static int32_t diff(int32_t n)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < n; ++i)
        bad += yr_[i] != yv_[i];
    return bad;
}

static void fill(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; ++i)
        p[i] = (int8_t)rnd();
}

/* add_requant of 1..4 inputs (rows x cols from n), strides of any or word alignment, signed multipliers of any
 * size, shifts inside and outside the 32-bit range [17, 47]. */
static void add_case(int32_t n, int32_t oa, int32_t oy, int32_t k)
{
    n %= 200;
    int32_t n_in = 1 + (int32_t)(rnd() % 4u), rows = 1 + n / 13, cols = n % 13 + 1, S = 10 + (int32_t)(rnd() % 43u);
    int32_t ys = 13 + (int32_t)(rnd() % 4u), st[4], M[4];
    const int8_t *xs[4];
    for (int32_t j = 0; j < n_in; ++j) {
        st[j] = (k & 16) ? ys : 13 + (int32_t)(rnd() % 4u);
        xs[j] = (j & 1 ? b_ : a_) + 1024 * j + ((k & 8) ? oy : oa) + (j == 3 ? 4 : 0);
        M[j] = k % 5 == 0 ? (int32_t)rnd() : (int32_t)(rnd() >> 1) - (int32_t)(rnd() >> 1);
    }
    if (k % 7 == 0)
        S = 30;
    if (k % 3 == 1) { /* two or three word-aligned inputs, rows and y: the hardware-loop path (xe_add3_words) */
        n_in = 2 + (k / 3) % 2;
        ys = 16 + 4 * (int32_t)(rnd() % 3u);
        oy = 0;
        for (int32_t j = 0; j < n_in; ++j) {
            st[j] = j == 1 && (k & 32) ? -ys : ys;
            xs[j] = (j & 1 ? b_ : a_) + 1024 * j + (st[j] < 0 ? (rows - 1) * ys : 0);
        }
    }
    ref_ef_add_requant_i8(xs, st, M, n_in, S, yr_ + oy, ys, rows, cols);
    ef_add_requant_i8(xs, st, M, n_in, S, yv_ + oy, ys, rows, cols);
}

/* One case of kind 0 lut, 1 lut in place, 2 mul_requant, 3 mul_requant in place, 4 add_requant, 5 flip_rows. */
static int32_t one_case(int32_t k, int32_t n)
{
    int32_t kind = k % 6, oa = (int32_t)(rnd() % 4u), ob = (int32_t)(rnd() % 4u), oy = (int32_t)(rnd() % 4u);
    int32_t ol = (int32_t)(rnd() % 4u), m = (int32_t)rnd(), sh = 14 + (int32_t)(rnd() % 49u);
    if (k & 8)
        oa = ob = oy;
    fill(a_, MAX_N + 8);
    fill(b_, MAX_N + 8);
    fill(lut_, 260);
    fill(yr_, MAX_N + 8);
    memcpy(yv_, yr_, sizeof yv_);
    if (kind == 0) {
        ref_ef_lut_i8(a_ + oa, yr_ + oy, n, lut_ + ol);
        ef_lut_i8(a_ + oa, yv_ + oy, n, lut_ + ol);
    } else if (kind == 1) {
        memcpy(yv_, a_, sizeof yv_);
        memcpy(yr_, a_, sizeof yr_);
        ref_ef_lut_i8(yr_ + oy, yr_ + oy, n, lut_ + ol);
        ef_lut_i8(yv_ + oy, yv_ + oy, n, lut_ + ol);
    } else if (kind == 2) {
        ref_ef_mul_requant_i8(a_ + oa, b_ + ob, yr_ + oy, n, m, sh);
        ef_mul_requant_i8(a_ + oa, b_ + ob, yv_ + oy, n, m, sh);
    } else if (kind == 3) {
        memcpy(yv_, a_, sizeof yv_);
        memcpy(yr_, a_, sizeof yr_);
        ref_ef_mul_requant_i8(yr_ + oy, b_ + ob, yr_ + oy, n, m, sh);
        ef_mul_requant_i8(yv_ + oy, b_ + ob, yv_ + oy, n, m, sh);
    } else if (kind == 4) {
        add_case(n, oa, oy, k);
    } else {
        n %= 200;
        int32_t rows = 1 + n / 17, len = n % 17 + 1;
        if (k % 4 == 1) { /* word-aligned rows: the word-copy path */
            oa = oy = 0;
            len = (len + 3) & ~3;
        }
        ref_ef_flip_rows_i8(a_ + oa, yr_ + oy, rows, len);
        ef_flip_rows_i8(a_ + oa, yv_ + oy, rows, len);
    }
    int32_t bad = diff(MAX_N + 8);
    if (bad)
        printf("XP_BAD eltwise kind=%d n=%d oa=%d ob=%d oy=%d ol=%d m=%d sh=%d bytes=%d\n", (int)kind, (int)n, (int)oa,
               (int)ob, (int)oy, (int)ol, (int)m, (int)sh, (int)bad);
    return bad;
}

/* femba-tiny's per-core share of a LUT / gate call (123200 / 8 elements), operands in L2 like the arena's; kind 2:
 * one core's 10 tokens of the residual add of three inputs (385 channels, femba-tiny's S 30). */
static int32_t bench(int32_t kind)
{
    int32_t n = 15400, m = 1343488256, sh = 36;
    const int8_t *xs[3] = {a_, b_, a_ + 8000};
    int32_t st[3] = {385, 385, 385}, M[3] = {18273609, 809743441, -727876581};
    uint32_t c0, c1, c2;
    c0 = cpu_perf_get(CSR_PCER_CYCLES);
    if (kind == 1)
        ref_ef_mul_requant_i8(a_, b_, yr_, n, m, sh);
    else if (kind == 0)
        ref_ef_lut_i8(a_, yr_, n, lut_);
    else
        ref_ef_add_requant_i8(xs, st, M, 3, 30, yr_, 385, 10, 385);
    c1 = cpu_perf_get(CSR_PCER_CYCLES);
    if (kind == 1)
        ef_mul_requant_i8(a_, b_, yv_, n, m, sh);
    else if (kind == 0)
        ef_lut_i8(a_, yv_, n, lut_);
    else
        ef_add_requant_i8(xs, st, M, 3, 30, yv_, 385, 10, 385);
    c2 = cpu_perf_get(CSR_PCER_CYCLES);
    int32_t bad = diff(n);
    printf("XP_BENCH %s n=%d portable=%u xpulpv2=%u cycles bad=%d\n",
           kind == 1 ? "mul_requant" : (kind == 0 ? "lut" : "add_requant"), kind == 2 ? 3850 : (int)n,
           (unsigned)(c1 - c0), (unsigned)(c2 - c1), (int)bad);
    return bad != 0;
}

#define N_CASES 240

static int test_main(void)
{
    int32_t cases = 0, bad = 0;
    if (hal_core_id() != 0)
        return 0;
    cpu_perf_conf_events(CSR_PCER_ALL_EVENTS_MASK);
    cpu_perf_setall(0);
    cpu_perf_start(0);
    for (int32_t k = 0; k < N_CASES; ++k, ++cases)
        bad += one_case(k, k < 200 ? k % 41 : (int32_t)(rnd() % MAX_N)) != 0;
    for (int32_t r = 0; r < 3; ++r, ++cases)
        bad += bench(r);
    printf("XP_DONE cases=%d bad=%d\n", (int)cases, (int)bad);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
