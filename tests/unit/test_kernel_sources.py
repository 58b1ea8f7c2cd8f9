"""toolchain.kernel_sources: target data chooses kernel variants file by file over the portable library."""

from pathlib import Path

import pytest

from edgeflow.backends import toolchain


@pytest.fixture
def fw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    k = tmp_path / "kernels"
    (k / "fast").mkdir(parents=True)
    (k / "faster").mkdir()
    for name in ("ef_a.c", "ef_b.c", "ef_c.c"):
        (k / name).write_text("/* portable */\n")
    (k / "fast" / "ef_a.c").write_text("/* fast */\n")
    (k / "fast" / "ef_b.c").write_text("/* fast */\n")
    (k / "faster" / "ef_b.c").write_text("/* faster */\n")
    monkeypatch.setattr("edgeflow.resources.firmware_dir", lambda: tmp_path)
    return k


def test_portable_without_variants(fw: Path) -> None:
    assert toolchain.kernel_sources(()) == [fw / "ef_a.c", fw / "ef_b.c", fw / "ef_c.c"]


def test_first_listed_variant_wins_file_by_file(fw: Path) -> None:
    got = toolchain.kernel_sources(("faster", "fast"))
    assert got == [fw / "fast" / "ef_a.c", fw / "faster" / "ef_b.c", fw / "ef_c.c"]


def test_unknown_variant_and_orphan_file_refused(fw: Path) -> None:
    with pytest.raises(toolchain.ToolchainError, match="kernel variant 'nope' not found"):
        toolchain.kernel_sources(("nope",))
    (fw / "fast" / "ef_z.c").write_text("\n")
    with pytest.raises(toolchain.ToolchainError, match="has no portable ef_z.c"):
        toolchain.kernel_sources(("fast",))


def test_shipped_targets_name_existing_variants() -> None:
    from edgeflow.target import available_targets, load_target

    for name in available_targets():
        t = load_target(name)
        assert toolchain.kernel_sources(t.compiler.kernels)  # raises on a variant folder that does not exist
