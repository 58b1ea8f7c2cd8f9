/* edgeflow integer kernel library: shared inline arithmetic and every kernel's prototype. */
#ifndef EF_KERNELS_H
#define EF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Conventions (the numpy reference edgeflow/ir/ops.py defines every result; these kernels match it bit
 * for bit):
 *  - int8 activations with zero point 0, int32 accumulators, int64 for products with multipliers.
 *  - `>>` on signed values is an arithmetic shift (gcc, also for rv32); "round half up" = floor(x + 1/2).
 *  - requantization: y = sat8((acc * m + 2^(sh-1)) >> sh), m a Q31 multiplier in [2^30, 2^31), sh in [1, 62].
 *  - Ranges [a0, a1) index the buffers as given (buffer coordinates): a caller holding a tile passes the
 *    tile's pointers and a range inside the tile; a caller holding whole tensors passes a sub-range.
 *  - Strides are in elements between consecutive rows (tokens / time steps) of a buffer.
 *  - Packed weights: one row per output channel, each row padded to whole bytes; element k of a row sits at
 *    bits bits*(k % (8/bits)) of byte k / (8/bits), two's complement (2-bit: -2..1, 4-bit: -8..7).
 *  - No allocation, no floats, no static state; outputs never alias inputs unless a kernel says so.
 */

/* ---- shared inline arithmetic ------------------------------------------------------------------ */

/** Round-half-up arithmetic right shift: s ? (x + 2^(s-1)) >> s : x, for 0 <= s <= 62. */
static inline int64_t ef_rshift_round(int64_t x, int32_t s)
{
    return s ? (x + ((int64_t)1 << (s - 1))) >> s : x;
}

/** Saturate to int8. */
static inline int8_t ef_sat8(int64_t x)
{
    return (int8_t)(x < -128 ? -128 : (x > 127 ? 127 : x));
}

/** y = sat8(ef_rshift_round(acc * m, sh)). */
static inline int8_t ef_requant8(int32_t acc, int32_t m, int32_t sh)
{
    return ef_sat8(ef_rshift_round((int64_t)acc * (int64_t)m, sh));
}

/** sat8(ef_rshift_round(acc * m, sh) + zp): requantization to an int8 activation with zero point zp. */
static inline int8_t ef_requant8_zp(int32_t acc, int32_t m, int32_t sh, int32_t zp)
{
    return ef_sat8(ef_rshift_round((int64_t)acc * (int64_t)m, sh) + zp);
}

/** ef_requant8 for a 15-bit m (ops.REQUANT_BITS), same result: (acc m 2^16 + 2^(sh+15)) >> (sh+16) equals
 *  (acc m + 2^(sh-1)) >> sh, and a shift >= 32 takes the one-word path of a 64-bit shift on 32-bit cores. */
static inline int8_t ef_requant8_m15(int32_t acc, int32_t m, int32_t sh)
{
    return sh <= 46 ? ef_requant8(acc, m * 65536, sh + 16) : ef_requant8(acc, m, sh);
}

/** Weight element k of a packed row (bits 2, 4 or 8, two's complement as above), sign-extended. */
static inline int32_t ef_weight_at(const uint8_t *w, int32_t k, int32_t bits)
{
    if (bits == 8)
        return (int32_t)((const int8_t *)w)[k];
    if (bits == 4) {
        uint32_t f = ((uint32_t)w[k >> 1] >> (4 * (k & 1))) & 15u;
        return (int32_t)(f ^ 8u) - 8;
    }
    uint32_t f = ((uint32_t)w[k >> 2] >> (2 * (k & 3))) & 3u;
    return (int32_t)(f ^ 2u) - 2;
}

/** Storage code of ternary weights (-1..1) packed five to a byte in base 3 (byte = sum (w_k + 1) 3^k). */
#define EF_TERNARY 1

/** Bytes of one packed weight row of n elements at `bits` (2, 4 or 8), or EF_TERNARY (ceil(n / 5)). */
static inline int32_t ef_row_bytes(int32_t n, int32_t bits)
{
    return bits == EF_TERNARY ? (n + 4) / 5 : (n * bits + 7) / 8;
}

/* ---- linear (ef_linear.c) ----------------------------------------------------------------------- */

