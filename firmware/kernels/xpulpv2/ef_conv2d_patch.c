/* Patch embedding, Xpulpv2 variant (pulp-open / GAP9 cluster): pv.sdotsp.b over L1 copies of patch and weights.
 *
 * Same function, arguments and bit-exact results as firmware/kernels/ef_conv2d_patch.c (tests/gvsoc/test_xpulpv2.py
 * runs both on the same inputs on GVSoC). The portable kernel re-reads every patch from the L2 arena for each output
 * channel, a byte at a time. Here the weights of up to XC_W_WORDS / patch_words channels are decoded once per call
 * (any of 2, 4, 8 bits; 8-bit rows of whole words already in L1, as the team split stages them, are read in
 * place, all channels at once) into a word buffer on the core's stack (L1), row k of the patch
 * flattened in the order of the packed row and zero-padded to a word; each patch is read once per channel chunk
 * into a word buffer of the same layout (word loads when the patch rows are word-aligned and kw % 4 == 0, bytes
 * otherwise), and each channel's dot product is pv.sdotsp.b over the two buffers (the zero padding adds nothing; the
 * int32 sum is the portable one). A chunk's bias, multipliers and shifts are read from L2 once into stack arrays;
 * the requantization of ef_requant8_m15 is one mulh and one p.addRNr for sh in [17, 46] (else the portable one).
 * Patches over XC_BUF_WORDS * 4 weights take the portable per-weight loop. */
#include "ef_kernels.h"
#include "ef_xpulp.h"

#define XC_BUF_WORDS 64  /* the largest patch of the fast path (words; its buffer on the stack) */
#define XC_W_WORDS 64    /* decoded weights on the stack (256 bytes) */
#define XC_CHUNK_MAX 48  /* channels a chunk (their constants copied to the stack) */

typedef uint32_t xc_word_t __attribute__((may_alias));

/* As the portable kernel's packed loop: one weight at a time from the packed row (patches over 256 weights). */
static int32_t xc_dot_packed(const int8_t *xp, int32_t x_stride, int32_t kh, int32_t kw, const uint8_t *wr,
                             int32_t bits)
{
    int32_t acc = 0, k = 0;
    for (int32_t i = 0; i < kh; ++i, xp += x_stride)
        for (int32_t j = 0; j < kw; ++j, ++k)
            acc += (int32_t)xp[j] * ef_weight_at(wr, k, bits);
    return acc;
}

/* Weights of channels [e, e + n) decoded into buf, pw words per channel, padding bytes zero. */
static void xc_decode(const uint8_t *w, int32_t rb, int32_t bits, int32_t kk, int32_t pw, int32_t e, int32_t n,
                      uint32_t *buf)
{
    for (int32_t c = 0; c < n; ++c) {
        const uint8_t *wr = w + (size_t)(e + c) * (size_t)rb;
        int8_t *d = (int8_t *)(void *)(buf + c * pw);
        buf[c * pw + pw - 1] = 0u;
        if (bits == 8 && ((uintptr_t)wr & 3u) == 0 && (kk & 3) == 0)
            for (int32_t k = 0; k < pw; ++k)
                buf[c * pw + k] = ((const xc_word_t *)(const void *)wr)[k];
        else
            for (int32_t k = 0; k < kk; ++k)
                d[k] = (int8_t)ef_weight_at(wr, k, bits);
    }
}

/* The patch at xp (kh rows of kw, row stride x_stride) flattened into pw words, padding bytes zero. */
static void xc_load_patch(const int8_t *xp, int32_t x_stride, int32_t kh, int32_t kw, int32_t pw, int32_t words,
                          uint32_t *xb)
{
    if (words) {
        int32_t rw = kw >> 2;
        for (int32_t i = 0; i < kh; ++i, xp += x_stride)
            for (int32_t j = 0; j < rw; ++j)
                xb[i * rw + j] = ((const xc_word_t *)(const void *)xp)[j];
        return;
    }
    int8_t *d = (int8_t *)(void *)xb;
    xb[pw - 1] = 0u;
    for (int32_t i = 0; i < kh; ++i, xp += x_stride, d += kw)
        for (int32_t j = 0; j < kw; ++j)
            d[j] = xp[j];
}

