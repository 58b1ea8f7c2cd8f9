"""The `edgeflow` command line: argument parsers only; each command's body lives in edgeflow/commands/."""

from __future__ import annotations

import argparse
import sys

from edgeflow import __version__
from edgeflow.argtypes import float_range, int_range
from edgeflow.commands import err_console
from edgeflow.commands.bench import add_arguments as bench_arguments
from edgeflow.commands.bench import cmd_bench
from edgeflow.commands.build import cmd_build, cmd_inspect
from edgeflow.commands.data import cmd_data_inspect, cmd_data_synth
from edgeflow.commands.demo import cmd_demo
from edgeflow.commands.flash import cmd_flash
from edgeflow.commands.model import cmd_model_info, cmd_model_list
from edgeflow.commands.stream import add_arguments as stream_arguments
from edgeflow.commands.stream import cmd_stream
from edgeflow.commands.train import cmd_export, cmd_quantize, cmd_train
from edgeflow.errors import EdgeflowError

# Commands whose stage has not landed yet: name -> (what it will do, issue that delivers it).
RESERVED: dict[str, tuple[str, int]] = {}


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
                    "to microcontrollers and edge GPUs, and check the device window by window; or compile your own "
                    "quantized ONNX model for any sensor (`edgeflow build --onnx M.onnx --card CARD`).",
        epilog="Start with `edgeflow train` (trains the default femba-mini on the synthetic corpus) or "
               "`edgeflow model list`.")
    p.add_argument("--version", action="version", version=f"edgeflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _data_model_parsers(sub)
    _train_parsers(sub)
    _build_parsers(sub)
    _device_parsers(sub)
    for name, (what, _issue) in RESERVED.items():
        r = sub.add_parser(name, help=f"(not yet available) {what}", description=f"{what}. Planned stage.")
        r.set_defaults(func=_reserved(name))
    return p


def _data_model_parsers(sub) -> None:
    data = sub.add_parser("data", help="synthesise EEG recordings, or inspect any recording",
                          description="Write the synthetic EEG corpus, or show what a model sees of a recording "
                                      "(EEG, or CSV/NPY/NPZ/WAV/EDF sensor data with a sensor card).")
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
                        description="Read a recording (EDF/BDF/FIF/BrainVision; with a sensor card raw CSV, "
                                    "NPY/NPZ, WAV or EDF/BDF channels by label) through the card's preprocessing "
                                    "and print what the model would see.")
    i.add_argument("file", help="recording to inspect")
    i.add_argument("--card", default="femba-mini",
                   help="model card whose preprocessing to apply: a name (models/*.toml) or a .toml path "
                        "(default femba-mini, an EEG card; CSV/NPY/NPZ/WAV need a sensor card, e.g. accel-har or "
                        "your own with model.kind = \"sensor\"; the card of a build is BUILD/card.toml)")
    i.set_defaults(func=cmd_data_inspect)

    model = sub.add_parser("model", help="list model cards or show one's layers, params and MACs",
                           description="Model cards live in models/*.toml.")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    mi = msub.add_parser("info", help="params, MACs per window and per-layer shapes of a card")
    mi.add_argument("card", help="card name (e.g. femba-tiny) or path to a .toml")
    mi.set_defaults(func=cmd_model_info)
    ml = msub.add_parser("list", help="list the shipped model cards")
    ml.set_defaults(func=cmd_model_list)


def _train_parsers(sub) -> None:
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


