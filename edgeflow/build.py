"""`edgeflow build`: checkpoint or ONNX -> integer IR -> backend artifact in build/<model>-<target>/, atomically."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from rich.table import Table

from edgeflow.errors import EdgeflowError


class BuildError(EdgeflowError):
    """The build cannot be produced for this model and target."""


def build(onnx_path: Path, target_name: str, out_dir: Path, check_windows: np.ndarray | None = None) -> dict:
    """Compile `onnx_path` for `target_name` into out_dir. Everything is produced in a temporary folder next
    to out_dir and moved into place only when complete, so a failed build leaves no half-written directory.
    With check_windows (float windows), the built binary's answers are compared with the reference."""
    from edgeflow.backends import BACKENDS, RUNNERS
    from edgeflow.ir.from_onnx import load_onnx
    from edgeflow.target import available_targets, load_target

    if target_name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise BuildError(f"target '{target_name}' has no backend yet (available: {known}; targets described: "
                         f"{', '.join(available_targets())})")
    target = load_target(target_name)
    graph = load_onnx(Path(onnx_path))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        artifact = BACKENDS[target_name](graph, target, tmp)
        shutil.copyfile(onnx_path, tmp / "model.onnx")
        report = dict(artifact.report)
        report["target"] = target.name
        if check_windows is not None and artifact.binary is not None:
            report["check"] = check_against_reference(graph, artifact.binary, check_windows, RUNNERS.get(target_name))
            measured = tmp / "run_report.json"  # a simulator runner's measurements (pulp-open: cycles per layer)
            if measured.is_file():
                report.update(json.loads(measured.read_text()))
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def check_against_reference(graph, binary: Path, windows: np.ndarray, run_windows=None) -> dict:
    """Run the built binary over the windows (on the host, or with the target's run_windows, e.g. on QEMU) and
    compare its int32 outputs with ir/reference.py bit for bit."""
    from edgeflow.backends.host import run_binary
    from edgeflow.ir.from_onnx import quantize_input
    from edgeflow.ir.reference import run

    shape = graph.tensors[graph.inputs[0]].shape
    xq = quantize_input(windows, graph).reshape(len(windows), *shape)
    out_name = graph.outputs[0]
    ref = np.stack([np.asarray(run(graph, q)[out_name]).reshape(-1) for q in xq])
    got = (run_windows or run_binary)(binary, xq, ref.shape[1])
    mismatched = int((got != ref).any(axis=1).sum())
    if mismatched:
        raise BuildError(f"{binary}: {mismatched} of {len(windows)} windows differ from the reference")
    return {"windows": int(len(windows)), "mismatched": 0, "bit_exact": True}


def render_report(report: dict, title: str) -> Table:
    """Per-node MACs, weight bytes, L1 tiles and outputs, with totals, the arena and memory by level."""
    t = Table(title=title)
    for col in ("#", "node", "op", "MACs", "weight bytes", "L1 tiles", "output bytes"):
        t.add_column(col, justify="right" if col not in ("node", "op") else "left")
    for n in report.get("nodes", []):
        tiles = n.get("tiling")
        t.add_row(str(n["index"]), n["name"], n["op"], f"{n['macs']:,}", f"{n['weight_bytes']:,}",
                  f"{tiles['n_tiles']} x {tiles['l1_bytes_used']:,} B" if tiles else "",
                  f"{n['output_bytes']:,}")
    t.add_section()
    t.add_row("", "total", "", f"{report.get('macs', 0):,}", f"{report.get('weight_bytes', 0):,}", "",
              f"arena {report.get('arena_bytes', 0):,}")
    return t


def render_memory(report: dict) -> Table | None:
    """Memory by level (used / usable / fits) and where the weights live; None for builds without a plan."""
    mem = report.get("memory")
    if not mem:
        return None
    t = Table(title=f"memory by level (weights streamed from {mem['weights_level']})"
              if mem["weights_level"] != "L2" else "memory by level (weights resident in L2)")
    for col in ("level", "holds", "used bytes", "usable bytes", "fits"):
        t.add_column(col, justify="left" if col in ("level", "holds") else "right")
    wl = mem["weights_level"]
    holds = {"L1": "largest layer's tiles + double buffers",
             "L2": "activation arena + constants" + (" + weights" if wl == "L2" else "")}
    if wl != "L2":
        holds[wl] = "weights (tile blobs, streamed)"
    for name, v in mem["levels"].items():
        t.add_row(name, holds.get(name, ""), f"{v['used']:,}", f"{v['usable']:,}", "yes" if v["fits"] else "NO")
    return t


def render_firmware(report: dict) -> Table | None:
    """ELF sections and linker regions of a device firmware (rv32-virt); None for builds without one."""
    fw = report.get("firmware")
    if not fw or "regions" not in fw:
        return None
    t = Table(title=f"{fw.get('elf', 'firmware')}: linker regions (sized from target.toml)")
    for col in ("region", "used bytes", "size bytes", "sections"):
        t.add_column(col, justify="left" if col in ("region", "sections") else "right")
    sections = fw.get("sections", {})
    for name, r in fw["regions"].items():
        inside = [f"{k} {v:,}" for k, v in sections.items()
                  if k.startswith(f".{name.lower()}") or (name == "L2" and k in (".text", ".rodata", ".data", ".bss"))]
        t.add_row(name, f"{r['used']:,}", f"{r['size']:,}", ", ".join(inside))
    return t
