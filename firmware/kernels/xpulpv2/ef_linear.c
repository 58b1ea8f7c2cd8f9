/* Linear layer, Xpulpv2 variant (pulp-open / GAP9 cluster): rows decoded to int8 lanes once, pv.sdotsp.b dot products.
 *
 * Same functions, arguments and bit-exact results as firmware/kernels/ef_linear.c (tests/gvsoc/test_xpulpv2.py runs
 * both on the same inputs on GVSoC). Two weight rows at a time, a chunk of XP_KC inputs of each is decoded from its
 * packed form (2/4/8 bits or ternary) into word-aligned int8 lanes on the stack: 2-bit and ternary bytes through
 * 256-entry uint32 tables in L1 (one byte -> four lanes; ternary's fifth digit from a 256-byte one), no per-weight
 * branch; 8-bit rows copied a word at a time. The chunk then serves every token of
 * the range (XP_TB at a time when a row needs several chunks): four tokens x two rows per hardware-loop iteration,
 * 6 word loads (post-increment and register offset) and 8 pv.sdotsp.b for 32 multiply-accumulates (the whole quads of
 * a single-chunk row pair in one asm block, xp_quads, requantization included); rows of at most
 * 8 inputs (XP_SK, Mamba's dt_proj) keep their words and requantization constants in registers over the whole token
 * range instead (xp_short: one hardware-loop iteration per token and row pair). Integer sums in
 * another order than the portable kernel's, so the same int32 values. Stack: ~1 KiB (one 800 B buffer: a decoded chunk
 * of up to 400 inputs (femba's 385-input rows in one), or of XP_KM inputs and the partial sums of longer rows):
 * targets/pulp-open/gvsoc.toml sizes the cluster stacks for it. */
#include "ef_kernels.h"
#include "ef_xpulp.h"

#define XP_RB 2   /* weight rows decoded together */
#define XP_TP 4   /* tokens per inner loop */
#define XP_KC 400 /* inputs per decoded chunk of a row that fits in one (femba's 385): a multiple of 20 */
#define XP_KM 260 /* inputs per decoded chunk of a longer row: a multiple of 20 (whole ternary bytes and words) */
#define XP_TB 32  /* tokens per block when n_in > XP_KC (their partial sums wait on the stack between chunks) */
/* one stack buffer: the decoded chunk, and past a XP_KM chunk the partial sums of the multi-chunk rows */
#define XP_BUF_WORDS (XP_RB * XP_KC / 4)
typedef char xp_part_fits[(XP_RB * XP_KM / 4 + XP_TB * XP_RB <= XP_BUF_WORDS) ? 1 : -1];

/* ---- decode tables: one packed byte -> four int8 lanes (lane k = element k of the byte) ------------------------ */
#define XP_SX2(f) (((((f) ^ 2u) - 2u) & 0xffu))
#define XP_W2(b) (XP_SX2((b) & 3u) | XP_SX2(((b) >> 2) & 3u) << 8 | XP_SX2(((b) >> 4) & 3u) << 16 \
                  | XP_SX2(((b) >> 6) & 3u) << 24)
/* ternary: byte = sum (w_k + 1) 3^k, digits 0..3 here (digit 4 in xp_t5_d4); bytes 243..255 decode as zeros */
#define XP_D3(b, p) ((((b) / (p)) % 3u - 1u) & 0xffu)
#define XP_T3(b) ((b) >= 243u ? 0u : XP_D3(b, 1u) | XP_D3(b, 3u) << 8 | XP_D3(b, 9u) << 16 | XP_D3(b, 27u) << 24)
#define XP_R4(f, b) f(b), f((b) + 1u), f((b) + 2u), f((b) + 3u)
#define XP_R16(f, b) XP_R4(f, b), XP_R4(f, (b) + 4u), XP_R4(f, (b) + 8u), XP_R4(f, (b) + 12u)
#define XP_R64(f, b) XP_R16(f, b), XP_R16(f, (b) + 16u), XP_R16(f, (b) + 32u), XP_R16(f, (b) + 48u)
#define XP_R256(f) XP_R64(f, 0u), XP_R64(f, 64u), XP_R64(f, 128u), XP_R64(f, 192u)

/* digit 4 of a ternary byte minus one (-1..1), 0 for the invalid bytes 243..255, as one int8 lane */
#define XP_D4(b) ((b) >= 243u ? 0u : ((b) / 81u - 1u) & 0xffu)

EF_XP_L1_CONST static const uint32_t xp_w2_lanes[256] = {XP_R256(XP_W2)};
EF_XP_L1_CONST static const uint32_t xp_t5_lanes[256] = {XP_R256(XP_T3)};
EF_XP_L1_CONST static const uint8_t xp_t5_d4_lane[256] = {XP_R256(XP_D4)};

/* Digit 4 lane of a ternary byte, from a 256-byte table (four instructions fewer a byte than compares). */
static inline uint32_t xp_t5_d4(uint32_t b)
{
    return xp_t5_d4_lane[b];
}

/* The decoded chunk: word i of row r at wd[XP_RB i + r] (the rows interleaved word by word, so one pointer
 * walks them); element e of row r is byte XP_BYTE(e) of wd + r. */
#define XP_BYTE(e) (4 * XP_RB * ((e) >> 2) + ((e) & 3))

