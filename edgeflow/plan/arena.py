"""Activation arena planner: liveness intervals -> aligned offsets, checked for overlap."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from edgeflow.errors import EdgeflowError

ALGORITHMS = ("greedy_by_size", "greedy_by_breadth", "first_fit_in_order")


class ArenaError(EdgeflowError):
    """A buffer set or arena plan is invalid (overlap, bad offset, bad interval)."""


@dataclass(frozen=True)
class Buffer:
    """A buffer of `size` bytes live over node steps [first, last] inclusive."""

    name: str
    size: int
    first: int
    last: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ArenaError(f"buffer {self.name!r}: negative size {self.size}")
        if self.first > self.last:
            raise ArenaError(f"buffer {self.name!r}: first step {self.first} after last step {self.last}")

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class ArenaPlan:
    """Byte offset of every buffer inside one arena of `size` bytes, and the algorithm that found it."""

    offsets: dict[str, int]
    size: int
    algorithm: str
    alignment: int = 4
    lower_bound: int = 0
    candidates: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Arena size over the liveness lower bound (1.0 is optimal)."""
        return self.size / self.lower_bound if self.lower_bound else 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "algorithm": self.algorithm,
            "alignment": self.alignment,
            "lower_bound": self.lower_bound,
            "offsets": dict(self.offsets),
            "candidates": dict(self.candidates),
        }


