/* Linear layer on int8 tokens with 2/4/8-bit packed weight rows, unpacked on the fly. */
#include "ef_kernels.h"

/* Sign-extend a b-bit two's complement field f: (f ^ 2^(b-1)) - 2^(b-1). */
#define EF_SX2(f) ((int32_t)((f) ^ 2u) - 2)
#define EF_SX4(f) ((int32_t)((f) ^ 8u) - 8)

static int32_t dot_w8(const int8_t *x, const uint8_t *w, int32_t n)
{
    const int8_t *ws = (const int8_t *)w;
    int32_t acc = 0;
    for (int32_t i = 0; i < n; ++i)
        acc += (int32_t)x[i] * (int32_t)ws[i];
    return acc;
}

static int32_t dot_w4(const int8_t *x, const uint8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t full = n >> 1;
    for (int32_t b = 0; b < full; ++b, x += 2) {
        uint32_t v = w[b];
        acc += (int32_t)x[0] * EF_SX4(v & 15u) + (int32_t)x[1] * EF_SX4(v >> 4);
    }
    if (n & 1)
        acc += (int32_t)x[0] * EF_SX4((uint32_t)w[full] & 15u);
    return acc;
}

static int32_t dot_w2(const int8_t *x, const uint8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t full = n >> 2;
    for (int32_t b = 0; b < full; ++b, x += 4) {
        uint32_t v = w[b];
        acc += (int32_t)x[0] * EF_SX2(v & 3u) + (int32_t)x[1] * EF_SX2((v >> 2) & 3u)
             + (int32_t)x[2] * EF_SX2((v >> 4) & 3u) + (int32_t)x[3] * EF_SX2(v >> 6);
    }
    uint32_t v = (n & 3) ? w[full] : 0u;
    for (int32_t k = 0; k < (n & 3); ++k)
        acc += (int32_t)x[k] * EF_SX2((v >> (2 * k)) & 3u);
    return acc;
}

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

#define EF_T5(c, k) ((int32_t)(((c) >> (2 * (k))) & 3u) - 1)

static int32_t dot_t5(const int8_t *x, const uint8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t full = n / 5;
    for (int32_t b = 0; b < full; ++b, x += 5) {
        uint32_t c = ef_t5_digits[w[b]];
        acc += (int32_t)x[0] * EF_T5(c, 0) + (int32_t)x[1] * EF_T5(c, 1) + (int32_t)x[2] * EF_T5(c, 2)
             + (int32_t)x[3] * EF_T5(c, 3) + (int32_t)x[4] * EF_T5(c, 4);
    }
    uint32_t c = (n % 5) ? ef_t5_digits[w[full]] : 0u;
    for (int32_t k = 0; k < n % 5; ++k)
        acc += (int32_t)x[k] * EF_T5(c, k);
    return acc;
}

/* Four tokens at once (rows x, x + xs, x + 2 xs, x + 3 xs) against one packed row: each weight is decoded once
 * for four multiply-accumulates. Same sums as four dot_row calls (integer adds in another order: exact). */
/* One weight wk against the four token rows at offset k (unrolled by the callers with constant k). */
#define EF_MAC4(k, wk)                                    \
    do {                                                  \
        int32_t w_ = (wk);                                \
        a0 += (int32_t)x0[k] * w_;                        \
        a1 += (int32_t)x1[k] * w_;                        \
        a2 += (int32_t)x2[k] * w_;                        \
        a3 += (int32_t)x3[k] * w_;                        \
    } while (0)

static void dot4_t5(const int8_t *x, int32_t xs, const uint8_t *w, int32_t n, int32_t acc[4])
{
    const int8_t *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t full = n / 5;
    for (int32_t b = 0; b < full; ++b, x0 += 5, x1 += 5, x2 += 5, x3 += 5) {
        uint32_t c = ef_t5_digits[w[b]];
        EF_MAC4(0, EF_T5(c, 0));
        EF_MAC4(1, EF_T5(c, 1));
        EF_MAC4(2, EF_T5(c, 2));
        EF_MAC4(3, EF_T5(c, 3));
        EF_MAC4(4, EF_T5(c, 4));
    }
    if (n % 5) {
        uint32_t c = ef_t5_digits[w[full]];
        for (int32_t k = 0; k < n % 5; ++k)
            EF_MAC4(k, EF_T5(c, k));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static void dot4_w2(const int8_t *x, int32_t xs, const uint8_t *w, int32_t n, int32_t acc[4])
{
    const int8_t *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t full = n >> 2;
    for (int32_t b = 0; b < full; ++b, x0 += 4, x1 += 4, x2 += 4, x3 += 4) {
        uint32_t v = w[b];
        EF_MAC4(0, EF_SX2(v & 3u));
        EF_MAC4(1, EF_SX2((v >> 2) & 3u));
        EF_MAC4(2, EF_SX2((v >> 4) & 3u));
        EF_MAC4(3, EF_SX2(v >> 6));
    }
    if (n & 3) {
        uint32_t v = w[full];
        for (int32_t k = 0; k < (n & 3); ++k)
            EF_MAC4(k, EF_SX2((v >> (2 * k)) & 3u));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Dot product of an int8 vector with one packed weight row (bits 2, 4, 8 or EF_TERNARY). */
static int32_t dot_row(const int8_t *x, const uint8_t *w, int32_t n, int32_t bits)
{
    if (bits == EF_TERNARY)
        return dot_t5(x, w, n);
    if (bits == 2)
        return dot_w2(x, w, n);
    if (bits == 4)
        return dot_w4(x, w, n);
    return dot_w8(x, w, n);
}

void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    int32_t rb = ef_row_bytes(n_in, w_bits);
    int quad = w_bits == EF_TERNARY || w_bits == 2;
    for (int32_t o = o0; o < o1; ++o) {
        const uint8_t *wr = w + (size_t)o * (size_t)rb;
        int32_t b = bias ? bias[o] : 0;
        int32_t t = t0;
        for (; quad && t + 4 <= t1; t += 4) {
            int32_t acc[4];
            if (w_bits == EF_TERNARY)
                dot4_t5(x + (ptrdiff_t)t * x_stride, x_stride, wr, n_in, acc);
            else
                dot4_w2(x + (ptrdiff_t)t * x_stride, x_stride, wr, n_in, acc);
            for (int32_t j = 0; j < 4; ++j)
                y[(ptrdiff_t)(t + j) * y_stride + o] = ef_requant8(acc[j] + b, m[o], sh[o]);
        }
        for (; t < t1; ++t) {
            int32_t acc = dot_row(x + (ptrdiff_t)t * x_stride, wr, n_in, w_bits) + b;
            y[(ptrdiff_t)t * y_stride + o] = ef_requant8(acc, m[o], sh[o]);
        }
    }
}

void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    int32_t rb = ef_row_bytes(n_in, w_bits);
    for (int32_t o = o0; o < o1; ++o) {
        const uint8_t *wr = w + (size_t)o * (size_t)rb;
        int32_t b = bias ? bias[o] : 0;
        for (int32_t t = t0; t < t1; ++t)
            y[(ptrdiff_t)t * y_stride + o] = dot_row(x + (ptrdiff_t)t * x_stride, wr, n_in, w_bits) + b;
    }
}
