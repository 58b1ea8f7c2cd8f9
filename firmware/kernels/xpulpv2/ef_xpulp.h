/* Xpulpv2 instructions (RI5CY cores of pulp-open / GAP9) as GNU as `.insn` words: no Debian compiler emits them. */
#ifndef EF_XPULP_H
#define EF_XPULP_H

#include <stdint.h>

#if !defined(__riscv) || __riscv_xlen != 32
#error "firmware/kernels/xpulpv2 needs a 32-bit RISC-V core with Xpulpv2 (pulp-open, GAP9): not for host or rv32-virt"
#endif

/*
 * Encodings from GVSoC 209c147 isa_pulpv2.py, checked on its pulp-open cluster (shared/TOOLCHAIN.md, GVSoC section):
 *   pv.sdotsp.b rd, rs1, rs2   rd += sum_k (int8)rs1[k] * (int8)rs2[k]     .insn r 0x57, 1, 0x5c, rd, rs1, rs2
 *   pv.dotsp.b rd, rs1, rs2    rd = sum_k (int8)rs1[k] * (int8)rs2[k]      .insn r 0x57, 1, 0x4c, rd, rs1, rs2
 *   p.lw rd, imm(rs1!)         rd = *(u32 *)rs1; rs1 += imm (any alignment) .insn i 0x0b, 2, rd, rs1, imm
 *   p.lw rd, rs2(rs1!)         rd = *(u32 *)rs1; rs1 += rs2 (any alignment) .insn r 0x0b, 7, 0x10, rd, rs1, rs2
 *   p.lw rd, rs2(rs1)          rd = *(u32 *)(rs1 + rs2)                   .insn r 0x03, 7, 0x10, rd, rs1, rs2
 *   p.lbu rd, imm(rs1!)        rd = *(u8 *)rs1; rs1 += imm                .insn i 0x0b, 4, rd, rs1, imm
 *   p.sw rs2, imm(rs1!)        *(u32 *)rs1 = rs2; rs1 += imm              .insn s 0x2b, 2, rs2, imm(rs1)
 *   p.sb rs2, rs3(rs1!)        *(u8 *)rs1 = rs2; rs1 += rs3               .insn r 0x2b, 4, 0, rs3, rs1, rs2
 *   p.clip rd, rs1, rs2        rd = min(max(rs1, -rs2 - 1), rs2)          .insn r 0x33, 5, 0x0a, rd, rs1, rs2
 *   p.clipi rd, rs1, 8         rd = min(max(rs1, -128), 127)              .insn i 0x33, 1, rd, rs1, 0x148
 *   p.mac rd, rs1, rs2         rd += rs1 * rs2 (low 32 bits)              .insn r 0x33, 0, 0x21, rd, rs1, rs2
 *   p.muls rd, rs1, rs2        rd = (int16)rs1 * (int16)rs2               .insn r 0x5b, 0, 0x40, rd, rs1, rs2
 *   p.max rd, rs1, rs2         rd = max(rs1, rs2), signed                 .insn r 0x33, 6, 0x02, rd, rs1, rs2
 *   p.addRNr rd, rs1, rs2      rd = (rd + rs1 + 2^(rs2-1)) >> rs2 (arith.; rs2 0: rd + rs1; 64-bit sum cut to
 *                              32 bits, so exact when rd + rs1 + 2^(rs2-1) fits int32)  .insn r 0x5b, 6, 0x20, ...
 *   p.muluNR rd, rs1, rs2, 15  rd = ((u16)rs1 * (u16)rs2 + 2^14) >> 15      .insn r 0x5b, 4, 0x0f, rd, rs1, rs2
 *   lp.setup 0, rs1, imm       hardware loop 0: the next instructions up to pc + 2 imm (the last body instruction)
 *                              run rs1 (>= 1) times, no branch                .insn i 0x7b, 4, x0, rs1, imm
 *   lp.setup 1, rs1, imm       hardware loop 1, the same (the outer loop: loop 0 nests inside it, and the two
 *                              must not end on the same instruction)         .insn i 0x7b, 4, x1, rs1, imm
 * The strings below are for inline asm with named operands; a hardware-loop body is written under `.option norvc`
 * so that every instruction is 4 bytes and lp.setup's immediate is twice the body's instruction count.
 */
