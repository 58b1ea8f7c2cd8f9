/* DMA engine for the host and QEMU HALs: ef_dma_start copies at once with memcpy, ef_dma_wait only checks. */
#include <stdint.h>
#include <string.h>

#include "ef_dma.h"

static ef_dma_stats_t stats;
static ef_dma_handle_t in_flight[EF_DMA_MAX_IN_FLIGHT]; /* 0 = free slot */
static uint32_t n_in_flight;
static ef_dma_handle_t next_handle = 1u;

ef_dma_handle_t ef_dma_start(void *dst, const void *src, uint32_t bytes)
{
    ef_dma_handle_t h = next_handle++;
    uint32_t i;
    if (next_handle == 0u)
        next_handle = 1u;
    if (bytes != 0u)
        memcpy(dst, src, (size_t)bytes);
    stats.starts++;
    stats.bytes += bytes;
    for (i = 0; i < EF_DMA_MAX_IN_FLIGHT && in_flight[i] != 0u; ++i)
        ;
    if (i == EF_DMA_MAX_IN_FLIGHT) {
        stats.errors++;
        return h;
    }
    in_flight[i] = h;
    if (++n_in_flight > stats.max_in_flight)
        stats.max_in_flight = n_in_flight;
    return h;
}

/* rows of row_bytes, row r from src + r ss to dst + r ds: rows 1.. at once, row 0 (and the bookkeeping) through
 * ef_dma_start */
static ef_dma_handle_t rows_copy(void *dst, uint32_t ds, const void *src, uint32_t ss, uint32_t row_bytes,
                                 uint32_t rows)
{
    uint32_t r;
    for (r = 1; r < rows; ++r)
        memcpy((uint8_t *)dst + (size_t)r * ds, (const uint8_t *)src + (size_t)r * ss, (size_t)row_bytes);
    stats.bytes += (uint64_t)(rows > 1u ? rows - 1u : 0u) * row_bytes;
    return ef_dma_start(dst, src, rows ? row_bytes : 0u);
}

ef_dma_handle_t ef_dma_start_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t src_stride)
{
    return rows_copy(dst, row_bytes, src, src_stride, row_bytes, rows);
}

ef_dma_handle_t ef_dma_start_out(void *dst, const void *src, uint32_t bytes)
{
    return ef_dma_start(dst, src, bytes); /* one memory: the direction does not matter */
}

ef_dma_handle_t ef_dma_start_out_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows, uint32_t dst_stride)
{
    return rows_copy(dst, dst_stride, src, row_bytes, row_bytes, rows);
}

void ef_dma_wait(ef_dma_handle_t h)
{
    uint32_t i;
    for (i = 0; i < EF_DMA_MAX_IN_FLIGHT; ++i) {
        if (h != 0u && in_flight[i] == h) {
            in_flight[i] = 0u;
            n_in_flight--;
            stats.waits++;
            return;
        }
    }
    stats.errors++;
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