/* Elements [k0, k0 + kn) of a ternary row (k0 % 5 == 0) into the row's words out[0], out[XP_RB], ... */
static void xp_decode_t5(const uint8_t *row, int32_t k0, int32_t kn, uint32_t *out)
{
    const uint8_t *p = row + k0 / 5;
    int32_t nb = (kn + 4) / 5, i = 0;
    for (; i + 4 <= nb; i += 4, p += 4, out += 5 * XP_RB) {
        uint32_t l0 = xp_t5_lanes[p[0]], l1 = xp_t5_lanes[p[1]], l2 = xp_t5_lanes[p[2]], l3 = xp_t5_lanes[p[3]];
        out[0] = l0;
        out[XP_RB] = xp_t5_d4(p[0]) | l1 << 8;
        out[2 * XP_RB] = l1 >> 24 | xp_t5_d4(p[1]) << 8 | l2 << 16;
        out[3 * XP_RB] = l2 >> 16 | xp_t5_d4(p[2]) << 16 | l3 << 24;
        out[4 * XP_RB] = l3 >> 8 | xp_t5_d4(p[3]) << 24;
    }
    for (int32_t e = 0; i < nb; ++i, ++p) { /* the last 1..3 bytes, element by element */
        uint32_t l = xp_t5_lanes[*p];
        uint8_t *o = (uint8_t *)out;
        for (int32_t k = 0; k < 4; ++k, ++e)
            o[XP_BYTE(e)] = (uint8_t)(l >> (8 * k));
        o[XP_BYTE(e)] = (uint8_t)xp_t5_d4(*p);
        ++e;
    }
}

/* n >= 1 bytes of a 2-bit row from p into the row's words out[0], out[XP_RB], ... through xp_w2_lanes: hardware
 * loop 0 over byte pairs (p.lbu post-incremented, the lanes at a register offset into the table, p.sw
 * post-incremented by the XP_RB interleaved rows' 8 bytes), the pair's instructions interleaved so that no load
 * feeds the next one: 4 a word, where the compiled loop took 8 (its table address reloaded from the stack) and a
 * load stall. An odd last byte in C. */
typedef char xp_w2_stride[XP_RB == 2 ? 1 : -1]; /* the p.sw increment below */
static inline void xp_decode_w2(const uint8_t *p, int32_t n, uint32_t *out)
{
    int32_t n2 = n >> 1;
    uint32_t b0, b1, v0, v1;
    if (n2)
        __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n2, 8)
                         EF_XP_LBU_POSTINC(b0, p, 1) EF_XP_LBU_POSTINC(b1, p, 1) "slli %[b0], %[b0], 2\n\t"
                         "slli %[b1], %[b1], 2\n\t" EF_XP_LW_RR(v0, tab, b0) EF_XP_LW_RR(v1, tab, b1)
                         EF_XP_SW_POSTINC(v0, o, 8) EF_XP_SW_POSTINC(v1, o, 8) ".option pop"
                         : [p] "+r"(p), [o] "+r"(out), [b0] "=&r"(b0), [b1] "=&r"(b1), [v0] "=&r"(v0),
                           [v1] "=&r"(v1)
                         : [n2] "r"(n2), [tab] "r"(xp_w2_lanes)
                         : "memory");
    if (n & 1)
        *out = xp_w2_lanes[*p];
}

/* 8 n2 >= 8 bytes of an 8-bit row from p into the row's words out[0], out[XP_RB], ... as word copies: hardware loop 0
 * over word pairs, p.lw (any alignment) and p.sw post-incremented, each word stored two instructions after its load;
 * 2 instructions a word where the compiled byte loop took ~6 a byte. */
static inline void xp_decode_w8(const int8_t *p, int32_t n2, uint32_t *out)
{
    uint32_t v0, v1;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n2, 4)
                     EF_XP_LW4_POSTINC(v0, p) EF_XP_LW4_POSTINC(v1, p) EF_XP_SW_POSTINC(v0, o, 8)
                     EF_XP_SW_POSTINC(v1, o, 8) ".option pop"
                     : [p] "+r"(p), [o] "+r"(out), [v0] "=&r"(v0), [v1] "=&r"(v1)
                     : [n2] "r"(n2)
                     : "memory");
}

/* Elements [k0, k0 + kn) of a packed row (k0 a multiple of 20) into the row's words out[0], out[XP_RB], ...
 * (ceil(kn / 4) words at least; lanes past kn are never read). */
static void xp_decode(const uint8_t *row, int32_t bits, int32_t k0, int32_t kn, uint32_t *out)
{
    int32_t i;
    if (bits == EF_TERNARY) {
        xp_decode_t5(row, k0, kn, out);
    } else if (bits == 2) {
        xp_decode_w2(row + k0 / 4, (kn + 3) / 4, out);
    } else if (bits == 4) {
        const uint8_t *p = row + k0 / 2;
        int8_t *o = (int8_t *)out;
        for (i = 0; i < (kn + 1) / 2; ++i) {
            uint32_t v = p[i];
            o[XP_BYTE(2 * i)] = (int8_t)((int32_t)((v & 15u) ^ 8u) - 8);
            o[XP_BYTE(2 * i + 1)] = (int8_t)((int32_t)((v >> 4) ^ 8u) - 8);
        }
    } else {
        const int8_t *p = (const int8_t *)row + k0;
        int8_t *o = (int8_t *)out;
        i = 8 * (kn >> 3); /* whole word pairs copied, the rest (never past the row) byte by byte */
        if (i)
            xp_decode_w8(p, kn >> 3, out);
        for (; i < kn; ++i)
            o[XP_BYTE(i)] = p[i];
    }
}

/* a[XP_TP r + j] += dot(row r, token j) over 4 n inputs for the two interleaved decoded rows at w and the four
 * token rows x0 + off[j] (any alignment), n >= 1: hardware loop 0, 14 instructions an iteration (6 word loads, the
 * x0 one post-incremented, tokens 1..3 at register offsets; 8 pv.sdotsp.b), no load used by the next instruction. */
