/* GAP9 HAL over PMSIS (GAP SDK): UART link, cycle counters, the 8-core cluster (network offload, team fork for
 * ef_parallel_for), cluster DMA L2->L1 for ef_dma_start, and external weight reads for ef_dma_start_ext:
 *   EF_EXT_MRAM: weights.bin sits in MRAM at EF_MRAM_IMAGE_ADDR (flashed there once); tiles are read MRAM->L2
 *                with cluster flash reads;
 *   otherwise:   weights.bin is copied at boot from the flash file system into HyperRAM; tiles are read
 *                HyperRAM->L2 with cluster RAM reads.
 * Either way the L2 staging buffer then goes to L1 by cluster DMA.
 * Built only by the GAP SDK (src/Makefile, `make all run`); the same generated network runs here through the
 * portable memcpy HAL. */
#include <stdint.h>
#include <string.h>

#include "pmsis.h"
#include "bsp/bsp.h"
#include "bsp/fs.h"
#include "bsp/fs/readfs.h"
#include "bsp/ram.h"
#ifdef EF_EXT_MRAM
#include "bsp/flash/mram.h"
#endif

#include "ef_dma.h"
#include "ef_hal.h"
#include "ef_tiled.h"
#include "network.h"

#ifndef EF_GAP9_BAUDRATE
#define EF_GAP9_BAUDRATE 115200
#endif
#ifndef EF_GAP9_CORES
#error "EF_GAP9_CORES: cluster cores, passed by the generated Makefile from targets/gap9/target.toml (cores)"
#endif
#if !defined(EF_CL_STACK_BYTES) || !defined(EF_CL_MASTER_STACK_BYTES)
#error "EF_CL_STACK_BYTES, EF_CL_MASTER_STACK_BYTES: cluster stacks, passed by the generated Makefile (targets/gap9/sdk.toml)"
#endif

void ef_network_run_cl(const int8_t *input, int32_t *logits_acc); /* network.c, renamed by network_cl.c */
int ef_device_main(void);                                         /* device_main.c, renamed by device_gap9.c */

static struct pi_device uart, cluster, ram, flash, fs;
static uint32_t l3_base;     /* address of the weight image in HyperRAM or MRAM (EF_HAS_EXT_IMAGE) */

/* ---- link and counters (fabric controller) ---------------------------------------------------------- */
void ef_hal_init(void)
{
    struct pi_uart_conf uc;
    struct pi_cluster_conf cc;
    pi_uart_conf_init(&uc);
    uc.baudrate_bps = EF_GAP9_BAUDRATE;
    uc.enable_tx = 1;
    uc.enable_rx = 1;
    pi_open_from_conf(&uart, &uc);
    if (pi_uart_open(&uart))
        pmsis_exit(-1);
    pi_cluster_conf_init(&cc);
    cc.id = 0;
    pi_open_from_conf(&cluster, &cc);
    if (pi_cluster_open(&cluster))
        pmsis_exit(-2);
#if EF_HAS_EXT_IMAGE && defined(EF_EXT_MRAM)
    {   /* weights.bin is already in MRAM: open it as a flash device */
        struct pi_mram_conf mc;
        pi_mram_conf_init(&mc);
        pi_open_from_conf(&flash, &mc);
        if (pi_flash_open(&flash))
            pmsis_exit(-3);
        l3_base = EF_MRAM_IMAGE_ADDR;
    }
#elif EF_HAS_EXT_IMAGE
    {   /* weights.bin: flash file system -> HyperRAM, once at boot, through an L2 bounce buffer */
        struct pi_default_ram_conf rc;
        struct pi_readfs_conf fc;
        struct pi_default_flash_conf flc;
        static PI_L2 uint8_t bounce[4096];
        pi_fs_file_t *f;
        uint32_t done = 0;
        pi_default_ram_conf_init(&rc);
        pi_open_from_conf(&ram, &rc);
        if (pi_ram_open(&ram) || pi_ram_alloc(&ram, &l3_base, EF_L3_IMAGE_BYTES))
            pmsis_exit(-3);
        pi_default_flash_conf_init(&flc);
        pi_open_from_conf(&flash, &flc);
        if (pi_flash_open(&flash))
            pmsis_exit(-4);
        pi_readfs_conf_init(&fc);
        fc.fs.flash = &flash;
        pi_open_from_conf(&fs, &fc);
        if (pi_fs_mount(&fs) || (f = pi_fs_open(&fs, "weights.bin", 0)) == NULL)
            pmsis_exit(-5);
        while (done < EF_L3_IMAGE_BYTES) {
            uint32_t n = EF_L3_IMAGE_BYTES - done < sizeof bounce ? EF_L3_IMAGE_BYTES - done : sizeof bounce;
            pi_fs_read(f, bounce, n);
            pi_ram_write(&ram, l3_base + done, bounce, n);
            done += n;
        }
        pi_fs_close(f);
    }
#endif
    pi_perf_conf((1 << PI_PERF_CYCLES) | (1 << PI_PERF_INSTR));
    pi_perf_reset();
    pi_perf_start();
}

