/* Linear layer, host variant: rows decoded to int8 once per call, dotted 32 inputs a step (VNNI / AVX2 / plain). */
#include <string.h>

#include "ef_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define EF_MASKED_TAIL 1  /* the last partial step loads x under a byte mask (zero-padded weights): no scalar tail */
#endif

/*
 * Same results as the portable firmware/kernels/ef_linear.c (integer sums, exact in any order), for the host CPU:
 *  - a group of 4 weight rows is decoded to int8 once per block of up to TB tokens and chunk of KC inputs;
 *  - with AVX-512 VNNI and BW: 4 tokens x 4 rows a pass, 64 inputs a step (16 zmm accumulators, vpdpbusd in
 *    place through inline asm, the last step under a byte mask);
 *  - otherwise 2 tokens x 4 rows a step, 32 inputs at a time: with AVX-512 VNNI (vpdpbusd) or AVX2 (vpmaddubsw,
 *    only for |w| <= 8 where its 16-bit pair sums cannot saturate);
 *  - the dot runs on u = x + 128 (an unsigned byte: x ^ 0x80), then sum x w = sum u w - 128 sum w, with sum w
 *    taken at decode; plain C loops without a vector ISA and for AVX2's tail;
 *  - the 8 sums of a step reduced as two 4-lane vectors (vphaddd), the 4 rows of a token requantized in 64-bit
 *    lanes (AVX-512VL: vpmuldq, vpsravq, vpmovsqb saturation; the scalar ef_requant8 otherwise).
 * Which path runs is fixed by the build flags (targets/host/target.toml: -march=native, the binary runs where it
 * is built); tests/c/test_kernel_variants_host.py checks each path against the portable kernels.
 */

#define TB 128    /* tokens per block */
#define KC 1920   /* inputs per chunk: a multiple of 32 and of 4, 2 and 5 elements per byte */