static inline void xp_dot2x4(const uint32_t *w, const int8_t *x0, const int32_t off[XP_TP], int32_t n, int32_t a[8])
{
    int32_t a00 = a[0], a01 = a[1], a02 = a[2], a03 = a[3], a10 = a[4], a11 = a[5], a12 = a[6], a13 = a[7];
    uint32_t xa, xb, w0, w1;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"
                     EF_XP_LP_SETUP0(n, 14)
                     EF_XP_LW_RR(xa, x0, s1)
                     EF_XP_LW4_POSTINC(w0, w)
                     EF_XP_LW4_POSTINC(w1, w)
                     EF_XP_LW_RR(xb, x0, s2)
                     EF_XP_SDOTSP_B(a01, w0, xa)
                     EF_XP_SDOTSP_B(a11, w1, xa)
                     EF_XP_LW_RR(xa, x0, s3)
                     EF_XP_SDOTSP_B(a02, w0, xb)
                     EF_XP_SDOTSP_B(a12, w1, xb)
                     EF_XP_LW4_POSTINC(xb, x0)
                     EF_XP_SDOTSP_B(a03, w0, xa)
                     EF_XP_SDOTSP_B(a13, w1, xa)
                     EF_XP_SDOTSP_B(a00, w0, xb)
                     EF_XP_SDOTSP_B(a10, w1, xb)
                     ".option pop"
                     : [a00] "+r"(a00), [a01] "+r"(a01), [a02] "+r"(a02), [a03] "+r"(a03), [a10] "+r"(a10),
                       [a11] "+r"(a11), [a12] "+r"(a12), [a13] "+r"(a13), [w] "+r"(w), [x0] "+r"(x0),
                       [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1)
                     : [n] "r"(n), [s1] "r"(off[1]), [s2] "r"(off[2]), [s3] "r"(off[3])
                     : "memory");
    a[0] = a00;
    a[1] = a01;
    a[2] = a02;
    a[3] = a03;
    a[4] = a10;
    a[5] = a11;
    a[6] = a12;
    a[7] = a13;
}

/* Where a range's results go: int8 requantized (y8) or int32 accumulators (y32). */
typedef struct {
    const int32_t *bias, *m, *sh;
    int8_t *y8;
    int32_t *y32;
    int32_t y_stride;
} xp_out_t;

/* Results of rows [o, o + nr) for tokens [t, t + nt) (a[XP_TP r + j] is row o + r, token t + j). Requantization
 * with one mulh for the usual shifts: for 33 <= sh <= 62, floor((acc m + 2^(sh-1)) / 2^sh) equals
 * floor((hi + 2^(sh-33)) / 2^(sh-32)) with hi = floor(acc m / 2^32) (the low word, < 2^32, cannot carry past a
 * multiple of 2^(sh-32)); |hi| <= 2^30 and 2^(sh-33) <= 2^29, so the sum fits; then p.clip to int8. Other shifts:
 * ef_requant8 itself. */
static void xp_emit(const xp_out_t *d, const int32_t a[8], int32_t t, int32_t nt, int32_t o, int32_t nr)
{
    int32_t j, r, ys = d->y_stride;
    const int32_t *bias = d->bias, *mv = d->m, *shv = d->sh;
    int8_t *y8 = d->y8;
    int32_t *y32 = d->y32;
    for (r = 0; r < nr; ++r) {
        const int32_t *ar = a + XP_TP * r;
        int32_t b = bias ? bias[o + r] : 0;
        ptrdiff_t at = (ptrdiff_t)t * ys + o + r;
        if (y8 == NULL) {
            for (j = 0; j < nt; ++j, at += ys)
                y32[at] = ar[j] + b;
            continue;
        }
        int32_t m = mv[o + r], sh = shv[o + r];
        if (sh >= 33 && sh <= 62) { /* locals only: the int8 stores may alias anything, d's fields are not reread */
            int32_t rnd = 1 << (sh - 33), s = sh - 32;
            int8_t *yp = y8 + at;
            for (j = 0; j < nt; ++j, yp += ys) {
                int32_t hi = (int32_t)(((int64_t)(ar[j] + b) * (int64_t)m) >> 32);
                *yp = (int8_t)ef_xp_clip8((hi + rnd) >> s);
            }
        } else {
            for (j = 0; j < nt; ++j, at += ys)
                y8[at] = ef_requant8(ar[j] + b, m, sh);
        }
    }
}

/* Inputs [k0, kn) of the chunk (its last 1..3, not taken in whole words) one by one into a. */
static inline void xp_tail(const uint32_t *wd, const int8_t *x0, const int32_t off[XP_TP], int32_t k0, int32_t kn,
                           int32_t a[XP_RB * XP_TP])
{
    for (int32_t k = k0; k < kn; ++k)
#pragma GCC unroll 2
        for (int32_t i = 0; i < XP_RB; ++i) { /* unrolled: constant indices, so a can stay in registers */
            int32_t wk = ((const int8_t *)(wd + i))[XP_BYTE(k)];
#pragma GCC unroll 4
            for (int32_t j = 0; j < XP_TP; ++j)
                a[XP_TP * i + j] += (int32_t)x0[off[j] + k] * wk;
        }
}

/* A row pair's last chunk (xp_chunk) where xp_quads does not serve: four whole tokens, two rows, int8 outputs whose
 * requantization takes one of three register-only forms (xp_rq_setup); the quads of multi-chunk rows, of the HALF
 * form, and a range's last quad when its row ends in 1..3 inputs taken one by one. Sums start at zero (a single-chunk row) or at
 * the earlier chunks' partial sums, in registers (the local array is scalarised), and are requantized from them,
 * without the generic path's stores and reloads. */
typedef struct {
    int32_t b[XP_RB], m[XP_RB], rnd[XP_RB], s[XP_RB], u[XP_RB];
} xp_rq_t;

#define XP_RQ_MULH 1 /* 33 <= sh <= 62: hi = mulh(acc, m), y = (hi + 2^(sh-33)) >> (sh-32) (see xp_emit) */
#define XP_RQ_HALF 2 /* a shift of 32 in the pair: h2 = mulhsu(acc, 2 m), y = ((h2 >> u) + rnd) >> s */
#define XP_RQ_M15 3  /* m = m15 2^16 and every |acc m15| small: y = (rnd' + acc m15) >> (sh - 16), one p.mac */

