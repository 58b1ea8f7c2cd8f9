"""GVSoC runner: run a pulp-open firmware over N windows (semihosting in.bin/out.bin), read logits and profile.

The install comes from tools/setup_gvsoc.sh (cache ${EDGEFLOW_CACHE:-~/.cache/edgeflow}/gvsoc-209c147). Also a
benchmark: `python -m edgeflow.runners.gvsoc BUILD_DIR --windows N --cores 1,2,4,8` (cycles, speed-ups, plot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.errors import EdgeflowError
from edgeflow.resources import targets_dir

GVSOC_COMMIT = "209c147"
GVSOC_TARGET = "pulp_open_ext"    # targets/pulp-open/gvsoc/pulp_open_ext.py
MAGIC = 0x4F505045                # ef_pulp_open.h EF_PO_MAGIC
N_CORES, N_CTR = 8, 5             # EF_PO_MAX_CORES, EF_PO_NCTR
LAYER_WORDS = 6 + N_CORES * N_CTR
CLOCK_LABEL = "pulp-open (GVSoC), not a GAP9 model"
COUNTERS_NOTE = ("core counters: active cycles, instructions, load stalls; GVSoC 209c147 declares TCDM contention and "
                 "L2 load cycles but never counts them (they read 0)")


class GvsocError(EdgeflowError):
    """GVSoC is not installed, or a simulation failed (one line naming the binary and the cause)."""


@dataclass(frozen=True)
class Install:
    """A built GVSoC and the pulp-runtime beside it."""

    root: Path

    @property
    def gvsoc(self) -> Path:
        return self.root / "install" / "bin" / "gvsoc"

    @property
    def pulp_runtime(self) -> Path:
        return self.root / "pulp-runtime"

    @property
    def venv_bin(self) -> Path:
        return self.root / "venv" / "bin"


def cache_root() -> Path:
    base = os.environ.get("EDGEFLOW_CACHE") or str(Path.home() / ".cache" / "edgeflow")
    return Path(base) / f"gvsoc-{GVSOC_COMMIT}"


def find_install() -> Install | None:
    """The GVSoC install of tools/setup_gvsoc.sh, or None when it has not been built."""
    inst = Install(cache_root())
    ok = (inst.root / ".built").is_file() and inst.gvsoc.is_file() and inst.pulp_runtime.is_dir()
    return inst if ok else None


def require_install() -> Install:
    inst = find_install()
    if inst is None:
        raise GvsocError(f"GVSoC is not built (looked in {cache_root()}): run `bash tools/setup_gvsoc.sh` "
                         "(needs cmake g++ make zlib1g-dev python3-venv; minutes)")
    return inst


def write_inputs(path: Path, windows: np.ndarray, cores: int) -> None:
    """in.bin: magic, n_windows, cores, 0, then the int8 windows back to back."""
    w = np.ascontiguousarray(windows, dtype=np.int8).reshape(len(windows), -1)
    head = np.array([MAGIC, len(w), cores, 0], dtype="<u4")
    path.write_bytes(head.tobytes() + w.tobytes())


def parse_outputs(data: bytes, n_out: int) -> tuple[np.ndarray, dict[str, Any]]:
    """out.bin -> (logits (N, n_out) int32, raw profile: calibration, cycles per window, layer records, the stack
    high-water mark); a core that used its whole stack is refused."""
    words = np.frombuffer(data, dtype="<u4")
    if len(words) < 10 or words[0] != MAGIC:
        raise GvsocError("out.bin: missing or bad header (the firmware did not start its window loop)")
    n, n_layers, n_out_fw, cores = (int(v) for v in words[2:6])
    if n_out_fw != n_out:
        raise GvsocError(f"out.bin: firmware writes {n_out_fw} outputs, expected {n_out}")
    per = 4 + n_out + n_layers * LAYER_WORDS
    body = words[10:]
    if len(body) < n * per:
        raise GvsocError(f"out.bin: {len(body) // per} of {n} windows written (the simulation stopped early)")
    recs = body[: n * per].reshape(n, per)
    logits = recs[:, 4:4 + n_out].view(np.int32).copy()
    layers = recs[:, 4 + n_out:].reshape(n, n_layers, LAYER_WORDS).astype(np.int64)
    stack_peak, stack_size = int(recs[:, 2].max()), int(recs[0, 3])
    if stack_size and stack_peak >= stack_size:
        raise GvsocError(f"out.bin: a cluster core used all {stack_size} bytes of its stack (overflow: the results "
                         "cannot be trusted); raise stack_bytes in targets/pulp-open/gvsoc.toml")
    raw = {"cores": cores, "cal": [int(v) for v in words[6:10]], "cycles": recs[:, 1].astype(np.int64),
           "layers": layers, "stack_peak_bytes": stack_peak, "stack_bytes": stack_size}
    return logits, raw


def run(elf: Path, windows: np.ndarray, n_out: int, cores: int = N_CORES,
        timeout: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Run firmware.elf on GVSoC over int8 windows on `cores` cluster cores; (logits, raw profile)."""
    inst = require_install()
    elf = Path(elf).resolve()
    with tempfile.TemporaryDirectory(prefix="edgeflow-gvsoc-") as wd:
        work = Path(wd)
        write_inputs(work / "in.bin", windows, cores)
        env = dict(os.environ, PATH=f"{inst.venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [str(inst.gvsoc), f"--target-dir={targets_dir() / 'pulp-open' / 'gvsoc'}", f"--target={GVSOC_TARGET}",
               f"--binary={elf}", f"--work-dir={work}", "run"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GvsocError(f"{elf.name}: GVSoC did not finish {len(windows)} windows in {timeout} s") from None
        if res.returncode != 0:
            tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:] or [""]
            raise GvsocError(f"{elf.name}: GVSoC exited with {res.returncode}: {tail[0][:300]}")
        out = work / "out.bin"
        if not out.is_file():
            raise GvsocError(f"{elf.name}: GVSoC wrote no out.bin (stdout: {res.stdout.strip()[-200:]!r})")
        return parse_outputs(out.read_bytes(), n_out)


