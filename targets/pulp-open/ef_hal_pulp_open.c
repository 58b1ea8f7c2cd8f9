/* pulp-open HAL over pulp-runtime (GVSoC): the network runs on cluster core 0 while cores 1..7 serve
 * ef_parallel_for jobs (one cluster entry; fork and join are hardware barriers, rows split as the gap9 HAL
 * splits them); MCHAN DMA L2 -> L1 for ef_dma_start, L1 -> L2 for ef_dma_start_out; the modelled external memory
 * -> L1 for ef_dma_start_ext (MCHAN reaches it; its latency and bandwidth are added here in software, the cores
 * never read it); per-layer
 * profile from the cluster timer and every core's performance counters (EF_LAYER_HOOK -> ef_layer_mark). */
#include <stdint.h>
#include <string.h>

#include "pulp.h"

#include "ef_dma.h"
#include "ef_hal.h"
#include "ef_layer_hook.h"
#include "ef_pulp_open.h"
#include "ef_tiled.h"
#include "network.h"

#ifndef EF_PO_EXT_BASE
#define EF_PO_EXT_BASE 0x80000000u /* the modelled external memory (targets/pulp-open/gvsoc.toml) */
#endif
#ifndef EF_PO_EXT_LATENCY
#define EF_PO_EXT_LATENCY 100u /* cycles per external transfer (targets/pulp-open/gvsoc.toml) */
#endif
#ifndef EF_PO_EXT_BW
#define EF_PO_EXT_BW 1u /* bytes / cycle of the external memory (targets/pulp-open/target.toml, L3) */
#endif
#define EF_PO_DMA_CHUNK 32768u /* bytes per MCHAN command (its length field is 16 bits wide) */
#define EF_PO_CAL_CHUNK 2048u  /* L1 scratch of the DMA calibration */

#define EF_PO_L1 __attribute__((section(".data_l1")))

/* ---- cluster timer and counters -------------------------------------------------------------------------- */
uint32_t ef_po_now(void)
{
    return timer_count_get(timer_base_cl(0, 0, 0));
}

static volatile EF_PO_L1 uint32_t snaps[EF_PO_MAX_CORES][EF_PO_NCTR]; /* counters at each core's last job end */

static void perf_begin(void)
{
    cpu_perf_conf_events(CSR_PCER_ALL_EVENTS_MASK);
    cpu_perf_setall(0);
    cpu_perf_start(0);
}

static void snap(int32_t id)
{
    snaps[id][0] = cpu_perf_get(CSR_PCER_CYCLES);
    snaps[id][1] = cpu_perf_get(CSR_PCER_INSTR);
    snaps[id][2] = cpu_perf_get(CSR_PCER_LD_STALL);
    snaps[id][3] = cpu_perf_get(CSR_PCER_TCDM_CONT);
    snaps[id][4] = cpu_perf_get(CSR_PCER_LD_EXT_CYC);
}

/* ---- the team: fork/join over the hardware barrier of all 8 cores ---------------------------------------- */
typedef struct {
    ef_range_fn body;
    void *ctx;
    int32_t n, quit;
} ef_job_t;

static volatile EF_PO_L1 ef_job_t job;
static volatile EF_PO_L1 int32_t team = EF_PO_MAX_CORES;

void ef_po_team_set(int32_t cores)
{
    team = cores < 1 ? 1 : cores > EF_PO_MAX_CORES ? EF_PO_MAX_CORES : cores;
}

/* Core id's part of [0, n): shares differ by at most one item (the busiest core has ceil(n / cores), as
 * plan/tiling.py's kernel_rounds assumes) and the larger shares go to the last cores, so core 0, which also
 * issues the DMA transfers and runs the serial code between jobs, gets a smaller one when n % cores != 0. */
static void run_chunk(int32_t id)
{
    int32_t cores = team, n = job.n;
    int32_t base = n / cores, small = cores - n % cores;
    int32_t i0 = id * base + (id > small ? id - small : 0);
    int32_t i1 = i0 + base + (id >= small);
    if (id < cores && i0 < i1)
        job.body(job.ctx, i0, i1);
}

void ef_parallel_for(int32_t n, ef_range_fn body, void *ctx)
{
    if (n <= 0)
        return;
    job.body = body;
    job.ctx = ctx;
    job.n = n;
    synch_barrier(); /* fork: the workers read the job */
    run_chunk(0);
    synch_barrier(); /* join: every core's rows are done and its counters snapped */
}

void ef_po_team_worker(void)
{
    int32_t id = (int32_t)hal_core_id();
    perf_begin();
    snap(id);
    for (;;) {
        synch_barrier();
        if (job.quit)
            return;
        run_chunk(id);
        snap(id);
        synch_barrier();
    }
}

