"""Per-layer L1 tiling: tiles of rows (and tokens) sized so tiles plus double buffers fit L1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from edgeflow.errors import EdgeflowError
from edgeflow.ir.ops import PACK_CODES, row_bytes
from edgeflow.plan.arena import align_up as _align

#: Inputs per row from which a layer's L1 input rows are padded to a word (LinearShape.x_stride).
PAD_ROWS_MIN = 64


class TilingError(EdgeflowError):
    """A layer cannot be tiled into the given L1 size."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LinearShape:
    """A linear layer y[tokens, n_out] = x[tokens, n_in] @ W.T, W packed per output row at w_bits.

    Per-row parameters stored with each row tile: has_bias: a nonzero bias of bias_bytes (2: int16, 4: int32);
    the multiplier word of m_bytes (4: int32 m, or with sh_packed a uint32 m|sh word; 2 only with sh_packed: a
    uint16 word holding a 15-bit m and the shift); without sh_packed an int8 shift array follows.
    """

    name: str
    tokens: int
    n_in: int
    n_out: int
    w_bits: int
    has_bias: bool = True
    sh_packed: bool = False
    bias_bytes: int = 4
    m_bytes: int = 4

    def __post_init__(self) -> None:
        if self.w_bits not in PACK_CODES:  # storage codes: 2, 4, 8 bits, or 1 = ternary (five weights a byte)
            raise TilingError(f"layer {self.name!r}: weight bits {self.w_bits} not in {PACK_CODES}")
        for field_name in ("tokens", "n_in", "n_out"):
            if getattr(self, field_name) < 1:
                raise TilingError(f"layer {self.name!r}: {field_name} must be >= 1, got {getattr(self, field_name)}")
        if self.bias_bytes not in (2, 4) or self.m_bytes not in (2, 4) or (self.m_bytes == 2 and not self.sh_packed):
            raise TilingError(f"layer {self.name!r}: bias_bytes {self.bias_bytes} / m_bytes {self.m_bytes} "
                              f"(sh_packed {self.sh_packed}) is not a stored parameter layout")

    @property
    def row_bytes(self) -> int:
        """Bytes of one packed weight row, padded to a whole byte so a row tile can be DMA'd alone."""
        return row_bytes(self.n_in, self.w_bits)

    @property
    def x_stride(self) -> int:
        """Bytes between token rows of the input in L1: from PAD_ROWS_MIN inputs, n_in padded to a word so every
        row starts word-aligned (the Xpulpv2 kernel's word loads, its last 1..3 inputs taken as one word against
        zeroed weight lanes); padded rows travel one DMA each, which short rows do not repay."""
        return _align(self.n_in, 4) if self.n_in >= PAD_ROWS_MIN else self.n_in

    @property
    def param_bytes_per_row(self) -> int:
        return (self.bias_bytes if self.has_bias else 0) + self.m_bytes + (0 if self.sh_packed else 1)

    def param_block_bytes(self, rows: int, align: int = 4) -> int:
        """Bytes of the parameters of `rows` rows as stored: [bias | m words | int8 shifts unless sh_packed],
        each part padded to `align` so the next part and the weight rows start aligned."""
        bias = _align(self.bias_bytes * rows, align) if self.has_bias else 0
        return bias + _align(self.m_bytes * rows, align) + (0 if self.sh_packed else _align(rows, align))

    def tile_block_bytes(self, rows: int, align: int = 4) -> int:
        """Bytes one row tile occupies in the weight blob and moves by DMA: its parameters, then its packed
        rows, padded so the next tile's block starts aligned."""
        return self.param_block_bytes(rows, align) + _align(rows * self.row_bytes, align)


@dataclass(frozen=True)
class Tile:
    """One unit of work: rows [row_start, row_start+rows) for tokens [token_start, token_start+tokens)."""

    index: int
    row_start: int
    rows: int
    token_start: int
    tokens: int
    dma_bytes: int


@dataclass(frozen=True)
class Step:
    """One double-buffer action on a tile; `slot` is the L1 buffer (0/1) holding that tile's DMA'd data."""

    op: Literal["start", "wait", "compute"]
    tile: int
    slot: int


@dataclass(frozen=True)
class L1Layout:
    """Byte offsets in the layer's L1 area: [slot 0 | slot 1 (double buffer) | input buffer(s) | output tile].
    A slot holds one row tile's block (params + packed rows); `used` == the TilePlan's l1_bytes_used.
    in_stride: bytes between token rows in an input buffer (LinearShape.x_stride)."""

    slot_off: tuple[int, int]
    slot_bytes: int
    in_off: int
    in_bytes: int
    in_bufs: int
    out_off: int
    used: int
    in_stride: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"slot_off": list(self.slot_off), "slot_bytes": self.slot_bytes, "in_off": self.in_off,
                "in_bytes": self.in_bytes, "in_bufs": self.in_bufs, "out_off": self.out_off, "used": self.used,
                "in_stride": self.in_stride}


