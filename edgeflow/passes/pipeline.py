"""The compiler's ordered pass list: each pass is a pure Graph -> Graph; verify() runs after every one."""

from __future__ import annotations

from collections.abc import Callable

from edgeflow.ir.graph import Graph, verify
from edgeflow.passes.compose_luts import compose_luts
from edgeflow.passes.dead_code import dead_code
from edgeflow.passes.fold_identity import fold_identity

Pass = Callable[[Graph], Graph]

#: Run in this order by every backend (the frontend already folded Quantize/Clip/Dequantize into integer ops).
PASSES: list[tuple[str, Pass]] = [
    ("fold_identity", fold_identity),
    ("compose_luts", compose_luts),
    ("dead_code", dead_code),
]


def run_pipeline(graph: Graph, passes: list[tuple[str, Pass]] | None = None, check: bool = True) -> Graph:
    """Apply the passes in order; with check, verify() the graph after each (an IRError names the pass)."""
    g = graph
    for name, fn in PASSES if passes is None else passes:
        g = fn(g)
        if check:
            try:
                verify(g)
            except Exception as e:  # re-raise naming the pass that broke the graph
                raise type(e)(f"after pass '{name}': {e}") from e
    return g
