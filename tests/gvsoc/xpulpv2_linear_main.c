/* GVSoC program of tests/gvsoc/test_xpulpv2.py: the Xpulpv2 linear kernels (firmware/kernels/xpulpv2/ef_linear.c)
 * against the portable ones (firmware/kernels/ef_linear.c, built with its symbols renamed ref_*) on the same
 * pseudo-random inputs: every weight code, odd and chunk-edge n_in, sub-ranges of tokens and rows, row strides,
 * with and without bias, int8 and int32 outputs. The whole output buffer is compared (so a write outside the range
 * is caught too). Then femba-sized calls with the data in L1 report cycles of both kernels on one core.
 * Prints one XP_BAD line per failing case, XP_BENCH lines, and `XP_DONE cases=N bad=M`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pulp.h"

#include "ef_kernels.h"

void ref_ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in, const uint8_t *w, int32_t w_bits,
                      const int32_t *bias, const int32_t *m, const int32_t *sh, int8_t *y, int32_t y_stride,
                      int32_t t0, int32_t t1, int32_t o0, int32_t o1);
void ref_ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in, const uint8_t *w, int32_t w_bits,
                           const int32_t *bias, int32_t *y, int32_t y_stride, int32_t t0, int32_t t1, int32_t o0,
                           int32_t o1);

#define L1 __attribute__((section(".data_l1")))
#define MAX_T 21
#define MAX_TQ 40 /* tokens of quad_case: up to 10 quads */
#define MAX_O 11
#define B_O 22 /* rows of the largest bench call (fill_params fills its parameters too) */
#define MAX_X (MAX_TQ * 410)
#define MAX_W (MAX_O * 410)

static uint32_t rng = 0x12345678u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int8_t xs_[MAX_X];
static uint8_t ws_[MAX_W];
static int32_t bias_[B_O], m_[B_O], sh_[B_O];
static int32_t yr_[MAX_TQ * (MAX_O + 5)], yv_[MAX_TQ * (MAX_O + 5)];

/* m15: multipliers as the tiled runner widens its 15-bit ones (m15 2^16, the variant's one-p.mac requantization
 * when the sums are small enough), else any Q31 multiplier */
static void fill_params(int32_t n_out, int32_t sh_lo, int32_t sh_span, int32_t m15)
{
    for (int32_t o = 0; o < n_out; ++o) {
        bias_[o] = (int32_t)(rnd() % 20001u) - 10000;
        m_[o] = m15 ? (int32_t)((0x4000u | (rnd() & 0x3FFFu)) << 16) : (int32_t)(0x40000000u | (rnd() & 0x3FFFFFFFu));
        sh_[o] = sh_lo + (int32_t)(rnd() % (uint32_t)sh_span);
    }
}

static int32_t bad_count(const int32_t *a, const int32_t *b, int32_t n)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < n; ++i)
        bad += a[i] != b[i];
    return bad;
}

static const int32_t BITS[4] = {2, 4, 8, EF_TERNARY};
/* 400 / 401: one and two decoded chunks of the variant (XP_KC 400) */
static const int32_t N_IN[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 19, 20, 21, 25, 57, 88, 119, 120, 121, 241, 385, 400, 401};
#define N_NIN ((int32_t)(sizeof N_IN / sizeof N_IN[0]))
#define REPEAT 3
#define SHORT_REPEAT 24 /* short_case calls per bit width and n_in 1..8 */

/* Random x (T rows of stride xs) and O weight rows. */
static void fill_data(int32_t bits, int32_t n_in, int32_t T, int32_t xs, int32_t O)
{
    for (int32_t i = 0; i < T * xs; ++i)
        xs_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < O * ef_row_bytes(n_in, bits); ++i)
        ws_[i] = (uint8_t)rnd();
}

/* Both kernels over tokens [t0, t1) and rows [o0, o1) of the data and parameters filled: the number of differing
 * output words (0 = bit-exact). */
