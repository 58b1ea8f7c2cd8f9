"""The C toolchain of a target (target.toml [compiler]): find the compiler, run it, one line from its errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from edgeflow.errors import EdgeflowError
from edgeflow.target import Compiler, load_target

_ARCH = ("-march", "-misa-spec", "-mabi")


class ToolchainError(EdgeflowError):
    """A compiler is missing or failed (one line: the tool, the file, the first error)."""


def host_compiler() -> Compiler:
    """The host target's [compiler] (native builds: host backend, native pty device, checks of device builds)."""
    return load_target("host").compiler


def kernel_sources(variants: Sequence[str] = ()) -> list[Path]:
    """The kernel library's C files for a target whose [compiler] kernels lists `variants` (most preferred
    first): each portable firmware/kernels/NAME.c, replaced by firmware/kernels/<variant>/NAME.c from the
    first variant that has one (the TFLite Micro pattern: one reference path, optimized variants by target
    data); a variant file without a portable one is a ToolchainError (every variant is tested against the
    portable path, tests/c/test_kernel_variants.py)."""
    from edgeflow.resources import firmware_dir

    base = firmware_dir() / "kernels"
    portable = {p.name: p for p in sorted(base.glob("*.c"))}
    chosen = dict(portable)
    for v in reversed(tuple(variants)):
        folder = base / v
        if not folder.is_dir():
            raise ToolchainError(f"kernel variant '{v}' not found (no folder {folder})")
        for p in sorted(folder.glob("*.c")):
            if p.name not in portable:
                raise ToolchainError(f"kernel variant file {p} has no portable {p.name} in {base}")
            chosen[p.name] = p
    return [chosen[n] for n in sorted(chosen)]


def find(tool: str, packages: str, error: type[EdgeflowError] = ToolchainError) -> str:
    """The path of `tool` on PATH, or a one-line error naming what to install."""
    path = shutil.which(tool)
    if path is None:
        raise error(f"{tool} not found on PATH (install {packages}, or run `bash tools/setup.sh` as root)")
    return path


def cc(c: Compiler, error: type[EdgeflowError] = ToolchainError) -> str:
    """The path of the compiler of `c`."""
    return find(c.cc, c.packages, error)


def arch_flags(c: Compiler) -> list[str]:
    """The -march / -misa-spec / -mabi flags of the compiler (what an assembler file needs)."""
    return [f for f in c.cflags if f.startswith(_ARCH)]


def first_error(stderr: str) -> str:
    """The first error line of a gcc / ld run (collect2's summary only when nothing better), else its start."""
    lines = [ln for ln in stderr.splitlines() if "error" in ln or "undefined reference" in ln]
    return next((ln for ln in lines if "collect2" not in ln), lines[0] if lines else stderr.strip()[:300])


def run(cmd: Sequence[str | Path], what: str, error: type[EdgeflowError] = ToolchainError,
        explain: Callable[[str], str | None] | None = None) -> subprocess.CompletedProcess:
    """Run a compiler command; on failure `error` with one line: explain(stderr) when it has one, else
    '<what>: <tool> failed: <first error>'."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if res.returncode != 0:
        line = explain(res.stderr) if explain is not None else None
        raise error(line or f"{what}: {Path(str(cmd[0])).name} failed: {first_error(res.stderr)}")
    return res


def region_overflow(stderr: str) -> tuple[str, int] | None:
    """(region, bytes) of an ld 'region X overflowed by N bytes' message."""
    m = re.search(r"region [`'](\w+)' overflowed by (\d+) bytes", stderr)
    return None if m is None else (m.group(1), int(m.group(2)))
