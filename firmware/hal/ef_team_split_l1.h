/* Whole-tensor kernels staged through L1 (firmware/hal/ef_team_split_l1.c): the cluster HALs' team split runs an
 * element-wise, row-wise or time-local kernel on L1 copies of its operands, moved by the cluster DMA in chunks
 * (in, compute, out; three chunk slots in flight), instead of letting eight cores load and store L2 one word at a
 * time (each such access stalls a core for a round trip over the cluster bus; the cores contend for it). */
#ifndef EF_TEAM_SPLIT_L1_H
#define EF_TEAM_SPLIT_L1_H

#include <stdint.h>

#define EF_STAGE_MAX_IN 4  /* inputs of one staged kernel */
#define EF_STAGE_MAX_AUX 4 /* constant arrays copied to L1 once per call (a LUT, LayerNorm's gamma and beta) */

/** One chunk in L1, as a stage body sees it. */
typedef struct {
    const int8_t *x[EF_STAGE_MAX_IN]; /* input j's buffer for the chunk's row 0 (see ef_stage_t.reverse) */
    int8_t *y;                        /* the chunk's output row 0 */
    int32_t row0;                     /* the chunk's first row in the whole tensor */
    int32_t rows;                     /* rows in the chunk */
    int32_t bytes;                    /* bytes of the chunk (the last row of a stage may be short) */
    const void *aux[EF_STAGE_MAX_AUX]; /* the stage's constant arrays, in L1 (NULL where the stage has none) */
} ef_stage_chunk_t;

/** Rows [i0, i1) of a chunk: one core's share. */
typedef void (*ef_stage_fn)(void *ctx, const ef_stage_chunk_t *ch, int32_t i0, int32_t i1);

/** A kernel over n_rows independent rows of row_bytes bytes (every input and the output), total_bytes in all (at
 *  most n_rows row_bytes: the last row may be short); the team splits each chunk's rows. reverse[j]: output row r
 *  reads input j's row n_rows - 1 - r (the chunk holds those rows in memory order, x[j] points at the chunk's row 0,
 *  the buffer's last row). in_place: the output overwrites input 0's buffer (an element-wise kernel that reads
 *  each element before writing it). aux[k]: aux_bytes[k] bytes of constants (L2) copied to L1 once, before the
 *  first chunk (NULL or 0 bytes: none). The depthwise conv (history rows) and the patch conv (one load) have
 *  their own staging in ef_team_split_l1.c. */
typedef struct {
    int32_t n_in;
    const int8_t *xs[EF_STAGE_MAX_IN];
    int32_t reverse[EF_STAGE_MAX_IN];
    int8_t *y;
    int32_t row_bytes, n_rows, total_bytes, in_place;
    const void *aux[EF_STAGE_MAX_AUX];
    uint32_t aux_bytes[EF_STAGE_MAX_AUX];
    ef_stage_fn body;
    void *ctx;
} ef_stage_t;

/** Run the stage over the whole tensor with the L1 area of the tiles (ef_l1_scratch); returns 0, having done
 *  nothing, when a chunk of one row does not fit there or the tensor is too small to pay. */
int32_t ef_stage_l1_run(const ef_stage_t *s);

/* The staged kernels ef_team_split.c's wrappers try first: same arguments as the kernels (ef_kernels.h), 1 when
 * done, 0 (nothing done) when the call does not take the stage (strided or partial operands, too small, too big
 * for L1): the wrapper then splits the L2 call. */
int32_t ef_staged_lut_i8(const int8_t *x, int8_t *y, int32_t n, const int8_t *lut);
int32_t ef_staged_mul_requant_i8(const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t m, int32_t sh);
int32_t ef_staged_add_requant_i8(const int8_t *const *xs, const int32_t *x_strides, const int32_t *M,
                                 int32_t n_inputs, int32_t S, int8_t *y, int32_t y_stride, int32_t n_rows,
                                 int32_t n_cols);
int32_t ef_staged_layernorm_i8(const int8_t *x, int32_t x_stride, int8_t *y, int32_t y_stride, int32_t n_ch,
                               int64_t eps_q, const int32_t *g, const int32_t *b, int32_t g_frac, int32_t r0,
                               int32_t r1);
int32_t ef_staged_dwconv1d_causal_i8(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t K,
                                     const int32_t *bias, const int16_t *m, const int8_t *sh, int8_t *y,
                                     int32_t y_stride, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                                     const int8_t *lut);
int32_t ef_staged_flip_rows_i8(const int8_t *x, int8_t *y, int32_t n_rows, int32_t row_len);
/* Where a staged output goes back (bytes 0: nothing staged). */
typedef struct {
    int8_t *l2;
    const int8_t *l1;
    uint32_t bytes;
} ef_stage_out_t;
/* The patch conv's operands in L1: x, w, bias, m, sh replaced by their copies (1), or left as they are (0); when
 * they are, the int16 addend too if it fits, and y if the call writes whole rows of it (e0 = 0, e1 n_rows =
 * y_stride) and it fits: *out says where those rows go once the team is done (ef_stage_out_finish). */
int32_t ef_stage_conv2d_patch_operands(const int8_t **x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                                       const uint8_t **w, int32_t w_bits, const int32_t **bias, const int16_t **m,
                                       const int8_t **sh, const int16_t **addend16, int32_t addend_stride,
                                       int8_t **y, int32_t y_stride, int32_t l0, int32_t l1, int32_t e0, int32_t e1,
                                       ef_stage_out_t *out);
/* A read-only operand of `bytes` bytes copied to the L1 area whole (one transfer, waited): its L1 copy, or NULL
 * (nothing done) when it is too small to pay or does not fit. */
const int8_t *ef_stage_copy_in(const int8_t *src, int32_t bytes);
/* A staged output back to L2 (waited); nothing when none was staged. */
void ef_stage_out_finish(const ef_stage_out_t *out);

#endif /* EF_TEAM_SPLIT_L1_H */