static int32_t compare(int32_t bits, int32_t n_in, int32_t T, int32_t O, int32_t xs, int32_t ys, int32_t t0,
                       int32_t t1, int32_t o0, int32_t o1, int32_t acc, int32_t with_bias)
{
    int32_t n_y = T * ys, bad;
    for (int32_t i = 0; i < n_y; ++i)
        yr_[i] = yv_[i] = (int32_t)0xA5A5A5A5u;
    if (acc) {
        ref_ef_linear_acc_i32(xs_, xs, n_in, ws_, bits, with_bias ? bias_ : NULL, yr_, ys, t0, t1, o0, o1);
        ef_linear_acc_i32(xs_, xs, n_in, ws_, bits, with_bias ? bias_ : NULL, yv_, ys, t0, t1, o0, o1);
    } else {
        ref_ef_linear_i8(xs_, xs, n_in, ws_, bits, with_bias ? bias_ : NULL, m_, sh_, (int8_t *)yr_, ys, t0, t1,
                         o0, o1);
        ef_linear_i8(xs_, xs, n_in, ws_, bits, with_bias ? bias_ : NULL, m_, sh_, (int8_t *)yv_, ys, t0, t1, o0, o1);
    }
    bad = bad_count(yr_, yv_, n_y);
    if (bad)
        printf("XP_BAD bits=%d n_in=%d T=%d O=%d xs=%d ys=%d t=[%d,%d) o=[%d,%d) acc=%d bias=%d words=%d\n", (int)bits,
               (int)n_in, (int)T, (int)O, (int)xs, (int)ys, (int)t0, (int)t1, (int)o0, (int)o1, (int)acc,
               (int)with_bias, (int)bad);
    return bad;
}

/* One random case: returns the number of differing output words (0 = bit-exact). */
static int32_t one_case(int32_t bits, int32_t n_in, int32_t k)
{
    int32_t T = 1 + (int32_t)(rnd() % MAX_T), O = 1 + (int32_t)(rnd() % MAX_O);
    int32_t xs = n_in + (int32_t)(rnd() % 6), ys = O + (int32_t)(rnd() % 5);
    int32_t t0 = (int32_t)(rnd() % (uint32_t)T), t1 = t0 + 1 + (int32_t)(rnd() % (uint32_t)(T - t0));
    int32_t o0 = (int32_t)(rnd() % (uint32_t)O), o1 = o0 + 1 + (int32_t)(rnd() % (uint32_t)(O - o0));
    if (k == 0) { /* the whole buffer once per shape */
        t0 = 0, t1 = T, o0 = 0, o1 = O;
    }
    fill_data(bits, n_in, T, xs, O);
    fill_params(O, bits == 8 ? 36 : 30, 14, (int32_t)(rnd() & 1u));
    return compare(bits, n_in, T, O, xs, ys, t0, t1, o0, o1, k & 1, (k % 3) != 2);
}

/* The variant's short rows (n_in <= 8): ranges of 1..3 tokens and ranges ending at the buffer's last token (whose
 * inputs the word loads must not pass), strides equal to n_in, odd row ranges, shifts from 17 to 62 (every
 * requantization form and the generic one), negative multipliers; mostly int8 outputs. */
static const int32_t SH_LO[5] = {17, 26, 31, 40, 49};
static int32_t short_case(int32_t bits, int32_t n_in, int32_t k)
{
    int32_t T = 1 + (int32_t)(rnd() % 8), O = 1 + (int32_t)(rnd() % MAX_O);
    int32_t xs = (k & 1) ? n_in : n_in + 1 + (int32_t)(rnd() % 4), ys = O + (int32_t)(rnd() % 3);
    int32_t few = (k & 2) && T > 3 ? 3 : T, nt = 1 + (int32_t)(rnd() % (uint32_t)few);
    int32_t t1 = (k % 3) ? T : nt + (int32_t)(rnd() % (uint32_t)(T - nt + 1)), t0 = t1 - nt;
    int32_t o0 = (int32_t)(rnd() % (uint32_t)O), o1 = o0 + 1 + (int32_t)(rnd() % (uint32_t)(O - o0));
    int32_t m15 = (k >> 2) & 1;
    fill_data(bits, n_in, T, xs, O);
    fill_params(O, SH_LO[rnd() % 5u], 14, m15);
    for (int32_t o = 0; o < O; ++o)
        if (!m15 && (rnd() & 3u) == 0)
            m_[o] = -m_[o];
    return compare(bits, n_in, T, O, xs, ys, t0, t1, o0, o1, k % 5 == 4, k % 7 != 6);
}

