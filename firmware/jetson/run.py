"""Board side of an edgeflow Jetson build: load model.so with the TVM runtime, classify a recording window by
window with the card's reading of it (an EEG card: the training preprocessing, edgeflow_eeg.py; a sensor card:
CSV/NPY/NPZ/WAV/EDF through edgeflow_sensor.py; both copied from edgeflow at build time), print predictions,
latency and the real-time factor. Needs numpy, scipy, mne (EEG) and the TVM runtime; not edgeflow itself."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


class BundleError(RuntimeError):
    """The bundle cannot run here: missing files, no TVM runtime, no CUDA device."""


def _tvm():
    try:
        import tvm
        from tvm import relax
    except ImportError as e:
        raise BundleError(f"the TVM runtime is not importable ({e}); on the board: pip3 install "
                          "apache-tvm==0.27.0.post1, then ./build_tvm_runtime.sh (README.md)") from None
    return tvm, relax


class Model:
    """The compiled model of a bundle on one device ('cuda' on the board, 'cpu' for a --host-only build)."""

    def __init__(self, bundle: Path = HERE, library: Path | None = None, device: str | None = None) -> None:
        self.bundle = Path(bundle)
        self.meta = json.loads((self.bundle / "model.json").read_text())
        self.library = Path(library) if library else self.bundle / self.meta["library"]
        self.device_kind = device or self.meta["device"]
        if not self.library.is_file():
            raise BundleError(f"{self.library}: library not found")
        tvm, relax = _tvm()
        self._tvm = tvm
        dev = tvm.cuda(0) if self.device_kind == "cuda" else tvm.cpu(0)
        if self.device_kind == "cuda" and not dev.exist:
            raise BundleError("no CUDA device visible to TVM: is libtvm_runtime_cuda.so built against this "
                              "board's CUDA? run ./build_tvm_runtime.sh (README.md)")
        try:
            lib = tvm.runtime.load_module(str(self.library))
        except Exception as e:  # TVM raises its own error types; the user needs the one line
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise BundleError(f"{self.library}: cannot load ({msg}); a CUDA library needs TVM's CUDA runtime "
                              "built for this board: ./build_tvm_runtime.sh") from None
        self.dev = dev
        self.vm = relax.VirtualMachine(lib, dev)
        self.main = self.vm["main"]
        self.shape = tuple(self.meta["input"]["shape"])

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """Logits of one (C, W) float32 window (the model is compiled for batch 1)."""
        x = np.ascontiguousarray(window, dtype=np.float32).reshape(self.shape)
        out = self.main(self._tvm.runtime.tensor(x, device=self.dev))
        return np.asarray(out.numpy(), dtype=np.float32).reshape(-1)

    def run_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, classes) and per-window seconds (input copy, run, result copy back)."""
        logits, secs = [], []
        for w in windows:
            t0 = time.perf_counter()
            logits.append(self(w))
            secs.append(time.perf_counter() - t0)
        return np.stack(logits), np.asarray(secs)


def preprocess_config(meta: dict):
    """The card's preprocessing, as recorded in model.json, for the bundled copy of edgeflow's eeg module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"edgeflow_eeg_{abs(hash(str(HERE)))}", HERE / "edgeflow_eeg.py")
    eeg = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = eeg  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(eeg)
    pp = dict(meta["preprocess"])
    pp["bandpass"] = tuple(pp["bandpass"]) if pp.get("bandpass") else None
    if isinstance(pp.get("montage"), list):
        pp["montage"] = tuple(pp["montage"])
    return eeg, eeg.Preprocess(**pp)


def _bundled(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(str(HERE)))}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod


class _SensorInput:
    """A sensor card's [input] as model.json records it, shaped as edgeflow_sensor.py reads a card."""

    def __init__(self, pp: dict) -> None:
        self.montage = tuple(pp["channels"])
        self.sample_rate, self.window_s = float(pp["sample_rate"]), float(pp["window_s"])
        self.stride_s = float(pp["stride_s"])
        self.scale = tuple(pp["scale"]) if pp.get("scale") else None
        self.offset = tuple(pp["offset"]) if pp.get("offset") else None
        self.window_samples = int(round(self.window_s * self.sample_rate))
        self.n_channels = len(self.montage)


