/* Linear layer on int8 tokens with packed weight rows decoded a chunk at a time into two-lane words (portable). */
#include "ef_kernels.h"

/*
 * The reference path, written to be fast on a scalar 32-bit core without SIMD (rv32imc):
 *  - Two-lane words: rows o and o+1 share one int32 word per input k, p = w[o][k] + 65536 * w[o+1][k] (an exact
 *    integer), so x * p = x w[o][k] + 65536 x w[o+1][k]: one multiply and one add make two MACs.
 *  - Over a chunk of kc inputs the low-lane sum L = sum x w[o] stays inside (-2^15, 2^15) and the word sum
 *    A = L + 65536 H below 2^31 in magnitude, so A splits exactly: L = ((A + 2^15) mod 2^16) - 2^15,
 *    H = (A - L) / 65536. Chunk lengths (KC_*) keep both bounds: 2-bit |x w| <= 256, 64 * 256 < 2^15 and
 *    64 * 128 * (2 + 2 * 65536) < 2^31; ternary |x w| <= 128 (60 inputs); 4-bit |x w| <= 1024, 28 * 1024 < 2^15
 *    and 28 * 128 * (8 + 8 * 65536) < 2^31. 8-bit rows (|x w| <= 2^14) are used as stored, without lanes.
 *  - Decoding is branch-free bit arithmetic on two row bytes at once (one byte per lane), done once per chunk and
 *    reused by a block of up to EF_TB tokens; register blocking: 2 tokens x 2 words (4 outputs) per step.
 *  - Sums are integer (exact in any order): the same results as the plain sum_i x[t, i] * w[o, i].
 */

#define EF_TB 32       /* tokens that reuse one decoded chunk */
#define EF_KC_MAX 64   /* the largest chunk (2-bit) */
#define EF_RG 8        /* rows of the widest block (4 two-lane words) */

/* The dot products stay out of line: inlined into block_lanes, their sums and operands compete with the caller's
 * live values for registers and spill in the inner loop (rv32imc: 138 instead of 92 per 4 inputs of dot_2x4). */
#if defined(__GNUC__)
#define EF_DOT_FN static __attribute__((noinline))
#else
#define EF_DOT_FN static
#endif
#define KC_2 64
#define KC_T 60
#define KC_4 28

/* Base-3 digits of every byte, two bits each (digit k at bits 2k): a ternary weight is digit - 1. Bytes 243..255
 * never occur in a valid blob; they decode as zeros. */