void ef_po_team_stop(void)
{
    job.quit = 1;
    synch_barrier();
}

/* ---- DMA: MCHAN, one counter per request; the external memory's time added in software ------------------- */
typedef struct {
    int32_t used, counter, ext;
    uint32_t ready; /* external: cluster-timer time the modelled memory delivers the last byte */
} ef_req_t;

/* Core 0's DMA bookkeeping lives in L1: a cluster core's L2 load or store blocks it for ~14 cycles, and every
 * start and wait touches these words. */
static EF_PO_L1 ef_req_t reqs[EF_DMA_MAX_IN_FLIGHT];
static EF_PO_L1 ef_dma_stats_t stats;
static EF_PO_L1 uint32_t n_in_flight, wait_cycles, ext_bytes, ext_model, ext_free_at;

/* bytes from src to dst on a fresh MCHAN counter; row != 0: rows of `row` bytes, src rows `stride` apart (2-D
 * commands of whole rows, each under EF_PO_DMA_CHUNK bytes). out: dst is in L2 and src in L1 (LOC2EXT, 1-D). */
static int32_t push(void *dst, uint32_t src, uint32_t bytes, uint32_t row, uint32_t stride, int32_t out)
{
    int32_t counter = plp_dma_counter_alloc(); /* every command until the next alloc counts on it */
    uint32_t done = 0;
    if (out && row != 0u && row <= EF_PO_DMA_CHUNK) { /* 2-D: L1 rows of `row` bytes to L2 rows `stride` apart */
        uint32_t rows = bytes / row, per = EF_PO_DMA_CHUNK / row, r = 0;
        while (r < rows) {
            uint32_t n = rows - r < per ? rows - r : per;
            uint32_t cmd = plp_dma_getCmd(PLP_DMA_LOC2EXT, n * row, PLP_DMA_2D, PLP_DMA_TRIG_EVT,
                                          PLP_DMA_NO_TRIG_IRQ, PLP_DMA_SHARED);
            plp_dma_cmd_push_2d(cmd, src + r * row, (uint32_t)dst + r * stride, stride, row);
            r += n;
        }
        return counter;
    }
    if (out) { /* MCHAN's local side is L1 (src), its external side L2 (dst) */
        for (; done < bytes; done += EF_PO_DMA_CHUNK) {
            uint32_t n = bytes - done < EF_PO_DMA_CHUNK ? bytes - done : EF_PO_DMA_CHUNK;
            plp_dma_cmd_push(plp_dma_getCmd(PLP_DMA_LOC2EXT, n, PLP_DMA_1D, PLP_DMA_TRIG_EVT, PLP_DMA_NO_TRIG_IRQ,
                                            PLP_DMA_SHARED), src + done, (uint32_t)dst + done);
        }
        return counter;
    }
    if (row != 0u && row <= EF_PO_DMA_CHUNK) {
        uint32_t rows = bytes / row, per = EF_PO_DMA_CHUNK / row, r = 0;
        while (r < rows) {
            uint32_t n = rows - r < per ? rows - r : per;
            uint32_t cmd = plp_dma_getCmd(PLP_DMA_EXT2LOC, n * row, PLP_DMA_2D, PLP_DMA_TRIG_EVT,
                                          PLP_DMA_NO_TRIG_IRQ, PLP_DMA_SHARED);
            plp_dma_cmd_push_2d(cmd, (uint32_t)dst + r * row, src + r * stride, stride, row);
            r += n;
        }
        return counter;
    }
    if (row != 0u) { /* rows too long for one command (never from the generated code): 1-D commands a row */
        for (uint32_t r = 0; r < bytes / row; ++r)
            for (done = 0; done < row; done += EF_PO_DMA_CHUNK) {
                uint32_t n = row - done < EF_PO_DMA_CHUNK ? row - done : EF_PO_DMA_CHUNK;
                plp_dma_cmd_push(plp_dma_getCmd(PLP_DMA_EXT2LOC, n, PLP_DMA_1D, PLP_DMA_TRIG_EVT, PLP_DMA_NO_TRIG_IRQ,
                                                PLP_DMA_SHARED),
                                 (uint32_t)dst + r * row + done, src + r * stride + done);
            }
        return counter;
    }
    while (done < bytes) {
        uint32_t n = bytes - done < EF_PO_DMA_CHUNK ? bytes - done : EF_PO_DMA_CHUNK;
        uint32_t cmd = plp_dma_getCmd(PLP_DMA_EXT2LOC, n, PLP_DMA_1D, PLP_DMA_TRIG_EVT, PLP_DMA_NO_TRIG_IRQ,
                                      PLP_DMA_SHARED);
        plp_dma_cmd_push(cmd, (uint32_t)dst + done, src + done);
        done += n;
    }
    return counter;
}

