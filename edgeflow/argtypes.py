"""argparse types with ranges: a bad numeric option is refused by name with its allowed range, before any work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An int in [lo, hi] (hi None: no upper bound).

    >>> int_range(1)("3")
    3
    >>> int_range(1, 4)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 0 is outside [1, 4]
    """
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is outside [{lo}, {'inf' if hi is None else hi}]")
        return v

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    """A finite float in [lo, hi] (or (lo, hi] with lo_open).

    >>> float_range(0.0, lo_open=True)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 0.0 must be > 0
    """
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo_open and v <= lo:
            raise argparse.ArgumentTypeError(f"{v} must be > {lo:g}")
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is outside [{lo:g}, {'inf' if hi is None else f'{hi:g}'}]")
        return v

    parse.__name__ = "number"
    return parse