static const uint16_t ef_t5_digits[256] = {
    0x000, 0x001, 0x002, 0x004, 0x005, 0x006, 0x008, 0x009, 0x00a, 0x010, 0x011, 0x012, 0x014, 0x015, 0x016, 0x018,
    0x019, 0x01a, 0x020, 0x021, 0x022, 0x024, 0x025, 0x026, 0x028, 0x029, 0x02a, 0x040, 0x041, 0x042, 0x044, 0x045,
    0x046, 0x048, 0x049, 0x04a, 0x050, 0x051, 0x052, 0x054, 0x055, 0x056, 0x058, 0x059, 0x05a, 0x060, 0x061, 0x062,
    0x064, 0x065, 0x066, 0x068, 0x069, 0x06a, 0x080, 0x081, 0x082, 0x084, 0x085, 0x086, 0x088, 0x089, 0x08a, 0x090,
    0x091, 0x092, 0x094, 0x095, 0x096, 0x098, 0x099, 0x09a, 0x0a0, 0x0a1, 0x0a2, 0x0a4, 0x0a5, 0x0a6, 0x0a8, 0x0a9,
    0x0aa, 0x100, 0x101, 0x102, 0x104, 0x105, 0x106, 0x108, 0x109, 0x10a, 0x110, 0x111, 0x112, 0x114, 0x115, 0x116,
    0x118, 0x119, 0x11a, 0x120, 0x121, 0x122, 0x124, 0x125, 0x126, 0x128, 0x129, 0x12a, 0x140, 0x141, 0x142, 0x144,
    0x145, 0x146, 0x148, 0x149, 0x14a, 0x150, 0x151, 0x152, 0x154, 0x155, 0x156, 0x158, 0x159, 0x15a, 0x160, 0x161,
    0x162, 0x164, 0x165, 0x166, 0x168, 0x169, 0x16a, 0x180, 0x181, 0x182, 0x184, 0x185, 0x186, 0x188, 0x189, 0x18a,
    0x190, 0x191, 0x192, 0x194, 0x195, 0x196, 0x198, 0x199, 0x19a, 0x1a0, 0x1a1, 0x1a2, 0x1a4, 0x1a5, 0x1a6, 0x1a8,
    0x1a9, 0x1aa, 0x200, 0x201, 0x202, 0x204, 0x205, 0x206, 0x208, 0x209, 0x20a, 0x210, 0x211, 0x212, 0x214, 0x215,
    0x216, 0x218, 0x219, 0x21a, 0x220, 0x221, 0x222, 0x224, 0x225, 0x226, 0x228, 0x229, 0x22a, 0x240, 0x241, 0x242,
    0x244, 0x245, 0x246, 0x248, 0x249, 0x24a, 0x250, 0x251, 0x252, 0x254, 0x255, 0x256, 0x258, 0x259, 0x25a, 0x260,
    0x261, 0x262, 0x264, 0x265, 0x266, 0x268, 0x269, 0x26a, 0x280, 0x281, 0x282, 0x284, 0x285, 0x286, 0x288, 0x289,
    0x28a, 0x290, 0x291, 0x292, 0x294, 0x295, 0x296, 0x298, 0x299, 0x29a, 0x2a0, 0x2a1, 0x2a2, 0x2a4, 0x2a5, 0x2a6,
    0x2a8, 0x2a9, 0x2aa, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155, 0x155,
};

static int32_t chunk_len(int32_t bits)
{
    return bits == EF_TERNARY ? KC_T : (bits == 4 ? KC_4 : KC_2);
}

/*
 * Two-lane words of rows r0 (low lane) and r1 (high lane) for inputs [k0, k0 + kc), k0 at a byte boundary:
 * p[ws k] = r0[k0 + k] + 65536 r1[k0 + k] (ws: the words per input of the block, 2 or 4). c holds one byte of
 * each row (r1's 16 bits up); a field pair is cut with one mask and sign-extended in both lanes at once:
 * (f ^ 2^(b-1)) - 2^(b-1) per lane, as one subtraction. Words past kc (up to the byte's end) decode the row's
 * padding and are never read.
 */
static void decode_pair(const uint8_t *r0, const uint8_t *r1, int32_t bits, int32_t k0, int32_t kc, int32_t *p,
                        int32_t ws)
{
    if (bits == 2) {
        for (int32_t k = 0; k < kc; k += 4) {
            uint32_t c = (uint32_t)r0[(k0 + k) >> 2] | ((uint32_t)r1[(k0 + k) >> 2] << 16);
            for (int32_t j = 0; j < 4; ++j, p += ws, c >>= 2)
                p[0] = (int32_t)((c & 0x00030003u) ^ 0x00020002u) - 0x00020002;
        }
    } else if (bits == 4) {
        for (int32_t k = 0; k < kc; k += 2) {
            uint32_t c = (uint32_t)r0[(k0 + k) >> 1] | ((uint32_t)r1[(k0 + k) >> 1] << 16);
            p[0] = (int32_t)((c & 0x000F000Fu) ^ 0x00080008u) - 0x00080008;
            p[ws] = (int32_t)(((c >> 4) & 0x000F000Fu) ^ 0x00080008u) - 0x00080008;
            p += 2 * ws;
        }
    } else {  /* ternary: base-3 digits d = w + 1, five per byte */
        for (int32_t k = 0; k < kc; k += 5) {
            uint32_t c = (uint32_t)ef_t5_digits[r0[(k0 + k) / 5]] | ((uint32_t)ef_t5_digits[r1[(k0 + k) / 5]] << 16);
            for (int32_t j = 0; j < 5; ++j, p += ws, c >>= 2)
                p[0] = (int32_t)(c & 0x00030003u) - 0x00010001;
        }
    }
}

