"""Target loading: the shipped targets, and one-line errors naming file and field for each invalid target.toml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgeflow.errors import EdgeflowError
from edgeflow.target import MemoryLevel, Target, TargetError, available_targets, load_target

pytestmark = pytest.mark.unit

GOOD = """\
[target]
name = "x"
description = "test target"
clock_hz = 100_000_000
cores = 2
toolchain = "gcc"

[[memory]]
name = "L1"
size = 1000
usable = 900
bandwidth = 8
neighbours = ["L2"]

[[memory]]
name = "L2"
size = 10000
usable = 10000
bandwidth = 4
neighbours = ["L1"]
"""


def write(tmp_path: Path, text: str, folder: str = "x") -> Path:
    path = tmp_path / folder / "target.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(TargetError) as info:
        load_target(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    return msg


def test_gap9_memory_levels():
    t = load_target("gap9")
    assert isinstance(t, Target) and t.name == "gap9" and t.cores == 8 and t.clock_hz == 370_000_000
    assert t.level_names == ("L1", "L2", "MRAM", "L3")
    assert t.l1.size == 128 * 1024 and 100 * 1024 <= t.l1.usable <= 106 * 1024
    assert t.level("L2").size == 1536 * 1024 and t.l2.usable <= t.l2.size
    assert t.level("L2").neighbours == ("L1", "L3", "MRAM")
    assert isinstance(t.l1, MemoryLevel)


def test_host_target_and_available():
    t = load_target("host")
    assert t.cores == 1 and t.toolchain == "gcc" and t.clock_hz == 0
    assert {"gap9", "host"} <= set(available_targets())


def test_target_is_frozen():
    t = load_target("gap9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.cores = 1  # type: ignore[misc]


def test_unknown_level():
    with pytest.raises(TargetError, match="no memory level 'L7'.*L1"):
        load_target("gap9").level("L7")


def test_unknown_target_lists_available():
    with pytest.raises(TargetError) as info:
        load_target("no-such-board")
    msg = str(info.value)
    assert "no-such-board" in msg and "gap9" in msg and "host" in msg
    assert isinstance(info.value, EdgeflowError)


def test_good_file_by_path_and_folder(tmp_path):
    path = write(tmp_path, GOOD)
    assert load_target(path) == load_target(path.parent)
    assert load_target(path).level("L1") == MemoryLevel("L1", 1000, 900, 8, ("L2",))


def test_missing_file(tmp_path):
    with pytest.raises(TargetError, match="not found"):
        load_target(tmp_path / "nope" / "target.toml")


@pytest.mark.parametrize("old, new, expected", [
    ("usable = 900", "usable = 2000", "memory[0].usable 2000 > size 1000"),
    ("size = 1000", "size = 0", "memory[0].size must be > 0"),
    ("size = 1000", "size = -5", "memory[0].size must be > 0"),
    ("bandwidth = 4", "bandwidth = 0", "memory[1].bandwidth must be > 0"),
    ("size = 1000", 'size = "big"', "memory[0].size must be an integer"),
    ("cores = 2", "cores = 0", "target.cores must be >= 1"),
    ("cores = 2", "cores = true", "target.cores must be an integer"),
    ("clock_hz = 100_000_000", "clock_hz = -1", "target.clock_hz must be >= 0"),
    ('toolchain = "gcc"\n', "", "target.toolchain is missing"),
    ("usable = 900\n", "", "memory[0].usable is missing"),
    ('neighbours = ["L2"]', 'neighbours = ["L9"]', "memory[0].neighbours names unknown level 'L9'"),
    ('neighbours = ["L1"]', "neighbours = []", "memory[1].neighbours lacks 'L1'"),
    ('neighbours = ["L2"]', 'neighbours = ["L2", "L1"]', "memory[0].neighbours lists the level itself"),
    ('neighbours = ["L2"]', 'neighbours = ["L2", "L2"]', "memory[0].neighbours ['L2', 'L2'] has duplicates"),
    ('name = "L2"', 'name = "L1"', "memory[1].name 'L1' repeats memory[0].name"),
    ("bandwidth = 8", "bandwidth = 8\nspeed = 3", "memory[0].speed is not a known field"),
    ('name = "x"', 'name = "y"', "target.name 'y' does not match its folder 'x'"),
    ("[target]", "[targett]", "[targett] is not a known table"),
    ("cores = 2", "cores = = 2", "invalid TOML"),
])
def test_invalid_field(tmp_path, old, new, expected):
    assert old in GOOD
    msg = error_of(write(tmp_path, GOOD.replace(old, new, 1)))
    assert expected in msg, msg


def test_missing_l2_level(tmp_path):
    text = GOOD.replace('name = "L2"', 'name = "L3"').replace('["L2"]', '["L3"]')
    assert "memory has no level named 'L2'" in error_of(write(tmp_path, text))


def test_missing_memory(tmp_path):
    text = GOOD.split("[[memory]]")[0]
    assert "memory is missing" in error_of(write(tmp_path, text))


def test_missing_target_table(tmp_path):
    text = "[[memory]]" + GOOD.split("[[memory]]", 1)[1]
    assert "[target] table is missing" in error_of(write(tmp_path, text))


def test_shipped_file_named_relative(tmp_path, monkeypatch):
    """Errors in a shipped target name it as targets/<name>/target.toml."""
    root = tmp_path / "targets"
    write(root, GOOD.replace("usable = 900", "usable = 2000"))
    monkeypatch.setattr("edgeflow.target.targets_dir", lambda: root)
    with pytest.raises(TargetError, match=r"^targets/x/target\.toml: memory\[0\]\.usable 2000 > size 1000$"):
        load_target("x")
    assert available_targets() == ["x"]


def test_compiler_table_is_the_one_place_of_the_c_flags(tmp_path):
    """[compiler] is optional (host gcc, C99, -Werror by default); the shipped targets state theirs."""
    assert load_target(write(tmp_path, GOOD)).compiler.cflags == ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
    t = load_target(write(tmp_path, GOOD + "\n[compiler]\ncc = \"clang\"\ncflags = [\"-O1\"]\n"))
    assert (t.compiler.cc, t.compiler.cflags, t.compiler.ldflags) == ("clang", ("-O1",), ())
    rv32 = load_target("rv32-virt").compiler
    assert rv32.cc == "riscv64-unknown-elf-gcc" and "-Werror" in rv32.cflags and "-march=rv32imc" in rv32.cflags
    assert rv32.size and "-nostdlib" in rv32.ldflags
    assert "-Werror" in load_target("host").compiler.cflags


@pytest.mark.parametrize("table, expected", [
    ('cc = "gcc"\nopt = 2', "compiler.opt is not a known field"),
    ('cflags = "-O2"', "compiler.cflags must be a list"),
    ("cflags = [1, 2]", "compiler.cflags must be a list of strings"),
    ('cc = ""', "compiler.cc is empty"),
])
def test_invalid_compiler_table(tmp_path, table, expected):
    msg = error_of(write(tmp_path, GOOD + "\n[compiler]\n" + table + "\n"))
    assert expected in msg, msg
