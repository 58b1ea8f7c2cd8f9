/* Bring-up main of the rv32-virt target (no link protocol): per window, read EF_INPUT_SIZE raw int8 bytes from
 * the UART, run the network, write EF_OUTPUT_SIZE int32 accumulators and the window's uint64 instruction count,
 * little-endian. At boot it sends one byte, '\n' (the emulator waits for the firmware's first bytes). */
#include <stdint.h>

#include "ef_hal.h"
#include "network.h"

static int8_t window[EF_INPUT_SIZE];
static int32_t acc[EF_OUTPUT_SIZE];

static void put_u32(uint32_t v)
{
    int i;
    for (i = 0; i < 4; ++i)
        ef_hal_putc((uint8_t)(v >> (8 * i)));
}

int main(void)
{
    ef_hal_init();
    ef_hal_putc('\n');
    for (;;) {
        int32_t i;
        uint64_t t0, t1;
        for (i = 0; i < EF_INPUT_SIZE; ++i)
            window[i] = (int8_t)(uint8_t)ef_hal_getc();
        t0 = ef_hal_instret();
        ef_network_run(window, acc);
        t1 = ef_hal_instret();
        for (i = 0; i < EF_OUTPUT_SIZE; ++i)
            put_u32((uint32_t)acc[i]);
        put_u32((uint32_t)(t1 - t0));
        put_u32((uint32_t)((t1 - t0) >> 32));
    }
}