def summarize(raw: dict[str, Any], nodes: list[dict[str, Any]], clock_hz: int) -> dict[str, Any]:
    """report.json figures from a raw profile: per window and per layer (the last window, caches warm)."""
    s_bytes, s_cyc, b_bytes, b_cyc = raw["cal"]
    per_byte = (b_cyc - s_cyc) / max(b_bytes - s_bytes, 1)
    fixed = max(s_cyc - s_bytes * per_byte, 0.0)
    cores = int(raw["cores"])
    rec = raw["layers"][-1]
    layers = []
    for i, r in enumerate(rec):
        wall, n_dma, dma_b, ext_b, wait, ext_model = (int(v) for v in r[:6])
        ctr = r[6:].reshape(N_CORES, N_CTR)
        dma_cycles = int(round(n_dma * fixed + (dma_b - ext_b) * per_byte)) + ext_model if n_dma else 0
        node = nodes[i] if i < len(nodes) else {"name": f"node{i}", "op": "?", "macs": 0}
        active = int(ctr[:cores, 0].sum())
        layers.append({
            "index": i, "name": node["name"], "op": node["op"], "cycles": wall, "macs": int(node["macs"]),
            "mac_per_cycle": round(node["macs"] / wall, 3) if wall else 0.0,
            "dma_transfers": n_dma, "dma_bytes": dma_b, "dma_ext_bytes": ext_b, "dma_cycles": dma_cycles,
            "dma_exposed_cycles": wait, "dma_hidden_fraction": round(1 - wait / dma_cycles, 3) if dma_cycles else None,
            "compute_cycles": wall - wait, "utilisation": round(active / (cores * wall), 3) if wall else 0.0,
            "core_active_cycles": [int(v) for v in ctr[:cores, 0]], "instructions": int(ctr[:, 1].sum()),
            "load_stalls": int(ctr[:, 2].sum()), "tcdm_contention_cycles": int(ctr[:, 3].sum()),
            "l2_load_cycles": int(ctr[:, 4].sum())})
    cycles = [int(c) for c in raw["cycles"]]
    macs = sum(int(n["macs"]) for n in nodes)
    total = cycles[-1]
    dma = sum(x["dma_cycles"] for x in layers)
    exposed = sum(x["dma_exposed_cycles"] for x in layers)
    return {"label": CLOCK_LABEL, "cores": cores, "windows": len(cycles), "cycles_per_window": cycles,
            "cycles": total, "seconds_at_clock": round(total / clock_hz, 4) if clock_hz else None,
            "clock_hz": clock_hz, "macs": macs, "mac_per_cycle": round(macs / total, 3) if total else 0.0,
            "dma_cycles": dma, "dma_exposed_cycles": exposed,
            "dma_hidden_fraction": round(1 - exposed / dma, 3) if dma else None,
            "dma_model": f"{fixed:.0f} cycles + {1 / per_byte if per_byte else 0:.2f} B/cycle per L2->L1 transfer "
                         "(boot-time calibration, isolated transfers); external: HAL latency + bytes/bandwidth",
            "utilisation": round(sum(sum(x["core_active_cycles"]) for x in layers) / (cores * total), 3),
            "load_stalls": sum(x["load_stalls"] for x in layers),
            "tcdm_contention_cycles": sum(x["tcdm_contention_cycles"] for x in layers),
            "counters_note": COUNTERS_NOTE, "stack_peak_bytes": raw.get("stack_peak_bytes"),
            "stack_bytes": raw.get("stack_bytes"), "layers": layers}


