/* Per-layer profiling hook of the device main loop: compile network.c with
 *   -include ef_layer_hook.h -D'EF_LAYER_HOOK(i)=ef_layer_mark(i)'
 * and device_main.c records the cycle/instret delta of every IR node for the OUTPUT message. */
#ifndef EF_LAYER_HOOK_H
#define EF_LAYER_HOOK_H

#include <stdint.h>

/** Called after node i of ef_network_run (0 <= i < EF_N_LAYERS); out-of-range i is ignored. */
void ef_layer_mark(int32_t i);

#endif /* EF_LAYER_HOOK_H */
