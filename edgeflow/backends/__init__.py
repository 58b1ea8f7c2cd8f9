"""Backends: the one registry of Backend entries by target name (a new backend: one file + one line here)."""

from __future__ import annotations

from edgeflow.backends import gap9, host, rv32_virt
from edgeflow.backends.base import Artifact, Backend, Flashed

BACKENDS: dict[str, Backend] = {b.name: b for b in (host.BACKEND, gap9.BACKEND, rv32_virt.BACKEND)}

__all__ = ["BACKENDS", "Artifact", "Backend", "Flashed"]