/* The requantization of rows o, o + 1 (int8 outputs): the form xp_quad_fast takes and its constants in q, or 0 for
 * the generic path (xp_emit); in the M15 form q->b holds b m15 (the c of xp_short's and xp_quads' p.addRNr). amax
 * bounds |acc| without the bias (inputs x 128 x the largest weight magnitude).
 *  - XP_RQ_M15, for multipliers m = m15 2^16 (0 <= m15 < 2^15; the tiled runner's 15-bit multipliers shifted by 16)
 *    and sh >= 17: floor((acc m + 2^(sh-1)) / 2^sh) = floor((acc m15 + 2^(sh-17)) / 2^(sh-16)) exactly; with
 *    (amax + |b|) m15 + 2^(sh-17) < 2^31 that is (rnd' + acc m15) >> (sh - 16) in int32, rnd' = 2^(sh-17) + b m15
 *    (one p.mac: no mulh, which takes 5 cycles on RI5CY).
 *  - XP_RQ_HALF: one mulhsu by 2 m (0 <= m < 2^31, so 2 m < 2^32 unsigned) gives h2 = floor(acc m / 2^31), |h2| <
 *    2^31; a shift of 32 is (h2 + 1) >> 1 (no overflow: acc m < 2^62 - 2^31), 33 <= sh <= 62 the mulh form on
 *    hi = h2 >> 1 (u = 1). The floor argument of xp_emit's: the dropped low bits never carry. */
static int32_t xp_rq_setup(const xp_out_t *d, int32_t o, int32_t nr, int32_t amax, xp_rq_t *q)
{
    int32_t i, mode, m15 = 1, wide = 1, half = 0, neg = 0;
    for (i = 0; i < XP_RB; ++i) { /* rows past o + nr repeat the last one */
        int32_t r = o + (i < nr ? i : nr - 1), sh = d->sh[r], m = d->m[r], b = d->bias ? d->bias[r] : 0;
        uint32_t ab = b < 0 ? 0u - (uint32_t)b : (uint32_t)b; /* amax + |b| < 2^32 */
        m15 &= (m & (int32_t)0x8000FFFF) == 0 && (uint32_t)(sh - 17) <= 30u
               && (uint64_t)((uint32_t)amax + ab) * (uint32_t)(m >> 16) + (1u << (sh - 17)) < (1ull << 31);
        wide &= (uint32_t)(sh - 32) <= 30u;
        half |= sh == 32;
        neg |= m < 0;
    }
    if (m15)
        mode = XP_RQ_M15;
    else if (!wide || (half && neg))
        return 0;
    else
        mode = half ? XP_RQ_HALF : XP_RQ_MULH;
    for (i = 0; i < XP_RB; ++i) {
        int32_t r = o + (i < nr ? i : nr - 1), sh = d->sh[r], m = d->m[r], b = d->bias ? d->bias[r] : 0;
        q->b[i] = mode == XP_RQ_M15 ? b * (m >> 16) : b; /* M15: |b| m15 < 2^31, as checked above */
        q->u[i] = sh > 32;
        if (mode == XP_RQ_M15) {
            q->m[i] = m >> 16;
            q->rnd[i] = (1 << (sh - 17)) + b * (m >> 16);
            q->s[i] = sh - 16;
        } else {
            q->m[i] = mode == XP_RQ_HALF ? (int32_t)((uint32_t)m << 1) : m;
            q->rnd[i] = sh > 32 ? 1 << (sh - 33) : 1;
            q->s[i] = sh > 32 ? sh - 32 : 1;
        }
    }
    return mode;
}

static inline __attribute__((always_inline)) void xp_quad_fast(const uint32_t *wd, const int8_t *x0,
                                                               const int32_t off[XP_TP], int32_t nw, int32_t kn,
                                                               const int32_t *part, const xp_rq_t *q, int8_t *yp,
                                                               int32_t ys, int32_t mode)
{
    int32_t a[XP_RB * XP_TP] = {0}, i, j;
    if (part) /* the last chunk of a longer row: the earlier chunks' sums */
        for (i = 0; i < XP_RB * XP_TP; ++i)
            a[i] = part[i];
    if (nw)
        xp_dot2x4(wd, x0, off, nw, a);
    xp_tail(wd, x0, off, nw << 2, kn, a);
#pragma GCC unroll 4
    for (j = 0; j < XP_TP; ++j, yp += ys)
#pragma GCC unroll 2
        for (i = 0; i < XP_RB; ++i) {
            int32_t v = a[XP_TP * i + j], hi;
            if (mode == XP_RQ_M15) {
                yp[i] = (int8_t)ef_xp_clip8(ef_xp_mac(q->rnd[i], v, q->m[i]) >> q->s[i]);
                continue;
            }
            v += q->b[i];
            if (mode == XP_RQ_HALF)
                hi = (int32_t)(((int64_t)v * (int64_t)(uint32_t)q->m[i]) >> 32) >> q->u[i];
            else
                hi = (int32_t)(((int64_t)v * (int64_t)q->m[i]) >> 32);
            yp[i] = (int8_t)ef_xp_clip8((hi + q->rnd[i]) >> q->s[i]);
        }
}

/* ---- whole token quads of a single-chunk row pair in one asm block (M15 and MULH forms) ---------------------
 * xp_quad_fast's per-quad work outside the dot loop (the sums zeroed, offsets and constants reloaded after each
 * asm's memory clobber, the requantization compiled around them) costs ~100 instructions a quad, a quarter of an
 * 88-input row's. xp_quads runs nq quads in hardware loop 1 instead, the dot product (xp_dot2x4's 14 instructions)
 * as hardware loop 0 inside it, each quad: its first word peeled with pv.dotsp.b (the sums start from it, no
 * zeroing; nw >= 2, so loop 0 runs nw - 1 >= 1 times), x moved on to the next quad (xstep = 4 xs - 4 nw), the six
 * constants loaded from q into the dot loop's scratch registers (words 0..7: b, m, rnd, s; too few registers to
 * keep them), then the 8 outputs: XP_QD_M15S (p.muls, |acc| <= amax < 2^15), XP_QD_M15 (mul) or XP_QD_MULH, the
 * forms of xp_short (M15: acc m15 + b m15 + 2^(sh-17), the sum xp_rq_setup bounds; MULH: mulh(acc + b, m) rounded
 * by its rnd = 2^(s-1)), p.clipi, and the two rows' bytes stored (y + 1, then y post-incremented by ys: y has moved
 * 4 ys, onto the next quad, after the four tokens). 41 instructions a quad outside the dot loop (M15), 49 (MULH). */
