/* pulp-open window loop (GVSoC): the FC starts the cluster once; cluster core 0 reads int8 windows from in.bin
 * by semihosting, runs the network on each (cores 1..7 serve its ef_parallel_for jobs) and writes, per window,
 * the int32 logits accumulators and the per-layer profile to out.bin (format: edgeflow/runners/gvsoc.py), with the
 * most bytes any cluster core's stack has held so far (each core paints its stack below its frame at entry; the
 * words left unpainted are counted) and the stack size, so that the host refuses a run that overflowed.
 * in.bin: uint32 magic, n_windows, cores, 0, then n_windows x EF_INPUT_SIZE int8 codes. */
#include <stdint.h>
#include <string.h>

#include "pulp.h"

#include "ef_hal.h"
#include "ef_pulp_open.h"
#include "network.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define MODE_RB 1
#define MODE_WB 5

/* RISC-V semihosting call: a0 = op, a1 = &args; GVSoC serves it on the host, paths relative to --work-dir. */
static int32_t semihost(int32_t op, uint32_t *args)
{
    register int32_t a0 __asm__("a0") = op;
    register uint32_t *a1 __asm__("a1") = args;
    __asm__ volatile(".option push\n.option norvc\n.balign 4\nslli x0, x0, 0x1f\nebreak\nsrai x0, x0, 7\n"
                     ".option pop"
                     : "+r"(a0)
                     : "r"(a1)
                     : "memory");
    return a0;
}

static int32_t sh_open(const char *path, uint32_t mode)
{
    uint32_t a[3] = {(uint32_t)path, mode, (uint32_t)strlen(path)};
    return semihost(SYS_OPEN, a);
}

static int32_t sh_read(int32_t fd, void *buf, uint32_t n) /* 0 when all n bytes were read */
{
    uint32_t a[3] = {(uint32_t)fd, (uint32_t)buf, n};
    return semihost(SYS_READ, a);
}

static int32_t sh_write(int32_t fd, const void *buf, uint32_t n)
{
    uint32_t a[3] = {(uint32_t)fd, (uint32_t)buf, n};
    return semihost(SYS_WRITE, a);
}

static void sh_close(int32_t fd)
{
    uint32_t a[1] = {(uint32_t)fd};
    semihost(SYS_CLOSE, a);
}

/* ef_hal.h byte link: no UART backend on pulp-open's model, the link is the files above */
int ef_hal_getc(void)
{
    return -1;
}

void ef_hal_putc(uint8_t c)
{
    (void)c;
}

#define EF_PO_STACK_FILL 0xEF57AC5Au
static volatile uint8_t stack_painted[EF_PO_MAX_CORES];

/* The calling core's stack [base, sp - 32) filled with EF_PO_STACK_FILL (pulp-runtime's crt0: core c's stack is
 * cluster_stacks + [c, c + 1) CLUSTER_STACK_SIZE). */
static void stack_paint(void)
{
    uint32_t c = (uint32_t)hal_core_id(), *p, *end;
    uintptr_t sp;
    if (c >= EF_PO_MAX_CORES)
        return;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    p = (uint32_t *)(void *)(cluster_stacks + c * CLUSTER_STACK_SIZE);
    end = (uint32_t *)(sp - 32u);
    while (p < end)
        *p++ = EF_PO_STACK_FILL;
    stack_painted[c] = 1;
}

/* The most bytes a painted core's stack has held: from its top down to its lowest word that is not the fill. */
static uint32_t stack_peak(void)
{
    uint32_t peak = 0;
    for (uint32_t c = 0; c < EF_PO_MAX_CORES; ++c) {
        const uint32_t *base = (const uint32_t *)(const void *)(cluster_stacks + c * CLUSTER_STACK_SIZE), *p = base;
        const uint32_t *top = base + CLUSTER_STACK_SIZE / 4;
        if (!stack_painted[c])
            continue;
        while (p < top && *p == EF_PO_STACK_FILL)
            ++p;
        if ((uint32_t)(top - p) * 4u > peak)
            peak = (uint32_t)(top - p) * 4u;
    }
    return peak;
}

static int32_t window[(EF_INPUT_SIZE + 3) / 4];
static int32_t logits[EF_OUTPUT_SIZE];

/* Cluster core 0: the window loop; returns 0, or a negative step number on an I/O failure. */
static int32_t run_windows(void)
{
    uint32_t head[4], fhead[10], whead[4], n, w, cal[2];
    int32_t in = sh_open("in.bin", MODE_RB), out;
    if (in < 0 || sh_read(in, head, sizeof head) != 0 || head[0] != EF_PO_MAGIC)
        return -1;
    out = sh_open("out.bin", MODE_WB);
    if (out < 0)
        return -2;
    n = head[1];
    ef_po_team_set((int32_t)head[2]);
    ef_po_dma_calibrate(256u, 16384u, &cal[0], &cal[1]);
    fhead[0] = EF_PO_MAGIC;
    fhead[1] = EF_PO_VERSION;
    fhead[2] = n;
    fhead[3] = EF_N_LAYERS;
    fhead[4] = EF_OUTPUT_SIZE;
    fhead[5] = (uint32_t)ef_hal_cores();
    fhead[6] = 256u;
    fhead[7] = cal[0];
    fhead[8] = 16384u;
    fhead[9] = cal[1];
    if (sh_write(out, fhead, sizeof fhead) != 0)
        return -3;
    for (w = 0; w < n; ++w) {
        uint32_t t0;
        if (sh_read(in, window, EF_INPUT_SIZE) != 0)
            return -4;
        ef_po_prof_begin();
        t0 = ef_po_now();
        ef_network_run((const int8_t *)window, logits);
        whead[0] = w;
        whead[1] = ef_po_now() - t0;
        whead[2] = stack_peak();
        whead[3] = CLUSTER_STACK_SIZE;
        if (sh_write(out, whead, sizeof whead) != 0 || sh_write(out, logits, sizeof logits) != 0
            || sh_write(out, ef_po_prof_layers(), EF_N_LAYERS * sizeof(ef_po_layer_t)) != 0)
            return -5;
    }
    sh_close(in);
    sh_close(out);
    return 0;
}

static int ef_po_cluster_main(void)
{
    int32_t rc;
    stack_paint();
    if (hal_core_id() != 0) {
        ef_po_team_worker();
        return 0;
    }
    ef_hal_init();
    rc = run_windows();
    ef_po_team_stop();
    return rc;
}

int main(void)
{
    cluster_start(0, ef_po_cluster_main); /* once: every window runs inside this one cluster entry */
    return cluster_wait(0);
}