/* Packed byte -> its weights (element k of the byte first), as in ops.unpack_weights. */
static const int8_t w2_lanes[256][4] = {
    {0, 0, 0, 0}, {1, 0, 0, 0}, {-2, 0, 0, 0}, {-1, 0, 0, 0}, {0, 1, 0, 0}, {1, 1, 0, 0},
    {-2, 1, 0, 0}, {-1, 1, 0, 0}, {0, -2, 0, 0}, {1, -2, 0, 0}, {-2, -2, 0, 0}, {-1, -2, 0, 0},
    {0, -1, 0, 0}, {1, -1, 0, 0}, {-2, -1, 0, 0}, {-1, -1, 0, 0}, {0, 0, 1, 0}, {1, 0, 1, 0},
    {-2, 0, 1, 0}, {-1, 0, 1, 0}, {0, 1, 1, 0}, {1, 1, 1, 0}, {-2, 1, 1, 0}, {-1, 1, 1, 0},
    {0, -2, 1, 0}, {1, -2, 1, 0}, {-2, -2, 1, 0}, {-1, -2, 1, 0}, {0, -1, 1, 0}, {1, -1, 1, 0},
    {-2, -1, 1, 0}, {-1, -1, 1, 0}, {0, 0, -2, 0}, {1, 0, -2, 0}, {-2, 0, -2, 0}, {-1, 0, -2, 0},
    {0, 1, -2, 0}, {1, 1, -2, 0}, {-2, 1, -2, 0}, {-1, 1, -2, 0}, {0, -2, -2, 0}, {1, -2, -2, 0},
    {-2, -2, -2, 0}, {-1, -2, -2, 0}, {0, -1, -2, 0}, {1, -1, -2, 0}, {-2, -1, -2, 0}, {-1, -1, -2, 0},
    {0, 0, -1, 0}, {1, 0, -1, 0}, {-2, 0, -1, 0}, {-1, 0, -1, 0}, {0, 1, -1, 0}, {1, 1, -1, 0},
    {-2, 1, -1, 0}, {-1, 1, -1, 0}, {0, -2, -1, 0}, {1, -2, -1, 0}, {-2, -2, -1, 0}, {-1, -2, -1, 0},
    {0, -1, -1, 0}, {1, -1, -1, 0}, {-2, -1, -1, 0}, {-1, -1, -1, 0}, {0, 0, 0, 1}, {1, 0, 0, 1},
    {-2, 0, 0, 1}, {-1, 0, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 1}, {-2, 1, 0, 1}, {-1, 1, 0, 1},
    {0, -2, 0, 1}, {1, -2, 0, 1}, {-2, -2, 0, 1}, {-1, -2, 0, 1}, {0, -1, 0, 1}, {1, -1, 0, 1},
    {-2, -1, 0, 1}, {-1, -1, 0, 1}, {0, 0, 1, 1}, {1, 0, 1, 1}, {-2, 0, 1, 1}, {-1, 0, 1, 1},
    {0, 1, 1, 1}, {1, 1, 1, 1}, {-2, 1, 1, 1}, {-1, 1, 1, 1}, {0, -2, 1, 1}, {1, -2, 1, 1},
    {-2, -2, 1, 1}, {-1, -2, 1, 1}, {0, -1, 1, 1}, {1, -1, 1, 1}, {-2, -1, 1, 1}, {-1, -1, 1, 1},
    {0, 0, -2, 1}, {1, 0, -2, 1}, {-2, 0, -2, 1}, {-1, 0, -2, 1}, {0, 1, -2, 1}, {1, 1, -2, 1},
    {-2, 1, -2, 1}, {-1, 1, -2, 1}, {0, -2, -2, 1}, {1, -2, -2, 1}, {-2, -2, -2, 1}, {-1, -2, -2, 1},
    {0, -1, -2, 1}, {1, -1, -2, 1}, {-2, -1, -2, 1}, {-1, -1, -2, 1}, {0, 0, -1, 1}, {1, 0, -1, 1},
    {-2, 0, -1, 1}, {-1, 0, -1, 1}, {0, 1, -1, 1}, {1, 1, -1, 1}, {-2, 1, -1, 1}, {-1, 1, -1, 1},
    {0, -2, -1, 1}, {1, -2, -1, 1}, {-2, -2, -1, 1}, {-1, -2, -1, 1}, {0, -1, -1, 1}, {1, -1, -1, 1},
    {-2, -1, -1, 1}, {-1, -1, -1, 1}, {0, 0, 0, -2}, {1, 0, 0, -2}, {-2, 0, 0, -2}, {-1, 0, 0, -2},
    {0, 1, 0, -2}, {1, 1, 0, -2}, {-2, 1, 0, -2}, {-1, 1, 0, -2}, {0, -2, 0, -2}, {1, -2, 0, -2},
    {-2, -2, 0, -2}, {-1, -2, 0, -2}, {0, -1, 0, -2}, {1, -1, 0, -2}, {-2, -1, 0, -2}, {-1, -1, 0, -2},
    {0, 0, 1, -2}, {1, 0, 1, -2}, {-2, 0, 1, -2}, {-1, 0, 1, -2}, {0, 1, 1, -2}, {1, 1, 1, -2},
    {-2, 1, 1, -2}, {-1, 1, 1, -2}, {0, -2, 1, -2}, {1, -2, 1, -2}, {-2, -2, 1, -2}, {-1, -2, 1, -2},
    {0, -1, 1, -2}, {1, -1, 1, -2}, {-2, -1, 1, -2}, {-1, -1, 1, -2}, {0, 0, -2, -2}, {1, 0, -2, -2},
    {-2, 0, -2, -2}, {-1, 0, -2, -2}, {0, 1, -2, -2}, {1, 1, -2, -2}, {-2, 1, -2, -2}, {-1, 1, -2, -2},
    {0, -2, -2, -2}, {1, -2, -2, -2}, {-2, -2, -2, -2}, {-1, -2, -2, -2}, {0, -1, -2, -2}, {1, -1, -2, -2},
    {-2, -1, -2, -2}, {-1, -1, -2, -2}, {0, 0, -1, -2}, {1, 0, -1, -2}, {-2, 0, -1, -2}, {-1, 0, -1, -2},
    {0, 1, -1, -2}, {1, 1, -1, -2}, {-2, 1, -1, -2}, {-1, 1, -1, -2}, {0, -2, -1, -2}, {1, -2, -1, -2},
    {-2, -2, -1, -2}, {-1, -2, -1, -2}, {0, -1, -1, -2}, {1, -1, -1, -2}, {-2, -1, -1, -2}, {-1, -1, -1, -2},
    {0, 0, 0, -1}, {1, 0, 0, -1}, {-2, 0, 0, -1}, {-1, 0, 0, -1}, {0, 1, 0, -1}, {1, 1, 0, -1},
    {-2, 1, 0, -1}, {-1, 1, 0, -1}, {0, -2, 0, -1}, {1, -2, 0, -1}, {-2, -2, 0, -1}, {-1, -2, 0, -1},
    {0, -1, 0, -1}, {1, -1, 0, -1}, {-2, -1, 0, -1}, {-1, -1, 0, -1}, {0, 0, 1, -1}, {1, 0, 1, -1},
    {-2, 0, 1, -1}, {-1, 0, 1, -1}, {0, 1, 1, -1}, {1, 1, 1, -1}, {-2, 1, 1, -1}, {-1, 1, 1, -1},
    {0, -2, 1, -1}, {1, -2, 1, -1}, {-2, -2, 1, -1}, {-1, -2, 1, -1}, {0, -1, 1, -1}, {1, -1, 1, -1},
    {-2, -1, 1, -1}, {-1, -1, 1, -1}, {0, 0, -2, -1}, {1, 0, -2, -1}, {-2, 0, -2, -1}, {-1, 0, -2, -1},
    {0, 1, -2, -1}, {1, 1, -2, -1}, {-2, 1, -2, -1}, {-1, 1, -2, -1}, {0, -2, -2, -1}, {1, -2, -2, -1},
    {-2, -2, -2, -1}, {-1, -2, -2, -1}, {0, -1, -2, -1}, {1, -1, -2, -1}, {-2, -1, -2, -1}, {-1, -1, -2, -1},
    {0, 0, -1, -1}, {1, 0, -1, -1}, {-2, 0, -1, -1}, {-1, 0, -1, -1}, {0, 1, -1, -1}, {1, 1, -1, -1},
    {-2, 1, -1, -1}, {-1, 1, -1, -1}, {0, -2, -1, -1}, {1, -2, -1, -1}, {-2, -2, -1, -1}, {-1, -2, -1, -1},
    {0, -1, -1, -1}, {1, -1, -1, -1}, {-2, -1, -1, -1}, {-1, -1, -1, -1},
};
static const int8_t w4_lanes[256][2] = {
    {0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}, {6, 0}, {7, 0}, {-8, 0}, {-7, 0},
    {-6, 0}, {-5, 0}, {-4, 0}, {-3, 0}, {-2, 0}, {-1, 0}, {0, 1}, {1, 1}, {2, 1}, {3, 1},
    {4, 1}, {5, 1}, {6, 1}, {7, 1}, {-8, 1}, {-7, 1}, {-6, 1}, {-5, 1}, {-4, 1}, {-3, 1},
    {-2, 1}, {-1, 1}, {0, 2}, {1, 2}, {2, 2}, {3, 2}, {4, 2}, {5, 2}, {6, 2}, {7, 2},
    {-8, 2}, {-7, 2}, {-6, 2}, {-5, 2}, {-4, 2}, {-3, 2}, {-2, 2}, {-1, 2}, {0, 3}, {1, 3},
    {2, 3}, {3, 3}, {4, 3}, {5, 3}, {6, 3}, {7, 3}, {-8, 3}, {-7, 3}, {-6, 3}, {-5, 3},
    {-4, 3}, {-3, 3}, {-2, 3}, {-1, 3}, {0, 4}, {1, 4}, {2, 4}, {3, 4}, {4, 4}, {5, 4},
    {6, 4}, {7, 4}, {-8, 4}, {-7, 4}, {-6, 4}, {-5, 4}, {-4, 4}, {-3, 4}, {-2, 4}, {-1, 4},
    {0, 5}, {1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}, {6, 5}, {7, 5}, {-8, 5}, {-7, 5},
    {-6, 5}, {-5, 5}, {-4, 5}, {-3, 5}, {-2, 5}, {-1, 5}, {0, 6}, {1, 6}, {2, 6}, {3, 6},
    {4, 6}, {5, 6}, {6, 6}, {7, 6}, {-8, 6}, {-7, 6}, {-6, 6}, {-5, 6}, {-4, 6}, {-3, 6},
    {-2, 6}, {-1, 6}, {0, 7}, {1, 7}, {2, 7}, {3, 7}, {4, 7}, {5, 7}, {6, 7}, {7, 7},
    {-8, 7}, {-7, 7}, {-6, 7}, {-5, 7}, {-4, 7}, {-3, 7}, {-2, 7}, {-1, 7}, {0, -8}, {1, -8},
    {2, -8}, {3, -8}, {4, -8}, {5, -8}, {6, -8}, {7, -8}, {-8, -8}, {-7, -8}, {-6, -8}, {-5, -8},
    {-4, -8}, {-3, -8}, {-2, -8}, {-1, -8}, {0, -7}, {1, -7}, {2, -7}, {3, -7}, {4, -7}, {5, -7},
    {6, -7}, {7, -7}, {-8, -7}, {-7, -7}, {-6, -7}, {-5, -7}, {-4, -7}, {-3, -7}, {-2, -7}, {-1, -7},
    {0, -6}, {1, -6}, {2, -6}, {3, -6}, {4, -6}, {5, -6}, {6, -6}, {7, -6}, {-8, -6}, {-7, -6},
    {-6, -6}, {-5, -6}, {-4, -6}, {-3, -6}, {-2, -6}, {-1, -6}, {0, -5}, {1, -5}, {2, -5}, {3, -5},
    {4, -5}, {5, -5}, {6, -5}, {7, -5}, {-8, -5}, {-7, -5}, {-6, -5}, {-5, -5}, {-4, -5}, {-3, -5},
    {-2, -5}, {-1, -5}, {0, -4}, {1, -4}, {2, -4}, {3, -4}, {4, -4}, {5, -4}, {6, -4}, {7, -4},
    {-8, -4}, {-7, -4}, {-6, -4}, {-5, -4}, {-4, -4}, {-3, -4}, {-2, -4}, {-1, -4}, {0, -3}, {1, -3},
    {2, -3}, {3, -3}, {4, -3}, {5, -3}, {6, -3}, {7, -3}, {-8, -3}, {-7, -3}, {-6, -3}, {-5, -3},
    {-4, -3}, {-3, -3}, {-2, -3}, {-1, -3}, {0, -2}, {1, -2}, {2, -2}, {3, -2}, {4, -2}, {5, -2},
    {6, -2}, {7, -2}, {-8, -2}, {-7, -2}, {-6, -2}, {-5, -2}, {-4, -2}, {-3, -2}, {-2, -2}, {-1, -2},
    {0, -1}, {1, -1}, {2, -1}, {3, -1}, {4, -1}, {5, -1}, {6, -1}, {7, -1}, {-8, -1}, {-7, -1},
    {-6, -1}, {-5, -1}, {-4, -1}, {-3, -1}, {-2, -1}, {-1, -1},
};
/* Bytes 243..255 never occur in a ternary blob; they decode as zeros (as the portable kernel). */
static const int8_t t5_lanes[256][8] = {  /* 5 weights a row, padded to 8 for one 8-byte copy */
    {-1, -1, -1, -1, -1}, {0, -1, -1, -1, -1}, {1, -1, -1, -1, -1}, {-1, 0, -1, -1, -1}, {0, 0, -1, -1, -1},
    {1, 0, -1, -1, -1}, {-1, 1, -1, -1, -1}, {0, 1, -1, -1, -1}, {1, 1, -1, -1, -1}, {-1, -1, 0, -1, -1},
    {0, -1, 0, -1, -1}, {1, -1, 0, -1, -1}, {-1, 0, 0, -1, -1}, {0, 0, 0, -1, -1}, {1, 0, 0, -1, -1},
    {-1, 1, 0, -1, -1}, {0, 1, 0, -1, -1}, {1, 1, 0, -1, -1}, {-1, -1, 1, -1, -1}, {0, -1, 1, -1, -1},
    {1, -1, 1, -1, -1}, {-1, 0, 1, -1, -1}, {0, 0, 1, -1, -1}, {1, 0, 1, -1, -1}, {-1, 1, 1, -1, -1},
    {0, 1, 1, -1, -1}, {1, 1, 1, -1, -1}, {-1, -1, -1, 0, -1}, {0, -1, -1, 0, -1}, {1, -1, -1, 0, -1},
    {-1, 0, -1, 0, -1}, {0, 0, -1, 0, -1}, {1, 0, -1, 0, -1}, {-1, 1, -1, 0, -1}, {0, 1, -1, 0, -1},
    {1, 1, -1, 0, -1}, {-1, -1, 0, 0, -1}, {0, -1, 0, 0, -1}, {1, -1, 0, 0, -1}, {-1, 0, 0, 0, -1},
    {0, 0, 0, 0, -1}, {1, 0, 0, 0, -1}, {-1, 1, 0, 0, -1}, {0, 1, 0, 0, -1}, {1, 1, 0, 0, -1},
    {-1, -1, 1, 0, -1}, {0, -1, 1, 0, -1}, {1, -1, 1, 0, -1}, {-1, 0, 1, 0, -1}, {0, 0, 1, 0, -1},
    {1, 0, 1, 0, -1}, {-1, 1, 1, 0, -1}, {0, 1, 1, 0, -1}, {1, 1, 1, 0, -1}, {-1, -1, -1, 1, -1},
    {0, -1, -1, 1, -1}, {1, -1, -1, 1, -1}, {-1, 0, -1, 1, -1}, {0, 0, -1, 1, -1}, {1, 0, -1, 1, -1},
    {-1, 1, -1, 1, -1}, {0, 1, -1, 1, -1}, {1, 1, -1, 1, -1}, {-1, -1, 0, 1, -1}, {0, -1, 0, 1, -1},
    {1, -1, 0, 1, -1}, {-1, 0, 0, 1, -1}, {0, 0, 0, 1, -1}, {1, 0, 0, 1, -1}, {-1, 1, 0, 1, -1},
    {0, 1, 0, 1, -1}, {1, 1, 0, 1, -1}, {-1, -1, 1, 1, -1}, {0, -1, 1, 1, -1}, {1, -1, 1, 1, -1},
    {-1, 0, 1, 1, -1}, {0, 0, 1, 1, -1}, {1, 0, 1, 1, -1}, {-1, 1, 1, 1, -1}, {0, 1, 1, 1, -1},
    {1, 1, 1, 1, -1}, {-1, -1, -1, -1, 0}, {0, -1, -1, -1, 0}, {1, -1, -1, -1, 0}, {-1, 0, -1, -1, 0},
    {0, 0, -1, -1, 0}, {1, 0, -1, -1, 0}, {-1, 1, -1, -1, 0}, {0, 1, -1, -1, 0}, {1, 1, -1, -1, 0},
    {-1, -1, 0, -1, 0}, {0, -1, 0, -1, 0}, {1, -1, 0, -1, 0}, {-1, 0, 0, -1, 0}, {0, 0, 0, -1, 0},
    {1, 0, 0, -1, 0}, {-1, 1, 0, -1, 0}, {0, 1, 0, -1, 0}, {1, 1, 0, -1, 0}, {-1, -1, 1, -1, 0},
    {0, -1, 1, -1, 0}, {1, -1, 1, -1, 0}, {-1, 0, 1, -1, 0}, {0, 0, 1, -1, 0}, {1, 0, 1, -1, 0},
    {-1, 1, 1, -1, 0}, {0, 1, 1, -1, 0}, {1, 1, 1, -1, 0}, {-1, -1, -1, 0, 0}, {0, -1, -1, 0, 0},
    {1, -1, -1, 0, 0}, {-1, 0, -1, 0, 0}, {0, 0, -1, 0, 0}, {1, 0, -1, 0, 0}, {-1, 1, -1, 0, 0},
    {0, 1, -1, 0, 0}, {1, 1, -1, 0, 0}, {-1, -1, 0, 0, 0}, {0, -1, 0, 0, 0}, {1, -1, 0, 0, 0},
    {-1, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {-1, 1, 0, 0, 0}, {0, 1, 0, 0, 0},
    {1, 1, 0, 0, 0}, {-1, -1, 1, 0, 0}, {0, -1, 1, 0, 0}, {1, -1, 1, 0, 0}, {-1, 0, 1, 0, 0},
    {0, 0, 1, 0, 0}, {1, 0, 1, 0, 0}, {-1, 1, 1, 0, 0}, {0, 1, 1, 0, 0}, {1, 1, 1, 0, 0},
    {-1, -1, -1, 1, 0}, {0, -1, -1, 1, 0}, {1, -1, -1, 1, 0}, {-1, 0, -1, 1, 0}, {0, 0, -1, 1, 0},
    {1, 0, -1, 1, 0}, {-1, 1, -1, 1, 0}, {0, 1, -1, 1, 0}, {1, 1, -1, 1, 0}, {-1, -1, 0, 1, 0},
    {0, -1, 0, 1, 0}, {1, -1, 0, 1, 0}, {-1, 0, 0, 1, 0}, {0, 0, 0, 1, 0}, {1, 0, 0, 1, 0},
    {-1, 1, 0, 1, 0}, {0, 1, 0, 1, 0}, {1, 1, 0, 1, 0}, {-1, -1, 1, 1, 0}, {0, -1, 1, 1, 0},
    {1, -1, 1, 1, 0}, {-1, 0, 1, 1, 0}, {0, 0, 1, 1, 0}, {1, 0, 1, 1, 0}, {-1, 1, 1, 1, 0},
    {0, 1, 1, 1, 0}, {1, 1, 1, 1, 0}, {-1, -1, -1, -1, 1}, {0, -1, -1, -1, 1}, {1, -1, -1, -1, 1},
    {-1, 0, -1, -1, 1}, {0, 0, -1, -1, 1}, {1, 0, -1, -1, 1}, {-1, 1, -1, -1, 1}, {0, 1, -1, -1, 1},
    {1, 1, -1, -1, 1}, {-1, -1, 0, -1, 1}, {0, -1, 0, -1, 1}, {1, -1, 0, -1, 1}, {-1, 0, 0, -1, 1},
    {0, 0, 0, -1, 1}, {1, 0, 0, -1, 1}, {-1, 1, 0, -1, 1}, {0, 1, 0, -1, 1}, {1, 1, 0, -1, 1},
    {-1, -1, 1, -1, 1}, {0, -1, 1, -1, 1}, {1, -1, 1, -1, 1}, {-1, 0, 1, -1, 1}, {0, 0, 1, -1, 1},
    {1, 0, 1, -1, 1}, {-1, 1, 1, -1, 1}, {0, 1, 1, -1, 1}, {1, 1, 1, -1, 1}, {-1, -1, -1, 0, 1},
    {0, -1, -1, 0, 1}, {1, -1, -1, 0, 1}, {-1, 0, -1, 0, 1}, {0, 0, -1, 0, 1}, {1, 0, -1, 0, 1},
    {-1, 1, -1, 0, 1}, {0, 1, -1, 0, 1}, {1, 1, -1, 0, 1}, {-1, -1, 0, 0, 1}, {0, -1, 0, 0, 1},
    {1, -1, 0, 0, 1}, {-1, 0, 0, 0, 1}, {0, 0, 0, 0, 1}, {1, 0, 0, 0, 1}, {-1, 1, 0, 0, 1},
    {0, 1, 0, 0, 1}, {1, 1, 0, 0, 1}, {-1, -1, 1, 0, 1}, {0, -1, 1, 0, 1}, {1, -1, 1, 0, 1},
    {-1, 0, 1, 0, 1}, {0, 0, 1, 0, 1}, {1, 0, 1, 0, 1}, {-1, 1, 1, 0, 1}, {0, 1, 1, 0, 1},
    {1, 1, 1, 0, 1}, {-1, -1, -1, 1, 1}, {0, -1, -1, 1, 1}, {1, -1, -1, 1, 1}, {-1, 0, -1, 1, 1},
    {0, 0, -1, 1, 1}, {1, 0, -1, 1, 1}, {-1, 1, -1, 1, 1}, {0, 1, -1, 1, 1}, {1, 1, -1, 1, 1},
    {-1, -1, 0, 1, 1}, {0, -1, 0, 1, 1}, {1, -1, 0, 1, 1}, {-1, 0, 0, 1, 1}, {0, 0, 0, 1, 1},
    {1, 0, 0, 1, 1}, {-1, 1, 0, 1, 1}, {0, 1, 0, 1, 1}, {1, 1, 0, 1, 1}, {-1, -1, 1, 1, 1},
    {0, -1, 1, 1, 1}, {1, -1, 1, 1, 1}, {-1, 0, 1, 1, 1}, {0, 0, 1, 1, 1}, {1, 0, 1, 1, 1},
    {-1, 1, 1, 1, 1}, {0, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0},
    {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0},
    {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0},
    {0, 0, 0, 0, 0},
};

/* wd[k] = weight k0 + k of the packed row for k < kc (k0 at a byte boundary): one table row per packed byte;
 * wd holds up to 7 entries more (the last byte's padding; ternary rows are copied 8 bytes at a time). */
static void decode_row(const uint8_t *row, int32_t bits, int32_t k0, int32_t kc, int8_t *wd)
{
    int32_t per = bits == EF_TERNARY ? 5 : 8 / bits;
    const uint8_t *src = row + k0 / per;
    int32_t nb = (kc + per - 1) / per;
    if (bits == 8)
        memcpy(wd, src, (size_t)kc);
    else if (bits == 4)
        for (int32_t i = 0; i < nb; ++i)
            memcpy(wd + 2 * i, w4_lanes[src[i]], 2);
    else if (bits == 2)
        for (int32_t i = 0; i < nb; ++i)
            memcpy(wd + 4 * i, w2_lanes[src[i]], 4);
    else
        for (int32_t i = 0; i < nb; ++i)
            memcpy(wd + 5 * i, t5_lanes[src[i]], 8);  /* the next row overwrites the 3 padding bytes */
}

#if defined(__AVX2__)
static int32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* The lane sums of a0..a3 as one vector [sum a0, sum a1, sum a2, sum a3]. */
static inline __m128i hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* sum of wd[0 .. nv), nv a multiple of 32. */
static int32_t sum_i8(const int8_t *wd, int32_t nv)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i a = _mm256_setzero_si256();
    for (int32_t k = 0; k < nv; k += 32) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(wd + k));
        a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, w), ones16));
    }
    return hsum(a);
}