@dataclass(frozen=True)
class TilePlan:
    """How one layer is cut into tiles and what occupies L1 while they run."""

    name: str
    rows_per_tile: int
    n_tiles: int
    l1_bytes_used: int
    breakdown: dict[str, int]
    dma_bytes_per_tile: int
    dma_schedule: list[Step]
    tokens_per_tile: int | None = None
    n_row_tiles: int = 0
    n_token_tiles: int = 1
    double_buffer: bool = True
    l1_bytes: int = 0
    tiles: list[Tile] = field(default_factory=list)
    layout: L1Layout | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "rows_per_tile": self.rows_per_tile,
            "tokens_per_tile": self.tokens_per_tile,
            "n_tiles": self.n_tiles,
            "n_row_tiles": self.n_row_tiles,
            "n_token_tiles": self.n_token_tiles,
            "l1_bytes_used": self.l1_bytes_used,
            "l1_bytes": self.l1_bytes,
            "breakdown": dict(self.breakdown),
            "dma_bytes_per_tile": self.dma_bytes_per_tile,
            "double_buffer": self.double_buffer,
            **({"l1_layout": self.layout.to_dict()} if self.layout is not None else {}),
        }


def schedule(tiles: int | Sequence[object], double_buffer: bool = True) -> list[Step]:
    """Explicit DMA order. Double-buffered: start(0); for k: wait(k); start(k+1) if any; compute(k).

    Single-buffered: for k: start(k); wait(k); compute(k). Tile k uses buffer slot k % 2 (always 0 if single).
    """
    n = tiles if isinstance(tiles, int) else len(tiles)
    steps: list[Step] = []
    if not double_buffer:
        for k in range(n):
            steps += [Step("start", k, 0), Step("wait", k, 0), Step("compute", k, 0)]
        return steps
    if n:
        steps.append(Step("start", 0, 0))
    for k in range(n):
        steps.append(Step("wait", k, k % 2))
        if k + 1 < n:
            steps.append(Step("start", k + 1, (k + 1) % 2))
        steps.append(Step("compute", k, k % 2))
    return steps


def _linear_breakdown(shape: LinearShape, tokens: int, rows: int, double_buffer: bool, align: int) -> dict[str, int]:
    nbuf = 2 if double_buffer else 1
    in_bufs = 1 if tokens >= shape.tokens else nbuf  # a resident whole input is loaded once
    return {
        "input": in_bufs * _align(tokens * shape.x_stride, align),
        "weights": nbuf * _align(rows * shape.row_bytes, align),  # + params: one tile_block_bytes per slot
        "params": nbuf * shape.param_block_bytes(rows, align),
        "output": _align(tokens * rows, align),
    }


def l1_layout(shape: LinearShape, tokens: int, rows: int, double_buffer: bool, align: int) -> L1Layout:
    """The L1 offsets of _linear_breakdown's parts, in order: slots, input buffer(s), output tile."""
    nbuf = 2 if double_buffer else 1
    slot = shape.tile_block_bytes(rows, align)
    in_bufs = 1 if tokens >= shape.tokens else nbuf
    in_bytes = _align(tokens * shape.x_stride, align)
    in_off = nbuf * slot
    out_off = in_off + in_bufs * in_bytes
    return L1Layout((0, slot if double_buffer else 0), slot, in_off, in_bytes, in_bufs, out_off,
                    out_off + _align(tokens * rows, align), shape.x_stride)


def _max_rows(shape: LinearShape, tokens: int, l1_bytes: int, double_buffer: bool, align: int) -> int:
    """Largest row count (<= n_out) whose breakdown fits, or 0 (the footprint grows with rows)."""
    lo, hi = 0, shape.n_out
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(_linear_breakdown(shape, tokens, mid, double_buffer, align).values()) <= l1_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def kernel_rounds(rows: int, cores: int, row_group: int) -> int:
    """Kernel passes of the busiest core on a tile of `rows` rows: the team split gives the busiest core
    ceil(rows / cores) rows (firmware HAL's ef_parallel_for: shares differ by at most one), which its kernel
    computes row_group rows at a time."""
    return _ceil_div(_ceil_div(rows, cores), row_group)


