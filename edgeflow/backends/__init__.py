"""Backends: the one registry of Backend entries by target name (a new backend: one file + one line here)."""

from __future__ import annotations

from edgeflow.backends import gap9, host, jetson, pulp_open, rv32_virt
from edgeflow.backends.base import Artifact, Backend, Flashed

BACKENDS: dict[str, Backend] = {b.name: b for b in (host.BACKEND, gap9.BACKEND, rv32_virt.BACKEND, pulp_open.BACKEND,
                                                    *jetson.BACKENDS)}
#: Targets whose backend takes the ONNX file (the chunked form) instead of the lowered graph.
ONNX_BACKENDS: frozenset[str] = frozenset(n for n, b in BACKENDS.items() if b.takes == "onnx")

__all__ = ["BACKENDS", "ONNX_BACKENDS", "Artifact", "Backend", "Flashed"]