static inline int32_t xc_dot(const uint32_t *a, const uint32_t *b, int32_t pw)
{
    int32_t acc = 0;
    for (int32_t k = 0; k < pw; ++k)
        acc = ef_xp_sdotsp_b(acc, a[k], b[k]);
    return acc;
}

static inline void xc_emit(int32_t acc, int32_t e, int32_t f, int32_t l, const int16_t *addend16,
                           const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                           int8_t *y, int32_t y_stride)
{
    if (addend16)
        acc += addend16[(ptrdiff_t)l * addend_stride + f];
    else if (addend32)
        acc += addend32[(ptrdiff_t)l * addend_stride + f];
    y[(ptrdiff_t)l * y_stride + f] = ef_requant8_m15(acc, m[e], sh[e]);
}

/* Output (l, f) of channel e from its sum: the addend, then for cs >= 0 (sh + 16 in [33, 62]) ef_requant8_m15 by
 * xp_emit's one-mulh identity (|acc m 2^16| < 2^62) with cm = m[e], else the portable requantization (xc_emit). */
static inline void xc_out(int32_t acc, int32_t e, int32_t f, int32_t l, const int16_t *addend16,
                          const int32_t *addend32, int32_t addend_stride, const int16_t *m, const int8_t *sh,
                          int32_t cm, int32_t cs, int8_t *y, int32_t y_stride)
{
    if (cs < 0) {
        xc_emit(acc, e, f, l, addend16, addend32, addend_stride, m, sh, y, y_stride);
        return;
    }
    if (addend16)
        acc += addend16[(ptrdiff_t)l * addend_stride + f];
    else if (addend32)
        acc += addend32[(ptrdiff_t)l * addend_stride + f];
    int32_t hi = (int32_t)(((int64_t)acc * (int64_t)(cm * 65536)) >> 32);
    y[(ptrdiff_t)l * y_stride + f] = (int8_t)ef_xp_clip8(ef_xp_add_rn(hi, 0, cs));
}

/* One patch's 8 words (x0..x7) against n >= 1 channels, as hardware loop 0 of 25 instructions a channel: its bias
 * (post-increment word load), 8 weight words (two registers in turn, so no load is used by the next instruction)
 * and 8 pv.sdotsp.b, the int16 addend (p.lh post-incremented by the outputs' stride), then xc_out's one-mulh
 * requantization (m 2^16 and sh - 16 from the chunk's arrays: p.lw, p.lbu, mulh, p.addRNr, p.clipi) and one p.sb
 * post-incremented by the stride. The same sums, the same bytes. */
static inline void xc_patch_channels(const uint32_t xw[8], const uint32_t *w, const int32_t *pb, const int32_t *pm,
                                     const uint8_t *ps, const int16_t *pa, int32_t as, int8_t *py, int32_t ys,
                                     int32_t n)
{
    uint32_t ta, tb;
    int32_t acc, ad;
    __asm__ volatile(".option push\n\t.balign 4\n\t.option norvc\n\t" EF_XP_LP_SETUP0(n, 25)
                     EF_XP_LW4_POSTINC(acc, pb) EF_XP_LW4_POSTINC(ta, w) EF_XP_LW4_POSTINC(tb, w)
                     EF_XP_SDOTSP_B(acc, x0, ta) EF_XP_LW4_POSTINC(ta, w) EF_XP_SDOTSP_B(acc, x1, tb)
                     EF_XP_LW4_POSTINC(tb, w) EF_XP_SDOTSP_B(acc, x2, ta) EF_XP_LW4_POSTINC(ta, w)
                     EF_XP_SDOTSP_B(acc, x3, tb) EF_XP_LW4_POSTINC(tb, w) EF_XP_SDOTSP_B(acc, x4, ta)
                     EF_XP_LW4_POSTINC(ta, w) EF_XP_SDOTSP_B(acc, x5, tb) EF_XP_LW4_POSTINC(tb, w)
                     EF_XP_SDOTSP_B(acc, x6, ta) ".insn r 0x0b, 7, 0x08, %[ad], %[pa], %[as]\n\t" /* p.lh ad, as(pa!) */
                     EF_XP_SDOTSP_B(acc, x7, tb) EF_XP_LW4_POSTINC(ta, pm) EF_XP_LBU_POSTINC(tb, ps, 1)
                     "add %[acc], %[acc], %[ad]\n\t" "mulh %[acc], %[acc], %[ta]\n\t"
                     EF_XP_ADD_RN(acc, zero, tb) EF_XP_CLIP8(acc, acc)
                     EF_XP_SB_RR_POSTINC(acc, py, ys) ".option pop"
                     : [w] "+r"(w), [pb] "+r"(pb), [pm] "+r"(pm), [ps] "+r"(ps), [pa] "+r"(pa), [py] "+r"(py),
                       [acc] "=&r"(acc), [ad] "=&r"(ad), [ta] "=&r"(ta), [tb] "=&r"(tb)
                     : [n] "r"(n), [as] "r"(as), [ys] "r"(ys), [zero] "r"(0), [x0] "r"(xw[0]), [x1] "r"(xw[1]),
                       [x2] "r"(xw[2]), [x3] "r"(xw[3]), [x4] "r"(xw[4]), [x5] "r"(xw[5]), [x6] "r"(xw[6]),
                       [x7] "r"(xw[7])
                     : "memory");
}