/* The variant's whole-quad loop (xp_quads: single-chunk rows of 9+ inputs, M15 and MULH forms): 1..10 quads,
 * ranges starting and ending on and off quad edges (and at the buffer's last token, where a row ending in 1..3
 * inputs takes them one by one), odd row ranges, strides equal to n_in or past it, every requantization form; the
 * M15 multipliers shrunk by 0..7 bits so that 4- and 8-bit rows take it too, and sums past 2^15 (its mul variant). */
static const int32_t QN_IN[] = {9, 12, 13, 88, 89, 385};
#define N_QNIN ((int32_t)(sizeof QN_IN / sizeof QN_IN[0]))
#define QUAD_REPEAT 8
static int32_t quad_case(int32_t bits, int32_t n_in, int32_t k)
{
    int32_t T = 1 + (int32_t)(rnd() % MAX_TQ), O = 1 + (int32_t)(rnd() % MAX_O);
    int32_t xs = (k & 1) ? n_in : n_in + 1 + (int32_t)(rnd() % 4), ys = O + (int32_t)(rnd() % 3);
    int32_t t0 = (k & 2) ? 4 * (int32_t)(rnd() % (uint32_t)((T + 3) / 4)) : (int32_t)(rnd() % (uint32_t)T); /* < T */
    int32_t t1 = (k % 3) ? T : t0 + 1 + (int32_t)(rnd() % (uint32_t)(T - t0));
    int32_t o0 = (int32_t)(rnd() % (uint32_t)O), o1 = o0 + 1 + (int32_t)(rnd() % (uint32_t)(O - o0));
    int32_t m15 = (k >> 2) & 1;
    fill_data(bits, n_in, T, xs, O);
    fill_params(O, SH_LO[rnd() % 5u], 14, m15);
    for (int32_t o = 0; o < O; ++o)
        if (m15)
            m_[o] = (m_[o] >> (rnd() % 8u)) & 0x7FFF0000;
    return compare(bits, n_in, T, O, xs, ys, t0, t1, o0, o1, k % 7 == 6, k % 5 != 4);
}

/* ---- femba-sized calls, data in L1 (as the tiled runner calls the kernel: 16 rows x all tokens of a tile) ---- */
#define B_X 32768
#define B_W 8192
#define B_Y (B_O * 80)
static L1 int8_t bx_[B_X];
static L1 uint8_t bw_[B_W];
static L1 int8_t byr_[B_Y], byv_[B_Y];
static L1 int32_t bb_[B_O], bm_[B_O], bsh_[B_O];

typedef struct {
    int32_t bits, n_in, rows, tokens;
} bench_t;

/* femba-mini (88; 6: dt_proj, also as a core's 22 of its 176 rows), femba-tiny (385, 1540, 25) inputs; 4: the fixed
 * cost per output; 236 / 237: an aligned and a misaligned x_stride of the same work */
static const bench_t BENCH[] = {
    {EF_TERNARY, 88, 16, 80},   {2, 88, 16, 80},   {EF_TERNARY, 385, 16, 80}, {2, 385, 16, 80}, {4, 385, 16, 80},
    {8, 385, 16, 80},           {EF_TERNARY, 1540, 16, 16}, {2, 1540, 16, 16}, {EF_TERNARY, 25, 16, 80},
    {2, 25, 16, 80},            {2, 4, 16, 80},    {2, 236, 16, 80},          {2, 237, 16, 80},
    {2, 6, 16, 80},             {2, 6, 22, 80},    {EF_TERNARY, 6, 22, 80}};