typedef char xp_rq_layout[(offsetof(xp_rq_t, b) == 0 && offsetof(xp_rq_t, m) == 8 && offsetof(xp_rq_t, s) == 24)
                          ? 1 : -1];
#define XP_QD_PEEL EF_XP_LW_RR(xa, x0, s1) "lw %[w0], 0(%[wb])\n\t" "lw %[w1], 4(%[wb])\n\t"                 \
                   EF_XP_LW_RR(xb, x0, s2) EF_XP_DOTSP_B(a01, w0, xa) EF_XP_DOTSP_B(a11, w1, xa)             \
                   EF_XP_LW_RR(xa, x0, s3) EF_XP_DOTSP_B(a02, w0, xb) EF_XP_DOTSP_B(a12, w1, xb)             \
                   EF_XP_LW4_POSTINC(xb, x0) EF_XP_DOTSP_B(a03, w0, xa) EF_XP_DOTSP_B(a13, w1, xa)           \
                   EF_XP_DOTSP_B(a00, w0, xb) EF_XP_DOTSP_B(a10, w1, xb) "addi %[w], %[wb], 8\n\t"
#define XP_QD_DOT EF_XP_LW_RR(xa, x0, s1) EF_XP_LW4_POSTINC(w0, w) EF_XP_LW4_POSTINC(w1, w)                  \
                  EF_XP_LW_RR(xb, x0, s2) EF_XP_SDOTSP_B(a01, w0, xa) EF_XP_SDOTSP_B(a11, w1, xa)             \
                  EF_XP_LW_RR(xa, x0, s3) EF_XP_SDOTSP_B(a02, w0, xb) EF_XP_SDOTSP_B(a12, w1, xb)             \
                  EF_XP_LW4_POSTINC(xb, x0) EF_XP_SDOTSP_B(a03, w0, xa) EF_XP_SDOTSP_B(a13, w1, xa)           \
                  EF_XP_SDOTSP_B(a00, w0, xb) EF_XP_SDOTSP_B(a10, w1, xb)
/* the constants: b0 b1 (M15: b m15) in xa xb, m0 m1 in w0 w1, s0 s1 in w nq (whose count lp.setup 1 holds) */
#define XP_QD_CONST "add %[x0], %[x0], %[xstep]\n\t" "lw %[w0], 8(%[q])\n\t" "lw %[w1], 12(%[q])\n\t"              \
                    "lw %[xa], 0(%[q])\n\t" "lw %[xb], 4(%[q])\n\t" "lw %[w], 24(%[q])\n\t" "lw %[nq], 28(%[q])\n\t"
#define XP_QD_M15S(a0, a1) EF_XP_MULS(a0, a0, w0) EF_XP_MULS(a1, a1, w1) EF_XP_ADD_RN(a0, xa, w)                 \
                           EF_XP_ADD_RN(a1, xb, nq)
#define XP_QD_M15(a0, a1) "mul %[" #a0 "], %[" #a0 "], %[w0]\n\t" "mul %[" #a1 "], %[" #a1 "], %[w1]\n\t"       \
                          EF_XP_ADD_RN(a0, xa, w) EF_XP_ADD_RN(a1, xb, nq)
#define XP_QD_MULH(a0, a1) "add %[" #a0 "], %[" #a0 "], %[xa]\n\t" "add %[" #a1 "], %[" #a1 "], %[xb]\n\t"      \
                           "mulh %[" #a0 "], %[" #a0 "], %[w0]\n\t" "mulh %[" #a1 "], %[" #a1 "], %[w1]\n\t"    \
                           ".insn r 0x5b, 6, 0x20, %[" #a0 "], zero, %[w]\n\t"                                  \
                           ".insn r 0x5b, 6, 0x20, %[" #a1 "], zero, %[nq]\n\t"
#define XP_QD_OUT(RQ, a0, a1) RQ(a0, a1) EF_XP_CLIP8(a0, a0) EF_XP_CLIP8(a1, a1) "sb %[" #a1 "], 1(%[y])\n\t"  \
                              EF_XP_SB_RR_POSTINC(a0, y, ys)
/* loop 1 of nq quads, n_rq instructions a quad's requantization (its 8 stores included) */
#define XP_QD_LOOP(RQ, n_rq)                                                                                      \
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t"                                            \
                     EF_XP_LP_SETUP1(nq, (14 + 2 + 14 + 7 + n_rq)) XP_QD_PEEL EF_XP_LP_SETUP0(k, 14) XP_QD_DOT      \
                     XP_QD_CONST XP_QD_OUT(RQ, a00, a10) XP_QD_OUT(RQ, a01, a11) XP_QD_OUT(RQ, a02, a12)          \
                     XP_QD_OUT(RQ, a03, a13) ".option pop"                                                        \
                     : [x0] "+r"(x0), [y] "+r"(y), [nq] "+r"(nq), [a00] "=&r"(a00), [a01] "=&r"(a01),              \
                       [a02] "=&r"(a02), [a03] "=&r"(a03), [a10] "=&r"(a10), [a11] "=&r"(a11), [a12] "=&r"(a12),   \
                       [a13] "=&r"(a13), [w] "=&r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0),             \
                       [w1] "=&r"(w1)                                                                             \
                     : [wb] "r"(wd), [k] "r"(nw - 1), [xstep] "r"(xstep), [s1] "r"(xs), [s2] "r"(2 * xs),          \
                       [s3] "r"(3 * xs), [ys] "r"(ys), [q] "r"(q)                                                 \
                     : "memory")

