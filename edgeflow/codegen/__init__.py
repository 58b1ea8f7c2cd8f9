"""C renderers: render_network(graph, plan) -> network.c/.h, weights.h, ef_tiled.*; every decision is the plan's."""
