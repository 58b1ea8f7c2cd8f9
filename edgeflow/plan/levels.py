"""Memory levels: place the activation arena and constants in L2, stream tile blobs from L3/MRAM when L2 is full."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeflow.errors import EdgeflowError
from edgeflow.target import Target


class PlanError(EdgeflowError):
    """The model does not fit the target's memory levels (one line naming the level and the bytes)."""


@dataclass
class Placement:
    """Where each kind of data lives and how full every level is."""

    weights_level: str                      # level of the tiled layers' weight blobs ("L2", "MRAM", "L3", ...)
    arena_bytes: int
    resident_bytes: int                     # constants that stay in L2 (LUTs, scan/LN params, small layers)
    stream_bytes: int                       # tile blobs (packed weights + per-row params)
    l1_peak: int                            # largest L1 footprint of one layer's tiles + double buffers
    use: dict[str, int] = field(default_factory=dict)       # level -> bytes used
    usable: dict[str, int] = field(default_factory=dict)    # level -> bytes the plan may use

    @property
    def external(self) -> bool:
        return self.weights_level != "L2"

    def to_dict(self) -> dict[str, object]:
        return {"weights_level": self.weights_level, "arena_bytes": self.arena_bytes,
                "resident_bytes": self.resident_bytes, "stream_bytes": self.stream_bytes, "l1_peak": self.l1_peak,
                "levels": {k: {"used": self.use[k], "usable": self.usable[k], "fits": self.use[k] <= self.usable[k]}
                           for k in self.use}}


def place(target: Target, arena_bytes: int, resident_bytes: int, stream_bytes: int, l1_peak: int,
          external: bool | None = None) -> Placement:
    """Arena and resident constants in L2; tile blobs in L2 when everything fits (or external is False), else in
    the first level after L2 (in target.toml order) that is L2's neighbour and holds them (external=True skips
    L2 for them). PlanError names the level that overflows."""
    l1, l2 = target.l1, target.l2
    if l1_peak > l1.usable:
        raise PlanError(f"target '{target.name}': tiles need {l1_peak} bytes of L1, usable {l1.usable}")
    base = arena_bytes + resident_bytes
    if base > l2.usable:
        raise PlanError(f"target '{target.name}': L2 needs {base} bytes (activation arena {arena_bytes} + resident "
                        f"constants {resident_bytes}), usable {l2.usable}")
    use = {"L1": l1_peak, "L2": base}
    usable = {"L1": l1.usable, "L2": l2.usable}
    if external is not True and (external is False or base + stream_bytes <= l2.usable):
        if base + stream_bytes > l2.usable:
            raise PlanError(f"target '{target.name}': L2 needs {base + stream_bytes} bytes (activation arena "
                            f"{arena_bytes} + constants {resident_bytes + stream_bytes}), usable {l2.usable}")
        use["L2"] += stream_bytes
        return Placement("L2", arena_bytes, resident_bytes, stream_bytes, l1_peak, use, usable)
    tried = [f"L2 ({l2.usable - base} free)"]
    for lvl in target.memory:
        if lvl.name in ("L1", "L2") or lvl.name not in l2.neighbours:
            continue
        if stream_bytes <= lvl.usable:
            use[lvl.name] = stream_bytes
            usable[lvl.name] = lvl.usable
            return Placement(lvl.name, arena_bytes, resident_bytes, stream_bytes, l1_peak, use, usable)
        tried.append(f"{lvl.name} ({lvl.usable})")
    raise PlanError(f"target '{target.name}': weights need {stream_bytes} bytes; no level holds them: "
                    f"{', '.join(tried)}")