/* nq >= 1 quads of tokens from x0 (stride xs) against the decoded rows wd, nw >= 2 words each taken whole, outputs
 * from y (row o) on, stride ys, requantized as q and mode (XP_RQ_M15 or XP_RQ_MULH) say. */
static inline __attribute__((always_inline)) void xp_quads(int32_t mode, int32_t amax, const uint32_t *wd,
                                                           const int8_t *x0, int32_t xs, int32_t nw, int32_t nq,
                                                           const xp_rq_t *q, int8_t *y, int32_t ys)
{
    int32_t a00, a01, a02, a03, a10, a11, a12, a13, xstep = 4 * (xs - nw);
    uint32_t xa, xb, w0, w1;
    const uint32_t *w;
    if (mode == XP_RQ_MULH)
        XP_QD_LOOP(XP_QD_MULH, 40);
    else if (amax < 32768)
        XP_QD_LOOP(XP_QD_M15S, 32);
    else
        XP_QD_LOOP(XP_QD_M15, 32);
}

/* ---- rows of at most XP_SK inputs (Mamba's dt_proj: 6) ------------------------------------------------------
 * There the general path's per-quad work (offsets, tails, the constants reloaded) dwarfs the 1..8 MACs of an
 * output. A row pair whose int8 requantization takes a register form (xp_rq_setup) keeps its nw = 1 or 2 decoded
 * words per row and its constants in registers for the whole token range instead: one hardware-loop iteration a
 * token, 11..18 instructions for its two outputs (nw x word loads, post-incremented by the stride; 2 nw dot
 * products; the form's requantization of both sums; two p.sb post-incremented by the y stride). The forms are
 * xp_quad_fast's, rounded by p.addRNr (y = (v + c + 2^(s-1)) >> s):
 *  - M15: v = acc m15, c = b m15: acc m15 + b m15 + 2^(sh-17) is xp_quad_fast's rnd' + acc m15, the same int32
 *    sum (xp_rq_setup bounds it), the product by the one-cycle 16-bit p.muls when |acc| <= amax < 2^15 (m15 <
 *    2^15; every width but 8-bit rows of 2+ inputs), else by mul (two cycles);
 *  - MULH, HALF: the sums start at the bias (v = mulh(acc + b, m), or mulhsu(acc + b, 2 m) >> u), c = 0, and
 *    2^(s-1) is their rnd.
 * With nw = 2 the second word is loaded first, so both loads are two instructions old when the dot products use
 * them (nw = 1, M15: one load stall a token). */
#define XP_SK 8 /* the most inputs of a short row: two decoded words */

#define XP_SK_LD1 EF_XP_LW_RR_POSTINC(xa, p, xs)
#define XP_SK_LD2 EF_XP_LW_RR(xb, p, k2) XP_SK_LD1
#define XP_SK_DOT1 EF_XP_DOTSP_B(a0, w00, xa) EF_XP_DOTSP_B(a1, w10, xa) /* sums from 0 (M15) */
#define XP_SK_DOT2 EF_XP_DOTSP_B(a0, w01, xb) EF_XP_DOTSP_B(a1, w11, xb) EF_XP_SDOTSP_B(a0, w00, xa) \
                   EF_XP_SDOTSP_B(a1, w10, xa)
#define XP_SK_SDOT1 "mv %[a0], %[c0]\n\t" "mv %[a1], %[c1]\n\t" EF_XP_SDOTSP_B(a0, w00, xa) \
                    EF_XP_SDOTSP_B(a1, w10, xa) /* sums from the bias (MULH, HALF) */
#define XP_SK_SDOT2 "mv %[a0], %[c0]\n\t" "mv %[a1], %[c1]\n\t" EF_XP_SDOTSP_B(a0, w01, xb) \
                    EF_XP_SDOTSP_B(a1, w11, xb) EF_XP_SDOTSP_B(a0, w00, xa) EF_XP_SDOTSP_B(a1, w10, xa)
#define XP_SK_M15 "mul %[a0], %[a0], %[m0]\n\t" "mul %[a1], %[a1], %[m1]\n\t" EF_XP_ADD_RN(a0, c0, s0) \
                  EF_XP_ADD_RN(a1, c1, s1)
#define XP_SK_M15S EF_XP_MULS(a0, a0, m0) EF_XP_MULS(a1, a1, m1) EF_XP_ADD_RN(a0, c0, s0) EF_XP_ADD_RN(a1, c1, s1)
#define XP_SK_RN0 ".insn r 0x5b, 6, 0x20, %[a0], zero, %[s0]\n\t" ".insn r 0x5b, 6, 0x20, %[a1], zero, %[s1]\n\t"
#define XP_SK_MULH "mulh %[a0], %[a0], %[m0]\n\t" "mulh %[a1], %[a1], %[m1]\n\t" XP_SK_RN0
#define XP_SK_HALF "mulhsu %[a0], %[a0], %[m0]\n\t" "mulhsu %[a1], %[a1], %[m1]\n\t" \
                   "sra %[a0], %[a0], %[u0]\n\t" "sra %[a1], %[a1], %[u1]\n\t" XP_SK_RN0
#define XP_SK_OUT EF_XP_CLIP8(a0, a0) EF_XP_CLIP8(a1, a1) EF_XP_SB_RR_POSTINC(a0, y0, ys) \
                  EF_XP_SB_RR_POSTINC(a1, y1, ys)
/* one hardware loop of n (>= 1) tokens, its body n_body instructions */
#define XP_SK_LOOP(n_body, body)                                                                                  \
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n, n_body) body            \
                     ".option pop"                                                                                \
                     : [p] "+r"(p), [y0] "+r"(y0), [y1] "+r"(y1), [a0] "=&r"(a0), [a1] "=&r"(a1), [xa] "=&r"(xa), \
                       [xb] "=&r"(xb)                                                                             \
                     : [n] "r"(n), [xs] "r"(xs), [ys] "r"(ys), [k2] "r"(k2), [w00] "r"(w[0]), [w10] "r"(w[1]),    \
                       [w01] "r"(w01), [w11] "r"(w11), [c0] "r"(c0), [c1] "r"(c1), [m0] "r"(q->m[0]),              \
                       [m1] "r"(q->m[1]), [s0] "r"(q->s[0]), [s1] "r"(q->s[1]), [u0] "r"(q->u[0]),                \
                       [u1] "r"(q->u[1])                                                                          \
                     : "memory")