static ef_dma_handle_t start(void *dst, uint32_t src, uint32_t bytes, int32_t ext, uint32_t row, uint32_t stride,
                             int32_t out)
{
    uint32_t i;
    for (i = 0; i < EF_DMA_MAX_IN_FLIGHT && reqs[i].used; ++i)
        ;
    if (i == EF_DMA_MAX_IN_FLIGHT) {
        stats.errors++;
        return 0u;
    }
    reqs[i].used = 1;
    reqs[i].ext = ext;
    reqs[i].counter = push(dst, src, bytes, row, stride, out);
    stats.starts++;
    stats.bytes += bytes;
    if (++n_in_flight > stats.max_in_flight)
        stats.max_in_flight = n_in_flight;
    if (ext) { /* one serial link: this transfer starts when the previous external one has finished */
        uint32_t now = ef_po_now(), cost = EF_PO_EXT_LATENCY + (bytes + EF_PO_EXT_BW - 1u) / EF_PO_EXT_BW;
        uint32_t begin = (int32_t)(ext_free_at - now) > 0 ? ext_free_at : now;
        ext_free_at = reqs[i].ready = begin + cost;
        ext_bytes += bytes;
        ext_model += cost;
    }
    return i + 1u;
}

/* src/ef_l3_image.c (linked into the external memory, .ef_ext) implements ef_dma_start_ext over this call with
 * an address in that memory: such a transfer pays the external memory's time. */
ef_dma_handle_t ef_dma_start(void *dst, const void *src, uint32_t bytes)
{
    return start(dst, (uint32_t)src, bytes, (uint32_t)src >= EF_PO_EXT_BASE, 0u, 0u, 0);
}

/* One 2-D MCHAN transfer (MCHAN gathers the rows; the external model, if src is there, charges the bytes). */
ef_dma_handle_t ef_dma_start_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t src_stride)
{
    if (row_bytes == 0u || rows <= 1u || src_stride == row_bytes)
        return ef_dma_start(dst, src, rows * row_bytes); /* contiguous, one row or nothing */
    return start(dst, (uint32_t)src, rows * row_bytes, (uint32_t)src >= EF_PO_EXT_BASE, row_bytes, src_stride, 0);
}

/* L1 -> L2: MCHAN LOC2EXT (the staged element-wise kernels' results, firmware/hal/ef_team_split_l1.c). */
ef_dma_handle_t ef_dma_start_out(void *dst, const void *src, uint32_t bytes)
{
    return start(dst, (uint32_t)src, bytes, 0, 0u, 0u, 1);
}

/* L1 rows -> strided L2 rows: one 2-D MCHAN LOC2EXT transfer (rows longer than a command: row by row, 1-D). */
ef_dma_handle_t ef_dma_start_out_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t dst_stride)
{
    if (row_bytes == 0u || rows <= 1u || dst_stride == row_bytes)
        return ef_dma_start_out(dst, src, rows * row_bytes);
    if (row_bytes > EF_PO_DMA_CHUNK) {
        stats.errors++;
        return 0u;
    }
    return start(dst, (uint32_t)src, rows * row_bytes, 0, row_bytes, dst_stride, 1);
}

void ef_dma_wait(ef_dma_handle_t h)
{
    ef_req_t *r;
    uint32_t t0;
    if (h == 0u || h > EF_DMA_MAX_IN_FLIGHT || !reqs[h - 1u].used) {
        stats.errors++;
        return;
    }
    r = &reqs[h - 1u];
    t0 = ef_po_now();
    plp_dma_wait((unsigned)r->counter); /* sleeps on the DMA event while the counter is busy, then frees it */
    if (r->ext)
        while ((int32_t)(ef_po_now() - r->ready) < 0)
            ;
    wait_cycles += ef_po_now() - t0;
    r->used = 0;
    n_in_flight--;
    stats.waits++;
}

void ef_dma_get_stats(ef_dma_stats_t *out)
{
    *out = stats;
}

void ef_dma_reset_stats(void)
{
    memset(&stats, 0, sizeof stats);
    stats.max_in_flight = n_in_flight;
}

