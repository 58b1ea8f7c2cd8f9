/* Device HAL of the edgeflow firmware: byte link, counters, cores. One implementation per target
 * (targets/<name>/ef_hal_*.c); firmware/device/ never touches hardware itself. */
#ifndef EF_HAL_H
#define EF_HAL_H

#include <stdint.h>

/** Bring up the link (UART) and counters; called once before anything else. */
void ef_hal_init(void);

/** Block until one byte arrives on the link; returns it (0..255). */
int ef_hal_getc(void);

/** Send one byte on the link (blocks while the transmitter is full). */
void ef_hal_putc(uint8_t c);

/** Free-running cycle counter (QEMU with -icount: equal to the instruction count). */
uint64_t ef_hal_cycles(void);

/** Retired-instruction counter (0 when the target has none). */
uint64_t ef_hal_instret(void);

/** Number of cores kernels may spread over (1 on host and QEMU). */
int ef_hal_cores(void);

#endif /* EF_HAL_H */