/* One 32-input step: acc += u . w per 4-byte group (exact int32). */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define EF_DOT(acc, u, w) ((acc) = _mm256_dpbusd_epi32((acc), (u), (w)))
#else
#define EF_DOT(acc, u, w) ((acc) = _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (w)), ones)))
#endif

/* s[j] = sum_{k < nv} u_a[k] wd[j][k], s[4 + j] likewise for token b; nv a multiple of 32, or any length with
 * EF_MASKED_TAIL (wd zero up to the next multiple of 32: the masked-out u = 128 meet zero weights). */
static void dot_vec(const int8_t *xa, const int8_t *xb, const int8_t *const wd[4], int32_t nv, int32_t s[8])
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
#if !(defined(__AVX512VNNI__) && defined(__AVX512VL__))
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int32_t k = 0; k < nv; k += 32) {
#if defined(EF_MASKED_TAIL)
        __mmask32 in = nv - k >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (nv - k)) - 1u);
        __m256i u = _mm256_xor_si256(_mm256_maskz_loadu_epi8(in, xa + k), flip);
        __m256i v = _mm256_xor_si256(_mm256_maskz_loadu_epi8(in, xb + k), flip);
#else
        __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xa + k)), flip);
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xb + k)), flip);
#endif
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[0] + k));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[1] + k));
        __m256i w2 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[2] + k));
        __m256i w3 = _mm256_loadu_si256((const __m256i *)(const void *)(wd[3] + k));
        EF_DOT(a0, u, w0);
        EF_DOT(a1, u, w1);
        EF_DOT(a2, u, w2);
        EF_DOT(a3, u, w3);
        EF_DOT(b0, v, w0);
        EF_DOT(b1, v, w1);
        EF_DOT(b2, v, w2);
        EF_DOT(b3, v, w3);
    }
    _mm_storeu_si128((__m128i *)(void *)s, hsum4(a0, a1, a2, a3));
    _mm_storeu_si128((__m128i *)(void *)(s + 4), hsum4(b0, b1, b2, b3));
}
#endif

