"""L1 channel tiles of the selective scan (plan/scan_tiling.py) and their place in the MemoryPlan."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeflow.ir.from_onnx import load_onnx
from edgeflow.plan.memory import plan_memory
from edgeflow.plan.scan_tiling import (
    EXP2_TABLE_BYTES,
    TILE_PARTS,
    ScanShape,
    busiest_core_channels,
    scan_layout,
    tile_scan,
)
from edgeflow.target import TargetError, load_target

pytestmark = pytest.mark.unit

GAP9_L1 = 106496
CASES = Path(__file__).resolve().parents[1] / "cases"


@pytest.mark.parametrize(("shape", "tiles"), [(ScanShape("tiny", 80, 1540, 16), 6),
                                               (ScanShape("mini", 80, 176, 8), 1)])
def test_tiles_fit_l1_and_cover_every_channel(shape, tiles):
    sp = tile_scan(shape, GAP9_L1)
    assert sp is not None and sp.n_tiles == tiles
    assert sp.l1_bytes_used <= GAP9_L1
    cover = [c for c0, n in sp.tiles for c in range(c0, c0 + n)]
    assert cover == list(range(shape.d_inner))
    assert max(n for _, n in sp.tiles) - min(n for _, n in sp.tiles) < sp.n_tiles   # balanced
    # one tile fewer would not fit: the fewest tiles
    if tiles > 1:
        assert scan_layout(shape, -(-shape.d_inner // (tiles - 1)))[1] > GAP9_L1


def test_tiles_for_a_team_leave_the_busiest_core_fewer_channels():
    """On 8 cores the width is chosen for the busiest core: femba-tiny's 6 x 257 give one core 6 x 33 = 198 channels
    (the split's last tile 255: 197), 6 tiles of 264 (the last 220) give it 5 x 33 + 28 = 193; femba-mini's one
    tile of 176 stays."""
    tiny, mini = ScanShape("tiny", 80, 1540, 16), ScanShape("mini", 80, 176, 8)
    one, team = tile_scan(tiny, GAP9_L1), tile_scan(tiny, GAP9_L1, cores=8)
    assert (one.channels_per_tile, one.n_tiles) == (257, 6) and (team.channels_per_tile, team.n_tiles) == (264, 6)
    assert busiest_core_channels(1540, 257, 8) == 197 and busiest_core_channels(1540, 264, 8) == 193
    assert team.l1_bytes_used <= GAP9_L1
    assert [c for c0, n in team.tiles for c in range(c0, c0 + n)] == list(range(1540))
    # no width that fits leaves the busiest core fewer channels
    fits = [w for w in range(1, 1541) if scan_layout(tiny, w)[1] <= GAP9_L1]
    assert min(busiest_core_channels(1540, w, 8) for w in fits) == 193
    assert tile_scan(mini, GAP9_L1, cores=8).n_tiles == 1


def test_layout_parts_are_disjoint_and_aligned():
    shape = ScanShape("s", 33, 45, 7)
    offsets, used = scan_layout(shape, 45)
    names = ["exp2", "B", "C", *TILE_PARTS]
    sizes = {"exp2": EXP2_TABLE_BYTES, "B": 33 * 7, "C": 33 * 7, **{p: shape.part_bytes(p, 45) for p in TILE_PARTS}}
    ends = [offsets[n] + sizes[n] for n in names]
    assert all(offsets[n] % 4 == 0 for n in names)
    assert all(e <= offsets[b] for e, b in zip(ends, names[1:], strict=False)) and ends[-1] <= used
    assert sum(sizes.values()) <= used < sum(sizes.values()) + 4 * len(names)


def test_too_small_l1_leaves_the_scan_whole():
    shape = ScanShape("s", 80, 176, 8)
    assert tile_scan(shape, scan_layout(shape, 1)[1] - 1) is None
    assert tile_scan(shape, scan_layout(shape, 1)[1]).channels_per_tile == 1


def test_plan_records_scan_tiles():
    g = load_onnx(CASES / "femba-mini-w2" / "model.onnx")
    plan = plan_memory(g, load_target("pulp-open"))
    scans = [n.name for n in g.nodes if n.op == "scan"]
    assert set(plan.scans) == set(scans) and plan.tiled
    assert {s.node: s.run for s in plan.steps if s.op == "scan"} == dict.fromkeys(scans, "tiles")
    d = plan.to_dict()["tiling"]
    assert set(d["scans"]) == set(scans) and "scan" in d["ops"]
    assert plan.placement.l1_peak >= max(s.l1_bytes_used for s in plan.scans.values())
    assert not plan_memory(g, load_target("pulp-open"), l1_bytes=1024).scans   # falls back to whole tensors


def test_target_without_scan_tiles_keeps_scans_whole(tmp_path):
    """targets/host sets tile_scans = false: its plan tiles the linear nodes but runs every scan on whole tensors
    in L2 (an untiled kernel call); a tile_scans that is not a boolean is refused naming the field."""
    g = load_onnx(CASES / "femba-mini-w2" / "model.onnx")
    host = load_target("host")
    assert not host.tile_scans and load_target("pulp-open").tile_scans
    plan = plan_memory(g, host)
    assert plan.linears and not plan.scans
    assert {s.run for s in plan.steps if s.op == "scan"} == {"whole"}
    assert plan_memory(g, None, l1_bytes=GAP9_L1).scans   # no target: the L1 budget alone tiles scans
    bad = tmp_path / "bad.toml"
    src = (CASES.parents[1] / "targets" / "host" / "target.toml").read_text()
    bad.write_text(src.replace("tile_scans = false", "tile_scans = 0"))
    with pytest.raises(TargetError, match=r"target.tile_scans must be a bool"):
        load_target(bad)