/* the loop for nw = 1 or 2 (n1, n2 instructions) */
#define XP_SK_NW(n1, body1, n2, body2) \
    if (nw == 2)                       \
        XP_SK_LOOP(n2, body2);         \
    else                               \
        XP_SK_LOOP(n1, body1)

/* n tokens of n_in inputs from x row p (stride xs) against the decoded words w (XP_RB interleaved, nw per row),
 * outputs from y0 (row o) and y1 (row o + 1, or y0 again when the pair repeats its row) on, stride ys. With two
 * words the second x word is the one that ends at the last input (at k2 = n_in - 4), so no load passes the row:
 * the second weight words move up by the inputs it repeats (their lanes 0), onto the same inputs. */
static inline __attribute__((always_inline)) void xp_short_run(int32_t mode, int32_t amax, int32_t nw, int32_t n_in,
                                                               const int8_t *p, int32_t xs, int32_t n,
                                                               const uint32_t *w, const xp_rq_t *q, int8_t *y0,
                                                               int8_t *y1, int32_t ys)
{
    int32_t a0, a1, c0 = q->b[0], c1 = q->b[1], k2 = n_in - 4; /* M15: b m15 (xp_rq_setup) */
    uint32_t xa, xb, w01 = 0, w11 = 0;
    if (nw == 2) {
        w01 = w[XP_RB] << (32 - 8 * k2);
        w11 = w[XP_RB + 1] << (32 - 8 * k2);
    }
    if (mode == XP_RQ_M15) {
        if (amax < 32768) {
            XP_SK_NW(11, XP_SK_LD1 XP_SK_DOT1 XP_SK_M15S XP_SK_OUT, 14, XP_SK_LD2 XP_SK_DOT2 XP_SK_M15S XP_SK_OUT);
        } else {
            XP_SK_NW(11, XP_SK_LD1 XP_SK_DOT1 XP_SK_M15 XP_SK_OUT, 14, XP_SK_LD2 XP_SK_DOT2 XP_SK_M15 XP_SK_OUT);
        }
    } else if (mode == XP_RQ_MULH) {
        XP_SK_NW(13, XP_SK_LD1 XP_SK_SDOT1 XP_SK_MULH XP_SK_OUT, 16, XP_SK_LD2 XP_SK_SDOT2 XP_SK_MULH XP_SK_OUT);
    } else {
        XP_SK_NW(15, XP_SK_LD1 XP_SK_SDOT1 XP_SK_HALF XP_SK_OUT, 18, XP_SK_LD2 XP_SK_SDOT2 XP_SK_HALF XP_SK_OUT);
    }
}

/* Tokens [t0, t1) of rows o, o + 1 (nr == 1: the second repeats the first and stores the same bytes over its
 * outputs) through xp_short_run, requantized as q and mode say; w: the decoded words, xt: a scratch word. A row of
 * 1..3 inputs is read as one word, ov = 4 - n_in bytes past them: those must stay inside the x the range holds,
 * before the end of token t1 - 1's inputs (its stride's padding is not assumed readable), so the last `tail` tokens
 * (tail xs >= ov) are copied into the zero-padded xt first. */
static void xp_short(const int8_t *x, int32_t xs, int32_t n_in, const uint32_t *w, uint32_t *xt, const xp_rq_t *q,
                     int32_t mode, int32_t amax, const xp_out_t *d, int32_t t0, int32_t t1, int32_t o, int32_t nr)
{
    int32_t nw = n_in > 4 ? 2 : 1, ov = 4 - n_in, tail = 0, ys = d->y_stride, t, k, n;
    while (tail < t1 - t0 && tail * xs < ov)
        ++tail;
    for (t = t0; t < t1; t += n) { /* the loads in place, then one token at a time from xt */
        const int8_t *p = x + (ptrdiff_t)t * xs;
        int8_t *y = d->y8 + (ptrdiff_t)t * ys + o;
        n = t1 - tail - t;
        if (n <= 0) {
            xt[0] = 0;
            for (k = 0; k < n_in; ++k)
                ((int8_t *)xt)[k] = p[k];
            p = (const int8_t *)xt;
            n = 1;
        }
        xp_short_run(mode, amax, nw, n_in, p, xs, n, w, q, y, y + nr - 1, ys);
    }
}

/* One decoded chunk [k0, k0 + kn) of the rows against tokens [tb, te): sums start at 0 when k0 == 0, else continue
 * from part (8 per token quad), and are emitted after the last chunk (else kept in part). A chunk ending in 1..3
 * inputs (kn % 4, only the row's last chunk) takes its last word as a whole one, the weight lanes past kn zeroed
 * by xp_linear, when the x bytes read past the row's end exist: inside the row (its stride), or in the next token's
 * row (a token below tend - 1); else (the range's last quad) those inputs one by one. */