/**
 * y[t, o] = requant(sum_i x[t, i] * w[o, i] + bias[o], m[o], sh[o]) for t in [t0, t1), o in [o0, o1).
 * x row t at x + t * x_stride (n_in int8); w row o at w + o * ef_row_bytes(n_in, w_bits), w_bits 2/4/8 or
 * EF_TERNARY;
 * bias may be NULL; y[t, o] at y[t * y_stride + o]. bias, m, sh are indexed by o.
 */
void ef_linear_i8(const int8_t *x, int32_t x_stride, int32_t n_in,
                  const uint8_t *w, int32_t w_bits, const int32_t *bias,
                  const int32_t *m, const int32_t *sh,
                  int8_t *y, int32_t y_stride,
                  int32_t t0, int32_t t1, int32_t o0, int32_t o1);

/** As ef_linear_i8 without requantization: y[t, o] = sum_i x[t, i] * w[o, i] + bias[o] (int32, e.g. logits). */
void ef_linear_acc_i32(const int8_t *x, int32_t x_stride, int32_t n_in,
                       const uint8_t *w, int32_t w_bits, const int32_t *bias,
                       int32_t *y, int32_t y_stride,
                       int32_t t0, int32_t t1, int32_t o0, int32_t o1);

/* ---- patch embedding (ef_conv2d_patch.c) -------------------------------------------------------- */

/**
 * Conv2d(1 -> E, kernel = stride = (kh, kw)) in token layout: for token l in [l0, l1), channel e in [e0, e1),
 * patch row r in [0, n_rows):
 *   acc = sum_{i<kh, j<kw} w[e, i*kw + j] * x[(r*kh + i) * x_stride + l*kw + j] + bias[e]
 *         + addend[l * addend_stride + e*n_rows + r]   (addend16 or addend32, or neither: 0)
 *   y[l * y_stride + e*n_rows + r] = requant(acc, m[e], sh[e])
 * x: (H, W) int8, row stride x_stride; w row e at w + e * ef_row_bytes(kh*kw, w_bits); bias non-NULL.
 */
void ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint8_t *w, int32_t w_bits, const int32_t *bias,
                        const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh,
                        int8_t *y, int32_t y_stride,
                        int32_t l0, int32_t l1, int32_t e0, int32_t e1);

/* ---- depthwise causal conv1d (ef_dwconv1d.c) ---------------------------------------------------- */

/**
 * y[t, c] = requant(sum_{k<K} w[c*K + k] * x[t - (K-1) + k, c] + bias[c], m[c], sh[c]) for t in [t0, t1),
 * c in [c0, c1); x rows with a negative index (buffer coordinates) read as 0. A time tile that does not start
 * the sequence passes a buffer holding K-1 history rows before its first row and t0 >= K-1.
 * x[t, c] at x[t * x_stride + c]; y[t, c] at y[t * y_stride + c].
 */
void ef_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                           const int32_t *bias, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride,
                           int32_t t0, int32_t t1, int32_t c0, int32_t c1);

/**
 * ef_dwconv1d_causal_i8, then y = lut[y + 128] on every output it wrote: a lookup table fused into the conv
 * (the plan's fused_luts on multi-core targets, whose HALs apply it to each block in L1 before it leaves).
 */
void ef_dwconv1d_causal_lut_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                               const int32_t *bias, const int16_t *m, const int8_t *sh,
                               int8_t *y, int32_t y_stride,
                               int32_t t0, int32_t t1, int32_t c0, int32_t c1, const int8_t *lut);

/* ---- elementwise (ef_eltwise.c) ----------------------------------------------------------------- */

/** y[i] = lut[x[i] + 128] for i < n (in place allowed: y == x). */
void ef_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);

/** y[i] = requant(a[i] * b[i], m, sh) for i < n (y may equal a or b). */
void ef_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);

/**
 * y[r, c] = sat8(ef_rshift_round(sum_j xs[j][r * x_strides[j] + c] * M[j], S)) over r < n_rows, c < n_cols,
 * int64 sum, one rounding. A negative stride reads an input reversed in time (pass a pointer to its last row):
 * this is how x + fwd + flip(rev) runs without a flip copy. M[j] in [0, 2^30), S in [1, 62].
 */