class _SensorCard:
    def __init__(self, meta: dict) -> None:
        self.name, self.kind, self.input = meta["model"], "sensor", _SensorInput(meta["preprocess"])


def load_timed_windows(path: Path, meta: dict) -> tuple[np.ndarray, list[float]]:
    """(N, C, W) float32 windows of the recording as edgeflow makes them for the card, and each window's start (s)."""
    if meta["preprocess"].get("kind") == "sensor":
        raw, card = _bundled("edgeflow_sensor"), _SensorCard(meta)
        rec = raw.read_sensor(path, card)
        return raw.sensor_windows(rec, card), raw.sensor_window_starts(rec, card)
    eeg, pp = preprocess_config(meta)
    x, starts = eeg.load_timed_windows(path, pp)
    return x, [float(t) for t in starts]


def load_windows(path: Path, meta: dict) -> np.ndarray:
    """(N, C, W) float32 windows of the recording, exactly as edgeflow prepares them for the card."""
    return load_timed_windows(path, meta)[0]


def summarise(logits: np.ndarray, secs: np.ndarray, stride_s: float, classes: list[str]) -> dict:
    pred = logits.argmax(axis=1)
    mean = float(secs.mean())
    return {"windows": int(len(pred)), "latency_mean_ms": mean * 1e3, "latency_p50_ms": float(np.median(secs)) * 1e3,
            "latency_p95_ms": float(np.percentile(secs, 95)) * 1e3, "real_time_factor": mean / stride_s,
            "counts": {classes[c] if c < len(classes) else str(c): int((pred == c).sum()) for c in np.unique(pred)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Classify a recording with this edgeflow Jetson build.")
    p.add_argument("recording", help="EDF/BDF/FIF/BrainVision recording (an EEG card), CSV/NPY/NPZ/WAV/EDF (a sensor "
                                     "card)")
    p.add_argument("--bundle", default=str(HERE), help="bundle folder (default: this script's folder)")
    p.add_argument("--lib", help="library to load (default: model.json's, model.so)")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: the device the library was built for")
    p.add_argument("--windows", type=int, help="classify at most N windows")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before the first window (default 2)")
    p.add_argument("--json", help="also write per-window results and the summary to this file")
    a = p.parse_args(argv)
    try:
        meta = json.loads((Path(a.bundle) / "model.json").read_text())
        x, starts = load_timed_windows(Path(a.recording), meta)
        model = Model(Path(a.bundle), Path(a.lib) if a.lib else None, a.device)
    except (BundleError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x = x[: a.windows] if a.windows else x
    for _ in range(max(0, a.warmup)):
        model(x[0])
    logits, secs = model.run_windows(x)
    classes, stride = model.meta["classes"], float(model.meta["preprocess"]["stride_s"])
    print(f"{model.meta['model']} on {model.device_kind} ({model.library.name}), {len(x)} windows of "
          f"{model.meta['preprocess']['window_s']:g} s from {a.recording}")
    rows = []
    for i, (lg, s) in enumerate(zip(logits, secs, strict=True)):
        c = int(lg.argmax())
        rows.append({"window": i, "start_s": starts[i], "class": c, "logits": lg.tolist(), "latency_ms": s * 1e3})
        name = classes[c] if c < len(classes) else str(c)
        print(f"window {i:4d}  t={starts[i]:8.1f} s  class {c} ({name})  logits "
              f"{' '.join(f'{v:+.4f}' for v in lg)}  {s * 1e3:.2f} ms")
    summ = summarise(logits, secs, stride, classes)
    print(f"latency mean {summ['latency_mean_ms']:.2f} ms, p50 {summ['latency_p50_ms']:.2f} ms, p95 "
          f"{summ['latency_p95_ms']:.2f} ms; real-time factor {summ['real_time_factor']:.4f} "
          f"({1 / summ['real_time_factor']:.0f}x faster than real time); predictions {summ['counts']}")
    if a.json:
        Path(a.json).write_text(json.dumps({"windows": rows, "summary": summ}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