int ef_hal_getc(void)
{
    uint8_t b;
    pi_uart_read(&uart, &b, 1);
    return (int)b;
}

void ef_hal_putc(uint8_t c)
{
    pi_uart_write(&uart, &c, 1);
}

uint64_t ef_hal_cycles(void)
{
    return (uint64_t)pi_perf_read(PI_PERF_CYCLES);
}

uint64_t ef_hal_instret(void)
{
    return (uint64_t)pi_perf_read(PI_PERF_INSTR);
}

int ef_hal_cores(void)
{
    return EF_GAP9_CORES;
}

/* ---- the network runs on the cluster; device_main.c calls ef_network_run on the FC ------------------------ */
typedef struct {
    const int8_t *input;
    int32_t *out;
} ef_run_args_t;

static void cluster_entry(void *arg)
{
    ef_run_args_t *a = (ef_run_args_t *)arg;
    ef_network_run_cl(a->input, a->out);
}

void ef_network_run(const int8_t *input, int32_t *logits_acc)
{
    struct pi_cluster_task task;
    ef_run_args_t a = {input, logits_acc};
    pi_cluster_task(&task, cluster_entry, &a);
    task.stacks = NULL;  /* the runtime allocates them in L1, at these sizes (the SDK default is too small) */
    task.stack_size = EF_CL_MASTER_STACK_BYTES;
    task.slave_stack_size = EF_CL_STACK_BYTES;
    pi_cluster_send_task_to_cl(&cluster, &task);
}

/* ---- parallel_for over the cluster team (called from core 0 of the cluster) ----------------------------- */
typedef struct {
    int32_t n;
    ef_range_fn body;
    void *ctx;
} ef_fork_t;

static void fork_entry(void *arg)
{
    const ef_fork_t *f = (const ef_fork_t *)arg;
    int32_t cores = (int32_t)pi_cl_cluster_nb_cores();
    int32_t id = (int32_t)pi_core_id();
    /* shares differ by at most one item, the larger ones on the last cores (core 0 also drives the DMA), as
     * targets/pulp-open/ef_hal_pulp_open.c splits them */
    int32_t base = f->n / cores, small = cores - f->n % cores;
    int32_t i0 = id * base + (id > small ? id - small : 0);
    int32_t i1 = i0 + base + (id >= small);
    if (i0 < i1)
        f->body(f->ctx, i0, i1);
}

void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx)
{
    ef_fork_t f = {n, body, ctx};
    if (n > 0)
        pi_cl_team_fork(pi_cl_cluster_nb_cores(), fork_entry, &f); /* returns after the team's barrier */
}

/* ---- DMA engine: handles index a small pool of requests ------------------------------------------------- */
#define EF_GAP9_SLOTS EF_DMA_MAX_IN_FLIGHT
typedef struct {
    int used, ext;
    pi_cl_dma_cmd_t dma;
#ifdef EF_EXT_MRAM
    pi_cl_flash_req_t ram;
#else
    pi_cl_ram_req_t ram;
#endif
    void *dst;
    uint8_t *stage;
    uint32_t bytes;
} ef_req_t;

static ef_req_t reqs[EF_GAP9_SLOTS];
static ef_dma_stats_t stats;
/* Two L2 staging buffers for L3 -> L2 -> L1 (the slow HyperRAM read overlaps compute; the L2 -> L1 hop runs
 * at wait time). Sized for the largest tile block of the build. */
static PI_L2 uint8_t stage[2][EF_MAX_TILE_BLOCK];
static uint32_t stage_next;

static ef_dma_handle_t take(void)
{
    uint32_t i;
    for (i = 0; i < EF_GAP9_SLOTS; ++i)
        if (!reqs[i].used) {
            reqs[i].used = 1;
            stats.starts++;
            return i + 1u;
        }
    stats.errors++;
    return 0u;
}

