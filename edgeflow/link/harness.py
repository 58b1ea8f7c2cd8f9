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
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeflow.errors import DataError
from edgeflow.ir.graph import Graph
from edgeflow.link.session import LinkError, ModelMismatchError, Session

if TYPE_CHECKING:
    from edgeflow.cards import ModelCard


@dataclass(frozen=True)
class Clock:
    """Where real-time pacing reads the time and waits (tests inject a virtual one: nothing sleeps for real)."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()  # what a StreamConfig without its own clock paces by (read when a stream starts)


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
    window_starts_s: tuple[float, ...] = ()  # each window's start in the recording (s): windows.jsonl, pacing
    clock: Clock | None = None       # None: SYSTEM_CLOCK

    def due_s(self, i: int) -> float:
        """When window i is due, seconds after the stream starts: its start in the recording minus the first's
        (an EDF+D gap is waited out, never streamed as if contiguous); i * stride without start times."""
        starts = self.window_starts_s
        return starts[i] - starts[0] if i < len(starts) else i * self.stride_s

    def deadline_s(self, i: int, n: int) -> float:
        """Window i's answer is late after this (from the stream start): when the next window is due, one stride
        after window i for the last one."""
        return self.due_s(i + 1) if i + 1 < min(n, len(self.window_starts_s)) else self.due_s(i) + self.stride_s


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


def load_stream_windows(recording: Path | None, card: str | ModelCard = "femba-mini", stride_s: float | None = None,
                        n_windows: int | None = None, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Float windows (N, C, W) of a recording through the card's preprocessing: an EEG card's training one (MNE
    read, montage, band-pass, resample, IQR normalisation), a sensor card's (raw CSV/NPY/NPZ/WAV, scaling);
    without a recording, a synthetic one."""
    from edgeflow.cards import SENSOR, load_card
    from edgeflow.data.eeg import DataWarning, Preprocess, load_timed_windows
    from edgeflow.data.raw import RAW_SUFFIXES, is_raw

    card = load_card(card) if isinstance(card, (str, Path)) else card
    if card.kind == SENSOR:
        return _sensor_windows(recording, card, stride_s, n_windows, seed)
    if recording is not None and is_raw(recording):
        raise DataError(f"{recording}: card '{card.name}' (kind {card.kind}) reads EEG recordings (EDF/BDF/FIF/"
                        f"BrainVision); raw {'/'.join(s[1:].upper() for s in RAW_SUFFIXES)} files need a sensor card "
                        '(model.kind = "sensor")')
    pp = Preprocess.from_card(card)
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
    meta = {"recording": str(recording) if recording else f"synthetic (seed {seed})", "card": card.name,
            "window_s": pp.window_s, "stride_s": pp.stride_s, "sample_rate": pp.sample_rate, "windows": len(x),
            "window_starts_s": [round(float(t), 6) for t in starts]}
    return x, meta


def _sensor_windows(recording: Path | None, card: ModelCard, stride_s: float | None, n_windows: int | None,
                    seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    from edgeflow.data.raw import read_sensor, sensor_window_starts, sensor_windows, synth_sensor

    i = card.input
    stride = float(stride_s or i.stride_s)
    if recording is None:
        rec = synth_sensor(card, i.window_s + ((n_windows or 8) - 1) * stride, seed)
    else:
        rec = read_sensor(recording, card)
    x, starts = sensor_windows(rec, card, stride), sensor_window_starts(rec, card, stride)
    if n_windows is not None:
        x, starts = x[:n_windows], starts[:n_windows]
    meta = {"recording": rec.source, "card": card.name, "window_s": i.window_s, "stride_s": stride,
            "sample_rate": i.sample_rate, "windows": len(x),
            "window_starts_s": starts}
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


def _one_window(session: Session, graph: Graph, i: int, x: np.ndarray, cfg: StreamConfig, t0: float,
                n: int) -> WindowRecord:
    """Send window i (waiting for its due time in real-time mode), check the answer against the reference."""
    from edgeflow.ir.reference import run

    seq = (i % 0xEFFF) + 1  # 1 .. 0xEFFF; 0 is the boot INFO's, 0xF000+ are handshakes
    clock = cfg.clock or SYSTEM_CLOCK
    if cfg.realtime and (wait := t0 + cfg.due_s(i) - clock.now()) > 0:
        clock.sleep(wait)
    try:
        ans = session.infer(seq, np.ascontiguousarray(x, dtype=np.int8).tobytes())
    except ModelMismatchError:  # a re-handshake met another model: nothing more to check
        raise
    except LinkError:
        ans = None
    done = clock.now()  # the device's part ends here; the reference runs on the host's time
    expected = np.asarray(run(graph, x)[graph.outputs[0]]).reshape(-1).astype(np.int64)
    start = cfg.window_starts_s[i] if i < len(cfg.window_starts_s) else None
    if ans is None:
        return WindowRecord(i, seq, False, False, session.retries + 1, None, cfg.realtime, None, None,
                            expected.tolist(), start_s=start)
    got = np.asarray(ans.output.values, dtype=np.int64)
    late = cfg.realtime and done > t0 + cfg.deadline_s(i, n)
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
    now = (cfg.clock or SYSTEM_CLOCK).now
    t0 = now()
    lost_run, aborted = 0, ""
    try:
        for i, x in enumerate(xq):
            rec = _one_window(session, graph, i, x, cfg, t0, len(xq))
            lost_run = 0 if rec.answered else lost_run + 1
            records.append(rec)
            if jsonl is not None:
                jsonl.write(json.dumps(asdict(rec)) + "\n")
                jsonl.flush()
            if on_window is not None:
                on_window(rec, summarize(records, session, cfg, now() - t0, len(xq)))
            if lost_run >= cfg.max_consecutive_lost:
                aborted = f"{lost_run} windows in a row lost; device not answering"
                break
    except KeyboardInterrupt:  # Ctrl-C: keep what was checked; the windows not sent count as lost
        aborted = "interrupted"
    finally:
        if jsonl is not None:
            jsonl.close()
    summary = summarize(records, session, cfg, now() - t0, len(xq))
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
