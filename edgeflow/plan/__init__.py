"""Memory planning: liveness, arena offsets, constant layouts, L1 tiles, placement -> one frozen MemoryPlan."""