def describe(summary: dict[str, Any]) -> str:
    """One line of a run's headline figures (edgeflow build --check prints it under the check)."""
    hidden = summary.get("dma_hidden_fraction")
    parts = [f"{summary['cycles']:,} cycles a window on {summary['cores']} cores",
             f"{summary['mac_per_cycle']:.2f} MAC/cycle"]
    if summary.get("seconds_at_clock") is not None and summary.get("clock_hz"):
        parts.append(f"{summary['seconds_at_clock'] * 1e3:.1f} ms at {summary['clock_hz'] / 1e6:.0f} MHz")
    if hidden is not None:
        parts.append(f"DMA {hidden:.0%} hidden")
    if summary.get("stack_bytes"):
        parts.append(f"stack peak {summary['stack_peak_bytes']:,} of {summary['stack_bytes']:,} B")
    return f"{summary.get('label', 'pulp-open (GVSoC)')}: " + ", ".join(parts) + " (per layer: run_report.json)"


def plot_layers(summary: dict[str, Any], path: Path, title: str) -> Path | None:
    """PNG: per layer, stacked compute and exposed-DMA cycles (None when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ls = summary["layers"]
    x = np.arange(len(ls))
    comp = np.array([v["compute_cycles"] for v in ls]) / 1e6
    dma = np.array([v["dma_exposed_cycles"] for v in ls]) / 1e6
    fig, ax = plt.subplots(figsize=(max(8, len(ls) * 0.12), 4))
    ax.bar(x, comp, label="compute", color="#4477aa")
    ax.bar(x, dma, bottom=comp, label="exposed DMA", color="#ee6677")
    ax.set_xlabel("layer (IR node)")
    ax.set_ylabel("M cycles")
    ax.set_title(f"{title}: {summary['cycles'] / 1e6:.2f} M cycles / window on {summary['cores']} cores "
                 f"({CLOCK_LABEL})", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scaling(cycles: dict[int, int], path: Path, title: str) -> Path | None:
    """PNG: cycles per window and speed-up against the core count (None when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cs = sorted(cycles)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(cs, [cycles[c] / 1e6 for c in cs], "o-")
    a.set_xlabel("cluster cores")
    a.set_ylabel("M cycles / window")
    b.plot(cs, [cycles[cs[0]] / cycles[c] for c in cs], "o-", label="measured")
    b.plot(cs, [c / cs[0] for c in cs], "--", color="grey", label="ideal")
    b.set_xlabel("cluster cores")
    b.set_ylabel(f"speed-up vs {cs[0]}")
    b.legend()
    fig.suptitle(f"{title} ({CLOCK_LABEL})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_build(build_dir: Path, n_windows: int, cores: int, timeout: float | None = None) -> dict[str, Any]:
    """Run a pulp-open build over n_windows seeded windows on `cores` cores, bit-exact against the reference."""
    from edgeflow.ir.graph import Graph
    from edgeflow.ir.reference import run as ref_run

    graph = Graph.load(build_dir)
    shape = graph.tensors[graph.inputs[0]].shape
    xq = np.random.default_rng(11).integers(-128, 128, size=(n_windows, *shape), dtype=np.int8)
    ref = np.stack([np.asarray(ref_run(graph, q)[graph.outputs[0]]).reshape(-1) for q in xq])
    got, raw = run(build_dir / "firmware.elf", xq, ref.shape[1], cores=cores, timeout=timeout)
    report = json.loads((build_dir / "report.json").read_text())
    summary = summarize(raw, report.get("nodes", []), 370_000_000)
    summary["bit_exact"] = bool((got == ref).all())
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeflow.runners.gvsoc", description=__doc__)
    ap.add_argument("build_dir", type=Path, help="an `edgeflow build --target pulp-open` folder")
    ap.add_argument("--windows", type=int, default=1)
    ap.add_argument("--cores", default="8", help="comma-separated core counts, e.g. 1,2,4,8")
    ap.add_argument("--out", type=Path, default=None, help="JSON of the results (default BUILD_DIR/bench.json)")
    a = ap.parse_args(argv)
    results = {}
    for c in (int(v) for v in a.cores.split(",")):
        s = check_build(a.build_dir, a.windows, c)
        results[c] = s
        top = sorted(s["layers"], key=lambda v: -v["cycles"])[:5]
        print(f"{c} cores: {s['cycles']:,} cycles / window ({s['seconds_at_clock']} s at 370 MHz), "
              f"{s['mac_per_cycle']} MAC/cycle, DMA hidden {s['dma_hidden_fraction']}, bit-exact {s['bit_exact']}")
        for v in top:
            print(f"    [{v['index']}] {v['name']} ({v['op']}): {v['cycles']:,} cycles, {v['mac_per_cycle']} MAC/c")
        if not s["bit_exact"]:
            return 1
    base = results[min(results)]["cycles"]
    speed = {c: round(base / s["cycles"], 2) for c, s in results.items()}
    print("speed-up vs", min(results), "core(s):", speed)
    plot_scaling({c: s["cycles"] for c, s in results.items()}, a.build_dir / "pulp_open_scaling.png",
                 a.build_dir.name)
    out = a.out or a.build_dir / "bench.json"
    out.write_text(json.dumps({"label": CLOCK_LABEL, "speedup": speed,
                               "runs": {c: {k: v for k, v in s.items() if k != "layers"} | {"top5": sorted(
                                   s["layers"], key=lambda v: -v["cycles"])[:5]} for c, s in results.items()}},
                              indent=1))
    print(f"results {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
