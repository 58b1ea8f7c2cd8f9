"""The streaming host: recording -> preprocessing -> int8 windows -> device, every answer checked bit for bit
against the numpy integer reference; per-window JSONL, a summary JSON, optional real-time pacing."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.ir.graph import Graph
from edgeflow.link.session import LinkError, ModelMismatchError, Session


@dataclass
class StreamConfig:
    """How to stream: pacing, timeouts, retries, where to write the records."""

    stride_s: float = 5.0            # seconds of recording between window starts (the real-time period)
    realtime: bool = False           # wait for each window to "arrive" at the recording's own rate
    timeout_s: float | None = None   # per attempt; None: keep the session's
    retries: int | None = None       # re-sends per window (same seq); None: keep the session's
    max_consecutive_lost: int = 3    # give up the stream after this many windows in a row are lost
    out_dir: Path | None = None      # windows.jsonl + summary.json
    about: dict[str, Any] = field(default_factory=dict)  # written into summary.json as it is (recording, port)
    window_starts_s: tuple[float, ...] = ()  # each window's start in the recording (s), for windows.jsonl


@dataclass
class WindowRecord:
    """One line of windows.jsonl."""

    index: int
    seq: int
    answered: bool
    match: bool
    attempts: int
    latency_s: float | None
    late: bool
    prediction: int | None
    values: list[int] | None
    expected: list[int]
    cycles: int | None = None
    instret: int | None = None
    replay: bool = False
    layer_instret: list[int] = field(default_factory=list)
    start_s: float | None = None  # the window's start, seconds from the recording start (gaps included)


def synth_recording(path: Path, duration_s: float, seed: int = 0, abnormal: bool = True) -> Path:
    """Write a synthetic EEG recording (edgeflow.data.synthetic) as EDF at `path`."""
    import mne

    from edgeflow.data.synthetic import generate_subject

    raw = generate_subject(seed, abnormal, duration_s=duration_s, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def load_stream_windows(recording: Path | None, card: str = "femba-mini", stride_s: float | None = None,
                        n_windows: int | None = None, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Float windows (N, C, W) of a recording through the card's training preprocessing (MNE read, montage,
    band-pass, resample, IQR normalisation); without a recording, a synthetic one is written and read back."""
    from edgeflow.cards import load_card
    from edgeflow.data.eeg import DataWarning, Preprocess, load_timed_windows

    pp = Preprocess.from_card(load_card(card))
    if stride_s is not None:
        from dataclasses import replace

        pp = replace(pp, stride_s=float(stride_s))
    with tempfile.TemporaryDirectory(prefix="edgeflow-stream-") as tmp:
        src = recording
        if src is None:
            n = n_windows or 8
            src = synth_recording(Path(tmp) / "synthetic.edf", pp.window_s + (n - 1) * pp.stride_s + 1.0, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", DataWarning)  # data-quality news reaches the caller (stream shows it)
            x, starts = load_timed_windows(src, pp)
    if n_windows is not None:
        x, starts = x[:n_windows], starts[:n_windows]
    meta = {"recording": str(recording) if recording else f"synthetic (seed {seed})", "card": card,
            "window_s": pp.window_s, "stride_s": pp.stride_s, "sample_rate": pp.sample_rate, "windows": len(x),
            "window_starts_s": [round(float(t), 6) for t in starts]}
    return x, meta


def quantized_windows(x: np.ndarray, graph: Graph) -> np.ndarray:
    """int8 codes of float windows with the model's input scale (exactly what the host sends)."""
    from edgeflow.ir.from_onnx import quantize_input

    return quantize_input(x, graph).reshape(len(x), *graph.tensors[graph.inputs[0]].shape)


def _percentile(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def _prediction(values: np.ndarray, graph: Graph) -> int:
    scale = np.asarray(graph.meta.get("output_scale", 1.0), dtype=np.float64)
    return int(np.argmax(values.astype(np.float64) * scale))


def _one_window(session: Session, graph: Graph, i: int, x: np.ndarray, cfg: StreamConfig, t0: float) -> WindowRecord:
    """Send window i (waiting for its due time in real-time mode), check the answer against the reference."""
    from edgeflow.ir.reference import run

    seq = (i % 0xEFFF) + 1  # 1 .. 0xEFFF; 0 is the boot INFO's, 0xF000+ are handshakes
    due = t0 + i * cfg.stride_s
    if cfg.realtime and (wait := due - time.monotonic()) > 0:
        time.sleep(wait)
    try:
        ans = session.infer(seq, np.ascontiguousarray(x, dtype=np.int8).tobytes())
    except ModelMismatchError:  # a re-handshake met another model: nothing more to check
        raise
    except LinkError:
        ans = None
    done = time.monotonic()  # the device's part ends here; the reference runs on the host's time
    expected = np.asarray(run(graph, x)[graph.outputs[0]]).reshape(-1).astype(np.int64)
    start = cfg.window_starts_s[i] if i < len(cfg.window_starts_s) else None
    if ans is None:
        return WindowRecord(i, seq, False, False, session.retries + 1, None, cfg.realtime, None, None,
                            expected.tolist(), start_s=start)
    got = np.asarray(ans.output.values, dtype=np.int64)
    late = cfg.realtime and done > t0 + (i + 1) * cfg.stride_s
    return WindowRecord(i, seq, True, bool(np.array_equal(got, expected)), ans.attempts, ans.latency_s,
                        late, _prediction(got, graph), got.tolist(), expected.tolist(),
                        ans.output.cycles, ans.output.instret, ans.output.replay, list(ans.output.layer_instret),
                        start_s=start)


def stream(session: Session, graph: Graph, xq: np.ndarray, cfg: StreamConfig,
           on_window: Callable[[WindowRecord, dict[str, Any]], None] | None = None) -> tuple[dict, list[WindowRecord]]:
    """Send each int8 window (N, *input shape) through `session`, check every answer against the reference.
    Returns (summary, records); writes them to cfg.out_dir when set. Never raises for a lost window: it is
    recorded (answered False) and the stream goes on, unless max_consecutive_lost windows in a row are lost.
    Ctrl-C ends the stream early with a summary ("aborted": "interrupted")."""
    if cfg.timeout_s is not None:
        session.timeout_s = cfg.timeout_s
    if cfg.retries is not None:
        session.retries = cfg.retries
    info = session.info or session.handshake()
    records: list[WindowRecord] = []
    jsonl = None
    if cfg.out_dir is not None:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        jsonl = open(Path(cfg.out_dir) / "windows.jsonl", "w")  # noqa: SIM115 - closed in finally
    t0 = time.monotonic()
    lost_run, aborted = 0, ""
    try:
        for i, x in enumerate(xq):
            rec = _one_window(session, graph, i, x, cfg, t0)
            lost_run = 0 if rec.answered else lost_run + 1
            records.append(rec)
            if jsonl is not None:
                jsonl.write(json.dumps(asdict(rec)) + "\n")
                jsonl.flush()
            if on_window is not None:
                on_window(rec, summarize(records, session, cfg, time.monotonic() - t0, len(xq)))
            if lost_run >= cfg.max_consecutive_lost:
                aborted = f"{lost_run} windows in a row lost; device not answering"
                break
    except KeyboardInterrupt:  # Ctrl-C: keep what was checked; the windows not sent count as lost
        aborted = "interrupted"
    finally:
        if jsonl is not None:
            jsonl.close()
    summary = summarize(records, session, cfg, time.monotonic() - t0, len(xq))
    summary["info"] = {"model_hash": info.model_hash.hex(), "input_size": info.input_size,
                       "output_size": info.output_size, "layers": info.n_layers, "max_payload": info.max_payload}
    summary["layers"] = layer_profile(records, graph)
    if aborted:
        summary["aborted"] = aborted
    summary.update(cfg.about)
    if cfg.out_dir is not None:
        (Path(cfg.out_dir) / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary, records


def summarize(records: list[WindowRecord], session: Session, cfg: StreamConfig, wall_s: float,
              n_total: int) -> dict[str, Any]:
    """Counts, latency percentiles, device counters, real-time factor and link recovery statistics."""
    answered = [r for r in records if r.answered]
    lat = [r.latency_s for r in answered if r.latency_s is not None]
    instret = [r.instret for r in answered if r.instret is not None and not r.replay]
    cycles = [r.cycles for r in answered if r.cycles is not None and not r.replay]
    p50 = _percentile(lat, 50)
    return {
        "windows": n_total, "sent": len(records), "answered": len(answered),
        "matching": sum(r.match for r in answered), "mismatched": sum(not r.match for r in answered),
        "lost": len(records) - len(answered) + (n_total - len(records)),
        "duplicated": len(records) - len({r.index for r in records}),
        "latency_p50_s": p50, "latency_p95_s": _percentile(lat, 95),
        "instret_per_window": int(np.mean(instret)) if instret else None,
        "cycles_per_window": int(np.mean(cycles)) if cycles else None,
        "real_time_factor": (p50 / cfg.stride_s) if p50 is not None else None,
        "realtime": cfg.realtime, "late_windows": sum(r.late for r in records),
        "kept_up": (not any(r.late for r in records)) if cfg.realtime else None,
        "prediction": answered[-1].prediction if answered else None,
        "wall_s": wall_s, "link": session.stats.to_dict(),
    }


def layer_profile(records: list[WindowRecord], graph: Graph) -> list[dict[str, Any]]:
    """Mean device instructions per IR node over the windows the device ran (replays excluded), with the share
    of the whole window; empty when the device reported no per-layer counters."""
    rows = [r.layer_instret for r in records if r.answered and not r.replay and r.layer_instret]
    if not rows or any(len(r) != len(graph.nodes) for r in rows):
        return []
    mean = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    total = float(mean.sum()) or 1.0
    return [{"index": i, "name": n.name, "op": n.op, "instret": int(round(m)), "share": float(m / total)}
            for i, (n, m) in enumerate(zip(graph.nodes, mean, strict=True))]


def ok(summary: dict[str, Any]) -> bool:
    """True when every window was answered, once, bit-exactly."""
    return (summary["lost"] == 0 and summary["mismatched"] == 0 and summary["duplicated"] == 0
            and summary["answered"] == summary["windows"])
