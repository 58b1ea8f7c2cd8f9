"""What a Jetson bundle carries beside model.so: run.py, a standalone copy of the card's reading of recordings (the
EEG training preprocessing, or a sensor card's raw/EDF reader), model.json, README.md, the runtime build script."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgeflow.resources import firmware_dir
from edgeflow.target import Target

LIBRARY = "model.so"
TRTEXEC = "/usr/src/tensorrt/bin/trtexec --onnx=model.onnx --saveEngine=model.plan --int8 --fp16"
EEG_ROW = ("`edgeflow_eeg.py` | edgeflow's preprocessing (montage, band-pass, resample, IQR normalisation, windows), "
           "copied at build time")
SENSOR_ROW = ("`edgeflow_sensor.py` | the sensor card's reading of CSV/NPY/NPZ/WAV/EDF recordings (channels by name "
              "or order, rate check, windows, (raw - offset) * scale), copied at build time")


def _preprocess(card: Any | None) -> dict[str, Any]:
    """model.json's "preprocess": the EEG Preprocess of the card (default: femba's), or a sensor card's input
    (kind "sensor": channels, rate, window, stride, scaling) for the bundle's edgeflow_sensor.py."""
    from edgeflow.cards import SENSOR
    from edgeflow.data.eeg import Preprocess

    if card is not None and card.kind == SENSOR:
        i = card.input
        return {"kind": SENSOR, "channels": list(i.montage), "sample_rate": i.sample_rate, "window_s": i.window_s,
                "stride_s": i.stride_s, "scale": list(i.scale) if i.scale else None,
                "offset": list(i.offset) if i.offset else None}
    return (Preprocess.from_card(card) if card is not None else Preprocess()).to_dict()


def write_bundle(out_dir: Path, target: Target, card: Any | None, onnx_name: str, info: dict[str, Any]) -> None:
    """run.py, the preprocessing copy, model.json, README.md and the runtime build script next to model.so."""
    from edgeflow.cards import SENSOR
    from edgeflow.data.standalone import preprocessing_copy, sensor_copy

    src = firmware_dir() / "jetson"
    shutil.copyfile(src / "run.py", out_dir / "run.py")
    shutil.copyfile(src / "build_tvm_runtime.sh", out_dir / "build_tvm_runtime.sh")
    (out_dir / "build_tvm_runtime.sh").chmod(0o755)
    sensor = card is not None and card.kind == SENSOR
    if sensor:
        (out_dir / "edgeflow_sensor.py").write_text(sensor_copy(), encoding="utf-8")
    else:
        eeg = preprocessing_copy()
        (out_dir / "edgeflow_eeg.py").write_text(
            '"""Copy of edgeflow/data/eeg.py written by `edgeflow build` (the training preprocessing, no edgeflow '
            'needed)."""\n' + eeg.split('"""', 2)[2], encoding="utf-8")
    meta = {"model": info["model"], "kind": card.kind if card is not None else "femba", "target": target.name,
            "device": info["device"], "library": LIBRARY, "onnx": onnx_name, "input": info["input"],
            "output": info["output"], "preprocess": _preprocess(card), "classes": class_names(card, info)}
    (out_dir / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    spec = target.tvm
    readme = (src / "README.md.in").read_text(encoding="utf-8")
    for key, value in {"MODEL": info["model"], "TARGET": target.name, "DESCRIPTION": target.description,
                       "CUDA": spec.cuda, "JETPACK": spec.jetpack, "ARCH": spec.arch, "ONNX": onnx_name,
                       "SHAPE": "x".join(str(d) for d in info["input"]["shape"]),
                       "INPUT": info["input"]["name"], "TRTEXEC": TRTEXEC, "READER": SENSOR_ROW if sensor else EEG_ROW,
                       "WINDOW": f"{meta['preprocess']['window_s']:g}"}.items():
        readme = readme.replace("{{" + key + "}}", str(value))
    (out_dir / "README.md").write_text(readme, encoding="utf-8")


def class_names(card: Any | None, info: dict[str, Any] | None = None) -> list[str]:
    """The card's classes (an EEG card: normal/abnormal for two); a card without [arch] (a sensor model): one per
    logit of the model's output."""
    if card is not None and card.arch is None:
        shape = (info or {}).get("output", {}).get("shape") or [2]
        return [f"class {i}" for i in range(int(shape[-1]) if shape[-1] else 2)]
    n = card.arch.n_classes if card is not None else 2
    return ["normal", "abnormal"] if n == 2 else [f"class {i}" for i in range(n)]