def _build_parsers(sub) -> None:
    b = sub.add_parser("build", help="compile a quantized model (a card's, or your own --onnx): ONNX -> integer IR -> "
                                        "memory plan -> C",
                       description="Compile a quantized model for a target into build/<card>-<target>/ "
                                   "(--onnx: build/<model-stem>-<target>/) (model.onnx, graph.json, plan.json, src/, "
                                   "firmware, card.toml, report.json). With --onnx the model's input shape is checked "
                                   "against --card (channels x window samples), or, without --card, a minimal sensor "
                                   "card is made from the model (its channels and window, the rate from --sfreq); "
                                   "`edgeflow stream` reads recordings through the card the build records. The folder "
                                   "appears only when the build is complete. Targets: host (native gcc), gap9 "
                                   "(GAP SDK project; L1 tiles with double-buffered DMA, weights in L2 or streamed "
                                   "from L3; also built here through the portable HAL so --check proves it), "
                                   "rv32-virt (firmware.elf for the emulated RISC-V board, see `edgeflow flash`), "
                                   "jetson-orin-nano / jetson-agx-orin (Apache TVM: model.so with an sm_87 cubin, "
                                   "run.py and README for the board; --host-only compiles it for this CPU).")
    b.add_argument("--target", default="host",
                   help="host, gap9, rv32-virt, pulp-open, jetson-orin-nano or jetson-agx-orin (default host)")
    b.add_argument("--card", help="model card, a name (models/*.toml) or a .toml path (default femba-mini; with "
                                  "--onnx: a minimal card made from the model)")
    b.add_argument("--onnx", help="QCDQ ONNX: from `edgeflow export`, or your own model (brevitas "
                                  "export_onnx_qcdq(..., dynamo=False), or onnxruntime quantize_static QDQ); its "
                                  "input (1, channels, samples) must match --card, else give --sfreq; see the "
                                  "README's 'Compile your own model'")
    b.add_argument("--sfreq", type=float_range(0.0, 1e6, lo_open=True),
                   help="--onnx without --card: sampling rate in Hz of the model's input (the window is the model's "
                        "input length / sfreq); with --card it must equal the card's input.sample_rate")
    b.add_argument("--ckpt", help="quantized checkpoint (exported on the fly when --onnx is not given)")
    b.add_argument("--init", choices=("ckpt", "random"), default="ckpt",
                   help="'random': an untrained, calibrated model of the card (sizes and plans are real, answers "
                        "are not) - e.g. femba-tiny, which ships no checkpoint")
    b.add_argument("--weights", type=int, default=2,
                   help="weight bits with --init random (default 2)")
    b.add_argument("--out", help="build directory (default build/<card>-<target>, with --onnx "
                                 "build/<model-stem>-<target>)")
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


def _device_parsers(sub) -> None:
    st = sub.add_parser("stream", help="stream a recording's windows to the device and check every answer bit for bit",
                        description="HELLO handshake (refuses a device running another model), then read a "
                                    "recording through the build's card (EEG: the training preprocessing; sensor: "
                                    "(raw - offset) * scale), quantise each window, send it, "
                                    "and check the device's answer against the integer reference. Survives link "
                                    "faults (retries, resyncs); exit code 1 if any answer mismatched or was lost.")
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

    be = sub.add_parser("bench", help="the same models side by side: host peers, rv32, pulp-open, memory by level",
                        description="Host CPU peers (edgeflow C, onnxruntime, PyTorch float, TVM) each in its own "
                                    "process, interleaved window by window (CPU and wall time, median and min, checked "
                                    "against the reference); rv32 instructions per MAC and per layer (QEMU icount); "
                                    "pulp-open cycles (GVSoC); memory by level vs int8 and float32. Writes "
                                    "OUT/results.json and PNG plots.")
    bench_arguments(be)
    be.set_defaults(func=cmd_bench)


def _one_line_warnings(shown):
    """A showwarning hook: warnings of edgeflow's own checks (DataWarning, ...) as one line on stderr, like its
    errors; other packages' warnings go to `shown` unchanged."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__module__.split(".")[0] != "edgeflow":
            return shown(message, category, filename, lineno, file, line)
        err_console.print(f"[yellow]edgeflow: warning:[/] {message}", highlight=False, soft_wrap=True)

    return show


def _sigterm_exits() -> None:
    """SIGTERM (a killed build, a CI timeout) raises SystemExit like Ctrl-C raises KeyboardInterrupt, so the
    cleanup of temporary build folders and exports runs (only in the main thread, where signals can be set)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warnings(shown)
    _sigterm_exits()
    try:
        return int(args.func(args) or 0)
    except EdgeflowError as e:
        err_console.print("[red]edgeflow: error:[/] ", end="")
        err_console.print(str(e), highlight=False, soft_wrap=True, markup=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("edgeflow: interrupted")
        return 130
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