/* The chunk's n channels over patches (r, l) of 8 words (word-aligned rows, kw % 4 == 0): the patch's words in
 * registers, per channel 8 word loads of its weights and 8 pv.sdotsp.b, then the addend and the requantization of
 * the general loop below (same sums, same bytes); with an int16 addend and every channel's shift on the one-mulh
 * path, the channels as one hardware loop (xc_patch_channels, on cm16 = m 2^16). */
static void xc_patches8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint32_t *wbuf, const int32_t *cb, const int16_t *cm, const int8_t *cs, int32_t n,
                        int32_t ec, const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh, int8_t *y, int32_t y_stride, int32_t l0, int32_t l1,
                        const int32_t *cm16)
{
    uint32_t xw[8];
    int32_t rw = kw >> 2;
    for (int32_t r = 0; r < n_rows; ++r)
        for (int32_t l = l0; l < l1; ++l) {
            const int8_t *xp = x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * kw;
            for (int32_t i = 0, k = 0; i < kh; ++i, xp += x_stride)
                for (int32_t j = 0; j < rw; ++j, ++k)
                    xw[k] = ((const xc_word_t *)(const void *)xp)[j];
            if (cm16 != NULL) {
                ptrdiff_t f0 = (ptrdiff_t)ec * n_rows + r;
                xc_patch_channels(xw, wbuf, cb, cm16, (const uint8_t *)cs, addend16 + (ptrdiff_t)l * addend_stride + f0,
                                  2 * n_rows, y + (ptrdiff_t)l * y_stride + f0, n_rows, n);
                continue;
            }
            uint32_t x0 = xw[0], x1 = xw[1], x2 = xw[2], x3 = xw[3], x4 = xw[4], x5 = xw[5], x6 = xw[6], x7 = xw[7];
            const uint32_t *wc = wbuf;
            for (int32_t c = 0; c < n; ++c, wc += 8) {
                int32_t e = ec + c, f = e * n_rows + r, acc = cb[c];
                acc = ef_xp_sdotsp_b(acc, x0, wc[0]);
                acc = ef_xp_sdotsp_b(acc, x1, wc[1]);
                acc = ef_xp_sdotsp_b(acc, x2, wc[2]);
                acc = ef_xp_sdotsp_b(acc, x3, wc[3]);
                acc = ef_xp_sdotsp_b(acc, x4, wc[4]);
                acc = ef_xp_sdotsp_b(acc, x5, wc[5]);
                acc = ef_xp_sdotsp_b(acc, x6, wc[6]);
                acc = ef_xp_sdotsp_b(acc, x7, wc[7]);
                xc_out(acc, e, f, l, addend16, addend32, addend_stride, m, sh, cm[c], cs[c], y, y_stride);
            }
        }
}

