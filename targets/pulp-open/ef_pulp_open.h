/* Shared by the pulp-open HAL and its window loop: the cluster team, the profile record of one layer, the
 * DMA calibration. The host side (edgeflow/runners/gvsoc.py) parses the same words from out.bin. */
#ifndef EF_PULP_OPEN_H
#define EF_PULP_OPEN_H

#include <stdint.h>

#define EF_PO_MAX_CORES 8
#define EF_PO_NCTR 5  /* per core: active cycles, instructions, load stalls, TCDM contention, L2 load cycles */
#define EF_PO_MAGIC 0x4F505045u /* "EPPO" */
#define EF_PO_VERSION 1u

/** One layer (IR node) of one window, all counts as deltas since the previous layer mark. */
typedef struct {
    uint32_t wall;           /* cluster timer cycles */
    uint32_t dma_n;          /* transfers started */
    uint32_t dma_bytes;      /* bytes moved (L2 -> L1 and L3 -> L1) */
    uint32_t dma_ext_bytes;  /* of those, from the external memory */
    uint32_t dma_wait;       /* cycles core 0 waited for transfers (exposed DMA), cluster timer */
    uint32_t dma_ext_model;  /* cycles the external memory model charged (latency + bytes / bandwidth) */
    uint32_t ctr[EF_PO_MAX_CORES][EF_PO_NCTR];
} ef_po_layer_t;

#define EF_PO_LAYER_WORDS (6 + EF_PO_MAX_CORES * EF_PO_NCTR)

/** Cores that take part in ef_parallel_for (1..8); the others sleep in the team barriers. */
void ef_po_team_set(int32_t cores);
/** Cores 1..7: serve ef_parallel_for jobs until ef_po_team_stop. */
void ef_po_team_worker(void);
/** Core 0: release the workers (they return from the cluster entry). */
void ef_po_team_stop(void);

/** Core 0: start a profiled window (zero the per-layer records and take the first marks). */
void ef_po_prof_begin(void);
/** Records of the last window (EF_N_LAYERS of them). */
const ef_po_layer_t *ef_po_prof_layers(void);

/** Cluster timer (cycles of the cluster clock). */
uint32_t ef_po_now(void);
/** Core 0: time two isolated L2 -> L1 transfers (small, big bytes) so the host can model DMA time. */
void ef_po_dma_calibrate(uint32_t small, uint32_t big, uint32_t *small_cycles, uint32_t *big_cycles);

#endif /* EF_PULP_OPEN_H */