#if defined(EF_MASKED_TAIL)
/* [sum a, sum b, sum c, sum d] of four 16-lane vectors. */
static inline __m128i hsum4_zmm(__m512i a, __m512i b, __m512i c, __m512i d)
{
#define EF_FOLD(v) _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64((v), 1))
    return hsum4(EF_FOLD(a), EF_FOLD(b), EF_FOLD(c), EF_FOLD(d));
#undef EF_FOLD
}

/* acc += u . w per 4-byte group, in place (GCC copies the intrinsic's accumulators between registers each step). */
#define EF_DPB(acc, u, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(w))

/* s[i][j] = sum_{k < nv} (x_i[k] + 128) wd[j][k] for the 4 token rows xr[0..3] and the 4 rows wd[0..3], 64
 * inputs a step (16 accumulators, vpdpbusd on zmm), the last partial step under a byte mask; wd zero-padded up to
 * the next multiple of 64. */
/* Token i of the pass against the 4 rows, into its 4 accumulators. */
#define EF_TOKEN4(i, r0, r1, r2, r3)                                            \
    do {                                                                        \
        u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, xr[i] + k), flip);     \
        EF_DPB(r0, u, w0);                                                      \
        EF_DPB(r1, u, w1);                                                      \
        EF_DPB(r2, u, w2);                                                      \
        EF_DPB(r3, u, w3);                                                      \
    } while (0)