void ef_conv2d_patch_i8(const int8_t *x, int32_t x_stride, int32_t n_rows, int32_t kh, int32_t kw,
                        const uint8_t *w, int32_t w_bits, const int32_t *bias,
                        const int16_t *addend16, const int32_t *addend32, int32_t addend_stride,
                        const int16_t *m, const int8_t *sh,
                        int8_t *y, int32_t y_stride,
                        int32_t l0, int32_t l1, int32_t e0, int32_t e1)
{
    int32_t kk = kh * kw, rb = ef_row_bytes(kk, w_bits), pw = (kk + 3) / 4;
    if (kk > 4 * XC_BUF_WORDS) {
        for (int32_t e = e0; e < e1; ++e)
            for (int32_t r = 0; r < n_rows; ++r)
                for (int32_t l = l0; l < l1; ++l) {
                    const int8_t *xp = x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * kw;
                    int32_t acc = bias[e] + xc_dot_packed(xp, x_stride, kh, kw, w + (size_t)e * (size_t)rb, w_bits);
                    xc_emit(acc, e, e * n_rows + r, l, addend16, addend32, addend_stride, m, sh, y, y_stride);
                }
        return;
    }
    uint32_t wdec[XC_W_WORDS], xb[XC_BUF_WORDS];
    const uint32_t *wbuf = wdec;
    /* 8-bit rows of whole words (femba's 2 x 16 patches) in L1 (the team split staged them there): the packed rows
     * are the decoded layout, read in place, every channel in one chunk (in L2 they are decoded to the stack) */
    int32_t direct = w_bits == 8 && rb == kk && (kk & 3) == 0 && ((uintptr_t)w & 3u) == 0 && EF_XP_IN_L1(w);
    int32_t cb[XC_CHUNK_MAX];                    /* the chunk's bias, */
    int16_t cm[XC_CHUNK_MAX];                    /* m */
    int8_t cs[XC_CHUNK_MAX];                     /* and sh - 16 (-1: the portable requantization) */
    int32_t cm16[XC_CHUNK_MAX];                  /* m 2^16 (xc_patch_channels) */
    int32_t ce = direct ? XC_CHUNK_MAX : XC_W_WORDS / pw;
    int32_t words = (kw & 3) == 0 && (((uintptr_t)x | (uint32_t)x_stride) & 3u) == 0;
    if (ce > XC_CHUNK_MAX)
        ce = XC_CHUNK_MAX;
    for (int32_t ec = e0; ec < e1; ec += ce) {
        int32_t n = e1 - ec < ce ? e1 - ec : ce;
        if (direct)
            wbuf = (const uint32_t *)(const void *)(w + (size_t)ec * (size_t)rb);
        else
            xc_decode(w, rb, w_bits, kk, pw, ec, n, wdec);
        int32_t fast = addend16 != NULL && n > 0;
        for (int32_t c = 0; c < n; ++c) { /* read once a chunk from L2, not once an output */
            cb[c] = bias[ec + c];
            cm[c] = m[ec + c];
            cs[c] = (int8_t)(sh[ec + c] >= 17 && sh[ec + c] <= 46 ? sh[ec + c] - 16 : -1);
            cm16[c] = (int32_t)cm[c] * 65536;
            fast &= cs[c] >= 0;
        }
        if (pw == 8 && words) { /* femba's 2 x 16 patches: the patch in registers */
            xc_patches8(x, x_stride, n_rows, kh, kw, wbuf, cb, cm, cs, n, ec, addend16, addend32, addend_stride, m,
                        sh, y, y_stride, l0, l1, fast ? cm16 : NULL);
            continue;
        }
        for (int32_t r = 0; r < n_rows; ++r)
            for (int32_t l = l0; l < l1; ++l) {
                xc_load_patch(x + (ptrdiff_t)r * kh * x_stride + (ptrdiff_t)l * kw, x_stride, kh, kw, pw, words, xb);
                for (int32_t c = 0; c < n; ++c) {
                    int32_t e = ec + c, f = e * n_rows + r, acc = cb[c] + xc_dot(xb, wbuf + c * pw, pw);
                    xc_out(acc, e, f, l, addend16, addend32, addend_stride, m, sh, cm[c], cs[c], y, y_stride);
                }
            }
    }
}
