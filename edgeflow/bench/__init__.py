"""edgeflow bench: the same model on every target and peer side by side (host CPU, rv32, pulp-open, memory)."""
