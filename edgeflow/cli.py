"""The `edgeflow` command: data, model, train; quantize, export, build, inspect, flash, stream, demo; bench later."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console

from edgeflow import __version__
from edgeflow.argtypes import float_range, int_range
from edgeflow.errors import EdgeflowError

console = Console()
err_console = Console(stderr=True)

# Commands whose stage has not landed yet: name -> (what it will do, issue that delivers it).
RESERVED = {
    "bench": ("benchmarks: ratios against reference tools in one run", 7),
}


def cmd_data_synth(a: argparse.Namespace) -> int:
    from edgeflow.data.synthetic import write_corpus

    out = write_corpus(Path(a.out), n_subjects=a.subjects, duration_s=a.duration, seed=a.seed,
                       difficulty=a.difficulty, sfreq=a.sfreq, progress=not a.no_progress)
    console.print(f"wrote {a.subjects} subjects to {out} (labels.csv, corpus.json)")
    return 0


def cmd_data_inspect(a: argparse.Namespace) -> int:
    from edgeflow.cards import load_card
    from edgeflow.data.eeg import Preprocess, describe, render_inspect

    pp = Preprocess.from_card(load_card(a.card))
    console.print(render_inspect(describe(Path(a.file), pp)))
    return 0


def cmd_model_info(a: argparse.Namespace) -> int:
    from edgeflow.cards import load_card
    from edgeflow.nn.summary import render_table, totals

    card = load_card(a.card)
    console.print(f"[bold]{card.name}[/]: {card.description}")
    console.print(render_table(card))
    params, macs = totals(card)
    console.print(f"params {params:,}   MACs per {card.input.window_s:g} s window {macs:,}")
    return 0


def cmd_model_list(a: argparse.Namespace) -> int:
    from edgeflow.cards import available_cards, load_card
    from edgeflow.resources import models_dir

    for name in available_cards():
        card = load_card(name)
        ckpt = models_dir() / f"{name}.pt"
        console.print(f"{name:16s} {card.kind:12s} {'[trained]' if ckpt.exists() else '         '} "
                      f"{card.description}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from edgeflow.cards import load_card
    from edgeflow.train.common import TrainConfig
    from edgeflow.train.run import default_out, run_training

    card = load_card(a.card)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.corpus:
        corpus = Path(a.corpus)
    else:
        from edgeflow.data.dataset import ensure_default_corpus

        corpus = ensure_default_corpus(n_subjects=a.subjects)
    t = card.train
    cfg = TrainConfig(card=card, corpus=corpus, out=Path(a.out) if a.out else default_out(card.name),
                      pretrain_epochs=t.pretrain_epochs if a.pretrain_epochs is None else a.pretrain_epochs,
                      finetune_epochs=t.finetune_epochs if a.finetune_epochs is None else a.finetune_epochs,
                      batch_size=a.batch_size or t.batch_size, lr=a.lr or t.lr, seed=a.seed,
                      max_steps=a.max_steps, resume=a.resume, progress=not a.no_progress)
    m = run_training(cfg)
    if m.get("world_size", 1) > 1 and not _is_rank0():
        return 0
    tm = m["test"]
    console.print(f"[bold]{card.name}[/] test split ({m['windows']['test']} windows, "
                  f"{m['subjects']['test']} subjects): AUROC {tm['auroc']:.3f}  AUPR {tm['aupr']:.3f}  "
                  f"balanced acc {tm['balanced_accuracy']:.3f}  ({m['train_seconds']:.0f} s)")
    console.print(f"checkpoint {cfg.out / 'model.pt'}, metrics {cfg.out / 'metrics.json'}")
    if a.ship:
        from edgeflow.resources import models_dir

        dst = models_dir()
        shutil.copyfile(cfg.out / "model.pt", dst / f"{card.name}.pt")
        shutil.copyfile(cfg.out / "metrics.json", dst / f"{card.name}.metrics.json")
        console.print(f"shipped to {dst / (card.name + '.pt')}")
    return 0


def _float_ckpt(card, given: str | None) -> Path:
    from edgeflow.errors import CardError
    from edgeflow.resources import models_dir

    if given:
        return Path(given)
    shipped = models_dir() / f"{card.name}.pt"
    if not shipped.exists():
        raise CardError(f"no trained checkpoint for card '{card.name}' (looked for {shipped}); "
                        f"train one with `edgeflow train --card {card.name}` and pass --ckpt")
    return shipped


def cmd_quantize(a: argparse.Namespace) -> int:
    import torch

    from edgeflow.cards import load_card
    from edgeflow.quant.layers import QuantPolicy
    from edgeflow.quant.ptq import check_quantizable
    from edgeflow.quant.qat import QuantConfig, load_splits, run_quantize

    card = load_card(a.card)
    check_quantizable(card)
    if a.threads:
        torch.set_num_threads(a.threads)
    policy = QuantPolicy.from_card(card, a.weights, a.acts)
    out = Path(a.out) if a.out else Path("runs") / f"{card.name}-{'report' if a.report else f'w{a.weights}-{a.method}'}"
    cfg = QuantConfig(card=card, float_ckpt=_float_ckpt(card, a.ckpt), policy=policy, method=a.method, out=out,
                      epochs=a.epochs, lr=a.lr, batch_size=a.batch_size or card.train.batch_size,
                      calib_windows=a.calib, seed=a.seed, progress=not a.no_progress, max_steps=a.max_steps,
                      resume=a.resume)
    if a.report:
        from edgeflow.quant.report import render, run_report

        def show(row):
            console.print(f"  {row['method']:5s} {row['weight_bits']:>2}-bit  test AUROC {row['test']['auroc']:.3f}")

        rep = run_report(cfg, on_row=show)
        console.print(render(rep["rows"], f"{card.name}: float vs PTQ vs QAT (held-out subjects)"))
        console.print(f"report {out / 'report.json'}")
        return 0
    splits = load_splits(card, a.seed, Path(a.corpus) if a.corpus else None)
    m = run_quantize(cfg, splits)
    t = m["test"]
    console.print(f"[bold]{card.name}[/] {a.method.upper()} {a.weights}-bit weights / {a.acts}-bit activations: "
                  f"test AUROC {t['auroc']:.3f}  AUPR {t['aupr']:.3f}  balanced acc {t['balanced_accuracy']:.3f}; "
                  f"weights {m['weights']['total_bytes']:,} bytes; integer-scan gap "
                  f"{m['scan_gap']['max_abs_lsb']:.2f} LSB max")
    console.print(f"checkpoint {out / 'quant.pt'}, metrics {out / 'quant.json'}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import FORMS, export_and_verify
    from edgeflow.quant.qat import load_quant, load_splits

    card = load_card(a.card)
    model, _ = load_quant(card, Path(a.ckpt))
    if a.input:
        from edgeflow.data.eeg import Preprocess, load_windows

        x = load_windows(Path(a.input), Preprocess.from_card(card))[: a.windows]
    else:
        x = load_splits(card)["test"].x[: a.windows]
    forms = FORMS if a.form == "both" else (a.form,)
    reports = export_and_verify(model, x, Path(a.out), forms)
    for form, r in reports.items():
        how = "exactly" if r["exact"] else f"within {r['max_abs_logit_diff']:.2g} (tolerance {r['tolerance']:g})"
        console.print(f"{form:8s} {r['path']}: {r['bytes']:,} bytes; onnxruntime matches PyTorch {how} on "
                      f"{r['windows']} windows, argmax agreement {r['argmax_agree']:.0%}")
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from edgeflow.backends import ONNX_BACKENDS
    from edgeflow.build import build, check_out_dir, render_firmware, render_memory, render_report
    from edgeflow.cards import load_card

    card = load_card(a.card)
    takes_onnx = a.target in ONNX_BACKENDS  # TVM targets read the chunked ONNX form
    if a.host_only and not takes_onnx:
        raise EdgeflowError(f"--host-only applies to the TVM targets ({', '.join(sorted(ONNX_BACKENDS))}), "
                            f"not '{a.target}'")
    out = Path(a.out) if a.out else Path("build") / f"{card.name}-{a.target}{'-host' if a.host_only else ''}"
    check_out_dir(out)  # before any export or calibration work
    windows = None
    tmp_onnx = None
    if a.onnx:
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
        tmp_onnx = onnx_path = out.parent / f".{out.name}.model.onnx"
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        with console.status(f"exporting {card.name} to QCDQ ONNX ..."):
            if x is None:
                from edgeflow.quant.qat import load_splits

                x = load_splits(card)["test"].x[:1]
            export_qcdq(model, x[:1], onnx_path, form="chunked" if takes_onnx else "scan")
    if a.check and windows is None:
        from edgeflow.quant.qat import load_splits

        windows = load_splits(card)["test"].x[: a.check]
    try:
        with console.status(f"building {card.name} for {a.target} (lower, plan, render, compile) ..."):
            report = build(onnx_path, a.target, out, windows,
                           {"card": card, "host_only": a.host_only} if takes_onnx else None)
    finally:
        if tmp_onnx is not None:
            tmp_onnx.unlink(missing_ok=True)
    if takes_onnx:
        from edgeflow.backends.jetson import describe

        console.print(describe(report))
    else:
        console.print(render_report(report, f"{card.name} -> {a.target}"))
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
    console.print(f"build directory {out}")
    return 0


def cmd_inspect(a: argparse.Namespace) -> int:
    import json

    from edgeflow.build import render_firmware, render_memory, render_report
    from edgeflow.errors import EdgeflowError

    rep = Path(a.build_dir) / "report.json"
    if not rep.exists():
        raise EdgeflowError(f"{a.build_dir}: not a build directory (no report.json); run `edgeflow build` first")
    report = json.loads(rep.read_text())
    if report.get("backend") == "jetson":
        from edgeflow.backends.jetson import describe

        console.print(describe(report))
        return 0
    console.print(render_report(report, f"{a.build_dir} ({report.get('target', '?')})"))
    for table in (render_memory(report), render_firmware(report)):
        if table is not None:
            console.print(table)
    return 0


def cmd_stream(a: argparse.Namespace) -> int:
    from edgeflow.link.stream_cmd import run

    return run(a, console)


def cmd_flash(a: argparse.Namespace) -> int:
    from edgeflow.link.flash import flash, stop

    if a.stop:
        stopped = stop(a.build_dir)
        console.print(f"stopped the emulated device of {a.build_dir}" if stopped else
                      f"no emulated device running for {a.build_dir}")
        return 0
    f = flash(a.target, a.build_dir)
    if f.rebuilt:
        console.print(f"built {Path(a.build_dir) / 'firmware.elf'}")
    if f.port is None:
        console.print(f"{a.target}: {f.note}")
        return 0
    console.print(f.port)
    console.print(f"{a.target} device running ({f.note}); port written to {Path(a.build_dir) / 'device.json'}. "
                  f"Next: `edgeflow stream --build {a.build_dir}`; stop it with `edgeflow flash --stop {a.build_dir}`",
                  highlight=False)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from edgeflow.demo import DemoConfig, run_demo

    cfg = DemoConfig(out=Path(a.out), windows=a.windows, seed=a.seed, abnormal=not a.normal,
                     progress=not a.no_progress)
    _, good = run_demo(cfg, console)
    return 0 if good else 1


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _reserved(name: str):
    what, issue = RESERVED[name]

    def run(a: argparse.Namespace) -> int:
        err_console.print(f"edgeflow {name}: not available in this version yet ({what}; planned stage, "
                          f"issue {issue})")
        return 3

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeflow",
        description="Take small EEG models (FEMBA bidirectional Mamba, transformer baseline) from PyTorch "
                    "to microcontrollers and edge GPUs, and check the device window by window.",
        epilog="Start with `edgeflow train` (trains the default femba-mini on the synthetic corpus) or "
               "`edgeflow model list`.")
    p.add_argument("--version", action="version", version=f"edgeflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="synthesise or inspect EEG recordings",
                          description="EEG data: write the synthetic corpus, or show what a model sees.")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="write a deterministic synthetic EEG corpus (EDF + labels.csv)",
                        description="Write N synthetic subjects as real EDF files (half abnormal: slowing, "
                                    "spike-and-wave) plus labels.csv and corpus.json.")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--subjects", type=int_range(2, 100_000), default=20, help="number of subjects (default 20)")
    s.add_argument("--duration", type=float_range(5.0, 86_400.0), default=60.0, help="seconds per subject (default 60)")
    s.add_argument("--seed", type=int_range(0), default=0, help="random seed (default 0)")
    s.add_argument("--difficulty", type=float_range(0.0, 1.0), default=0.5, help="0 = easy .. 1 = hard (default 0.5)")
    s.add_argument("--sfreq", type=float_range(128.0, 16_384.0), default=256.0,
                   help="sampling rate of the files (default 256)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_data_synth)
    i = dsub.add_parser("inspect", help="show channels, rate, duration and what the model would see",
                        description="Read a recording (EDF/BDF/FIF/BrainVision) through the model's "
                                    "preprocessing and print what the model would see.")
    i.add_argument("file", help="recording to inspect")
    i.add_argument("--card", default="femba-mini", help="model card whose preprocessing to apply")
    i.set_defaults(func=cmd_data_inspect)

    model = sub.add_parser("model", help="list model cards or show one's layers, params and MACs",
                           description="Model cards live in models/*.toml.")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    mi = msub.add_parser("info", help="params, MACs per window and per-layer shapes of a card")
    mi.add_argument("card", help="card name (e.g. femba-tiny) or path to a .toml")
    mi.set_defaults(func=cmd_model_info)
    ml = msub.add_parser("list", help="list the shipped model cards")
    ml.set_defaults(func=cmd_model_list)

    t = sub.add_parser("train", help="pre-train (masked low-pass reconstruction) and fine-tune a model",
                       description="Masked patch reconstruction of the low-pass-filtered signal, then "
                                   "normal/abnormal fine-tuning; metrics on a held-out split by subject. "
                                   "Runs unchanged under `torchrun --nproc_per_node N -m edgeflow train`.")
    t.add_argument("--card", default="femba-mini", help="model card (default femba-mini)")
    t.add_argument("--corpus", help="corpus directory with labels.csv (default: synthetic corpus, "
                                    "generated once in the cache)")
    t.add_argument("--subjects", type=int_range(2, 100_000), default=100,
                   help="subjects of the default corpus (default 100)")
    t.add_argument("--out", help="run directory (default runs/<card>)")
    t.add_argument("--pretrain-epochs", type=int_range(0), help="override the card's pre-training epochs")
    t.add_argument("--finetune-epochs", type=int_range(0), help="override the card's fine-tuning epochs")
    t.add_argument("--batch-size", type=int_range(1), help="override the card's batch size")
    t.add_argument("--lr", type=float_range(0.0, 10.0, lo_open=True), help="override the card's learning rate")
    t.add_argument("--seed", type=int_range(0), default=0, help="random seed (default 0)")
    t.add_argument("--max-steps", type=int_range(1), help="stop each stage after this many steps (smoke tests)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    t.add_argument("--threads", type=int_range(1, 1024), help="torch CPU threads")
    t.add_argument("--ship", action="store_true", help="copy model.pt and metrics.json into models/")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    q = sub.add_parser("quantize", help="QAT or PTQ with brevitas: 2/4/8-bit weights, 8-bit activations",
                       description="Turn a trained float checkpoint into a quantized model. QAT calibrates then "
                                   "fine-tunes; PTQ only calibrates. Per-layer bit widths come from the card's "
                                   "[quant] section (e.g. 8-bit patch embedding and head), --weights sets the "
                                   "rest. --report runs float vs PTQ vs QAT at 8/4/2 bits and prints the table.")
    q.add_argument("--card", default="femba-mini", help="model card (default femba-mini)")
    q.add_argument("--ckpt", help="float checkpoint (default: the card's shipped models/<card>.pt)")
    q.add_argument("--weights", type=int, default=2, help="weight bits: 2, 4 or 8 (default 2)")
    q.add_argument("--acts", type=int, default=8, help="activation bits (8)")
    q.add_argument("--method", choices=("qat", "ptq"), default="qat", help="qat (default) or ptq")
    q.add_argument("--epochs", type=int_range(0), default=4, help="QAT epochs (default 4)")
    q.add_argument("--lr", type=float_range(0.0, 10.0, lo_open=True), default=5e-4,
                   help="QAT learning rate (default 5e-4)")
    q.add_argument("--batch-size", type=int_range(1), help="override the card's batch size")
    q.add_argument("--calib", type=int_range(1), default=256, help="calibration windows (default 256)")
    q.add_argument("--corpus", help="corpus directory (default: the synthetic default corpus)")
    q.add_argument("--out", help="run directory (default runs/<card>-w<bits>-<method>)")
    q.add_argument("--seed", type=int_range(0), default=0)
    q.add_argument("--max-steps", type=int_range(1), help="stop QAT after this many steps (smoke tests)")
    q.add_argument("--threads", type=int_range(1, 1024), help="torch CPU threads")
    q.add_argument("--resume", action="store_true", help="continue QAT from the run directory's last epoch")
    q.add_argument("--report", action="store_true", help="float vs PTQ vs QAT table at 8/4/2 bits")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_quantize)

    e = sub.add_parser("export", help="QCDQ ONNX (scan as one edgeflow.SelectiveScan node) + chunked GPU form",
                       description="Export a quantized checkpoint to QCDQ ONNX and check it: onnxruntime "
                                   "(optimizations off) must match the PyTorch model within the stated tolerance. "
                                   "Form 'scan' keeps the selective scan as one custom node (edgeflow compiler); "
                                   "'chunked' spells it in plain ops for compilers without Loop/Scan (TVM).")
    e.add_argument("--card", default="femba-mini", help="model card (default femba-mini)")
    e.add_argument("--ckpt", required=True, help="quantized checkpoint (quant.pt from `edgeflow quantize`)")
    e.add_argument("--out", default="model.onnx", help="output file (default model.onnx)")
    e.add_argument("--form", choices=("scan", "chunked", "both"), default="both", help="default both")
    e.add_argument("--input", help="recording whose windows check the export (default: test split)")
    e.add_argument("--windows", type=int_range(1), default=16, help="windows to check (default 16)")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("build", help="compile a quantized model: ONNX -> integer IR -> memory plan -> C",
                       description="Compile a quantized model for a target into build/<card>-<target>/ "
                                   "(model.onnx, graph.json, plan.json, src/, firmware, report.json). The folder "
                                   "appears only when the build is complete. Targets: host (native gcc), gap9 "
                                   "(GAP SDK project; L1 tiles with double-buffered DMA, weights in L2 or streamed "
                                   "from L3; also built here through the portable HAL so --check proves it), "
                                   "rv32-virt (firmware.elf for the emulated RISC-V board, see `edgeflow flash`), "
                                   "jetson-orin-nano / jetson-agx-orin (Apache TVM: model.so with an sm_87 cubin, "
                                   "run.py and README for the board; --host-only compiles it for this CPU).")
    b.add_argument("--target", default="host",
                   help="host, gap9, rv32-virt, jetson-orin-nano or jetson-agx-orin (default host)")
    b.add_argument("--card", default="femba-mini", help="model card (default femba-mini)")
    b.add_argument("--onnx", help="QCDQ ONNX from `edgeflow export`")
    b.add_argument("--ckpt", help="quantized checkpoint (exported on the fly when --onnx is not given)")
    b.add_argument("--init", choices=("ckpt", "random"), default="ckpt",
                   help="'random': an untrained, calibrated model of the card (sizes and plans are real, answers "
                        "are not) - e.g. femba-tiny, which ships no checkpoint")
    b.add_argument("--weights", type=int, default=2,
                   help="weight bits with --init random (default 2)")
    b.add_argument("--out", help="build directory (default build/<card>-<target>)")
    b.add_argument("--check", type=int_range(0, 100_000), default=0,
                   help="run the built binary on N test windows and require bit-exact agreement with the reference "
                        "(jetson: the same TVM module built for this CPU, within tolerance of onnxruntime)")
    b.add_argument("--host-only", action="store_true",
                   help="jetson targets: compile the same TVM module for this machine's CPU (no cross tools)")
    b.set_defaults(func=cmd_build)
    ins = sub.add_parser("inspect", help="print a build directory's per-layer report",
                         description="Per-node MACs, weight bytes and the activation arena of a build.")
    ins.add_argument("build_dir", help="a directory written by `edgeflow build`")
    ins.set_defaults(func=cmd_inspect)

    st = sub.add_parser("stream", help="stream EEG windows to the device and check every answer bit for bit",
                        description="HELLO handshake (refuses a device running another model), then read a "
                                    "recording through the training preprocessing, quantise each window, send it, "
                                    "and check the device's answer against the integer reference. Survives link "
                                    "faults (retries, resyncs); exit code 1 if any answer mismatched or was lost.")
    from edgeflow.link.stream_cmd import add_arguments as stream_arguments

    stream_arguments(st)
    st.set_defaults(func=cmd_stream)

    fl = sub.add_parser("flash", help="start the emulated device (QEMU rv32) on a build, or flash a GAP9 board",
                        description="rv32-virt: build firmware.elf if needed and start QEMU (virt, rv32imc) in the "
                                    "background with its UART on a pty; prints the port and writes it (and the QEMU "
                                    "pid) to BUILD_DIR/device.json for `edgeflow stream`. gap9: run the GAP SDK's "
                                    "`make all run` in BUILD_DIR/src when the SDK is set up.")
    fl.add_argument("build_dir", help="a directory written by `edgeflow build --target rv32-virt` (or gap9)")
    fl.add_argument("--target", default="rv32-virt", help="rv32-virt (default, emulated) or gap9")
    fl.add_argument("--stop", action="store_true", help="stop the emulated device started for BUILD_DIR")
    fl.set_defaults(func=cmd_flash)
    de = sub.add_parser("demo", help="synthesise EEG, build femba-mini for the emulated rv32, flash, stream, check",
                        description="One command end to end: write a synthetic EEG recording (EDF), build the "
                                    "shipped 2-bit femba-mini for rv32-virt, start QEMU, stream the windows over "
                                    "the serial link checking every answer bit for bit, print the summary and stop "
                                    "QEMU. Exit code 1 if any answer mismatched or was lost.")
    de.add_argument("--out", default="build/demo", help="working directory (default build/demo)")
    de.add_argument("--windows", type=int_range(1, 10_000), default=6, help="5 s windows to stream (default 6)")
    de.add_argument("--seed", type=int_range(0), default=7, help="synthetic subject seed (default 7)")
    de.add_argument("--normal", action="store_true", help="record a normal subject (default: abnormal)")
    de.add_argument("--no-progress", action="store_true", help="no live table")
    de.set_defaults(func=cmd_demo)

    for name, (what, _issue) in RESERVED.items():
        r = sub.add_parser(name, help=f"(not yet available) {what}", description=f"{what}. Planned stage.")
        r.set_defaults(func=_reserved(name))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgeflowError as e:
        err_console.print("[red]edgeflow: error:[/] ", end="")
        err_console.print(str(e), highlight=False, soft_wrap=True, markup=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("edgeflow: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