def _row_tile_count(n_out: int, max_rows: int, cores: int, row_group: int) -> int:
    """Row tiles of a layer: the fewest that fit; on a multi-core target (or a kernel that takes rows in groups) the
    count among the fewest + 0..3 whose balanced tiles take the fewest kernel rounds in all (ties: fewer tiles),
    e.g. out_proj's 385 rows: 11 tiles of 35 rows = 11 x 3 rounds on 8 cores x 2 rows; 13 of 30 = 13 x 2."""
    fewest = _ceil_div(n_out, max_rows)
    if cores <= 1 and row_group <= 1:
        return fewest

    def rounds(count: int) -> int:
        rows = _ceil_div(n_out, count)
        return sum(kernel_rounds(min(rows, n_out - r0), cores, row_group) for r0 in range(0, n_out, rows))

    return min(range(fewest, min(fewest + 4, n_out + 1)), key=lambda count: (rounds(count), count))


def tile_linear(shape: LinearShape, l1_bytes: int, double_buffer: bool = True, align: int = 4, cores: int = 1,
                row_group: int = 1, token_group: int = 1) -> TilePlan:
    """Tile a linear layer for L1: whole input resident if it fits, else token tiles; weights by output rows.

    Weights are re-streamed once per token tile, so the fewest token tiles win; then the most rows (for `cores`
    > 1 or `row_group` > 1: the row-tile count with the fewest kernel rounds, see _row_tile_count).
    Row and token tiles are balanced (same tile count, smallest footprint), except that token tiles are whole
    multiples of `token_group` (the tokens a kernel computes together) where that keeps their count and fits:
    80 tokens in three tiles as 28 + 28 + 24, not 27 + 27 + 26 (whose last group of four runs one or two tokens
    short). Loop order: token tiles outer.
    """
    rows = tokens = 0
    n_token_tiles = 0
    for k in range(1, shape.tokens + 1):
        t = _ceil_div(shape.tokens, k)
        if k > 1 and t == _ceil_div(shape.tokens, k - 1):
            continue
        r = _max_rows(shape, t, l1_bytes, double_buffer, align)
        if r:
            tokens, rows, n_token_tiles = t, r, _ceil_div(shape.tokens, t)
            break
    if not rows:
        need = sum(_linear_breakdown(shape, 1, 1, double_buffer, align).values())
        raise TilingError(
            f"layer {shape.name!r} needs {need} bytes for the smallest tile (1 token x 1 row"
            f"{', + double buffers' if double_buffer else ''}), L1 has {l1_bytes}"
        )
    tokens = _ceil_div(shape.tokens, n_token_tiles)
    if token_group > 1 and n_token_tiles > 1 and tokens % token_group:
        grouped = _ceil_div(tokens, token_group) * token_group
        r = _max_rows(shape, grouped, l1_bytes, double_buffer, align)
        if r and _ceil_div(shape.tokens, grouped) == n_token_tiles:
            tokens, rows = grouped, r
    n_row_tiles = _row_tile_count(shape.n_out, rows, cores, row_group)
    rows = _ceil_div(shape.n_out, n_row_tiles)
    n_row_tiles = _ceil_div(shape.n_out, rows)
    breakdown = _linear_breakdown(shape, tokens, rows, double_buffer, align)
    layout = l1_layout(shape, tokens, rows, double_buffer, align)
    if layout.used != sum(breakdown.values()):
        raise TilingError(f"layer {shape.name!r}: L1 layout {layout.used} bytes != breakdown {breakdown}")
    token_tiled = tokens < shape.tokens
    tiles: list[Tile] = []
    for ti in range(n_token_tiles):
        t0 = ti * tokens
        tn = min(tokens, shape.tokens - t0)
        for ri in range(n_row_tiles):
            r0 = ri * rows
            rn = min(rows, shape.n_out - r0)
            dma = shape.tile_block_bytes(rn, align)
            if ri == 0 and (token_tiled or ti == 0):
                dma += tn * shape.n_in  # the (next) input tile travels with the first weight tile
            tiles.append(Tile(len(tiles), r0, rn, t0, tn, dma))
    return TilePlan(
        name=shape.name,
        rows_per_tile=rows,
        n_tiles=len(tiles),
        l1_bytes_used=sum(breakdown.values()),
        breakdown=breakdown,
        dma_bytes_per_tile=max(t.dma_bytes for t in tiles),
        dma_schedule=schedule(tiles, double_buffer),
        tokens_per_tile=tokens,
        n_row_tiles=n_row_tiles,
        n_token_tiles=n_token_tiles,
        double_buffer=double_buffer,
        l1_bytes=l1_bytes,
        tiles=tiles,
        layout=layout,
    )
