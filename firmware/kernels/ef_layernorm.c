/* Integer LayerNorm: exact mean/variance in integers, 1/sqrt by integer square root, folded gamma/beta. */
#include "ef_kernels.h"

/* floor(sqrt(v)) for v < 2^62, bit by bit. */
static uint64_t isqrt64(uint64_t v)
{
    uint64_t res = 0, bit = (uint64_t)1 << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= res + bit) {
            v -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

static int32_t bit_length(uint64_t v)
{
    int32_t n = 0;
    while (v) {
        v >>= 1;
        ++n;
    }
    return n;
}

void ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                     int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                     int32_t r0, int32_t r1)
{
    int32_t ysh = EF_LN_Z_FRAC + g_frac;
    int64_t bscale = (int64_t)1 << (ysh - EF_LN_B_FRAC);
    for (int32_t r = r0; r < r1; ++r) {
        const int8_t *xr = x + (ptrdiff_t)r * x_stride;
        int8_t *yr = y + (ptrdiff_t)r * y_stride;
        int32_t s = 0, q = 0;
        for (int32_t i = 0; i < n_ch; ++i) {
            s += xr[i];
            q += (int32_t)xr[i] * (int32_t)xr[i];
        }
        int64_t w = (int64_t)n_ch * q - (int64_t)s * s + eps_q;       /* = n_ch^2 (var + eps), >= 1 */
        int32_t k = (62 - bit_length((uint64_t)w)) / 2;
        uint64_t rt = isqrt64((uint64_t)w << (2 * k));                /* in [2^30, 2^31) */
        int64_t inv = (int64_t)(((uint64_t)1 << 61) / rt);           /* 2^(61-k) / sqrt(w) */
        int32_t zsh = 61 - k - EF_LN_Z_FRAC;
        for (int32_t i = 0; i < n_ch; ++i) {
            int64_t d = (int64_t)n_ch * xr[i] - s;
            int64_t z = ef_rshift_round(d * inv, zsh);
            yr[i] = ef_sat8(ef_rshift_round(z * g[i] + (int64_t)b[i] * bscale, ysh));
        }
    }
}
