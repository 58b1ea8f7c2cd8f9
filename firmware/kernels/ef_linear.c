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

/* Dot product of an int8 vector with one packed weight row (bits 2, 4 or 8). */
static int32_t dot_row(const int8_t *x, const uint8_t *w, int32_t n, int32_t bits)
{
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
    for (int32_t o = o0; o < o1; ++o) {
        const uint8_t *wr = w + (size_t)o * (size_t)rb;
        int32_t b = bias ? bias[o] : 0;
        for (int32_t t = t0; t < t1; ++t) {
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
