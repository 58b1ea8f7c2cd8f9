/* ef_hal.h on QEMU virt rv32: 16550 UART at 0x10000000 (receive waits in wfi, woken through the PLIC), 64-bit
 * cycle / instret counters, one core. */
#include <stdint.h>

#include "ef_hal.h"

#define UART_BASE 0x10000000u
#define UART_RBR 0u /* receive buffer (read) */
#define UART_THR 0u /* transmit holding (write) */
#define UART_IER 1u
#define UART_FCR 2u
#define UART_LCR 3u
#define UART_MCR 4u
#define UART_LSR 5u
#define LSR_DATA_READY 0x01u
#define LSR_THR_EMPTY 0x20u
#define IER_RX_DATA 0x01u

#define PLIC_BASE 0x0c000000u     /* QEMU virt PLIC; context 0 = hart 0, machine mode */
#define PLIC_ENABLE0 0x2000u
#define PLIC_THRESHOLD0 0x200000u
#define UART_IRQ 10u
#define MIE_MEIE (1u << 11)

static inline volatile uint8_t *uart_reg(uint32_t off)
{
    return (volatile uint8_t *)(uintptr_t)(UART_BASE + off);
}

static inline volatile uint32_t *plic_reg(uint32_t off)
{
    return (volatile uint32_t *)(uintptr_t)(PLIC_BASE + off);
}

void ef_hal_init(void)
{
    /* The UART's receive interrupt reaches the hart as a pending machine external interrupt (mip.MEIP) so that
     * ef_hal_getc can sleep in wfi instead of spinning (an idle board costs the host no CPU). mstatus.MIE stays
     * 0: wfi wakes on the pending interrupt, no trap is ever taken, nothing needs claiming (QEMU's PLIC pending
     * bit follows the UART's level). */
    *plic_reg(4u * UART_IRQ) = 1u;                      /* priority 1 > threshold 0 */
    *plic_reg(PLIC_ENABLE0) |= 1u << UART_IRQ;
    *plic_reg(PLIC_THRESHOLD0) = 0u;
    __asm__ volatile("csrs mie, %0" : : "r"(MIE_MEIE));
    *uart_reg(UART_IER) = IER_RX_DATA;
    *uart_reg(UART_LCR) = 0x03u; /* 8 data bits, no parity, 1 stop bit (QEMU ignores the divisor) */
    /* FIFOs on, receive trigger 14 bytes: QEMU then moves up to 14 bytes per poll instead of 1 (several times the
     * throughput). Turning the FIFO on flushes it, so the emulator waits for the firmware's first bytes before
     * a host may send (edgeflow/link/emulator.py). */
    *uart_reg(UART_FCR) = 0xc1u;
    *uart_reg(UART_MCR) = 0x03u; /* DTR, RTS */
}

int ef_hal_getc(void)
{
    while ((*uart_reg(UART_LSR) & LSR_DATA_READY) == 0u) {
        __asm__ volatile("wfi"); /* returns at once if a byte arrived since the check (MEIP is level) */
    }
    return (int)*uart_reg(UART_RBR);
}

void ef_hal_putc(uint8_t c)
{
    while ((*uart_reg(UART_LSR) & LSR_THR_EMPTY) == 0u) {
    }
    *uart_reg(UART_THR) = c;
}

/* Read a 64-bit counter as hi/lo/hi so a carry between the two halves is never torn. */
#define READ_CSR64(lo_csr, hi_csr)                                                                  \
    do {                                                                                            \
        uint32_t hi, lo, hi2;                                                                       \
        do {                                                                                        \
            __asm__ volatile("csrr %0, " #hi_csr : "=r"(hi));                                       \
            __asm__ volatile("csrr %0, " #lo_csr : "=r"(lo));                                       \
            __asm__ volatile("csrr %0, " #hi_csr : "=r"(hi2));                                      \
        } while (hi != hi2);                                                                        \
        return ((uint64_t)hi << 32) | lo;                                                           \
    } while (0)

uint64_t ef_hal_cycles(void)
{
    READ_CSR64(cycle, cycleh);
}

uint64_t ef_hal_instret(void)
{
    READ_CSR64(instret, instreth);
}

int ef_hal_cores(void)
{
    return 1;
}

static void put_str(const char *s)
{
    while (*s != '\0')
        ef_hal_putc((uint8_t)*s++);
}

static void put_hex(uint32_t v)
{
    int i;
    put_str("0x");
    for (i = 28; i >= 0; i -= 4)
        ef_hal_putc((uint8_t)"0123456789abcdef"[(v >> i) & 0xfu]);
}

void ef_rv32_fatal(uint32_t mcause, uint32_t mepc, uint32_t mtval) __attribute__((noreturn));

/* Called by crt0 on any trap (or when main returns, mcause = 0xffffffff, mepc = its return value): one text
 * line on the UART, then the hart parks. The host sees it as bytes outside any frame. */
void ef_rv32_fatal(uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
    put_str("\r\nEF-TRAP mcause=");
    put_hex(mcause);
    put_str(" mepc=");
    put_hex(mepc);
    put_str(" mtval=");
    put_hex(mtval);
    put_str("\r\n");
    for (;;) {
        __asm__ volatile("wfi");
    }
}