#define EF_XP_SDOTSP_B(rd, rs1, rs2) ".insn r 0x57, 1, 0x5c, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_LW4_POSTINC(rd, rs1) ".insn i 0x0b, 2, %[" #rd "], %[" #rs1 "], 4\n\t"
#define EF_XP_LW_RR(rd, rs1, rs2) ".insn r 0x03, 7, 0x10, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_LBU_POSTINC(rd, rs1, imm) ".insn i 0x0b, 4, %[" #rd "], %[" #rs1 "], " #imm "\n\t"
#define EF_XP_SW_POSTINC(rs2, rs1, imm) ".insn s 0x2b, 2, %[" #rs2 "], " #imm "(%[" #rs1 "])\n\t"
#define EF_XP_DOTSP_B(rd, rs1, rs2) ".insn r 0x57, 1, 0x4c, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_LW_RR_POSTINC(rd, rs1, rs2) ".insn r 0x0b, 7, 0x10, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_SB_RR_POSTINC(rs2, rs1, rs3) ".insn r 0x2b, 4, 0, %[" #rs3 "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_CLIP8(rd, rs1) ".insn i 0x33, 1, %[" #rd "], %[" #rs1 "], 0x148\n\t"
#define EF_XP_MULS(rd, rs1, rs2) ".insn r 0x5b, 0, 0x40, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_ADD_RN(rd, rs1, rs2) ".insn r 0x5b, 6, 0x20, %[" #rd "], %[" #rs1 "], %[" #rs2 "]\n\t"
#define EF_XP_LP_SETUP0(count, n_body) ".insn i 0x7b, 4, x0, %[" #count "], " #n_body " * 2\n\t"
#define EF_XP_LP_SETUP1(count, n_body) ".insn i 0x7b, 4, x1, %[" #count "], " #n_body " * 2\n\t"

/* The cluster's L1 (TCDM) on pulp-open and GAP9: 0x10000000 + up to 4 MiB (PULP's cluster 0 address map). A kernel
 * may read constants in place there and copy them to its stack elsewhere. */
#define EF_XP_IN_L1(p) ((((uintptr_t)(p)) >> 22) == (0x10000000u >> 22))

/** acc += dot4(a, b): four int8 lanes of a and b, signed products summed into acc (pv.sdotsp.b). */
static inline int32_t ef_xp_sdotsp_b(int32_t acc, uint32_t a, uint32_t b)
{
    __asm__(".insn r 0x57, 1, 0x5c, %0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
}

/** v saturated to int8 (p.clip with bound 127). */
static inline int32_t ef_xp_clip8(int32_t v)
{
    int32_t r;
    __asm__(".insn r 0x33, 5, 0x0a, %0, %1, %2" : "=r"(r) : "r"(v), "r"(127));
    return r;
}

/** acc + a * b (low 32 bits, p.mac). */
static inline int32_t ef_xp_mac(int32_t acc, int32_t a, int32_t b)
{
    __asm__(".insn r 0x33, 0, 0x21, %0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
}

/** max(a, b), signed (p.max). */
static inline int32_t ef_xp_max(int32_t a, int32_t b)
{
    int32_t r;
    __asm__(".insn r 0x33, 6, 0x02, %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/** (a + b + 2^(s-1)) >> s for 1 <= s <= 31, a + b for s = 0 (p.addRNr; the sum must fit int32). */
static inline int32_t ef_xp_add_rn(int32_t a, int32_t b, int32_t s)
{
    __asm__(".insn r 0x5b, 6, 0x20, %0, %1, %2" : "+r"(a) : "r"(b), "r"(s));
    return a;
}

/** (a * b + 2^14) >> 15 for 0 <= a, b <= 65535 (p.muluNR, unsigned low halves). */
static inline int32_t ef_xp_mulu_rn15(int32_t a, int32_t b)
{
    int32_t r;
    __asm__(".insn r 0x5b, 4, 0x0f, %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Constant tables read by the cluster cores every few instructions belong in the shared L1 (TCDM): .l1cluster_g is
 * the cluster L1 data section of pulp-runtime's link script (targets/pulp-open/link.ld.in) and of the GAP SDK's
 * (PI_CL_L1), filled by the loader. A build without one may define EF_XP_L1_CONST empty (the tables then sit in
 * .rodata: slower, same results). 2 KiB, outside the plan's L1 tile budget (target.toml L1 usable). */
#ifndef EF_XP_L1_CONST
#define EF_XP_L1_CONST __attribute__((section(".l1cluster_g")))
#endif

#endif /* EF_XPULP_H */