static void dot_4x4(const int8_t *const xr[4], const int8_t *const wd[4], int32_t nv, int32_t s[4][4])
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    __m512i c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
    for (int32_t k = 0; k < nv; k += 64) {
        __mmask64 in = nv - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (nv - k)) - 1u);
        __m512i w0 = _mm512_loadu_si512(wd[0] + k), w1 = _mm512_loadu_si512(wd[1] + k);
        __m512i w2 = _mm512_loadu_si512(wd[2] + k), w3 = _mm512_loadu_si512(wd[3] + k);
        __m512i u;
        EF_TOKEN4(0, a0, a1, a2, a3);
        EF_TOKEN4(1, b0, b1, b2, b3);
        EF_TOKEN4(2, c0, c1, c2, c3);
        EF_TOKEN4(3, d0, d1, d2, d3);
    }
    _mm_storeu_si128((__m128i *)(void *)s[0], hsum4_zmm(a0, a1, a2, a3));
    _mm_storeu_si128((__m128i *)(void *)s[1], hsum4_zmm(b0, b1, b2, b3));
    _mm_storeu_si128((__m128i *)(void *)s[2], hsum4_zmm(c0, c1, c2, c3));
    _mm_storeu_si128((__m128i *)(void *)s[3], hsum4_zmm(d0, d1, d2, d3));
}
#endif

