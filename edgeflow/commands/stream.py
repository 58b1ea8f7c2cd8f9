"""`edgeflow stream`: find the port and the build, stream a recording to the device with live progress, summarise
(the live streaming loop is shared with `edgeflow demo`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from edgeflow.argtypes import float_range, int_range
from edgeflow.errors import EdgeflowError

if TYPE_CHECKING:  # heavy imports stay out of `edgeflow --help`
    import numpy as np

    from edgeflow.link.harness import WindowRecord

DEVICE_FILE = "device.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--build", required=True, help="build directory (graph.json + weights.npz: the reference the "
                                                  "answers are checked against, and the model hash)")
    p.add_argument("--port", help="serial port of the device (default: the port `edgeflow flash` wrote to "
                                  "BUILD/device.json)")
    p.add_argument("--input", help="recording: EEG (EDF/EDF+D/BDF/FIF/BrainVision/EEGLAB .set/GDF/CNT) for an EEG "
                                   "card; sensor data (CSV, NPY/NPZ, WAV, EDF/EDF+D/BDF: channels by label) for a "
                                   "sensor card; CSV/NPY carry no rate: the card's input.sample_rate is used "
                                   "(default: a synthetic recording)")
    p.add_argument("--card", help="card whose preprocessing to apply (default: the card the build recorded, "
                                  "BUILD/card.toml; a --card that contradicts it is refused; older builds: femba-mini)")
    p.add_argument("--realtime", action="store_true", help="pace windows at the recording's own rate and report "
                                                           "whether the device kept up")
    p.add_argument("--stride", type=float_range(0.0, 3600.0, lo_open=True),
                   help="seconds between window starts (default: the card's stride)")
    p.add_argument("--windows", type=int_range(1), help="stream at most N windows (default: all; synthetic: 8)")
    p.add_argument("--out", help="directory for windows.jsonl and summary.json (default BUILD/stream)")
    p.add_argument("--timeout", type=float_range(0.0, 3600.0, lo_open=True), default=10.0,
                   help="seconds to wait for one answer (default 10)")
    p.add_argument("--retries", type=int_range(0, 1000), default=5,
                   help="re-sends of a window before it counts as lost (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no live table")


def resolve_port(build: Path, port: str | None) -> str:
    """--port, else BUILD/device.json's "port" (written by `edgeflow flash`)."""
    if port:
        return port
    f = build / DEVICE_FILE
    if not f.exists():
        raise EdgeflowError(f"{build}: no --port given and no {DEVICE_FILE} (start the device with `edgeflow flash` "
                        "or pass --port)")
    try:
        return str(json.loads(f.read_text())["port"])
    except (ValueError, KeyError, TypeError):
        raise EdgeflowError(f"{f}: not a device file with a \"port\" field") from None


def out_dir(build: Path, out: str | None) -> Path:
    """--out (default BUILD/stream), refused in one line when it or a folder above it is a file."""
    path = Path(out) if out else build / "stream"
    bad = next((d for d in (path, *path.parents) if d.exists() and not d.is_dir()), None)
    if bad is not None:
        where = "" if bad == path else f" {bad}"
        raise EdgeflowError(f"{path}:{where} is a file, not a folder; give another --out")
    return path


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.1f} ms"


