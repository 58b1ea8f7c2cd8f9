/* Patch embedding: Conv2d(1 -> E, kernel = stride = (kh, kw)) written in token layout, optional addend. */
#include "ef_kernels.h"

#define EF_PATCH_MAX 256  /* patches up to this many weights are decoded once per channel */

/* Sum over one patch (top-left xp) against the decoded weights wd (kh * kw). */
static int32_t patch_dot(const int8_t *xp, int32_t x_stride, int32_t kh, int32_t kw, const int8_t *wd)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < kh; ++i, xp += x_stride, wd += kw)
        for (int32_t j = 0; j < kw; ++j)
            acc += (int32_t)xp[j] * (int32_t)wd[j];
    return acc;
}

/* As patch_dot for patches larger than EF_PATCH_MAX, each weight read from the packed row. */
static int32_t patch_dot_packed(const int8_t *xp, int32_t x_stride, int32_t kh, int32_t kw, const uint8_t *wr,
                                int32_t bits)
{
    int32_t acc = 0, k = 0;
    for (int32_t i = 0; i < kh; ++i, xp += x_stride)
        for (int32_t j = 0; j < kw; ++j, ++k)
            acc += (int32_t)xp[j] * ef_weight_at(wr, k, bits);
    return acc;
}

void ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint8_t *w, int32_t w_bits, const int32_t *bias,
                        const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh,
                        int8_t *y, int32_t y_stride,
                        int32_t l0, int32_t l1, int32_t e0, int32_t e1)
{
    int32_t rb = ef_row_bytes(kh * kw, w_bits);
    int8_t wd[EF_PATCH_MAX];
    int decoded = kh * kw <= EF_PATCH_MAX;
    for (int32_t e = e0; e < e1; ++e) {
        const uint8_t *wr = w + (size_t)e * (size_t)rb;
        for (int32_t k = 0; decoded && k < kh * kw; ++k)  /* once per channel, reused by every patch */
            wd[k] = (int8_t)ef_weight_at(wr, k, w_bits);
        for (int32_t r = 0; r < n_rows; ++r) {
            int32_t f = e * n_rows + r;
            for (int32_t l = l0; l < l1; ++l) {
                const int8_t *xp = x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * kw;
                int32_t acc = bias[e] + (decoded ? patch_dot(xp, x_stride, kh, kw, wd)
                                                 : patch_dot_packed(xp, x_stride, kh, kw, wr, w_bits));
                if (addend16)
                    acc += addend16[(ptrdiff_t)l * addend_stride + f];
                else if (addend32)
                    acc += addend32[(ptrdiff_t)l * addend_stride + f];
                y[(ptrdiff_t)l * y_stride + f] = ef_requant8_m15(acc, m[e], sh[e]);
            }
        }
    }
}
