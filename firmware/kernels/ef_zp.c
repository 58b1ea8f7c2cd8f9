/* Kernels of asymmetric int8 activations (onnxruntime QDQ): sum, product, matrix product and row softmax with the
 * inputs' and output's zero points carried exactly (edgeflow/ir/ops_zp.py). */
#include "ef_kernels.h"

void ef_add_requant_zp_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                          int32_t S, int64_t C, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols)
{
    for (int32_t r = 0; r < n_rows; ++r) {
        for (int32_t c = 0; c < n_cols; ++c) {
            int64_t tot = C;
            for (int32_t j = 0; j < n_inputs; ++j)
                tot += (int64_t)xs[j][(ptrdiff_t)r * x_strides[j] + c] * (int64_t)M[j];
            y[(ptrdiff_t)r * y_stride + c] = ef_sat8(ef_rshift_round(tot, S));
        }
    }
}

void ef_mul_requant_zp_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh,
                          int32_t za, int32_t zb, int32_t zy)
{
    for (int32_t i = 0; i < n; ++i)
        y[i] = ef_requant8_zp(((int32_t)a[i] - za) * ((int32_t)b[i] - zb), m, sh, zy);
}

void ef_matmul_zp_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                     int32_t m, int32_t sh, int32_t za, int32_t zb, int32_t zy, int8_t *y, int32_t y_stride,
                     int32_t i0, int32_t i1, int32_t j0, int32_t j1)
{
    for (int32_t i = i0; i < i1; ++i) {
        const int8_t *ai = a + (ptrdiff_t)i * a_stride;
        for (int32_t j = j0; j < j1; ++j) {
            const int8_t *bj = b + (ptrdiff_t)j * b_sj;
            int32_t acc = 0;
            for (int32_t k = 0; k < K; ++k)
                acc += ((int32_t)ai[k] - za) * ((int32_t)bj[(ptrdiff_t)k * b_sk] - zb);
            y[(ptrdiff_t)i * y_stride + j] = ef_requant8_zp(acc, m, sh, zy);
        }
    }
}

void ef_softmax_rows_zp_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                           int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t zy, int32_t r0, int32_t r1)
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
            yr[j] = ef_requant8_zp(q, m, sh, zy);
        }
    }
}
