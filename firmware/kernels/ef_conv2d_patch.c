/* Patch embedding: Conv2d(1 -> E, kernel = stride = (kh, kw)) written in token layout, optional addend. */
#include "ef_kernels.h"

/* Weight element k of a packed row (bits 2, 4 or 8), sign-extended. */
static int32_t weight_at(const uint8_t *w, int32_t k, int32_t bits)
{
    if (bits == 8)
        return (int32_t)((const int8_t *)w)[k];
    if (bits == 4) {
        uint32_t f = ((uint32_t)w[k >> 1] >> (4 * (k & 1))) & 15u;
        return (int32_t)(f ^ 8u) - 8;
    }
    uint32_t f = ((uint32_t)w[k >> 2] >> (2 * (k & 3))) & 3u;
    return (int32_t)(f ^ 2u) - 2;
}

void ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint8_t *w, int32_t w_bits, const int32_t *bias,
                        const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh,
                        int8_t *y, int32_t y_stride,
                        int32_t l0, int32_t l1, int32_t e0, int32_t e1)
{
    int32_t rb = ef_row_bytes(kh * kw, w_bits);
    for (int32_t e = e0; e < e1; ++e) {
        const uint8_t *wr = w + (size_t)e * (size_t)rb;
        for (int32_t r = 0; r < n_rows; ++r) {
            int32_t f = e * n_rows + r;
            for (int32_t l = l0; l < l1; ++l) {
                const int8_t *xp = x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * kw;
                int32_t acc = bias[e];
                int32_t k = 0;
                for (int32_t i = 0; i < kh; ++i, xp += x_stride)
                    for (int32_t j = 0; j < kw; ++j, ++k)
                        acc += (int32_t)xp[j] * weight_at(wr, k, w_bits);
                if (addend16)
                    acc += addend16[(ptrdiff_t)l * addend_stride + f];
                else if (addend32)
                    acc += addend32[(ptrdiff_t)l * addend_stride + f];
                y[(ptrdiff_t)l * y_stride + f] = ef_requant8_m15(acc, m[e], sh[e]);
            }
        }
    }
}