ef_dma_handle_t ef_dma_start(void *dst, const void *src, uint32_t bytes)
{
    ef_dma_handle_t h = take();
    if (h == 0u)
        return 0u;
    reqs[h - 1u].ext = 0;
    stats.bytes += bytes;
    pi_cl_dma_cmd((uint32_t)src, (uint32_t)dst, bytes, PI_CL_DMA_DIR_EXT2LOC, &reqs[h - 1u].dma);
    return h;
}

/* One cluster-DMA 2-D command: rows of row_bytes, strided on the ext (L2) side, dir EXT2LOC or LOC2EXT. */
static ef_dma_handle_t start_2d(uint32_t ext, uint32_t loc, uint32_t row_bytes, uint32_t rows, uint32_t stride,
                                int32_t dir)
{
    ef_dma_handle_t h = take();
    if (h == 0u)
        return 0u;
    reqs[h - 1u].ext = 0;
    stats.bytes += rows * row_bytes;
    pi_cl_dma_cmd_2d(ext, loc, rows * row_bytes, stride, row_bytes, (pi_cl_dma_dir_e)dir, &reqs[h - 1u].dma);
    return h;
}

/* A strided L2 gather in one cluster-DMA 2-D command (the ext side strided; rows * row_bytes under 2^16). */
ef_dma_handle_t ef_dma_start_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t src_stride)
{
    if (row_bytes == 0u || rows <= 1u || src_stride == row_bytes)
        return ef_dma_start(dst, src, rows * row_bytes);
    return start_2d((uint32_t)src, (uint32_t)dst, row_bytes, rows, src_stride, PI_CL_DMA_DIR_EXT2LOC);
}

/* L1 -> L2 (the staged element-wise kernels' results): the cluster DMA's LOC2EXT direction. */
ef_dma_handle_t ef_dma_start_out(void *dst, const void *src, uint32_t bytes)
{
    ef_dma_handle_t h = take();
    if (h == 0u)
        return 0u;
    reqs[h - 1u].ext = 0;
    stats.bytes += bytes;
    pi_cl_dma_cmd((uint32_t)dst, (uint32_t)src, bytes, PI_CL_DMA_DIR_LOC2EXT, &reqs[h - 1u].dma);
    return h;
}

/* L1 rows -> strided L2 rows in one cluster-DMA 2-D command (the ext side strided). */
ef_dma_handle_t ef_dma_start_out_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t dst_stride)
{
    if (row_bytes == 0u || rows <= 1u || dst_stride == row_bytes)
        return ef_dma_start_out(dst, src, rows * row_bytes);
    return start_2d((uint32_t)dst, (uint32_t)src, row_bytes, rows, dst_stride, PI_CL_DMA_DIR_LOC2EXT);
}

ef_dma_handle_t ef_dma_start_ext(void *dst, uint32_t ext_off, uint32_t bytes)
{
    ef_dma_handle_t h = take();
    ef_req_t *r;
    if (h == 0u)
        return 0u;
    r = &reqs[h - 1u];
    r->ext = 1;
    r->dst = dst;
    r->bytes = bytes;
    r->stage = stage[stage_next++ & 1u];
    stats.bytes += bytes;
#ifdef EF_EXT_MRAM
    pi_cl_flash_read(&flash, l3_base + ext_off, r->stage, bytes, &r->ram);
#else
    pi_cl_ram_read(&ram, l3_base + ext_off, r->stage, bytes, &r->ram);
#endif
    return h;
}

void ef_dma_wait(ef_dma_handle_t h)
{
    ef_req_t *r;
    if (h == 0u || h > EF_GAP9_SLOTS || !reqs[h - 1u].used) {
        stats.errors++;
        return;
    }
    r = &reqs[h - 1u];
    if (r->ext) {
#ifdef EF_EXT_MRAM
        pi_cl_flash_wait(&r->ram);
#else
        pi_cl_ram_read_wait(&r->ram);
#endif
        pi_cl_dma_cmd((uint32_t)r->stage, (uint32_t)r->dst, r->bytes, PI_CL_DMA_DIR_EXT2LOC, &r->dma);
    }
    pi_cl_dma_wait(&r->dma);
    r->used = 0;
    stats.waits++;
}

void ef_dma_get_stats(ef_dma_stats_t *out)
{
    *out = stats;
}

void ef_dma_reset_stats(void)
{
    memset(&stats, 0, sizeof stats);
}

/* ---- entry: PMSIS boots the FC, then the device main loop runs forever ---------------------------------- */
static void ef_gap9_entry(void)
{
    pmsis_exit(ef_device_main());
}

int main(void)
{
    return pmsis_kickoff((void *)ef_gap9_entry);
}
