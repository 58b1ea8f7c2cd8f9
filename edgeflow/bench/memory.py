"""Memory by level (L1 peak, L2 arena + resident constants, external weights) and code size, from build reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MEMORY_TARGET = "gap9"  # the levels the targets are stated in (L1 TCDM, L2, L3)


def levels(report: dict[str, Any]) -> dict[str, Any]:
    """The memory placement of a build's report.json as bench rows (bytes)."""
    mem = report.get("memory") or {}
    external = mem.get("weights_level", "L2") != "L2"
    stream = int(mem.get("stream_bytes", 0))
    return {"target": report.get("target"), "weights_level": mem.get("weights_level"),
            "l1_peak": int(mem.get("l1_peak", 0)),                      # tiles with their double buffers
            "l2_arena": int(mem.get("arena_bytes", report.get("arena_bytes", 0))),
            "l2_constants": int(mem.get("resident_bytes", 0)) + (0 if external else stream),
            "external_weights": stream if external else 0,
            "weight_bytes": int(report.get("weight_bytes", 0)), "macs": int(report.get("macs", 0)),
            "usable": {k: v["usable"] for k, v in (mem.get("levels") or {}).items()}}


def code_size(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """Code size of a cross-compiled firmware (rv32 ELF sections), or None when there is none."""
    fw = (report or {}).get("firmware") or {}
    sec = fw.get("sections") or {}
    if not sec:
        return None
    return {"text": int(sec.get(".text", 0)), "rodata": int(sec.get(".rodata", 0)),
            "source": f"{fw.get('elf', 'firmware.elf')} (rv32imc, riscv64-unknown-elf-gcc) section sizes"}


def build_levels(onnx_path: Path, card: str, build_dir: Path) -> dict[str, Any]:
    """Build `onnx_path` for the memory target and return its levels."""
    from edgeflow.build import build

    return levels(build(onnx_path, MEMORY_TARGET, build_dir, name=card))


def memory_row(subject, int8: dict[str, Any] | None, int8_source: str | None,
               rv32_report: dict[str, Any] | None) -> dict[str, Any]:
    """This build's levels against float32 (params x 4 bytes) and an 8-bit-weight build of the same model."""
    row = build_levels(subject.onnx, subject.card, subject.folder / MEMORY_TARGET)
    row["code"] = code_size(rv32_report)
    row["float32"] = {"weight_bytes": subject.n_params * 4, "source": f"{subject.n_params:,} parameters x 4 bytes"}
    if int8 is not None:
        row["int8"] = {**int8, "source": int8_source}
    return row
