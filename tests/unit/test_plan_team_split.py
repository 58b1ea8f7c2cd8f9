"""Linear tiles for the cluster (plan/tiling.py): row tiles sized for the team split (kernel_rounds, the row-tile count
with the fewest rounds) and input rows padded to a word in L1 (LinearShape.x_stride)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeflow.plan.tiling import LinearShape, _row_tile_count, kernel_rounds, tile_linear

pytestmark = pytest.mark.unit
L1 = 106496
OUT_PROJ_T = LinearShape("out_proj", 80, 1540, 385, 1, False)  # femba-tiny's, stored ternary


def _rounds(plan, cores: int = 8, group: int = 2) -> int:
    return sum(kernel_rounds(t.rows, cores, group) for t in plan.tiles[:plan.n_row_tiles])


def test_kernel_rounds() -> None:
    assert kernel_rounds(35, 8, 2) == 3   # 5 rows a core (7 cores busy), 2 at a time
    assert kernel_rounds(30, 8, 2) == 2
    assert kernel_rounds(1, 8, 2) == 1 and kernel_rounds(16, 8, 2) == 1 and kernel_rounds(17, 8, 2) == 2


def test_out_proj_tiles_fill_the_cores() -> None:
    base = tile_linear(OUT_PROJ_T, L1)
    split = tile_linear(OUT_PROJ_T, L1, cores=8, row_group=2)
    assert (base.rows_per_tile, base.n_row_tiles) == (35, 11)
    assert (split.rows_per_tile, split.n_row_tiles) == (30, 13)
    assert (_rounds(base), _rounds(split)) == (33, 26)
    assert split.l1_bytes_used <= L1 and split.tokens_per_tile == base.tokens_per_tile
    assert sum(t.rows for t in split.tiles) == OUT_PROJ_T.n_out * split.n_token_tiles


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_one_core_keeps_the_fewest_tiles(bits: int) -> None:
    for shape in (LinearShape("a", 80, 385, 3080, bits, False), LinearShape("b", 80, 25, 1540, bits, True), OUT_PROJ_T):
        assert tile_linear(shape, L1).to_dict() == tile_linear(shape, L1, cores=1, row_group=1).to_dict()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 600), st.integers(1, 8), st.integers(1, 4))
def test_never_more_rounds_than_the_fewest_tiles(n_out: int, max_rows: int, cores: int, group: int) -> None:
    def rounds(count: int) -> int:
        rows = -(-n_out // count)
        return sum(kernel_rounds(min(rows, n_out - r0), cores, group) for r0 in range(0, n_out, rows))

    fewest = -(-n_out // max_rows)
    count = _row_tile_count(n_out, max_rows, cores, group)
    assert fewest <= count <= fewest + 3 and -(-n_out // count) <= max_rows
    assert rounds(count) <= rounds(fewest)


def test_input_rows_padded_to_words() -> None:
    assert [LinearShape("l", 80, n, 16, 2).x_stride for n in (385, 1540, 25, 63, 64, 65)] == [388, 1540, 25, 63,
                                                                                              64, 68]
    plan = tile_linear(LinearShape("in_proj", 80, 385, 3080, 1, False), L1, cores=8, row_group=2)
    assert plan.layout.in_stride == 388 and plan.breakdown["input"] == plan.layout.in_bytes == 80 * 388
