"""L1 placement of the selective scan: channel tiles over all time steps, their operands and state in L1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeflow.plan.arena import align_up

EXP2_TABLE_BYTES = 257 * 4  # ef_exp2_table_q15, copied to L1 once per scan call
#: L1 buffers of one channel tile in layout order: name -> bytes for (steps T, states N, channels dt).
TILE_PARTS = ("u", "delta", "y", "h", "ka", "m_in", "m_y", "m_D", "sh_in", "sh_D", "sh_y")
WHY_SINGLE = ("per tile: load (exp2, B, C once), wait, compute, send y out; single-buffered: a second set of a "
              "tile's u / delta / constants would halve the channels a tile holds, and the loads (u, delta as one "
              "2-D DMA each) are ~1% of the tile's compute")


@dataclass(frozen=True)
class ScanShape:
    """One scan node: T time steps, D channels (d_inner), N states (d_state)."""

    name: str
    steps: int
    d_inner: int
    d_state: int

    def part_bytes(self, part: str, dt: int) -> int:
        t, n = self.steps, self.d_state
        return {"u": t * dt, "delta": t * dt, "y": t * dt, "h": 4 * dt * n, "ka": 2 * dt * n, "m_in": 4 * dt,
                "m_y": 2 * dt, "m_D": 2 * dt, "sh_in": dt, "sh_D": dt, "sh_y": dt}[part]


@dataclass(frozen=True)
class ScanTilePlan:
    """A scan run as channel tiles [k dt, (k+1) dt) x all T steps: each tile's u, delta, y rows, its state h and
    its constants in L1 (the state never leaves L1: a tile covers the whole sequence), B, C and the exp2 table
    loaded once. offsets: L1 byte offset of every buffer ("exp2", "B", "C" and TILE_PARTS)."""

    shape: ScanShape
    channels_per_tile: int
    n_tiles: int
    offsets: dict[str, int]
    l1_bytes_used: int
    l1_bytes: int

    @property
    def tiles(self) -> list[tuple[int, int]]:
        """(first channel, channels) of every tile."""
        dt, d = self.channels_per_tile, self.shape.d_inner
        return [(k * dt, min(dt, d - k * dt)) for k in range(self.n_tiles)]

    @property
    def dma_bytes(self) -> int:
        """Bytes DMA'd into L1 per call: exp2 table, B and C once; per channel its u and delta rows, ka row and
        constants (y goes back separately: dma_out_bytes)."""
        s = self.shape
        per_channel = sum(s.part_bytes(p, 1) for p in TILE_PARTS if p not in ("h", "y"))
        return EXP2_TABLE_BYTES + 2 * s.steps * s.d_state + s.d_inner * per_channel

    @property
    def dma_out_bytes(self) -> int:
        """Bytes DMA'd back to L2 per call: y, one 2-D transfer a tile (ef_dma_start_out_2d)."""
        return self.shape.steps * self.shape.d_inner

    @property
    def dma_starts(self) -> int:
        """DMA starts per call (each waited once): 3 once, per tile 7 constant slices, u and delta as one transfer
        each (ef_dma_start_2d: a 2-D transfer of the tile's column of rows when the tile leaves channels out) and
        y back as one (ef_dma_start_out_2d)."""
        return 3 + self.n_tiles * 10

    def to_dict(self) -> dict[str, Any]:
        s = self.shape
        return {"name": s.name, "steps": s.steps, "d_inner": s.d_inner, "d_state": s.d_state,
                "channels_per_tile": self.channels_per_tile, "n_tiles": self.n_tiles,
                "tiles": [list(t) for t in self.tiles], "l1_bytes_used": self.l1_bytes_used,
                "l1_bytes": self.l1_bytes, "l1_layout": dict(self.offsets), "dma_bytes": self.dma_bytes,
                "dma_out_bytes": self.dma_out_bytes,
                "dma_starts": self.dma_starts, "double_buffer": False, "dma_order": WHY_SINGLE}


def scan_layout(shape: ScanShape, dt: int, align: int = 4) -> tuple[dict[str, int], int]:
    """L1 offsets of [exp2 | B | C | TILE_PARTS of a dt-channel tile] (each part aligned) and the bytes used."""
    offsets, off = {}, 0
    for name, size in (("exp2", EXP2_TABLE_BYTES), ("B", shape.steps * shape.d_state),
                       ("C", shape.steps * shape.d_state), *((p, shape.part_bytes(p, dt)) for p in TILE_PARTS)):
        offsets[name] = off
        off += align_up(size, align)
    return offsets, off


def busiest_core_channels(d_inner: int, dt: int, cores: int) -> int:
    """Channels the busiest core scans over all tiles of dt channels (the team split gives it ceil(tile / cores)
    of each tile's channels)."""
    full, last = divmod(d_inner, dt)
    return full * -(-dt // cores) + -(-last // cores)


def tile_scan(shape: ScanShape, l1_bytes: int, align: int = 4, cores: int = 1) -> ScanTilePlan | None:
    """Channel tiles whose layout fits l1_bytes: among tile widths that fit, the one whose busiest core scans the
    fewest channels (ties: fewer tiles, then the balanced width), e.g. femba-tiny's 1540 channels on 8 cores:
    6 x 257 leave one core 6 x 33 = 198 channels, tiles of 264 (5 x 264 + 220) 5 x 33 + 28 = 193. None when one
    channel does not fit (the scan then runs on whole tensors in L2, as without a plan)."""
    lo, hi = 0, shape.d_inner
    while lo < hi:  # the footprint grows with the channel count
        mid = (lo + hi + 1) // 2
        if scan_layout(shape, mid, align)[1] <= l1_bytes:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return None
    n_tiles = -(-shape.d_inner // lo)
    dt = -(-shape.d_inner // n_tiles)  # the fewest balanced tiles
    if cores > 1:
        def cost(w: int) -> tuple[int, int, int]:
            return busiest_core_channels(shape.d_inner, w, cores), -(-shape.d_inner // w), w != dt
        dt = min(range(1, lo + 1), key=cost)
        n_tiles = -(-shape.d_inner // dt)
    offsets, used = scan_layout(shape, dt, align)
    return ScanTilePlan(shape, dt, n_tiles, offsets, used, l1_bytes)