def progress_table(s: dict[str, Any], last: WindowRecord | None = None) -> Table:
    """The live/summary table of a stream."""
    t = Table(show_header=False, box=None, padding=(0, 2))
    t.add_row("windows", f"{s['sent']}/{s['windows']} sent, {s['answered']} answered, {s['matching']} matching "
                         f"bit-exact, {s['mismatched']} mismatched, {s['lost']} lost")
    t.add_row("latency", f"p50 {_fmt_s(s['latency_p50_s'])}  p95 {_fmt_s(s['latency_p95_s'])}")
    ins = s["instret_per_window"]
    t.add_row("device", f"{ins:,} instructions / window" if ins is not None else "-")
    rtf = s["real_time_factor"]
    if rtf is not None:
        keep = "" if s["kept_up"] is None else ("  kept up" if s["kept_up"] else f"  LATE on {s['late_windows']}")
        t.add_row("real time", f"factor {rtf:.3g} ({1 / rtf:.1f}x faster than real time){keep}" if rtf > 0 else
                  "-")
    if s["prediction"] is not None:
        t.add_row("prediction", f"class {s['prediction']}" + (f" (window {last.index})" if last else ""))
    heavy = sorted(s.get("layers", []), key=lambda r: -r["instret"])[:3]
    if heavy:
        t.add_row("heaviest", ", ".join(f"{r['name']} ({r['op']}) {r['share']:.0%}" for r in heavy))
    link = s["link"]
    errs = ", ".join(f"{k} {v}" for k, v in link["device_errors"].items()) or "none"
    t.add_row("link", f"{link['retries']} retries, {link['timeouts']} timeouts, {link['resyncs']} resyncs "
                      f"({link['resets']} device resets, {link['bad_frames']} bad frames), device errors: {errs}")
    return t


def stream_live(session: Any, graph: Any, xq: np.ndarray, cfg: Any, console: Console,
                progress: bool = True) -> tuple[dict[str, Any], list[WindowRecord]]:
    """harness.stream with the live progress table (transient) when progress is on; (summary, records)."""
    from rich.live import Live

    from edgeflow.link.harness import stream

    if not progress:
        return stream(session, graph, xq, cfg)
    with Live(console=console, transient=True, auto_refresh=False) as live:
        def show(rec: WindowRecord, s: dict[str, Any]) -> None:
            live.update(progress_table(s, rec), refresh=True)

        return stream(session, graph, xq, cfg, on_window=show)


def cmd_stream(a: argparse.Namespace) -> int:
    from edgeflow.commands import console

    return run(a, console)


def run(a: argparse.Namespace, console: Console) -> int:
    from edgeflow.build_folder import read_graph
    from edgeflow.card_match import build_input_fits, stream_card
    from edgeflow.link.harness import StreamConfig, ok, quantized_windows
    from edgeflow.link.model_info import model_hash
    from edgeflow.link.session import Session, open_port

    build = Path(a.build)
    if not build.is_dir():
        raise EdgeflowError(f"{build}: no such build directory; run `edgeflow build` first")
    if (build / "run.py").exists() and (build / "model.json").exists():
        return run_jetson(build, a, console)
    graph = read_graph(build)  # a corrupt graph.json / weights.npz is named before any port is opened
    card = stream_card(build, a.card)  # the build's card.toml; a contradicting --card is refused here
    out = out_dir(build, a.out)
    port_path = resolve_port(build, a.port)
    shape = tuple(graph.tensors[graph.inputs[0]].shape)
    port = open_port(port_path)  # port and handshake first: a wrong port or model fails before the slow reading
    try:
        session = Session(port, model_hash(graph), timeout_s=min(a.timeout, 5.0), retries=a.retries,
                          name=port_path)
        info = session.handshake()
        session.timeout_s = a.timeout
        x, meta = read_windows(a, card=card)
        if not build_input_fits(tuple(x.shape[1:]), shape, build):
            raise EdgeflowError(f"{meta['recording']}: windows are {list(x.shape[1:])}, model input is "
                                f"{list(shape)} (card '{card.name}' does not fit this build)")
        xq = quantized_windows(x, graph)
        starts = tuple(meta.pop("window_starts_s", ()))  # per window in windows.jsonl, not in the summary
        cfg = StreamConfig(stride_s=meta["stride_s"], realtime=a.realtime, timeout_s=a.timeout, retries=a.retries,
                           out_dir=out, about={"recording": meta, "port": port_path}, window_starts_s=starts)
        console.print(f"device on {port_path}: model {info.model_hash.hex()}, input {list(info.input_shape)} "
                      f"int8, {info.n_layers} layers; streaming {len(xq)} windows of {meta['recording']}"
                      + (" in real time" if a.realtime else ""))
        summary, _ = stream_live(session, graph, xq, cfg, console, progress=not a.no_progress)
    finally:
        port.close()
    console.print(progress_table(summary))
    good = ok(summary)
    verdict = "all answers bit-exact" if good else "FAILED: answers mismatched or lost"
    console.print(f"{verdict}; per-window records {out / 'windows.jsonl'}, summary {out / 'summary.json'}")
    if summary.get("aborted"):
        console.print(f"stream aborted: {summary['aborted']}")
    return 0 if good else 1


