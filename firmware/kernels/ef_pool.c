/* Max and average pooling, channel-first, with padding and requantization to the output scale. */
#include "ef_kernels.h"

#define POOL_FLOOR (-(1 << 20))   /* the max of a window without an in-bounds tap (ops_cnn.pool) */

void ef_pool_i8(const ef_pool_geom_t *g, const int8_t *x, const int32_t *m, const int32_t *sh, int8_t *y,
                int32_t c0, int32_t c1)
{
    for (int32_t c = c0; c < c1; ++c) {
        const int8_t *xc = x + (ptrdiff_t)c * g->h * g->w;
        int8_t *yc = y + (ptrdiff_t)c * g->h_out * g->w_out;
        for (int32_t oh = 0; oh < g->h_out; ++oh) {
            for (int32_t ow = 0; ow < g->w_out; ++ow) {
                int32_t ih0 = oh * g->stride_h - g->pad_t, iw0 = ow * g->stride_w - g->pad_l;
                int32_t acc = g->mode == EF_POOL_MAX ? POOL_FLOOR : 0, n = 0;
                for (int32_t i = 0; i < g->kh; ++i) {
                    int32_t ih = ih0 + i;
                    for (int32_t j = 0; j < g->kw; ++j) {
                        int32_t iw = iw0 + j;
                        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                            continue;
                        int32_t v = (int32_t)xc[(ptrdiff_t)ih * g->w + iw];
                        if (g->mode == EF_POOL_MAX)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                        ++n;
                    }
                }
                int32_t k = g->mode == EF_POOL_MAX ? 0 : (g->count_include_pad ? g->kh * g->kw : n);
                acc -= g->mode == EF_POOL_MAX ? g->zp_in : n * g->zp_in;
                yc[(ptrdiff_t)oh * g->w_out + ow] = g->zp_out ? ef_requant8_zp(acc, m[k], sh[k], g->zp_out)
                                                              : ef_requant8_m15(acc, m[k], sh[k]);
            }
        }
    }
}