void ef_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                       int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);

/** y row r = x row (n_rows - 1 - r), rows of row_len int8 (x and y must not overlap). */
void ef_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);

/* ---- data movement (ef_layout.c) ---------------------------------------------------------------- */

/** Most axes of a strided gather (transpose / slice of a tensor of up to EF_MAX_DIMS dimensions). */
#define EF_MAX_DIMS 8

/**
 * y[i_0, ..., i_{n-1}] = x[sum_k i_k * strides[k]] for i_k < shape[k], y written contiguously in C order
 * (prod(shape) int8; ndim 0 copies one element). Strides are in elements and may be negative or 0 (x points at
 * the element of index 0, so a slice passes x + offset). A transpose of x (dims d, perm p) is shape d[p],
 * strides C-strides(d)[p]; numpy: structural.strided. x and y must not overlap; 0 <= ndim <= EF_MAX_DIMS.
 */
void ef_gather_strided_i8(const int8_t *x, int32_t ndim, const int32_t *shape, const int32_t *strides, int8_t *y);

/**
 * y[r * row_len + i] = x[offsets[r] + i * step] for r < n_rows, i < row_len, y written contiguously
 * (n_rows * row_len int8): the gather op, a Gather of constant indices that no strided view covers (e.g. the
 * channels [0, 3, 4, 7] of a (C, T) window: offsets 0, 3T, 4T, 7T of rows of T). step may be negative or 0;
 * every index must lie in x. numpy: structural.gather_rows. x and y must not overlap.
 */
void ef_gather_rows_i8(const int8_t *x, const int32_t *offsets, int32_t n_rows, int32_t row_len, int32_t step,
                       int8_t *y);

/* ---- normalisation and pooling (ef_layernorm.c, ef_meanpool.c) ----------------------------------- */

#define EF_LN_Z_FRAC 20   /* fractional bits of the normalised value z */
#define EF_LN_B_FRAC 16   /* fractional bits of the folded beta */

/**
 * Integer LayerNorm over rows r in [r0, r1) of n_ch channels (scheme in edgeflow/ir/ops_norm.py):
 *   S = sum x, Q = sum x^2 (int32), W = n_ch*Q - S^2 + eps_q (int64), d_i = n_ch*x_i - S
 *   k = (62 - bitlen(W)) / 2, r = isqrt(W << 2k), inv = 2^61 / r (integer division)
 *   z_i = ef_rshift_round(d_i * inv, 41 - k)                         (Q20, = (x - mean) / std)
 *   y_i = sat8(ef_rshift_round(z_i * g[i] + ((int64)b[i] << (20 + g_frac - 16)), 20 + g_frac))
 */
void ef_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                     int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac,
                     int32_t r0, int32_t r1);

/** y[c] = requant(sum_{t < n_tok} x[t * x_stride + c], m, sh) for c in [c0, c1). */
void ef_meanpool_tokens_i8(const int8_t *x, int32_t x_stride, int32_t n_tok, int8_t *y,
                           int32_t m, int32_t sh, int32_t c0, int32_t c1);

/* ---- selective scan (ef_scan.c, ef_exp2.c) ------------------------------------------------------ */

#define EF_EXP2_TABLE_SIZE 257
/** Q15 table 2^(-j/256), j = 0..256 (== edgeflow.quant.intmath.EXP2_TABLE_Q15). */
extern const int32_t ef_exp2_table_q15[EF_EXP2_TABLE_SIZE];

/** 2^(-e / 2^frac_bits) in Q15 for 0 <= e < 2^31, 8 <= frac_bits <= 24 (intmath.exp2_neg_fixed). */
int32_t ef_exp2_neg_q15(int32_t e, int32_t frac_bits);

