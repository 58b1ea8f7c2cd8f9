/* Start-up of the rv32-virt target (QEMU virt, hart 0, machine mode, -bios none):
 * stack at the top of L1, gp, zero .bss/.l1/.l2, trap vector, main(); a trap reports over the UART and halts. */
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    csrr    t0, mhartid
    bnez    t0, park                  /* only hart 0 runs */
    la      sp, __stack_top
    la      t0, trap_entry
    csrw    mtvec, t0
    la      a0, __bss_start           /* zero .bss, then the NOLOAD L2 and L1 sections */
    la      a1, __bss_end
    call    zero_words
    la      a0, __l2_start
    la      a1, __l2_end
    call    zero_words
    la      a0, __l1_start
    la      a1, __l1_end
    call    zero_words
    call    main
    mv      s0, a0                    /* main returned: report it like a trap with mcause = -1 */
    li      a0, -1
    mv      a1, s0
    li      a2, 0
    call    ef_rv32_fatal
park:
    wfi
    j       park

/* zero [a0, a1), both 4-byte aligned */
zero_words:
    bgeu    a0, a1, 2f
1:  sw      zero, 0(a0)
    addi    a0, a0, 4
    bltu    a0, a1, 1b
2:  ret

/* Any exception or interrupt: hand mcause, mepc, mtval to C, which prints them and halts. */
    .balign 4
trap_entry:
    la      sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    ef_rv32_fatal
    j       park
