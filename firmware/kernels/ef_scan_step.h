/* The scalar step pieces of the integer scan shared by ef_scan.c and its variants that keep the portable scalar
 * path (host/ef_scan.c): exp2 interpolation, decay and the saturating add; the bounds are documented in ef_scan.c. */
#ifndef EF_SCAN_STEP_H
#define EF_SCAN_STEP_H

#include "ef_kernels.h"

#define EF_STATE_MAX 2147483647
#define EF_SCAN_Q_LIMIT (1 << 23)  /* narrow step: |Q| below this */
#define EF_SCAN_SH_MAX 54          /* narrow step: sh_in at most this */

/* 2^(-e / 2^frac) in Q15 (intmath.exp2_neg_fixed) in int32; lo = frac - 8, half = lo ? 2^(lo-1) : 0. */
static inline int32_t exp2_q15(const int32_t *tab, int32_t e, int32_t frac, int32_t lo, int32_t half)
{
    int32_t k = e >> frac;
    if (k >= 16)
        return 0;
    int32_t f = e & (int32_t)(((uint32_t)1 << frac) - 1u);
    int32_t j = f >> lo;
    int32_t r = f & (int32_t)(((uint32_t)1 << lo) - 1u);
    int32_t t0 = tab[j];
    int32_t v = t0 + (((tab[j + 1] - t0) * r + half) >> lo);
    return k ? (v + (1 << (k - 1))) >> k : v;
}

/* rs(da * h, 15) for 0 <= da <= 2^15, |h| <= 2^31 - 1, in int32 (see the bound above). */
static inline int32_t decay(int32_t da, int32_t h)
{
    return da * (h >> 15) + ((da * (h & 0x7FFF) + 16384) >> 15);
}

/* clip(a + b, -(2^31-1), 2^31-1) for int32 a, b, as the int64 sum would be clipped. */
static inline int32_t sat_add(int32_t a, int32_t b)
{
    int32_t s = (int32_t)((uint32_t)a + (uint32_t)b);
    if (((s ^ a) & (s ^ b)) < 0)
        return a < 0 ? -EF_STATE_MAX : EF_STATE_MAX;
    return s < -EF_STATE_MAX ? -EF_STATE_MAX : s;
}

#endif /* EF_SCAN_STEP_H */