/** Integer constants of one scan direction (edgeflow.quant.intscan.ScanConsts). */
typedef struct {
    const uint16_t *ka;    /* (d_inner, d_state), exponent of 2 per delta code, Q(ka_frac) */
    const int32_t *m_in;   /* (d_inner,) Q31 */
    const int8_t *sh_in;   /* (d_inner,) */
    const int16_t *m_y;    /* (d_inner,) 15-bit */
    const int16_t *m_D;    /* (d_inner,) signed 15-bit mantissa of the D term ... */
    const int8_t *sh_D;    /* (d_inner,) ... times 2^sh_D */
    const int8_t *sh_y;    /* (d_inner,) */
    int32_t ka_frac;
    int32_t d_inner;
    int32_t d_state;
    const int32_t *exp2_q15; /* exp2 table to read (a copy in L1); NULL (initialiser omitted): ef_exp2_table_q15 */
} ef_scan_consts_t;

/**
 * Integer selective scan (intscan.int_scan) over time steps [t0, t1) and channels [d0, d1).
 * u[t, d] at u[t * u_stride + d], delta likewise (codes 0..127), B[t, n] / C[t, n] at B/C[t * bc_stride + n],
 * y[t, d] at y[t * y_stride + d]. reverse = 0 steps t0 .. t1-1, reverse = 1 steps t1-1 .. t0 (the reverse
 * direction without flip copies). h: (d_inner, d_state) int32 state owned by the caller, row d at
 * h + d * d_state; zero it before the first step of a sequence; it carries over between time chunks.
 */
void ef_scan_i8(const ef_scan_consts_t *c,
                const int8_t *u, int32_t u_stride, const int8_t *delta, int32_t delta_stride,
                const int8_t *B, const int8_t *C, int32_t bc_stride,
                int8_t *y, int32_t y_stride, int32_t *h,
                int32_t t0, int32_t t1, int32_t d0, int32_t d1, int32_t reverse);

/* ---- attention (ef_matmul.c, ef_softmax.c) ------------------------------------------------------ */

/**
 * y[i, j] = requant(sum_{k<K} a[i * a_stride + k] * b[k * b_sk + j * b_sj], m, sh) for i in [i0, i1),
 * j in [j0, j1); y[i, j] at y[i * y_stride + j]. Q.K^T: b = K with b_sk = 1, b_sj = row stride of K.
 */
void ef_matmul_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                  int32_t m, int32_t sh, int8_t *y, int32_t y_stride,
                  int32_t i0, int32_t i1, int32_t j0, int32_t j1);

/**
 * Integer softmax of rows r in [r0, r1) of n int8 values (scheme in edgeflow/ir/ops_norm.py):
 *   p_j = ef_exp2_neg_q15((max - x_j) * ke, frac); s = sum p_j; rcp = 2^46 / s (int64 division)
 *   q_j = ef_rshift_round(p_j * rcp, 16) (Q30 probability); y_j = requant(q_j, m, sh)
 */
void ef_softmax_rows_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                        int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t r0, int32_t r1);

/* ---- general convolution and pooling (ef_conv.c, ef_pool.c) ------------------------------------ */

/** Geometry of a channel-first Conv1d / Conv2d (1-D: h = h_out = kh = 1, pad_t = 0), batch stripped. */
typedef struct {
    int32_t c_in, h, w;             /* input x (c_in, h, w) */
    int32_t c_out, h_out, w_out;    /* output y (c_out, h_out, w_out) */
    int32_t kh, kw, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
    int32_t groups;                 /* c_in and c_out divisible by groups */
    int32_t zp_in, zp_out;          /* zero points (onnxruntime QDQ): padding reads zp_in, zp_out added */
} ef_conv_geom_t;

/**
 * Conv (edgeflow/ir/ops_cnn.py conv) for output channels o in [o0, o1), cg = c_in / groups:
 *   acc = bias[o] + sum_{c<cg, i<kh, j<kw} w[o, (c*kh + i)*kw + j] * x[(o / (c_out/groups))*cg + c, ih, iw],
 *   ih = oh*stride_h + i*dil_h - pad_t, iw = ow*stride_w + j*dil_w - pad_l (taps outside x read zp_in)
 *   y[o, oh, ow] = min(hi, max(lo, ef_requant8_m15(acc, m[o], sh[o])))      (lo/hi: a folded ReLU / Clip)
 *   (zp_out != 0: y = min(hi, max(lo, ef_sat8(ef_rshift_round(acc * m[o], sh[o]) + zp_out))))
 * w row o at w + o * ef_row_bytes(cg*kh*kw, w_bits), w_bits 2, 4 or 8; m 15-bit (ops.REQUANT_BITS).
 */
