"""Memory planning: activation arena offsets and per-layer L1 tiling with double buffers."""
