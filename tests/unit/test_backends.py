"""The backend contract and the stage boundaries: one registry, no backend reaching into another, no hidden state."""

from __future__ import annotations

import ast
from pathlib import Path

import edgeflow
from edgeflow.backends import BACKENDS
from edgeflow.backends.base import Backend

PKG = Path(edgeflow.__file__).resolve().parent
BACKEND_FILES = {"host", "gap9", "rv32_virt"}


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_registry_entries_are_backends():
    assert {"host", "gap9", "rv32-virt"} <= set(BACKENDS)
    for name, b in BACKENDS.items():
        assert isinstance(b, Backend) and b.name == name and callable(b.compile)
        assert b.takes in ("graph", "onnx")
        if b.takes == "graph":       # every C target is integer: bit-exact, and its binary runs here
            assert b.tolerance == 0 and b.run_windows is not None
        else:                        # float targets (TVM) state their tolerance against onnxruntime
            assert 0 < b.tolerance < 1e-2
    flashable = {n for n, b in BACKENDS.items() if b.flash is not None}
    assert flashable == {"gap9", "rv32-virt"} and BACKENDS["rv32-virt"].stop is not None


def test_no_backend_imports_another_backend():
    for stem in BACKEND_FILES:
        others = {f"edgeflow.backends.{o}" for o in BACKEND_FILES - {stem}}
        assert not _imports(PKG / "backends" / f"{stem}.py") & others, stem


def test_codegen_reads_the_plan_only():
    """No context variables, no c_ops <-> c_tiled cycle, no planning or backend imports in the renderers."""
    for path in (PKG / "codegen").glob("*.py"):
        text = path.read_text()
        assert "ContextVar" not in text, path.name
        mods = _imports(path)
        assert not any(m.startswith("edgeflow.backends") for m in mods), path.name
        assert not {"edgeflow.plan.tiling.tile_linear", "edgeflow.plan.levels", "edgeflow.plan.memory.plan_memory"} \
            & mods, path.name
    assert "edgeflow.codegen.c_ops" not in _imports(PKG / "codegen" / "c_tiled.py")


def test_link_keeps_no_device_runner():
    names = {p.stem for p in (PKG / "link").glob("*.py")}
    assert not names & {"emulator", "native"}
    assert {"qemu_rv32", "native_pty"} <= {p.stem for p in (PKG / "runners").glob("*.py")}
    assert "FLASHERS" not in (PKG / "link" / "flash.py").read_text()
