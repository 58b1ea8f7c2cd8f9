/* Vector helpers of the host scan (firmware/kernels/host/ef_scan.c): int32 lanes as gcc vectors, AVX-512F or AVX2. */
#ifndef EF_SCAN_VEC_H
#define EF_SCAN_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define EF_VW 16  /* lanes: one zmm */
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));

static inline vi ld_i8(const int8_t *p)
{
    return (vi)_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline vi ld_u16(const uint16_t *p)
{
    return (vi)_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

static inline vi gather(const int32_t *t, vi j)
{
    return (vi)_mm512_i32gather_epi32((__m512i)j, (const void *)t, 4);
}

static inline vi vmax(vi a, vi b)
{
    return (vi)_mm512_max_epi32((__m512i)a, (__m512i)b);
}

/* (sum of a's lanes) 65536 + (sum of b's lanes), in int64: both halved to 8 lanes, then two vphaddd. */
static inline int64_t hsum2(vi a, vi b)
{
    __m256i a8 = _mm256_add_epi32(_mm512_castsi512_si256((__m512i)a), _mm512_extracti64x4_epi64((__m512i)a, 1));
    __m256i b8 = _mm256_add_epi32(_mm512_castsi512_si256((__m512i)b), _mm512_extracti64x4_epi64((__m512i)b, 1));
    __m256i t = _mm256_hadd_epi32(a8, b8);
    t = _mm256_hadd_epi32(t, t);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    return (int64_t)_mm_cvtsi128_si32(s) * 65536 + _mm_extract_epi32(s, 1);
}
#elif defined(__AVX2__)
#define EF_VW 8  /* lanes: one ymm */
typedef int32_t vi __attribute__((vector_size(32)));
typedef uint32_t vu __attribute__((vector_size(32)));

static inline vi ld_i8(const int8_t *p)
{
    return (vi)_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

static inline vi ld_u16(const uint16_t *p)
{
    return (vi)_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline vi gather(const int32_t *t, vi j)
{
    return (vi)_mm256_i32gather_epi32((const int *)t, (__m256i)j, 4);
}

static inline vi vmax(vi a, vi b)
{
    return (vi)_mm256_max_epi32((__m256i)a, (__m256i)b);
}

/* (sum of a's lanes) 65536 + (sum of b's lanes), in int64. */
static inline int64_t hsum2(vi a, vi b)
{
    __m256i t = _mm256_hadd_epi32((__m256i)a, (__m256i)b);  /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    t = _mm256_hadd_epi32(t, t);                               /* a0-3 b0-3 . . | a4-7 b4-7 . . */
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    return (int64_t)_mm_cvtsi128_si32(s) * 65536 + _mm_extract_epi32(s, 1);
}
#endif

/* A channel whose d_state fills lanes [0, ds) of one vector: loads and stores of those lanes (masked with AVX-512BW
 * and VL, so any d_state up to 16 stays in registers; otherwise only d_state == EF_VW, whole vectors). */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define EF_SCAN_MASKED 1
typedef __mmask16 lanes_t;
static inline vi ld_i8m(const int8_t *p, lanes_t m)
{
    return (vi)_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p));
}

static inline vi ld_u16m(const uint16_t *p, lanes_t m)
{
    return (vi)_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
}

static inline vi ld_hm(const int32_t *p, lanes_t m)
{
    return (vi)_mm512_maskz_loadu_epi32(m, p);
}

static inline void st_hm(int32_t *p, vi h, lanes_t m)
{
    _mm512_mask_storeu_epi32(p, m, (__m512i)h);
}
#elif defined(__AVX2__)
#define EF_SCAN_MASKED 0
typedef int32_t lanes_t;  /* unused: whole vectors */
#define ld_i8m(p, m) ld_i8(p)
#define ld_u16m(p, m) ld_u16(p)
static inline vi ld_hm(const int32_t *p, lanes_t m)
{
    vi h;
    (void)m;
    memcpy(&h, p, sizeof h);
    return h;
}

static inline void st_hm(int32_t *p, vi h, lanes_t m)
{
    (void)m;
    memcpy(p, &h, sizeof h);
}
#endif

#endif