def align_up(n: int, alignment: int) -> int:
    """n rounded up to a multiple of alignment (the one rounding rule of the planner and the link layout).

    >>> align_up(13, 4), align_up(16, 4)
    (16, 16)
    """
    return -(-n // alignment) * alignment



def lower_bound(buffers: Iterable[Buffer]) -> int:
    """Largest sum of sizes of buffers live at one step: no arena can be smaller."""
    events: dict[int, int] = {}
    for b in buffers:
        events[b.first] = events.get(b.first, 0) + b.size
        events[b.last + 1] = events.get(b.last + 1, 0) - b.size
    best = live = 0
    for step in sorted(events):
        live += events[step]
        best = max(best, live)
    return best


def _place(buf: Buffer, placed: list[tuple[int, Buffer]], alignment: int, best_fit: bool) -> int:
    """Lowest (first fit) or tightest (best fit) aligned gap among time-overlapping placed buffers."""
    if buf.size == 0:
        return 0
    busy = sorted((off, off + b.size) for off, b in placed if b.size and b.overlaps_in_time(buf))
    choice: int | None = None
    choice_gap = 0
    cursor = 0
    for start, end in busy:
        candidate = align_up(cursor, alignment)
        gap = start - candidate
        if gap >= buf.size:
            if not best_fit:
                return candidate
            if choice is None or gap < choice_gap:
                choice, choice_gap = candidate, gap
        cursor = max(cursor, end)
    if choice is not None:
        return choice
    return align_up(cursor, alignment)


def _place_in_order(order: Sequence[Buffer], alignment: int, best_fit: bool) -> dict[str, int]:
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[str, int] = {}
    for buf in order:
        off = _place(buf, placed, alignment, best_fit)
        offsets[buf.name] = off
        placed.append((off, buf))
    return offsets


def _greedy_by_size(buffers: Sequence[Buffer], alignment: int) -> dict[str, int]:
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    return _place_in_order(order, alignment, best_fit=False)


def _greedy_by_breadth(buffers: Sequence[Buffer], alignment: int) -> dict[str, int]:
    """Visit steps by decreasing breadth (live bytes); place each step's buffers largest first, best fit."""
    steps = sorted({b.first for b in buffers})  # live bytes only rise at a buffer's first step
    breadth = {s: sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps}
    order: list[Buffer] = []
    seen: set[str] = set()
    for s in sorted(steps, key=lambda s: (-breadth[s], s)):
        live = [b for b in buffers if b.first <= s <= b.last and b.name not in seen]
        for b in sorted(live, key=lambda b: (-b.size, b.first, b.name)):
            seen.add(b.name)
            order.append(b)
    return _place_in_order(order, alignment, best_fit=True)


def _first_fit_in_order(buffers: Sequence[Buffer], alignment: int) -> dict[str, int]:
    return _place_in_order(list(buffers), alignment, best_fit=False)


_ALGORITHM_FUNCS: dict[str, Callable[[Sequence[Buffer], int], dict[str, int]]] = {
    "greedy_by_size": _greedy_by_size,
    "greedy_by_breadth": _greedy_by_breadth,
    "first_fit_in_order": _first_fit_in_order,
}


def _arena_size(buffers: Sequence[Buffer], offsets: dict[str, int], alignment: int) -> int:
    return align_up(max((offsets[b.name] + b.size for b in buffers), default=0), alignment)


def _check_inputs(buffers: Sequence[Buffer], alignment: int) -> None:
    if alignment < 1:
        raise ArenaError(f"arena alignment must be >= 1, got {alignment}")
    names: set[str] = set()
    for b in buffers:
        if b.name in names:
            raise ArenaError(f"buffer {b.name!r} appears twice in the arena buffer list")
        names.add(b.name)


def plan_with(buffers: Sequence[Buffer], algorithm: str, alignment: int = 4) -> ArenaPlan:
    """Plan the arena with one named algorithm."""
    buffers = list(buffers)
    _check_inputs(buffers, alignment)
    if algorithm not in _ALGORITHM_FUNCS:
        raise ArenaError(f"unknown arena algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    offsets = _ALGORITHM_FUNCS[algorithm](buffers, alignment)
    size = _arena_size(buffers, offsets, alignment)
    return ArenaPlan(offsets, size, algorithm, alignment, lower_bound(buffers), {algorithm: size})


def plan_arena(buffers: Sequence[Buffer], alignment: int = 4, algorithms: Sequence[str] = ALGORITHMS) -> ArenaPlan:
    """Run every algorithm and keep the smallest arena (ties go to the earlier algorithm)."""
    if not algorithms:
        raise ArenaError("plan_arena needs at least one algorithm")
    plans = [plan_with(buffers, a, alignment) for a in algorithms]
    best = min(plans, key=lambda p: p.size)
    candidates = {p.algorithm: p.size for p in plans}
    return ArenaPlan(best.offsets, best.size, best.algorithm, alignment, best.lower_bound, candidates)


def verify_arena(buffers: Sequence[Buffer], plan: ArenaPlan) -> None:
    """Raise ArenaError if an offset is missing, negative, unaligned, past the arena, or two live buffers overlap."""
    for b in buffers:
        if b.name not in plan.offsets:
            raise ArenaError(f"buffer {b.name!r} has no offset in the arena plan")
        off = plan.offsets[b.name]
        if off < 0:
            raise ArenaError(f"buffer {b.name!r} has negative offset {off}")
        if off % plan.alignment:
            raise ArenaError(f"buffer {b.name!r} offset {off} is not aligned to {plan.alignment} bytes")
        if off + b.size > plan.size:
            raise ArenaError(f"buffer {b.name!r} at {off}+{b.size} ends past the arena size {plan.size}")
    live = sorted((b for b in buffers if b.size), key=lambda b: (b.first, b.name))
    for i, a in enumerate(live):
        a_off = plan.offsets[a.name]
        for b in live[i + 1 :]:
            if b.first > a.last:
                break
            b_off = plan.offsets[b.name]
            if a_off < b_off + b.size and b_off < a_off + a.size:
                raise ArenaError(
                    f"buffers {a.name!r} (steps {a.first}..{a.last}, bytes {a_off}..{a_off + a.size}) and "
                    f"{b.name!r} (steps {b.first}..{b.last}, bytes {b_off}..{b_off + b.size}) overlap in the arena"
                )
