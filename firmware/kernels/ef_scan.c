/* Integer selective scan (one Mamba direction), the C port of edgeflow.quant.intscan.int_scan. */
#include "ef_kernels.h"

#define EF_STATE_MAX ((int64_t)2147483647)

/* ef_exp2_neg_q15 inlined for the scan's inner loop, returning early when the result is 0 (same values). */
static inline int32_t exp2_q15(int32_t e, int32_t frac_bits)
{
    int32_t k = e >> frac_bits;
    if (k >= 16)
        return 0;
    int32_t lo = frac_bits - 8;
    int32_t f = e & (int32_t)(((uint32_t)1 << frac_bits) - 1u);
    int32_t j = f >> lo;
    int32_t r = f & (int32_t)(((uint32_t)1 << lo) - 1u);
    int32_t t0 = ef_exp2_table_q15[j];
    int32_t v = t0 + (int32_t)ef_rshift_round((int64_t)(ef_exp2_table_q15[j + 1] - t0) * r, lo);
    return (int32_t)ef_rshift_round(v, k);
}

void ef_scan_i8(const ef_scan_consts_t *c,
                const int8_t *u, int32_t u_stride, const int8_t *delta, int32_t delta_stride,
                const int8_t *B, const int8_t *C, int32_t bc_stride,
                int8_t *y, int32_t y_stride, int32_t *h,
                int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse)
{
    int32_t ds = c->d_state;
    for (int32_t step = 0; step < t1 - t0; ++step) {
        int32_t t = reverse ? t1 - 1 - step : t0 + step;
        const int8_t *bt = B + (ptrdiff_t)t * bc_stride;
        const int8_t *ct = C + (ptrdiff_t)t * bc_stride;
        for (int32_t d = d0; d < d1; ++d) {
            int32_t qu = u[(ptrdiff_t)t * u_stride + d];
            int32_t qd = delta[(ptrdiff_t)t * delta_stride + d];
            const uint16_t *kad = c->ka + (ptrdiff_t)d * ds;
            int32_t *hd = h + (ptrdiff_t)d * ds;
            int32_t pud = qd * qu;                     /* |.| <= 127 * 128 */
            int64_t m_in = c->m_in[d];
            int32_t sh_in = c->sh_in[d];
            /* the D term u m_D 2^sh_D: |u m_D| < 2^22 in 32 bits, then shifted as unsigned (two's complement) */
            int64_t du = (int64_t)((uint64_t)(int64_t)(qu * (int32_t)c->m_D[d]) << c->sh_D[d]);
            int64_t acc = 0;
            if (qd == 0) {  /* delta 0: dA = 1 and no injection, so h is unchanged (exactly, see intscan) */
                for (int32_t n = 0; n < ds; ++n)
                    acc += (int64_t)ct[n] * hd[n];
                int64_t tot0 = acc * (int64_t)c->m_y[d] + du;
                y[(ptrdiff_t)t * y_stride + d] = ef_sat8(ef_rshift_round(tot0, c->sh_y[d]));
                continue;
            }
            for (int32_t n = 0; n < ds; ++n) {
                int32_t da = exp2_q15(qd * (int32_t)kad[n], c->ka_frac);
                int64_t inj = ef_rshift_round((int64_t)(pud * (int32_t)bt[n]) * m_in, sh_in);
                int64_t hn = ef_rshift_round((int64_t)da * (int64_t)hd[n], 15) + inj;
                hn = hn > EF_STATE_MAX ? EF_STATE_MAX : (hn < -EF_STATE_MAX ? -EF_STATE_MAX : hn);
                hd[n] = (int32_t)hn;
                acc += (int64_t)ct[n] * hn;
            }
            int64_t tot = acc * (int64_t)c->m_y[d] + du;
            y[(ptrdiff_t)t * y_stride + d] = ef_sat8(ef_rshift_round(tot, c->sh_y[d]));
        }
    }
}
