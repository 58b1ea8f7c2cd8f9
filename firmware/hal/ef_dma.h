/* DMA engine interface of the edgeflow HAL: start a copy, wait for it; counters let tests check the schedule. */
#ifndef EF_DMA_H
#define EF_DMA_H

#include <stdint.h>

/** Identifies one transfer in flight; 0 is never a valid handle. */
typedef uint32_t ef_dma_handle_t;

/** What the engine has done since the last ef_dma_reset_stats(). */
typedef struct {
    uint32_t starts;        /* ef_dma_start / ef_dma_start_2d / ef_dma_start_out calls */
    uint32_t waits;         /* ef_dma_wait calls on a transfer in flight */
    uint64_t bytes;         /* bytes copied by all starts */
    uint32_t max_in_flight; /* most transfers started and not yet waited at one time */
    uint32_t errors;        /* waits on a handle not in flight, starts beyond EF_DMA_MAX_IN_FLIGHT */
} ef_dma_stats_t;

/** Transfers one engine tracks at once (two double buffers x weights + input, with room to spare). */
#define EF_DMA_MAX_IN_FLIGHT 16

/**
 * Start copying `bytes` bytes from src (L2/L3) to dst (L1), or back. The buffers must not be touched until
 * ef_dma_wait on the returned handle. bytes may be 0.
 */
ef_dma_handle_t ef_dma_start(void *dst, const void *src, uint32_t bytes);

/**
 * Start copying `rows` rows of `row_bytes` bytes, row r at src + r src_stride (L2), to dst + r row_bytes (L1):
 * one transfer (one handle, one start in the counters) for a strided gather. Every HAL has it: one 2-D command
 * on the cluster DMAs (MCHAN on pulp-open, PMSIS on gap9), row copies on the portable one. row_bytes and
 * src_stride below 2^16.
 */
ef_dma_handle_t ef_dma_start_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t src_stride);

/**
 * Start copying `bytes` bytes from src (L1) out to dst (L2): the way back of a staged tensor, so that a cluster
 * core never stores to L2 itself (each such store stalls it for a round trip over the cluster bus). Every HAL has
 * it: a LOC2EXT command on the cluster DMAs, memcpy on the portable one.
 */
ef_dma_handle_t ef_dma_start_out(void *dst, const void *src, uint32_t bytes);

/**
 * Start copying `rows` rows of `row_bytes` bytes from src + r row_bytes (L1) to dst + r dst_stride (L2): the
 * scatter of ef_dma_start_2d's gather (one 2-D LOC2EXT command on the cluster DMAs, row copies on the portable
 * HAL). row_bytes and dst_stride below 2^16.
 */
ef_dma_handle_t ef_dma_start_out_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t dst_stride);

/**
 * Start copying `bytes` bytes at offset ext_off of the external weight image (L3 / MRAM) to dst (L1).
 * Portable builds implement it over ef_dma_start on an in-memory image (generated ef_l3_image.c); GAP9 with
 * RAM reads from HyperRAM. Waited with ef_dma_wait like any transfer.
 */
ef_dma_handle_t ef_dma_start_ext(void *dst, uint32_t ext_off, uint32_t bytes);

/** Block until the transfer `h` is complete; every started handle is waited exactly once. */
void ef_dma_wait(ef_dma_handle_t h);

/** Copy the counters into *out. */
void ef_dma_get_stats(ef_dma_stats_t *out);

/** Zero the counters (transfers in flight stay in flight). */
void ef_dma_reset_stats(void);

#endif /* EF_DMA_H */