/* Vector inputs of a chunk of kc: 32-multiples when the vector step is exact for these weights, else none. */
static int32_t vector_len(int32_t kc, int32_t bits)
{
#if defined(EF_MASKED_TAIL)
    (void)bits;
    return kc;
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
    (void)bits;
    return kc & ~31;
#elif defined(__AVX2__)
    return bits == 8 ? 0 : kc & ~31;
#else
    (void)bits;
    (void)kc;
    return 0;
#endif
}

/* tot[t - ta][j] += sum_k x[t, k0 + k] wd[j][k] over k < kc for t in [ta, tb). */
static void block_dot(const int8_t *x, int32_t xs, int32_t k0, int32_t kc, int32_t nv, const int8_t *const wd[4],
                      const int32_t wsum[4], int32_t ta, int32_t tb, int32_t tot[][4])
{
#if defined(EF_MASKED_TAIL)
    for (int32_t t = ta; t < tb; t += 4) {  /* 4 tokens a pass (the last pass repeats its last token) */
        int32_t nt = tb - t < 4 ? tb - t : 4, s[4][4];
        const int8_t *xr[4];
        for (int32_t i = 0; i < 4; ++i)
            xr[i] = x + (ptrdiff_t)(t + (i < nt ? i : nt - 1)) * xs + k0;
        dot_4x4(xr, wd, nv, s);
        for (int32_t i = 0; i < nt; ++i)
            for (int32_t j = 0; j < 4; ++j)
                tot[t + i - ta][j] += s[i][j] - 128 * wsum[j];
    }
    (void)kc;
    return;
#endif
    for (int32_t t = ta; t < tb; t += 2) {
        const int8_t *xa = x + (ptrdiff_t)t * xs + k0;
        int32_t two = t + 1 < tb;
        const int8_t *xb = two ? xa + xs : xa;
        int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#if defined(__AVX2__)
        if (nv > 0) {
            dot_vec(xa, xb, wd, nv, s);
            for (int32_t j = 0; j < 4; ++j) {
                s[j] -= 128 * wsum[j];
                s[4 + j] -= 128 * wsum[j];
            }
        }
#else
        (void)wsum;
#endif
        for (int32_t k = nv; k < kc; ++k) {
            int32_t u = xa[k], v = xb[k];
            for (int32_t j = 0; j < 4; ++j) {
                s[j] += u * wd[j][k];
                s[4 + j] += v * wd[j][k];
            }
        }
        for (int32_t j = 0; j < 4; ++j) {
            tot[t - ta][j] += s[j];
            if (two)
                tot[t + 1 - ta][j] += s[4 + j];
        }
    }
}