void ef_conv_i8(const ef_conv_geom_t *g, const int8_t *x, const uint8_t *w, int32_t w_bits,
                const int32_t *bias, const int32_t *m, const int32_t *sh, int32_t lo, int32_t hi,
                int8_t *y, int32_t o0, int32_t o1);

#define EF_POOL_MAX 0
#define EF_POOL_AVG 1

/** Geometry of a channel-first MaxPool / AveragePool (1-D: h = h_out = kh = 1), no dilation. */
typedef struct {
    int32_t c, h, w, h_out, w_out;
    int32_t kh, kw, stride_h, stride_w, pad_t, pad_l;
    int32_t mode;                   /* EF_POOL_MAX or EF_POOL_AVG */
    int32_t count_include_pad;      /* avg: divide by kh*kw (1) or by the in-bounds taps (0) */
    int32_t zp_in, zp_out;          /* zero points (onnxruntime QDQ): taps read as x - zp_in, zp_out added */
} ef_pool_geom_t;

/**
 * Pool (ops_cnn.pool) for channels c in [c0, c1), over the window's in-bounds taps of x (c, h, w):
 *   max: y = ef_requant8_m15(max x (-2^20 if none) - zp_in, m[0], sh[0])
 *   avg: n = count_include_pad ? kh*kw : in-bounds taps; y = ef_requant8_m15(sum (x - zp_in), m[n], sh[n])
 *   (zp_out != 0: y = ef_sat8(ef_rshift_round(acc * m, sh) + zp_out))
 */
void ef_pool_i8(const ef_pool_geom_t *g, const int8_t *x, const int32_t *m, const int32_t *sh, int8_t *y,
                int32_t c0, int32_t c1);

/* ---- zero-point requantization (ef_requant.c) --------------------------------------------------- */

/**
 * y[t * cols + o] = sat8(ef_rshift_round(acc[t * cols + o] * m[o], sh[o]) + zp) for t < rows, o < cols: the
 * requantization of an int32 accumulator to an asymmetric int8 activation (output zero point zp; onnxruntime QDQ).
 */
void ef_requant_zp_i8(const int32_t *acc, int32_t rows, int32_t cols, const int32_t *m, const int32_t *sh,
                      int32_t zp, int8_t *y);

/* ---- zero points of asymmetric activations (ef_zp.c; edgeflow/ir/ops_zp.py) -------------------------- */

/**
 * y[r, c] = sat8(ef_rshift_round(C + sum_j xs[j][r * x_strides[j] + c] * M[j], S)), int64 sum: ef_add_requant_i8
 * with the zero points in C = zp_out 2^S - sum_j M[j] zp_j (ops_zp.add_zp_params). M[j] in [0, 2^30), S in [1, 62].
 */
void ef_add_requant_zp_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M, int32_t n_inputs,
                          int32_t S, int64_t C, int8_t *y, int32_t y_stride, int32_t n_rows, int32_t n_cols);

/** y[i] = ef_requant8_zp((a[i] - za) * (b[i] - zb), m, sh, zy) for i < n (y may equal a or b). */
void ef_mul_requant_zp_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh,
                          int32_t za, int32_t zb, int32_t zy);

/**
 * ef_matmul_i8 of two asymmetric activations: y[i, j] = ef_requant8_zp(sum_{k<K} (a[i * a_stride + k] - za) *
 * (b[k * b_sk + j * b_sj] - zb), m, sh, zy) for i in [i0, i1), j in [j0, j1) (int32 accumulator).
 */
void ef_matmul_zp_i8(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_sk, int32_t b_sj, int32_t K,
                     int32_t m, int32_t sh, int32_t za, int32_t zb, int32_t zy, int8_t *y, int32_t y_stride,
                     int32_t i0, int32_t i1, int32_t j0, int32_t j1);

/** ef_softmax_rows_i8 with y_j = ef_requant8_zp(q_j, m, sh, zy) (the input's zero point cancels in max - x). */
void ef_softmax_rows_zp_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n,
                           int32_t ke, int32_t frac, int32_t m, int32_t sh, int32_t zy, int32_t r0, int32_t r1);

#endif /* EF_KERNELS_H */