def read_windows(a: argparse.Namespace, err: Console | None = None, card: Any = None
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """The recording's windows through the card's preprocessing (`card`, else --card, else femba-mini); its
    data-quality warnings (flat or clipped channels, implausible amplitude, a BDF named .edf) are printed on
    stderr, one line each, not swallowed."""
    import warnings

    from edgeflow.data.eeg import DataWarning
    from edgeflow.link.harness import load_stream_windows

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        x, meta = load_stream_windows(Path(a.input) if a.input else None, card or a.card or "femba-mini", a.stride,
                                      a.windows)
    err = err or Console(stderr=True)
    seen = []
    for w in caught:
        if issubclass(w.category, DataWarning) and str(w.message) not in seen:
            seen.append(str(w.message))
            err.print(f"[yellow]edgeflow: warning:[/] {w.message}", highlight=False, soft_wrap=True)
    meta["warnings"] = seen
    return x, meta


def run_jetson(build: Path, a: argparse.Namespace, console: Console) -> int:
    """A Jetson bundle built --host-only: the recording through the bundle's run.py (its Model, the code the
    board runs) on this CPU, every window's logits checked against onnxruntime on the bundle's model.onnx."""
    import numpy as np

    from edgeflow.backends.jetson import TOLERANCE, load_runner
    from edgeflow.export.onnx import ort_run

    meta = json.loads((build / "model.json").read_text())
    if meta.get("device") != "cpu":
        raise EdgeflowError(f"{build}: built for the board's GPU ({meta.get('device')}); run its run.py on the "
                            "board, or stream a `edgeflow build --host-only` build here")
    from edgeflow.card_match import stream_card

    out = out_dir(build, a.out)
    x, rec = read_windows(a, card=stream_card(build, a.card))
    model = load_runner(build)
    logits, secs = model.run_windows(x)
    ref = ort_run(build / "model.onnx", x).reshape(logits.shape)
    diff = np.abs(logits - ref).max(axis=1)
    summ = {"windows": len(x), "within_tolerance": int((diff <= TOLERANCE).sum()),
            "argmax_agree": int((logits.argmax(1) == ref.argmax(1)).sum()),
            "max_abs_logit_diff": float(diff.max()), "tolerance": TOLERANCE, "recording": rec,
            "latency_p50_s": float(np.median(secs)), "latency_p95_s": float(np.percentile(secs, 95)),
            "real_time_factor": float(secs.mean()) / rec["stride_s"],
            "predictions": logits.argmax(1).tolist()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summ, indent=1) + "\n")
    good = summ["within_tolerance"] == summ["argmax_agree"] == len(x)
    console.print(f"{meta['model']} ({build}, TVM host build) on {len(x)} windows of {rec['recording']}: "
                  f"{summ['within_tolerance']}/{len(x)} within {TOLERANCE:g} of onnxruntime (max "
                  f"{summ['max_abs_logit_diff']:.2g}), argmax {summ['argmax_agree']}/{len(x)}; latency p50 "
                  f"{_fmt_s(summ['latency_p50_s'])} p95 {_fmt_s(summ['latency_p95_s'])}, real-time factor "
                  f"{summ['real_time_factor']:.3g}; summary {out / 'summary.json'}")
    return 0 if good else 1
