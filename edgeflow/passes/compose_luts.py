"""Pass: a lookup table read only by another lookup table becomes one table (y = t2[t1[x]]), exactly."""

from __future__ import annotations

import numpy as np

from edgeflow.ir.graph import Graph, Tensor


def compose_luts(graph: Graph) -> Graph:
    """Replace lut(lut(x, t1), t2) by lut(x, t2[t1 + 128]) when the inner output has no other reader."""
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        for outer in g.nodes:
            if outer.op != "lut":
                continue
            inner = g.producer(outer.inputs[0])
            if inner is None or inner.op != "lut" or outer.inputs[0] in g.outputs:
                continue
            if len(g.consumers(inner.outputs[0])) != 1:
                continue
            t1 = np.asarray(g.tensors[inner.inputs[1]].data).astype(np.int64).reshape(-1)
            t2 = np.asarray(g.tensors[outer.inputs[1]].data).reshape(-1)
            table = t2[t1 + 128].astype(t2.dtype)
            old = g.tensors[outer.inputs[1]]
            name = f"{outer.name}.composed_lut"
            g.add_tensor(Tensor(name, tuple(old.shape), old.dtype, old.bits, old.scale, old.zero_point,
                                table.reshape(old.shape), old.layout))
            outer.inputs = [inner.inputs[0], name]
            g.nodes.remove(inner)
            changed = True
            break
    return g