/* Rows [o, o + no) of tokens [ta, tb) (tot[t - ta]): y8 = requant(tot + bias) or y32 = tot + bias; 4 rows a
 * vector with AVX-512VL (ef_requant8 in 64-bit lanes, saturated by vpmovsqb), plain C otherwise. */
static void store_rows(int32_t tot[][4], int32_t ta, int32_t tb, int32_t no,
                       const int32_t *bias, const int32_t *m, const int32_t *sh, int8_t *y8, int32_t *y32,
                       int32_t ys, int32_t o)
{
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (no == 4) {
        const __m128i b = bias ? _mm_loadu_si128((const __m128i *)(const void *)(bias + o)) : _mm_setzero_si128();
        const __m256i one = _mm256_set1_epi64x(1);
        const __m256i m64 = _mm256_cvtepi32_epi64(y8 ? _mm_loadu_si128((const __m128i *)(const void *)(m + o)) : b);
        const __m256i s64 = _mm256_cvtepi32_epi64(y8 ? _mm_loadu_si128((const __m128i *)(const void *)(sh + o)) : b);
        const __m256i rnd = _mm256_sllv_epi64(one, _mm256_sub_epi64(s64, one));  /* 2^(sh-1); 0 for sh = 0 */
        for (int32_t t = ta; t < tb; ++t) {
            __m128i acc = _mm_add_epi32(_mm_loadu_si128((const __m128i *)(const void *)tot[t - ta]), b);
            if (y32 != NULL) {
                _mm_storeu_si128((__m128i *)(void *)(y32 + (ptrdiff_t)t * ys + o), acc);
                continue;
            }
            __m256i p = _mm256_add_epi64(_mm256_mul_epi32(_mm256_cvtepi32_epi64(acc), m64), rnd);
            int32_t v = _mm_cvtsi128_si32(_mm256_cvtsepi64_epi8(_mm256_srav_epi64(p, s64)));
            memcpy(y8 + (ptrdiff_t)t * ys + o, &v, sizeof v);
        }
        return;
    }
#endif
    for (int32_t t = ta; t < tb; ++t)
        for (int32_t j = 0; j < no; ++j) {
            int32_t acc = tot[t - ta][j] + (bias ? bias[o + j] : 0);
            if (y8)
                y8[(ptrdiff_t)t * ys + o + j] = ef_requant8(acc, m[o + j], sh[o + j]);
            else
                y32[(ptrdiff_t)t * ys + o + j] = acc;
        }
}

