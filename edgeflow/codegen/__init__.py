"""C renderers: network.c/.h and weights.h from a planned IR graph; no logic in templates."""