void ef_po_dma_calibrate(uint32_t small, uint32_t big, uint32_t *small_cycles, uint32_t *big_cycles)
{
    static EF_PO_L1 uint8_t dst[EF_PO_CAL_CHUNK]; /* the same L1 block rewritten: time, not data, matters */
    static const uint8_t src[EF_PO_CAL_CHUNK];
    uint32_t *out[2] = {small_cycles, big_cycles}, sz[2] = {small, big}, k;
    for (k = 0; k < 2; ++k) {
        uint32_t done = 0, t0 = ef_po_now();
        int32_t counter = plp_dma_counter_alloc();
        while (done < sz[k]) {
            uint32_t n = sz[k] - done < EF_PO_CAL_CHUNK ? sz[k] - done : EF_PO_CAL_CHUNK;
            plp_dma_cmd_push(plp_dma_getCmd(PLP_DMA_EXT2LOC, n, PLP_DMA_1D, PLP_DMA_TRIG_EVT, PLP_DMA_NO_TRIG_IRQ,
                                            PLP_DMA_SHARED), (uint32_t)dst, (uint32_t)src);
            done += n;
        }
        plp_dma_wait((unsigned)counter);
        *out[k] = ef_po_now() - t0;
    }
}

/* ---- per-layer profile (core 0) --------------------------------------------------------------------------- */
/* The records of a window stay in L2 (EF_N_LAYERS of them); each is filled in L1 (rec) and copied by one MCHAN
 * transfer, and the marks' own state is in L1, so the hook does no L2 load or store itself. With the DMA
 * bookkeeping above in L1 too, a layer that runs no code (a flip read through a negative stride) measures ~1.3k
 * cycles instead of ~3.3k: the hook's cost, counted in the next layer's figures and in the window's total. */
static ef_po_layer_t layers[EF_N_LAYERS];
static EF_PO_L1 ef_po_layer_t rec;
static EF_PO_L1 uint32_t prev_t, prev_ctr[EF_PO_MAX_CORES][EF_PO_NCTR], prev_n, prev_bytes, prev_ext, prev_wait,
    prev_model;

static void take_marks(void)
{
    int32_t c, k;
    snap(0);
    for (c = 0; c < EF_PO_MAX_CORES; ++c)
        for (k = 0; k < EF_PO_NCTR; ++k)
            prev_ctr[c][k] = snaps[c][k];
    prev_n = stats.starts;
    prev_bytes = (uint32_t)stats.bytes;
    prev_ext = ext_bytes;
    prev_wait = wait_cycles;
    prev_model = ext_model;
}

void ef_po_prof_begin(void)
{
    memset(layers, 0, sizeof layers);
    take_marks();
    prev_t = ef_po_now();
}

void ef_layer_mark(int32_t i)
{
    uint32_t now = ef_po_now();
    ef_po_layer_t *L;
    int32_t c, k;
    if (i < 0 || i >= EF_N_LAYERS)
        return;
    L = &rec;
    snap(0);
    L->wall = now - prev_t;
    L->dma_n = stats.starts - prev_n;
    L->dma_bytes = (uint32_t)stats.bytes - prev_bytes;
    L->dma_ext_bytes = ext_bytes - prev_ext;
    L->dma_wait = wait_cycles - prev_wait;
    L->dma_ext_model = ext_model - prev_model;
    for (c = 0; c < EF_PO_MAX_CORES; ++c)
        for (k = 0; k < EF_PO_NCTR; ++k)
            L->ctr[c][k] = snaps[c][k] - prev_ctr[c][k];
    {   /* rec -> layers[i] (LOC2EXT, not counted in the layers' DMA figures), waited here: rec is reused */
        int32_t counter = plp_dma_counter_alloc();
        plp_dma_cmd_push(plp_dma_getCmd(PLP_DMA_LOC2EXT, sizeof rec, PLP_DMA_1D, PLP_DMA_TRIG_EVT,
                                        PLP_DMA_NO_TRIG_IRQ, PLP_DMA_SHARED), (uint32_t)&rec, (uint32_t)&layers[i]);
        take_marks();
        plp_dma_wait((unsigned)counter);
    }
    prev_t = now;
}

const ef_po_layer_t *ef_po_prof_layers(void)
{
    return layers;
}

/* ---- ef_hal.h: counters and cores (the byte link is semihosting, in ef_main_pulp_open.c) ------------------ */
void ef_hal_init(void)
{
    timer_conf_set(timer_base_cl(0, 0, 0), TIMER_CFG_LO_ENABLE_MASK | TIMER_CFG_LO_RESET_MASK);
    perf_begin();
}

uint64_t ef_hal_cycles(void)
{
    return ef_po_now();
}

uint64_t ef_hal_instret(void)
{
    return cpu_perf_get(CSR_PCER_INSTR);
}

int ef_hal_cores(void)
{
    return team;
}