/* Lane split of a word sum A = L + 65536 H with |L| < 2^15: adds L to lo[0] and H to hi[0]. */
static void split_add(int32_t a, int32_t *lo, int32_t *hi)
{
    int32_t l = (int32_t)(((uint32_t)a + 32768u) & 0xFFFFu) - 32768;
    *lo += l;
    *hi += (a - l) >> 16;
}

/* One input k of the 2 tokens x 2 words block (words p[2k] rows 0-1, p[2k+1] rows 2-3). */
#define EF_STEP(j)                                                              \
    do {                                                                        \
        int32_t u_ = xa[j], v_ = xb[j], p_ = p[2 * (j)], q_ = p[2 * (j) + 1];   \
        a0 += u_ * p_;                                                          \
        a1 += u_ * q_;                                                          \
        b0 += v_ * p_;                                                          \
        b1 += v_ * q_;                                                          \
    } while (0)

/* Word sums over kc inputs of tokens xa, xb against the interleaved words p: acc = {a0, a1, b0, b1}. */
EF_DOT_FN void dot_2x2(const int8_t *xa, const int8_t *xb, const int32_t *p, int32_t kc, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    int32_t k = 0;
    for (; k + 4 <= kc; k += 4, xa += 4, xb += 4, p += 8) {
        EF_STEP(0);
        EF_STEP(1);
        EF_STEP(2);
        EF_STEP(3);
    }
    for (; k < kc; ++k, ++xa, ++xb, p += 2)
        EF_STEP(0);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}

/* One input k of the 2 tokens x 4 words block (words p[4k .. 4k+3]: rows 0-1, 2-3, 4-5, 6-7). */
#define EF_STEP4(j)                                                                 \
    do {                                                                            \
        int32_t u_ = xa[j], v_ = xb[j], p0_ = p[4 * (j)], p1_ = p[4 * (j) + 1];     \
        int32_t p2_ = p[4 * (j) + 2], p3_ = p[4 * (j) + 3];                         \
        a0 += u_ * p0_;                                                             \
        a1 += u_ * p1_;                                                             \
        a2 += u_ * p2_;                                                             \
        a3 += u_ * p3_;                                                             \
        b0 += v_ * p0_;                                                             \
        b1 += v_ * p1_;                                                             \
        b2 += v_ * p2_;                                                             \
        b3 += v_ * p3_;                                                             \
    } while (0)

/* Word sums over kc inputs of tokens xa, xb against 4 interleaved words per input: acc = {a0..a3, b0..b3}.
 * 2 tokens x 8 rows per input: 6 loads, 8 multiplies and 8 adds make 16 MACs (on rv32imc with -fsched-pressure
 * the 4-input body is 92 instructions for 64 MACs, against 104 for two dot_2x2 passes). */
EF_DOT_FN void dot_2x4(const int8_t *xa, const int8_t *xb, const int32_t *p, int32_t kc, int32_t acc[8])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    int32_t k = 0;
    for (; k + 4 <= kc; k += 4, xa += 4, xb += 4, p += 16) {
        EF_STEP4(0);
        EF_STEP4(1);
        EF_STEP4(2);
        EF_STEP4(3);
    }
    for (; k < kc; ++k, ++xa, ++xb, p += 4)
        EF_STEP4(0);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

/* tot[t - ta][j] += sum_k x[t, k] rows[j][k] for t in [ta, tb), j < 2 nw (nw two-lane words: 2 or 4), rows
 * packed at 2, 4 bits or ternary. */
