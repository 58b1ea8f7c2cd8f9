"""Targets as data: frozen dataclasses loaded and validated from targets/<name>/target.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeflow.errors import EdgeflowError
from edgeflow.resources import targets_dir

TARGET_FILE = "target.toml"
REQUIRED_LEVELS = ("L1", "L2")
_TARGET_FIELDS = {"name": str, "description": str, "clock_hz": int, "cores": int, "toolchain": str}
#: optional [target] fields and their defaults: tile_scans = false runs scans on whole tensors in L2 (plan/memory.py)
_TARGET_OPTIONAL: dict[str, Any] = {"tile_scans": True}
_LEVEL_FIELDS = {"name": str, "size": int, "usable": int, "bandwidth": int, "neighbours": list}
# [tvm]: a target compiled through Apache TVM (toolchain "tvm") instead of planned into memory levels.
_TVM_FIELDS = {"tag": str, "arch": str, "host_triple": str, "host_mcpu": str, "sm_count": int,
               "memory_bytes": int, "cuda": str, "jetpack": str}
_COMPILER_FIELDS = {"cc": str, "cflags": list, "ldflags": list, "size": str, "packages": str, "kernels": list}
#: [compiler] of a target.toml without one: the host gcc, C99, warnings as errors.
DEFAULT_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")


class TargetError(EdgeflowError):
    """A missing target or an invalid target.toml (one line naming the file and field)."""


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level: bytes in total, bytes the plan may use, bytes per cycle, directly connected levels."""

    name: str
    size: int
    usable: int
    bandwidth: int
    neighbours: tuple[str, ...]


@dataclass(frozen=True)
class TvmSpec:
    """A TVM target: tag, GPU arch and SMs, host triple and CPU, device memory, CUDA/JetPack the bundle needs."""

    tag: str
    arch: str
    host_triple: str
    host_mcpu: str
    sm_count: int
    memory_bytes: int
    cuda: str
    jetpack: str


