/* AVX-512 helpers shared by the host kernel variants (firmware/kernels/host/): int8 requantization of 16 lanes. */
#ifndef EF_HOST_SIMD_H
#define EF_HOST_SIMD_H

#include <stdint.h>

#if defined(__AVX512F__)
#include <immintrin.h>

/* The 64-bit lanes of one requantization: m and sh sign-extended, rnd = 2^(sh-1) (0 for sh = 0). */
typedef struct {
    __m512i m_lo, m_hi, sh_lo, sh_hi, rnd_lo, rnd_hi;
} ef_rq16_t;

/* Per-lane m (int32) and sh (0..63) of 16 lanes; vpsllvq of 1 by sh - 1 = -1 (a count above 63) gives 0. */
static inline ef_rq16_t ef_rq16_setup(__m512i m, __m512i sh)
{
    ef_rq16_t q;
    const __m512i one = _mm512_set1_epi64(1);
    q.m_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(m));
    q.m_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(m, 1));
    q.sh_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sh));
    q.sh_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sh, 1));
    q.rnd_lo = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.sh_lo, one));
    q.rnd_hi = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.sh_hi, one));
    return q;
}

/* ef_requant8(acc, m, sh) = sat8((acc m + 2^(sh-1)) >> sh) of 16 int32 lanes, in 64-bit lanes (vpmuldq: the
 * signed product of the low words), saturated by vpmovsqb; the 16 bytes in lane order. */
static inline __m128i ef_rq16(__m512i acc, const ef_rq16_t *q)
{
    __m512i a_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc));
    __m512i a_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1));
    __m512i p_lo = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(a_lo, q->m_lo), q->rnd_lo), q->sh_lo);
    __m512i p_hi = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(a_hi, q->m_hi), q->rnd_hi), q->sh_hi);
    return _mm_unpacklo_epi64(_mm512_cvtsepi64_epi8(p_lo), _mm512_cvtsepi64_epi8(p_hi));
}

/* 16 int8 at p sign-extended to int32 lanes. */
static inline __m512i ef_ld16_i8(const int8_t *p)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}
#endif

#endif
