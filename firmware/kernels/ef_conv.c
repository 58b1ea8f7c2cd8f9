/* General convolution: Conv1d / Conv2d, channel-first, padding with the input zero point, stride, dilation, groups, folded clamp. */
#include "ef_kernels.h"

/* Accumulator of output (o, oh, ow): bias + the taps of o's group that fall inside the input. */
static int32_t conv_acc(const ef_conv_geom_t *g, const int8_t *xg, const uint8_t *wr, int32_t w_bits,
                        int32_t cg, int32_t oh, int32_t ow, int32_t acc)
{
    int32_t ih0 = oh * g->stride_h - g->pad_t, iw0 = ow * g->stride_w - g->pad_l;
    int32_t k = 0;
    for (int32_t c = 0; c < cg; ++c) {
        const int8_t *xc = xg + (ptrdiff_t)c * g->h * g->w;
        for (int32_t i = 0; i < g->kh; ++i) {
            int32_t ih = ih0 + i * g->dil_h;
            if (ih < 0 || ih >= g->h) {
                for (int32_t j = 0; g->zp_in && j < g->kw; ++j)
                    acc += g->zp_in * ef_weight_at(wr, k + j, w_bits);
                k += g->kw;
                continue;
            }
            for (int32_t j = 0; j < g->kw; ++j, ++k) {
                int32_t iw = iw0 + j * g->dil_w;
                if (iw >= 0 && iw < g->w)
                    acc += (int32_t)xc[(ptrdiff_t)ih * g->w + iw] * ef_weight_at(wr, k, w_bits);
                else if (g->zp_in)
                    acc += g->zp_in * ef_weight_at(wr, k, w_bits);
            }
        }
    }
    return acc;
}

void ef_conv_i8(const ef_conv_geom_t *g, const int8_t *x, const uint8_t *w, int32_t w_bits,
                const int32_t *bias, const int32_t *m, const int32_t *sh, int32_t lo, int32_t hi,
                int8_t *y, int32_t o0, int32_t o1)
{
    int32_t cg = g->c_in / g->groups, og = g->c_out / g->groups;
    int32_t rb = ef_row_bytes(cg * g->kh * g->kw, w_bits);
    for (int32_t o = o0; o < o1; ++o) {
        const uint8_t *wr = w + (size_t)o * (size_t)rb;
        const int8_t *xg = x + (ptrdiff_t)(o / og) * cg * g->h * g->w;
        int8_t *yo = y + (ptrdiff_t)o * g->h_out * g->w_out;
        for (int32_t oh = 0; oh < g->h_out; ++oh) {
            for (int32_t ow = 0; ow < g->w_out; ++ow) {
                int32_t a = conv_acc(g, xg, wr, w_bits, cg, oh, ow, bias[o]);
                int32_t v = g->zp_out ? ef_requant8_zp(a, m[o], sh[o], g->zp_out) : ef_requant8_m15(a, m[o], sh[o]);
                yo[(ptrdiff_t)oh * g->w_out + ow] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
            }
        }
    }
}