static void xp_chunk(const int8_t *x, int32_t xs, uint32_t *wd, int32_t k0, int32_t kn, int32_t last,
                     int32_t *part, const xp_out_t *d, int32_t tb, int32_t te, int32_t tend, int32_t o, int32_t nr,
                     int32_t amax)
{
    int32_t t, i, j, full = kn >> 2, off[XP_TP] = {0, xs, 2 * xs, 3 * xs};
    int32_t in_row = (kn & 3) && k0 + 4 * (full + 1) <= xs;
    xp_rq_t q;
    int32_t sk = k0 == 0 && kn <= XP_SK; /* a short row, whole in this chunk (so the range's one token block) */
    int32_t mode = last && (nr == XP_RB || sk) && d->y8 != NULL ? xp_rq_setup(d, o, nr, amax, &q) : 0, tb0 = tb;
    if (mode && sk) { /* scratch past the decoded words (ternary's 10 lanes fill three a row) */
        xp_short(x, xs, kn, wd, wd + 3 * XP_RB, &q, mode, amax, d, tb, te, o, nr);
        return;
    }
    if ((mode == XP_RQ_M15 || mode == XP_RQ_MULH) && k0 == 0 && full >= 2) { /* one asm block (xp_quads) */
        int32_t nq = (te - tb) / XP_TP;
        nq -= nq && (kn & 3) && !in_row && tb + XP_TP * nq == tend; /* that quad's tail: xp_quad_fast's, below */
        if (nq)
            xp_quads(mode, amax, wd, x + (ptrdiff_t)tb * xs, xs, full + ((kn & 3) != 0), nq, &q,
                     d->y8 + (ptrdiff_t)tb * d->y_stride + o, d->y_stride);
        tb += XP_TP * nq;
    }
    /* whole quads in registers, one loop a requantization form; the last partial quad (if any) below */
#define XP_QUADS(MODE)                                                                                            \
    for (t = tb; t + XP_TP <= te; t += XP_TP) {                                                                   \
        int32_t w = full + ((kn & 3) && (in_row || t + XP_TP < tend)); /* words taken whole, as below */          \
        xp_quad_fast(wd, x + (ptrdiff_t)t * xs + k0, off, w, kn, k0 == 0 ? NULL : part + XP_RB * (t - tb0), &q,   \
                     d->y8 + (ptrdiff_t)t * d->y_stride + o, d->y_stride, MODE);                                   \
    }                                                                                                             \
    tb = t;
    if (mode == XP_RQ_M15) {
        XP_QUADS(XP_RQ_M15)
    } else if (mode == XP_RQ_HALF) {
        XP_QUADS(XP_RQ_HALF)
    } else if (mode == XP_RQ_MULH) {
        XP_QUADS(XP_RQ_MULH)
    }
#undef XP_QUADS
    for (t = tb; t < te; t += XP_TP) {
        const int8_t *x0 = x + (ptrdiff_t)t * xs + k0;
        int32_t nt = te - t < XP_TP ? te - t : XP_TP, local[8];
        int32_t *a = k0 == 0 && last ? local : part + XP_RB * (t - tb0);
        if (nt < XP_TP) /* the last quad: tokens past te repeat token t; their sums are not stored */
            for (j = 0; j < XP_TP; ++j)
                off[j] = j < nt ? j * xs : 0;
        if (k0 == 0)
            for (i = 0; i < 8; ++i)
                a[i] = 0;
        int32_t nw = full; /* words taken whole */
        if (kn & 3)
            nw += in_row || t + nt < tend;
        if (nw)
            xp_dot2x4(wd, x0, off, nw, a);
        xp_tail(wd, x0, off, nw << 2, kn, a);
        if (last)
            xp_emit(d, a, t, nt, o, nr);
    }
}

static void xp_linear(const int8_t *x, int32_t xs, int32_t n_in, const uint8_t *w, int32_t bits, const xp_out_t *d,
                      int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    uint32_t wd[XP_BUF_WORDS];
    int32_t *part = (int32_t *)(wd + XP_RB * XP_KM / 4); /* used only when n_in > XP_KC, past the XP_KM chunk */
    int32_t rb = ef_row_bytes(n_in, bits), tb_len = n_in > XP_KC ? XP_TB : t1 - t0, kc = n_in > XP_KC ? XP_KM : XP_KC;
    int32_t o, tb, k0, r;
    /* |acc| without the bias is at most n_in 128 |w|max (|w|max: ternary 1, 2-bit 2, 4-bit 8, 8-bit 128) */
    int32_t wmax = bits == EF_TERNARY ? 1 : bits == 2 ? 2 : bits == 4 ? 8 : 128;
    int32_t amax = n_in <= (1 << 23) / wmax ? n_in * 128 * wmax : INT32_MAX;
    for (o = o0; o < o1; o += XP_RB) {
        int32_t nr = o1 - o < XP_RB ? o1 - o : XP_RB;
        for (tb = t0; tb < t1; tb += tb_len) {
            int32_t te = t1 - tb < tb_len ? t1 : tb + tb_len;
            for (k0 = 0; k0 < n_in; k0 += kc) {
                int32_t kn = n_in - k0 < kc ? n_in - k0 : kc;
                for (r = 0; r < XP_RB; ++r) { /* rows past o1 repeat the last one; their sums are not stored */
                    xp_decode(w + (size_t)(o + (r < nr ? r : nr - 1)) * (size_t)rb, bits, k0, kn, wd + r);
                    if (kn & 3) /* lanes past kn of the last word: 0, so that word can be taken whole */
                        wd[XP_RB * (kn >> 2) + r] &= (1u << (8 * (kn & 3))) - 1u;
                }
                xp_chunk(x, xs, wd, k0, kn, k0 + kn >= n_in, part, d, tb, te, t1, o, nr, amax);
            }
        }
    }
}

void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    xp_out_t d = {bias, m, sh, y, NULL, y_stride};
    if (n_in > 0)
        xp_linear(x, x_stride, n_in, w, w_bits, &d, t0, t1, o0, o1);
    else
        for (int32_t t = t0; t < t1; ++t)
            for (int32_t o = o0; o < o1; ++o)
                y[(ptrdiff_t)t * y_stride + o] = ef_requant8(bias ? bias[o] : 0, m[o], sh[o]);
}

void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1)
{
    xp_out_t d = {bias, NULL, NULL, NULL, y, y_stride};
    if (n_in > 0)
        xp_linear(x, x_stride, n_in, w, w_bits, &d, t0, t1, o0, o1);
    else
        for (int32_t t = t0; t < t1; ++t)
            for (int32_t o = o0; o < o1; ++o)
                y[(ptrdiff_t)t * y_stride + o] = bias ? bias[o] : 0;
}
