"""PNG plots of a bench run: per-layer stacked bars, memory by level, peer ratios (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LEVELS = ("l1_peak", "l2_arena", "l2_constants", "external_weights")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict[str, Any]) -> str:
    return f"{row['card']} {row['bits']}-bit"


def _series(rows: list[dict[str, Any]]) -> list[tuple[str, str, list[tuple[str, str, int, int]]]]:
    """(title, unit, [(layer, op, compute, exposed DMA)]) per model and device, layers in IR order."""
    out = []
    for r in rows:
        po = r.get("pulp-open", {})
        if po.get("available"):
            out.append((f"{_label(r)}, pulp-open {po['cores']} cores (GVSoC)", "cycles",
                        [(x["name"], x["op"], x["cycles"] - x["dma_exposed_cycles"], x["dma_exposed_cycles"])
                         for x in po["layers"]]))
        if r.get("rv32", {}).get("available"):
            out.append((f"{_label(r)}, rv32 (QEMU icount)", "instructions",
                        [(x["name"], x["op"], x["instret"], 0) for x in r["rv32"]["layers"]]))
    return out


def layers_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Per model and device: one bar per layer in IR order, coloured by op; exposed DMA stacked on top."""
    series = _series(rows)
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(series), 1, figsize=(13.5, 4.2 * len(series)), squeeze=False)
    for ax, (title, unit, lay) in zip(axes[:, 0], series, strict=True):
        ops = sorted({t[1] for t in lay}, key=lambda op: -sum(t[2] + t[3] for t in lay if t[1] == op))
        color = {op: plt.cm.tab20(i % 20) for i, op in enumerate(ops)}
        xs = range(len(lay))
        ax.bar(xs, [t[2] for t in lay], color=[color[t[1]] for t in lay])
        if any(t[3] for t in lay):
            ax.bar(xs, [t[3] for t in lay], bottom=[t[2] for t in lay], color="0.3", edgecolor="k", hatch="///",
                   lw=0.3, label="exposed DMA")
        for op in ops:
            share = sum(t[2] + t[3] for t in lay if t[1] == op) / max(sum(t[2] + t[3] for t in lay), 1)
            ax.bar([0], [0], color=color[op], label=f"{op} ({share:.0%})")
        ax.set_xticks(list(xs), [t[0] for t in lay], rotation=90, fontsize=5 if len(lay) > 40 else 7)
        ax.set_xlim(-0.7, len(lay) - 0.3)
        ax.set_title(title)
        ax.set_ylabel(f"{unit} / window")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Left: constants by level for this build, its 8-bit-weight build and float32 (params x 4); right: working
    memory (L1 peak with double buffers, L2 activation arena) of the builds."""
    builds = []
    for r in rows:
        m = r.get("memory")
        if m:
            builds.append((_label(r), {k: m[k] for k in LEVELS}))
            if m.get("int8") and r["bits"] != 8:
                builds.append((f"{r['card']} 8-bit", {k: m["int8"][k] for k in LEVELS}))
    if not builds:
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9, 2.4 * len(builds) + 3), 4.6),
                                      gridspec_kw={"width_ratios": [3, 2]})
    consts = builds + [(f"{r['card']} float32", {"float32": r["memory"]["float32"]["weight_bytes"]})
                       for r in rows if r.get("memory")]
    _stack(left, consts, [("l2_constants", "L2 resident constants"),
                          ("external_weights", "external weights (MRAM / L3)"),
                          ("float32", "float32 weights (params x 4)")], "constants")
    _stack(right, builds, [("l1_peak", "L1 peak (double buffers)"), ("l2_arena", "L2 activation arena")],
           "working memory")
    fig.suptitle("memory by level (gap9 plan)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stack(ax, bars: list[tuple[str, dict]], keys: list[tuple[str, str]], title: str) -> None:
    bottom = [0.0] * len(bars)
    for key, label in keys:
        vals = [b[1].get(key, 0) / 1024 for b in bars]
        if any(vals):
            ax.bar([b[0] for b in bars], vals, bottom=bottom, label=label)
            bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    for i, v in enumerate(bottom):
        ax.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("KiB")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.legend(fontsize=7)


def ratio_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Median CPU time per window of each host peer relative to edgeflow C (log scale), per model."""
    data = [(_label(r), r["host"]["ratio_cpu"]) for r in rows if r.get("host", {}).get("ratio_cpu")]
    data = [(lbl, {k: v for k, v in rt.items() if v is not None}) for lbl, rt in data]
    data = [d for d in data if d[1]]
    if not data:
        return None
    plt = _plt()
    peers = sorted({p for _, rt in data for p in rt}, key=lambda p: (p != "edgeflow-c", p))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(data)), 4.2))
    width = 0.8 / len(peers)
    for k, p in enumerate(peers):
        xs = [i + (k - (len(peers) - 1) / 2) * width for i in range(len(data))]
        vals = [rt.get(p, 0) for _, rt in data]
        bars = ax.bar(xs, vals, width, label=p)
        ax.bar_label(bars, labels=[f"{v:.2f}x" if v else "" for v in vals], fontsize=7)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if f"{v:.0e}"[0] in "25" else ""))
    ax.set_xticks(range(len(data)), [d[0] for d in data])
    ax.set_ylabel("CPU time / window vs edgeflow C (lower = faster)")
    ax.set_title("host peers, one thread, median CPU time ratio")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Every plot the results allow, as out/*.png."""
    rows = results["rows"]
    made = [layers_plot(rows, out / "layers.png"), memory_plot(rows, out / "memory.png"),
            ratio_plot(rows, out / "ratios.png")]
    return [p for p in made if p is not None]
