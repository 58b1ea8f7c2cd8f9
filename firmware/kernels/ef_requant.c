/* Requantization of an int32 accumulator with an output zero point (asymmetric int8 activations). */
#include "ef_kernels.h"

void ef_requant_zp_i8(const int32_t *acc, int32_t rows, int32_t cols, const int32_t *m, const int32_t *sh,
                      int32_t zp, int8_t *y)
{
    for (int32_t t = 0; t < rows; ++t) {
        const int32_t *a = acc + (ptrdiff_t)t * cols;
        int8_t *yr = y + (ptrdiff_t)t * cols;
        for (int32_t o = 0; o < cols; ++o)
            yr[o] = ef_requant8_zp(a[o], m[o], sh[o], zp);
    }
}