@dataclass(frozen=True)
class Compiler:
    """The C toolchain of a target: compiler command, its flags, link flags, the size tool, how to install it."""

    cc: str = "gcc"
    cflags: tuple[str, ...] = DEFAULT_CFLAGS
    ldflags: tuple[str, ...] = ()
    size: str = ""
    packages: str = "gcc"
    #: kernel variants, most preferred first: firmware/kernels/<variant>/NAME.c replaces firmware/kernels/NAME.c
    #: (toolchain.kernel_sources); () builds the portable kernels only.
    kernels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A compilation target: clock, cores, toolchain and its memory levels (in file order)."""

    name: str
    description: str
    clock_hz: int
    cores: int
    toolchain: str
    memory: tuple[MemoryLevel, ...]
    tvm: TvmSpec | None = None  # toolchain "tvm" only; such a target has no memory levels
    compiler: Compiler = Compiler()
    #: the planner runs scan nodes as L1 channel tiles (plan/scan_tiling.py) when they fit; False: whole tensors
    #: in L2 (the host, whose levels are emulated: a tile's copies there are pure overhead)
    tile_scans: bool = True

    def level(self, name: str) -> MemoryLevel:
        """The memory level called `name`; TargetError listing the levels if there is none."""
        for lvl in self.memory:
            if lvl.name == name:
                return lvl
        raise TargetError(f"target '{self.name}' has no memory level '{name}' (levels: {self.level_names})")

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(lvl.name for lvl in self.memory)

    @property
    def l1(self) -> MemoryLevel:
        return self.level("L1")

    @property
    def l2(self) -> MemoryLevel:
        return self.level("L2")


def available_targets() -> list[str]:
    """Names of the shipped targets (folders of targets/ holding a target.toml), sorted."""
    root = targets_dir()
    return sorted(p.name for p in root.iterdir() if (p / TARGET_FILE).is_file())


def _display(path: Path) -> str:
    """targets/<name>/target.toml for shipped targets, the path as given otherwise."""
    try:
        return str(Path("targets") / path.resolve().relative_to(targets_dir().resolve()))
    except (ValueError, FileNotFoundError):
        return str(path)


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in str(name_or_path) or p.suffix == ".toml"
    shipped = targets_dir() / str(name_or_path) / TARGET_FILE
    if not looks_like_path and shipped.is_file():
        return shipped
    if looks_like_path or p.is_dir():
        path = p / TARGET_FILE if p.is_dir() else p
        if not path.is_file():
            raise TargetError(f"{path}: target file not found")
        return path
    raise TargetError(f"unknown target '{name_or_path}' (available: {', '.join(available_targets())})")


def _field(where: str, table: dict[str, Any], key: str, kind: type, prefix: str) -> Any:
    if key not in table:
        raise TargetError(f"{where}: {prefix}{key} is missing")
    value = table[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TargetError(f"{where}: {prefix}{key} must be an integer, got {value!r}")
    if not isinstance(value, kind):
        raise TargetError(f"{where}: {prefix}{key} must be a {kind.__name__}, got {value!r}")
    return value


def _check_keys(where: str, table: Any, allowed: dict[str, type], prefix: str) -> None:
    if not isinstance(table, dict):
        raise TargetError(f"{where}: {prefix.rstrip('.')} must be a table")
    for key in table:
        if key not in allowed:
            raise TargetError(f"{where}: {prefix}{key} is not a known field (known: {', '.join(allowed)})")


def _level(where: str, i: int, table: Any) -> MemoryLevel:
    pre = f"memory[{i}]."
    _check_keys(where, table, _LEVEL_FIELDS, pre)
    name = _field(where, table, "name", str, pre)
    if not name:
        raise TargetError(f"{where}: {pre}name is empty")
    size = _field(where, table, "size", int, pre)
    usable = _field(where, table, "usable", int, pre)
    bandwidth = _field(where, table, "bandwidth", int, pre)
    for key, value in (("size", size), ("usable", usable), ("bandwidth", bandwidth)):
        if value <= 0:
            raise TargetError(f"{where}: {pre}{key} must be > 0, got {value}")
    if usable > size:
        raise TargetError(f"{where}: {pre}usable {usable} > size {size}")
    neighbours = _field(where, table, "neighbours", list, pre)
    for n in neighbours:
        if not isinstance(n, str):
            raise TargetError(f"{where}: {pre}neighbours must be level names, got {n!r}")
    if len(set(neighbours)) != len(neighbours):
        raise TargetError(f"{where}: {pre}neighbours {neighbours} has duplicates")
    return MemoryLevel(name, size, usable, bandwidth, tuple(neighbours))


def _tvm(where: str, table: Any) -> TvmSpec:
    _check_keys(where, table, _TVM_FIELDS, "tvm.")
    vals = {k: _field(where, table, k, kind, "tvm.") for k, kind in _TVM_FIELDS.items()}
    for key, kind in _TVM_FIELDS.items():
        if (kind is str and not vals[key]) or (kind is int and vals[key] <= 0):
            raise TargetError(f"{where}: tvm.{key} must be {'non-empty' if kind is str else '> 0'}, got {vals[key]!r}")
    return TvmSpec(**vals)
def _compiler(where: str, table: Any) -> Compiler:
    if table is None:
        return Compiler()
    _check_keys(where, table, _COMPILER_FIELDS, "compiler.")
    vals: dict[str, Any] = {}
    for key, kind in _COMPILER_FIELDS.items():
        if key in table:
            value = _field(where, table, key, kind, "compiler.")
            if kind is list:
                if not all(isinstance(f, str) for f in value):
                    raise TargetError(f"{where}: compiler.{key} must be a list of strings, got {value!r}")
                value = tuple(value)
            vals[key] = value
    if not vals.get("cc", "gcc"):
        raise TargetError(f"{where}: compiler.cc is empty")
    return Compiler(**vals)


def _parse(where: str, doc: dict[str, Any], folder: str | None) -> Target:
    for key in doc:
        if key not in ("target", "memory", "compiler", "tvm"):
            raise TargetError(f"{where}: [{key}] is not a known table (known: target, memory, compiler, tvm)")
    if "target" not in doc:
        raise TargetError(f"{where}: [target] table is missing")
    head = doc["target"]
    _check_keys(where, head, {**_TARGET_FIELDS, **{k: type(v) for k, v in _TARGET_OPTIONAL.items()}}, "target.")
    vals = {k: _field(where, head, k, kind, "target.") for k, kind in _TARGET_FIELDS.items()}
    vals.update({k: _field(where, head, k, type(v), "target.") for k, v in _TARGET_OPTIONAL.items() if k in head})
    if not vals["name"]:
        raise TargetError(f"{where}: target.name is empty")
    if folder is not None and vals["name"] != folder:
        raise TargetError(f"{where}: target.name '{vals['name']}' does not match its folder '{folder}'")
    if vals["clock_hz"] < 0:
        raise TargetError(f"{where}: target.clock_hz must be >= 0, got {vals['clock_hz']}")
    if vals["cores"] < 1:
        raise TargetError(f"{where}: target.cores must be >= 1, got {vals['cores']}")
    if not vals["toolchain"]:
        raise TargetError(f"{where}: target.toolchain is empty")
    if vals["toolchain"] == "tvm" or "tvm" in doc:
        if vals["toolchain"] != "tvm" or "tvm" not in doc or "memory" in doc:
            raise TargetError(f"{where}: a TVM target has toolchain = \"tvm\", a [tvm] table and no [[memory]]")
        return Target(memory=(), tvm=_tvm(where, doc["tvm"]), **vals)
    tables = doc.get("memory")
    if not isinstance(tables, list) or not tables:
        raise TargetError(f"{where}: memory is missing (need [[memory]] tables for {', '.join(REQUIRED_LEVELS)})")
    levels = tuple(_level(where, i, t) for i, t in enumerate(tables))
    index: dict[str, int] = {}
    for i, lvl in enumerate(levels):
        if lvl.name in index:
            raise TargetError(f"{where}: memory[{i}].name '{lvl.name}' repeats memory[{index[lvl.name]}].name")
        index[lvl.name] = i
    for req in REQUIRED_LEVELS:
        if req not in index:
            raise TargetError(f"{where}: memory has no level named '{req}' (levels: {', '.join(index)})")
    for i, lvl in enumerate(levels):
        for n in lvl.neighbours:
            if n == lvl.name:
                raise TargetError(f"{where}: memory[{i}].neighbours lists the level itself ('{n}')")
            if n not in index:
                raise TargetError(f"{where}: memory[{i}].neighbours names unknown level '{n}'")
            if lvl.name not in levels[index[n]].neighbours:
                raise TargetError(f"{where}: memory[{index[n]}].neighbours lacks '{lvl.name}' "
                                  f"(memory[{i}] '{lvl.name}' lists '{n}'; links must be symmetric)")
    return Target(memory=levels, compiler=_compiler(where, doc.get("compiler")), **vals)


def load_target(name_or_path: str | Path) -> Target:
    """Load and validate a target by name (targets/<name>/target.toml), by folder or by .toml path."""
    path = _resolve(name_or_path)
    where = _display(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{where}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{where}: invalid TOML: {exc}") from None
    folder = path.parent.name if path.name == TARGET_FILE else None
    return _parse(where, doc, folder)


__all__ = ["Compiler", "MemoryLevel", "Target", "TargetError", "TvmSpec", "available_targets", "load_target"]