static void linear_core(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *w, int32_t bits,
                        const int32_t *bias, const int32_t *m, const int32_t *sh, int8_t *y8, int32_t *y32,
                        int32_t ys, int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    int32_t rb = ef_row_bytes(n_in, bits);
    int8_t wbuf[4][KC + 64];
    int32_t tot[TB][4];
    for (int32_t ta = t0; ta < t1; ta += TB) {
        int32_t tb = t1 - ta < TB ? t1 : ta + TB;
        for (int32_t o = o0; o < o1; o += 4) {
            int32_t no = o1 - o < 4 ? o1 - o : 4;
            for (int32_t t = 0; t < tb - ta; ++t)
                tot[t][0] = tot[t][1] = tot[t][2] = tot[t][3] = 0;
            for (int32_t k0 = 0; k0 < n_in; k0 += KC) {
                int32_t kc = n_in - k0 < KC ? n_in - k0 : KC, nv = vector_len(kc, bits), wsum[4] = {0, 0, 0, 0};
                const int8_t *wd[4];
                for (int32_t j = 0; j < 4; ++j) {
                    const uint8_t *row = w + (size_t)(o + (j < no ? j : no - 1)) * (size_t)rb;
                    decode_row(row, bits, k0, kc, wbuf[j]);
                    wd[j] = wbuf[j];
#if defined(EF_MASKED_TAIL)
                    memset(wbuf[j] + kc, 0, (size_t)(((kc + 63) & ~63) - kc));
                    wsum[j] = sum_i8(wbuf[j], (kc + 63) & ~63);
#elif defined(__AVX2__)
                    wsum[j] = nv > 0 ? sum_i8(wbuf[j], nv) : 0;
#endif
                }
                block_dot(x, xs, k0, kc, nv, wd, wsum, ta, tb, tot);
            }
            store_rows(tot, ta, tb, no, bias, m, sh, y8, y32, ys, o);
        }
    }
}

void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, m, sh, y, NULL, y_stride, t0, t1, o0, o1);
}

void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    linear_core(x, x_stride, n_in, w, w_bits, bias, NULL, NULL, NULL, y, y_stride, t0, t1, o0, o1);
}
