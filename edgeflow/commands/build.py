"""`edgeflow build|inspect`: checkpoint or ONNX -> build folder, and the per-layer / memory tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from edgeflow.commands import console


def cmd_build(a: argparse.Namespace) -> int:
    from edgeflow.backends import ONNX_BACKENDS
    from edgeflow.build import build, check_out_dir
    from edgeflow.errors import EdgeflowError

    takes_onnx = a.target in ONNX_BACKENDS  # TVM targets read the chunked ONNX form
    if a.host_only and not takes_onnx:
        raise EdgeflowError(f"--host-only applies to the TVM targets ({', '.join(sorted(ONNX_BACKENDS))}), "
                            f"not '{a.target}'")
    card = _card(a)
    stem = Path(a.onnx).stem.strip(".") or card.name if a.onnx else card.name  # --onnx: named after the model
    out = Path(a.out) if a.out else Path("build") / f"{stem}-{a.target}{'-host' if a.host_only else ''}"
    check_out_dir(out)  # before any export or calibration work
    if not a.onnx:  # a card that cannot fit the target is refused from a cheap estimate, before any model exists
        from edgeflow.plan.estimate import check_card_fits

        check_card_fits(card, a.target, a.weights if a.init == "random" else None)
    tmp_onnx = None if a.onnx else out.parent / f".{out.name}.model.onnx"
    try:
        onnx_path, windows = _model_onnx(a, card, tmp_onnx, "chunked" if takes_onnx else "scan")
        with console.status(f"building {card.name} for {a.target} (lower, plan, render, compile) ..."):
            report = build(onnx_path, a.target, out, windows, name=card.name, card=card,
                           options={"card": card, "host_only": a.host_only} if takes_onnx else None)
    finally:
        if tmp_onnx is not None:
            tmp_onnx.unlink(missing_ok=True)
    _print_build(report, f"{card.name} -> {a.target}", takes_onnx)
    console.print(f"build directory {out} (card {card.name}: {_describe(card)})")
    return 0


def _card(a: argparse.Namespace):
    """--onnx: --card checked against the model's input, or a minimal card from the model (rate: --sfreq);
    otherwise --card (default femba-mini), whose checkpoint or random init is exported."""
    from edgeflow.cards import load_card
    from edgeflow.errors import CardError

    if a.onnx:
        from edgeflow.card_match import card_for_onnx

        return card_for_onnx(Path(a.onnx), a.card, a.sfreq)
    card = load_card(a.card or "femba-mini")
    if card.arch is None:
        raise CardError(f"card '{card.name}' (kind {card.kind}) describes a model given as ONNX: build it with "
                        "--onnx MODEL.onnx")
    if a.sfreq is not None:
        raise CardError("--sfreq applies to --onnx builds (the rate of the model's input); the card "
                        f"'{card.name}' sets {card.input.sample_rate:g} Hz")
    return card


def _describe(card) -> str:
    from edgeflow.card_match import describe_input

    return describe_input(card)


def _model_onnx(a: argparse.Namespace, card, tmp_onnx: Path | None, form: str):
    """(ONNX path, check windows or None): --onnx as given, else the checkpoint (or an untrained calibrated
    model with --init random) exported to tmp_onnx in `form`."""
    windows = None
    if tmp_onnx is None:
        onnx_path = Path(a.onnx)
    else:
        from edgeflow.export.onnx import export_qcdq

        if a.init == "random":
            from edgeflow.quant.ptq import untrained_quant_model

            with console.status(f"calibrating an untrained {a.weights}-bit {card.name} ..."):
                model, x = untrained_quant_model(card, a.weights)
            if a.check:
                import numpy as np

                windows = np.random.default_rng(7).standard_normal((a.check, *x.shape[1:])).astype(np.float32)
        else:
            from edgeflow.quant.qat import load_quant

            if not a.ckpt:
                from edgeflow.errors import CardError

                raise CardError("give --onnx MODEL.onnx, --ckpt QUANT.pt (from `edgeflow quantize`), or --init random")
            model, _ = load_quant(card, Path(a.ckpt))
            x = None
        onnx_path = tmp_onnx
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        with console.status(f"exporting {card.name} to QCDQ ONNX ..."):
            if x is None:
                from edgeflow.quant.qat import load_splits

                x = load_splits(card)["test"].x[:1]
            export_qcdq(model, x[:1], onnx_path, form=form)
    if a.check and windows is None and card.arch is None:  # a sensor model: synthetic windows through its card
        from edgeflow.link.harness import load_stream_windows

        windows = load_stream_windows(None, card, n_windows=a.check)[0]
    elif a.check and windows is None:
        from edgeflow.quant.qat import load_splits

        windows = load_splits(card)["test"].x[: a.check]
    return onnx_path, windows


def _print_build(report: dict, title: str, takes_onnx: bool) -> None:
    """The per-layer table (or the Jetson bundle summary), memory by level, firmware regions, the check."""
    if takes_onnx:
        from edgeflow.backends.jetson import describe

        console.print(describe(report))
    else:
        console.print(render_report(report, title))
    for table in (render_memory(report), render_firmware(report)):
        if table is not None:
            console.print(table)
    chk = report.get("check")
    if chk and "max_abs_logit_diff" in chk:
        console.print(f"host-CPU build of the same module matches {chk['against']} within "
                      f"{chk['max_abs_logit_diff']:.2g} (tolerance {chk['tolerance']:g}) on {chk['windows']} windows, "
                      f"argmax agreement {chk['argmax_agree']:.0%}")
    elif chk:
        console.print(f"built code bit-exact with the reference on {chk['windows']} windows")
    _print_gvsoc(report)


def _print_gvsoc(report: dict) -> None:
    """A build checked on GVSoC: one line of its measured figures."""
    if isinstance(report.get("pulp_open"), dict):
        from edgeflow.runners.gvsoc import describe

        console.print(describe(report["pulp_open"]))


def cmd_inspect(a: argparse.Namespace) -> int:
    from edgeflow.build_folder import read_report

    report = read_report(a.build_dir)  # one line naming a missing or corrupt report.json
    if report.get("backend") == "jetson":
        from edgeflow.backends.jetson import describe

        console.print(describe(report))
        return 0
    console.print(render_report(report, f"{a.build_dir} ({report.get('target', '?')})"))
    for table in (render_memory(report), render_firmware(report)):
        if table is not None:
            console.print(table)
    _print_gvsoc(report)
    card = report.get("card")
    if isinstance(card, dict):  # builds since cards are recorded: stream reads recordings through this one
        console.print(f"card {card.get('name')} (kind {card.get('kind')}): {Path(a.build_dir) / str(card.get('file'))}")
    return 0


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
