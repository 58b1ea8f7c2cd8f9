/* int8 x int8 matrix product with int32 accumulation and per-tensor requantization (attention). */
#include "ef_kernels.h"

void ef_matmul_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                  int32_t m, int32_t sh, int8_t *y, int32_t y_stride,
                  int32_t i0, int32_t i1, int32_t j0, int32_t j1)
{
    for (int32_t i = i0; i < i1; ++i) {
        const int8_t *ai = a + (ptrdiff_t)i * a_stride;
        for (int32_t j = j0; j < j1; ++j) {
            const int8_t *bj = b + (ptrdiff_t)j * b_sj;
            int32_t acc = 0;
            for (int32_t k = 0; k < K; ++k)
                acc += (int32_t)ai[k] * (int32_t)bj[(ptrdiff_t)k * b_sk];
            y[(ptrdiff_t)i * y_stride + j] = ef_requant8(acc, m, sh);
        }
    }
}