static void block_lanes(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *const rows[EF_RG], int32_t bits,
                        int32_t nw, int32_t ta, int32_t tb, int32_t tot[][EF_RG])
{
    int32_t p[4 * EF_KC_MAX];  /* interleaved words; a chunk's last byte decodes at most to word nw * kmax - 1 */
    int32_t kmax = chunk_len(bits);
    for (int32_t k0 = 0; k0 < n_in; k0 += kmax) {
        int32_t kc = n_in - k0 < kmax ? n_in - k0 : kmax;
        for (int32_t j = 0; j < nw; ++j)
            decode_pair(rows[2 * j], rows[2 * j + 1], bits, k0, kc, p + j, nw);
        for (int32_t t = ta; t < tb; t += 2) {
            const int8_t *xa = x + (ptrdiff_t)t * xs + k0;
            int32_t two = t + 1 < tb, acc[8];
            if (nw == 4)
                dot_2x4(xa, two ? xa + xs : xa, p, kc, acc);
            else
                dot_2x2(xa, two ? xa + xs : xa, p, kc, acc);
            for (int32_t s = 0; s < 1 + two; ++s) {
                int32_t *r = tot[t + s - ta];
                for (int32_t j = 0; j < nw; ++j)
                    split_add(acc[s * nw + j], &r[2 * j], &r[2 * j + 1]);
            }
        }
    }
}

/* As block_lanes for 8-bit rows, read as stored: 2 tokens x 2 rows per step. */
static void block_w8(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *const rows[EF_RG],
                     int32_t ta, int32_t tb, int32_t tot[][EF_RG])
{
    for (int32_t t = ta; t < tb; t += 2) {
        const int8_t *xa = x + (ptrdiff_t)t * xs;
        int32_t two = t + 1 < tb;
        const int8_t *xb = two ? xa + xs : xa;
        for (int32_t j = 0; j < 4; j += 2) {
            const int8_t *w0 = (const int8_t *)rows[j], *w1 = (const int8_t *)rows[j + 1];
            int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
            for (int32_t k = 0; k < n_in; ++k) {
                int32_t u = xa[k], v = xb[k], p = w0[k], q = w1[k];
                a0 += u * p;
                a1 += u * q;
                b0 += v * p;
                b1 += v * q;
            }
            tot[t - ta][j] += a0;
            tot[t - ta][j + 1] += a1;
            if (two) {
                tot[t + 1 - ta][j] += b0;
                tot[t + 1 - ta][j + 1] += b1;
            }
        }
    }
}

/* Both entry points: sums for tokens [t0, t1) x rows [o0, o1) in blocks of EF_TB tokens x 8 rows (4 rows for
 * 8-bit weights and for the last rows), then requantized into y8 (m, sh) or stored with the bias into y32. A group
 * of fewer than 4 rows repeats its last row in the missing places and drops those sums. */
static void linear_core(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *w, int32_t bits,
                        const int32_t *bias, const int32_t *m, const int32_t *sh, int8_t *y8, int32_t *y32,
                        int32_t ys, int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    int32_t rb = ef_row_bytes(n_in, bits);
    int32_t tot[EF_TB][EF_RG];
    for (int32_t ta = t0; ta < t1; ta += EF_TB) {
        int32_t tb = t1 - ta < EF_TB ? t1 : ta + EF_TB;
        for (int32_t o = o0, g; o < o1; o += g) {
            g = bits != 8 && o1 - o >= EF_RG ? EF_RG : 4;
            int32_t no = o1 - o < g ? o1 - o : g;
            const uint8_t *rows[EF_RG];
            for (int32_t j = 0; j < g; ++j)
                rows[j] = w + (size_t)(o + (j < no ? j : no - 1)) * (size_t)rb;
            for (int32_t t = 0; t < tb - ta; ++t)
                for (int32_t j = 0; j < g; ++j)
                    tot[t][j] = 0;
            if (bits == 8)
                block_w8(x, xs, n_in, rows, ta, tb, tot);
            else
                block_lanes(x, xs, n_in, rows, bits, g / 2, ta, tb, tot);
            for (int32_t t = ta; t < tb; ++t)
                for (int32_t j = 0; j < no; ++j) {
                    int32_t acc = tot[t - ta][j] + (bias ? bias[o + j] : 0);
                    if (y8)
                        y8[(ptrdiff_t)t * ys + o + j] = ef_requant8(acc, m[o + j], sh[o + j]);
                    else
                        y32[(ptrdiff_t)t * ys + o + j] = acc;
                }
        }
    }
}

void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, m, sh, y, NULL, y_stride, t0, t1, o0, o1);
}

void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, NULL, NULL, NULL, y, y_stride, t0, t1, o0, o1);
}