#define N_BENCH ((int32_t)(sizeof BENCH / sizeof BENCH[0]))

typedef struct {
    uint32_t cycles, instr, ld_stall, imiss;
} ctr_t;

static ctr_t counters(void)
{
    ctr_t c = {cpu_perf_get(CSR_PCER_CYCLES), cpu_perf_get(CSR_PCER_INSTR), cpu_perf_get(CSR_PCER_LD_STALL),
               cpu_perf_get(CSR_PCER_IMISS)};
    return c;
}

static int32_t bench(const bench_t *b)
{
    int32_t rb = ef_row_bytes(b->n_in, b->bits), bad = 0;
    ctr_t c0, c1, c2;
    for (int32_t i = 0; i < b->tokens * b->n_in; ++i)
        bx_[i] = (int8_t)rnd();
    for (int32_t i = 0; i < b->rows * rb; ++i)
        bw_[i] = (uint8_t)(b->bits == EF_TERNARY ? rnd() % 243u : rnd());
    fill_params(b->rows, b->bits == 8 ? 38 : 32, 8, 1); /* as the tiled runner passes its 15-bit multipliers */
    for (int32_t o = 0; o < b->rows; ++o)
        bb_[o] = bias_[o], bm_[o] = m_[o], bsh_[o] = sh_[o];
    c0 = counters();
    ref_ef_linear_i8(bx_, b->n_in, b->n_in, bw_, b->bits, bb_, bm_, bsh_, byr_, b->rows, 0, b->tokens, 0, b->rows);
    c1 = counters();
    ef_linear_i8(bx_, b->n_in, b->n_in, bw_, b->bits, bb_, bm_, bsh_, byv_, b->rows, 0, b->tokens, 0, b->rows);
    c2 = counters();
    for (int32_t i = 0; i < b->rows * b->tokens; ++i)
        bad += byr_[i] != byv_[i];
    printf("XP_BENCH bits=%d n_in=%d rows=%d tokens=%d row_bytes=%d portable=%u xpulpv2=%u cycles"
           " (xpulpv2: %u instructions, %u load stalls, %u fetch stalls) bad=%d\n",
           (int)b->bits, (int)b->n_in, (int)b->rows, (int)b->tokens, (int)rb, (unsigned)(c1.cycles - c0.cycles),
           (unsigned)(c2.cycles - c1.cycles), (unsigned)(c2.instr - c1.instr), (unsigned)(c2.ld_stall - c1.ld_stall),
           (unsigned)(c2.imiss - c1.imiss), (int)bad);
    return bad != 0;
}

static int test_main(void)
{
    int32_t cases = 0, bad = 0;
    if (hal_core_id() != 0)
        return 0;
    cpu_perf_conf_events(CSR_PCER_ALL_EVENTS_MASK);
    cpu_perf_setall(0);
    cpu_perf_start(0);
    for (int32_t b = 0; b < 4; ++b)
        for (int32_t n = 0; n < N_NIN; ++n)
            for (int32_t k = 0; k < REPEAT; ++k, ++cases)
                bad += one_case(BITS[b], N_IN[n], k) != 0;
    for (int32_t b = 0; b < 4; ++b)
        for (int32_t n = 1; n <= 8; ++n)
            for (int32_t k = 0; k < SHORT_REPEAT; ++k, ++cases)
                bad += short_case(BITS[b], n, k) != 0;
    for (int32_t b = 0; b < 4; ++b)
        for (int32_t n = 0; n < N_QNIN; ++n)
            for (int32_t k = 0; k < QUAD_REPEAT; ++k, ++cases)
                bad += quad_case(BITS[b], QN_IN[n], k) != 0;
    for (int32_t i = 0; i < N_BENCH; ++i, ++cases)
        bad += bench(&BENCH[i]);
    printf("XP_DONE cases=%d bad=%d\n", (int)cases, (int)bad);
    return bad != 0;
}

int main(void)
{
    cluster_start(0, test_main);
    return cluster_wait(0);
}
