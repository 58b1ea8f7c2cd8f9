/* Integer row softmax: exp2 of (row max - x) in Q15, int32 sum, one int64 reciprocal per row. */
#include "ef_kernels.h"

void ef_softmax_rows_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                        int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t r0, int32_t r1)
{
    for (int32_t r = r0; r < r1; ++r) {
        const int8_t *xr = x + (ptrdiff_t)r * x_stride;
        int8_t *yr = y + (ptrdiff_t)r * y_stride;
        int32_t mx = -128;
        for (int32_t j = 0; j < n; ++j)
            mx = xr[j] > mx ? xr[j] : mx;
        int32_t s = 0;
        for (int32_t j = 0; j < n; ++j)
            s += ef_exp2_neg_q15((mx - xr[j]) * ke, frac);
        int64_t rcp = (int64_t)(((uint64_t)1 << 46) / (uint64_t)s);   /* s >= 32768: rcp <= 2^31 */
        for (int32_t j = 0; j < n; ++j) {
            int32_t p = ef_exp2_neg_q15((mx - xr[j]) * ke, frac);
            int32_t q = (int32_t)ef_rshift_round((int64_t)p * rcp, 16);   /* Q30 probability */
            yr[j] = ef_requant8(q, m, sh);
        }
    }
}
