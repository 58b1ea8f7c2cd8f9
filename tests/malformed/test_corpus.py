"""The malformed-input corpus: every case runs through the real CLI (`edgeflow.cli.main`) and must give its exact
error line and exit code, no traceback, and leave the tmp tree (inputs, cwd, the --out it was asked to write)
exactly as it was: no partial build folder, no changed or deleted file."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgeflow.cli import main

from . import formats
from . import inputs as mk

pytestmark = pytest.mark.unit

ARCH_FEMBA = "patch, embed_channels, n_blocks, n_classes, expand, d_state, dt_rank, d_conv"
ARCH_VIT = "patch, embed_channels, n_blocks, n_classes, n_heads, mlp_ratio"
ERR = "edgeflow: error: "


@dataclass(frozen=True)
class Case:
    """argv built under the case's input folder `t`; `line` the exact last stderr line ({t} = that folder), or
    a regex with `regex` (for rc 0: a line that must appear, e.g. a warning); rc the exit code."""

    id: str
    make: Callable[[Path], list[str]]
    line: str | None
    rc: int = 2
    regex: bool = False
    marks: tuple = ()


def build_random(card: str, t: Path, target: str = "host") -> list[str]:
    return ["build", "--card", card, "--init", "random", "--target", target, "--out", str(t / "out")]


def info(p: Path) -> list[str]:
    return ["model", "info", str(p)]


def inspect(p: Path) -> list[str]:
    return ["data", "inspect", str(p), "--card", "femba-micro"]


def stream(b: Path, *extra: str) -> list[str]:
    return ["stream", "--build", str(b), "--no-progress", *extra]


CARDS = [
    Case("card-sample-rate-string", lambda t: info(mk.card(t, "c", ("sample_rate = 256.0", 'sample_rate = "fast"'))),
         ERR + "{t}/c.toml: input.sample_rate = 'fast' must be a number in [1, 16384]"),
    Case("card-sample-rate-zero", lambda t: info(mk.card(t, "c", ("sample_rate = 256.0", "sample_rate = 0")))
         , ERR + "{t}/c.toml: input.sample_rate = 0 must be a number in [1, 16384]"),
    Case("card-embed-channels-string", lambda t: info(mk.card(t, "c", ("embed_channels = 4", 'embed_channels = "x"'))),
         ERR + "{t}/c.toml: arch.embed_channels = 'x' must be an integer in [1, 4096]"),
    Case("card-embed-channels-zero", lambda t: info(mk.card(t, "c", ("embed_channels = 4", "embed_channels = 0"))),
         ERR + "{t}/c.toml: arch.embed_channels = 0 must be an integer in [1, 4096]"),
    Case("card-d-model-zero", lambda t: info(mk.card(t, "c", ("n_blocks = 1", "n_blocks = 1\nd_model = 0"))),
         ERR + "{t}/c.toml: arch.d_model is derived (d_model = embed_channels x channels / patch[0]), not set "
               f"(fields of [arch]: {ARCH_FEMBA})"),
    Case("card-negative-blocks-build",
         lambda t: build_random(str(mk.card(t, "c", ("n_blocks = 1", "n_blocks = -1"))), t),
         ERR + "{t}/c.toml: arch.n_blocks = -1 must be an integer in [1, 64]"),
    Case("card-negative-d-state", lambda t: info(mk.card(t, "c", ("d_state = 4", "d_state = -4"))),
         ERR + "{t}/c.toml: arch.d_state = -4 must be an integer in [1, 256]"),
    Case("card-zero-patch", lambda t: info(mk.card(t, "c", ("patch = [2, 16]", "patch = [0, 16]"))),
         ERR + "{t}/c.toml: arch.patch = [0, 16] must be a list of two integers in [1, 4096]"),
    Case("card-scan-state-too-large-build",
         lambda t: build_random(str(mk.card(t, "c", ("d_state = 4", "d_state = 512"))), t),
         ERR + "{t}/c.toml: arch.d_state = 512 must be an integer in [1, 256]"),
    Case("card-unknown-field", lambda t: info(mk.card(t, "c", ("d_conv = 4", "d_conv = 4\nd_stat = 8"))),
         ERR + f"{{t}}/c.toml: arch.d_stat is not a known field (fields of [arch]: {ARCH_FEMBA})"),
    Case("card-unknown-section", lambda t: info(mk.card(t, "c", ("[train]", "[optimizer]\nname = 'adam'\n\n[train]"))),
         ERR + "{t}/c.toml: unknown section [optimizer] (sections: model, input, arch, train, quant)"),
    Case("card-missing-arch", lambda t: info(mk.raw_card(t, "c", '[model]\nname = "x"\n[input]\n')),
         ERR + "{t}/c.toml: missing section [arch] (model.kind is not set, so it is \"femba\"; a sensor card sets "
               "model.kind = \"sensor\")"),
    Case("card-femba-without-dt-rank", lambda t: info(mk.card(t, "c", ("dt_rank = 4\n", ""))),
         ERR + "{t}/c.toml: arch.dt_rank is required for model.kind 'femba' (an integer in [1, 4096])"),
    Case("card-transformer-with-femba-field",
         lambda t: info(mk.card(t, "c", ("n_heads = 4", "n_heads = 4\nd_state = 8"), base="vit-tiny-eeg")),
         ERR + f"{{t}}/c.toml: arch.d_state is not used by model.kind 'transformer' (fields of [arch]: {ARCH_VIT})"),
    Case("card-transformer-needs-no-femba-field",  # control: the shipped transformer card has none and loads
         lambda t: info(mk.card(t, "c", ("mlp_ratio = 2", "mlp_ratio = 2"), base="vit-tiny-eeg")), None, rc=0),
    Case("card-unknown-kind", lambda t: info(mk.card(t, "c", ('kind = "femba"', 'kind = "rnn"'))),
         ERR + "{t}/c.toml: model.kind = 'rnn' must be one of femba, transformer, sensor"),
    Case("card-not-toml", lambda t: info(mk.raw_card(t, "c", "[model\nname = 1\n")),
         ERR + "{t}/c.toml: not valid TOML (Expected ']' at the end of a table declaration (at line 1, column 7))"),
    Case("card-bool-size", lambda t: info(mk.card(t, "c", ("n_blocks = 1", "n_blocks = true"))),
         ERR + "{t}/c.toml: arch.n_blocks = true must be an integer in [1, 64]"),
    Case("card-float-size", lambda t: info(mk.card(t, "c", ("n_blocks = 1", "n_blocks = 1.5"))),
         ERR + "{t}/c.toml: arch.n_blocks = 1.5 must be an integer in [1, 64]"),
    Case("card-nan-lr", lambda t: info(mk.card(t, "c", ("lr = 2e-3", "lr = nan"))),
         ERR + "{t}/c.toml: train.lr = nan must be a number in (0, 10]"),
    Case("card-negative-epochs", lambda t: info(mk.card(t, "c", ("finetune_epochs = 2", "finetune_epochs = -2"))),
         ERR + "{t}/c.toml: train.finetune_epochs = -2 must be an integer in [0, 100000]"),
    Case("card-quant-bits", lambda t: info(mk.card(t, "c", ("head = 8", "head = 3"))),
         ERR + "{t}/c.toml: quant.head = 3 must be a weight bit width, one of 2, 4, 8"),
    Case("card-window-not-patch-multiple", lambda t: info(mk.card(t, "c", ("window_s = 5.0", "window_s = 5.01"))),
         ERR + "{t}/c.toml: window of 1283 samples (input.window_s x input.sample_rate) not a positive multiple of "
               "arch.patch[1]=16"),
    Case("card-bandpass-above-nyquist", lambda t: info(mk.card(t, "c", ("bandpass = [0.5, 70.0]",
                                                                        "bandpass = [0.5, 200.0]"))),
         ERR + "{t}/c.toml: input.bandpass [0.5, 200.0] must satisfy 0 <= low < high < input.sample_rate/2 = 128"),
    Case("card-electrodes-not-1020",
         lambda t: info(mk.card(t, "c", ('montage = "tcp"', 'montage = "tcp"\nelectrodes = { XX9 = "A1" }'))),
         ERR + "{t}/c.toml: input.electrodes = {'XX9': 'A1'} must be a table of 10-20 electrode names to distinct "
               "recorded channel labels"),
    Case("card-electrodes-one-label-twice",
         lambda t: info(mk.card(t, "c", ('montage = "tcp"',
                                         'montage = "tcp"\nelectrodes = { FP1 = "A1", FP2 = "A1" }'))),
         ERR + "{t}/c.toml: input.electrodes = {'FP1': 'A1', 'FP2': 'A1'} must be a table of 10-20 electrode names to "
               "distinct recorded channel labels"),
    Case("card-montage-word", lambda t: info(mk.card(t, "c", ('montage = "tcp"', 'montage = "xyz"'))),
         ERR + "{t}/c.toml: input.montage = 'xyz' must be 'tcp' or a list of channel names"),
]

SENSOR_CARDS = [
    Case("card-sensor-without-channels", lambda t: info(mk.sensor_card(t, "c", ('channels = ["x", "y", "z"]', ""))),
         ERR + "{t}/c.toml: input.channels is required for model.kind 'sensor' (a channel count in [1, 4096] or a "
               "list of distinct channel names)"),
    Case("card-sensor-without-rate", lambda t: info(mk.sensor_card(t, "c", ("sample_rate = 50.0", ""))),
         ERR + "{t}/c.toml: input.sample_rate is required for model.kind 'sensor' (a number in [1, 16384])"),
    Case("card-sensor-with-arch",
         lambda t: info(mk.sensor_card(t, "c", ("[input]", "[arch]\nn_blocks = 1\n\n[input]"))),
         ERR + "{t}/c.toml: section [arch] is not used by model.kind 'sensor' (sections: model, input)"),
    Case("card-sensor-with-montage", lambda t: info(mk.sensor_card(t, "c", ("offset = 0.0", 'montage = "tcp"'))),
         ERR + "{t}/c.toml: input.montage is not used by model.kind 'sensor' (fields of [input]: channels, "
               "sample_rate, window_s, stride_s, scale, offset)"),
    Case("card-sensor-scale-count", lambda t: info(mk.sensor_card(t, "c", ("scale = 0.10197", "scale = [1.0, 2.0]"))),
         ERR + "{t}/c.toml: input.scale has 2 values for 3 channels (give one number or one per channel)"),
    Case("card-sensor-scale-word", lambda t: info(mk.sensor_card(t, "c", ("scale = 0.10197", 'scale = "g"'))),
         ERR + "{t}/c.toml: input.scale = 'g' must be a number or a list of numbers, one per channel"),
    Case("card-sensor-channels-zero", lambda t: info(mk.sensor_card(t, "c", ('channels = ["x", "y", "z"]',
                                                                              "channels = 0"))),
         ERR + "{t}/c.toml: input.channels = 0 must be a channel count in [1, 4096] or a list of distinct channel "
               "names"),
    Case("card-sensor-window-fraction", lambda t: info(mk.sensor_card(t, "c", ("window_s = 2.0", "window_s = 2.01"))),
         ERR + "{t}/c.toml: input.window_s = 2.01 s x input.sample_rate = 50 Hz is 100.5 samples, not a whole "
               "positive number"),
    Case("card-onnx-input-mismatch",
         lambda t: ["build", "--card", "accel-har", "--onnx", str(mk.MICRO_ONNX), "--out", str(t / "out")],
         ERR + f"{mk.MICRO_ONNX}: the model's input is [22, 1280] (without batch), card 'accel-har' makes windows of "
               "[3, 100] (3 channels x 2 s x 50 Hz)"),
    Case("card-onnx-without-card-or-rate", lambda t: ["build", "--onnx", str(mk.MICRO_ONNX), "--out", str(t / "o")],
         ERR + f"{mk.MICRO_ONNX}: no --card given: the model's input is 22 channels x 1280 samples; give its "
               "sampling rate with --sfreq HZ, or a card with --card"),
    Case("card-onnx-sfreq-contradicts-card",
         lambda t: ["build", "--card", "femba-micro", "--sfreq", "250", "--onnx", str(mk.MICRO_ONNX)],
         ERR + "--sfreq 250 contradicts card 'femba-micro' (input.sample_rate = 256); drop one of them"),
    Case("card-sensor-build-without-onnx", lambda t: ["build", "--card", "accel-har", "--init", "random"],
         ERR + "card 'accel-har' (kind sensor) describes a model given as ONNX: build it with --onnx MODEL.onnx"),
    Case("card-sensor-train", lambda t: ["train", "--card", "accel-har"],
         ERR + "card 'accel-har' (kind sensor) has no [arch]: `edgeflow train` makes edgeflow's own femba/transformer "
               "networks; compile your own model with `edgeflow build --onnx`"),
    Case("card-stream-contradicts-build",
         lambda t: stream(mk.recorded_build(t), "--card", "accel-har", "--port", "/dev/null"),
         ERR + f"--card {mk.MODELS}/accel-har.toml contradicts the card this build was made with "
               "({t}/build/card.toml): model.kind sensor vs femba; drop --card to use the recorded one"),
    Case("card-stream-recorded-card-corrupt",
         lambda t: stream(_card_file(t, "[model\n"), "--port", "/dev/null"),
         ERR + "{t}/build/card.toml: not valid TOML (Expected ']' at the end of a table declaration (at line 1, "
               "column 7))"),
]

OPTIONS = [
    Case("opt-build-check-negative", lambda t: ["build", "--check", "-1"],
         "edgeflow build: error: argument --check: -1 is outside [0, 100000]"),
    Case("opt-build-check-word", lambda t: ["build", "--check", "x"],
         "edgeflow build: error: argument --check: 'x' is not an integer"),
    Case("opt-train-batch-size-negative", lambda t: ["train", "--batch-size", "-1"],
         "edgeflow train: error: argument --batch-size: -1 is outside [1, inf]"),
    Case("opt-train-subjects-zero", lambda t: ["train", "--subjects", "0"],
         "edgeflow train: error: argument --subjects: 0 is outside [2, 100000]"),
    Case("opt-train-subjects-negative", lambda t: ["train", "--subjects", "-3"],
         "edgeflow train: error: argument --subjects: -3 is outside [2, 100000]"),
    Case("opt-train-epochs-negative", lambda t: ["train", "--finetune-epochs", "-1"],
         "edgeflow train: error: argument --finetune-epochs: -1 is outside [0, inf]"),
    Case("opt-synth-duration-zero", lambda t: ["data", "synth", "--out", str(t / "o"), "--duration", "0"],
         "edgeflow data synth: error: argument --duration: 0.0 is outside [5, 86400]"),
    Case("opt-synth-sfreq-zero", lambda t: ["data", "synth", "--out", str(t / "o"), "--sfreq", "0"],
         "edgeflow data synth: error: argument --sfreq: 0.0 is outside [128, 16384]"),
    Case("opt-stream-windows-zero", lambda t: stream(t, "--windows", "0"),
         "edgeflow stream: error: argument --windows: 0 is outside [1, inf]"),
    Case("opt-stream-windows-negative", lambda t: stream(t, "--windows", "-1"),
         "edgeflow stream: error: argument --windows: -1 is outside [1, inf]"),
    Case("opt-stream-timeout-zero", lambda t: stream(t, "--timeout", "0"),
         "edgeflow stream: error: argument --timeout: 0.0 must be > 0"),
    Case("opt-stream-retries-negative", lambda t: stream(t, "--retries", "-1"),
         "edgeflow stream: error: argument --retries: -1 is outside [0, 1000]"),
    Case("opt-stream-stride-nan", lambda t: stream(t, "--stride", "nan"),
         "edgeflow stream: error: argument --stride: 'nan' is not a finite number"),
    Case("opt-build-out-is-a-file",
         lambda t: ["build", "--card", "femba-micro", "--onnx", str(mk.MICRO_ONNX), "--out",
                    str(mk.raw_card(t, "notes", "keep me"))],
         ERR + "{t}/notes.toml: exists and is not a folder; give another --out"),
    Case("opt-synth-out-is-a-file",
         lambda t: ["data", "synth", "--out", str(mk.raw_card(t, "notes", "keep me")), "--subjects", "2",
                    "--duration", "5", "--no-progress"],
         ERR + "{t}/notes.toml: exists and is not a folder"),
]

def inspect_sensor(p: Path, card: str = "accel-har") -> list[str]:
    return ["data", "inspect", str(p), "--card", card]


SENSOR_RECORDINGS = [
    Case("rec-csv-word-cell", lambda t: inspect_sensor(mk.csv_file(t, "w.csv", rows=[[1, 2, 3], [4, "up", 6]])),
         ERR + "{t}/w.csv: row 3, column 2: 'up' is not a number"),
    Case("rec-csv-ragged-row", lambda t: inspect_sensor(mk.csv_file(t, "r.csv", extra="1.0,2.0")),
         ERR + "{t}/r.csv: row 152 has 2 column(s), expected 3"),
    Case("rec-csv-wrong-columns", lambda t: inspect_sensor(mk.csv_file(t, "c.csv", header="a,b",
                                                                       rows=mk.sensor_rows(channels=2))),
         ERR + "{t}/c.csv: 2 column(s) (a, b), the card has 3 channel(s) (x, y, z)"),
    Case("rec-csv-empty", lambda t: inspect_sensor(mk.edf.write(t / "e.csv", b"")),
         ERR + "{t}/e.csv: no rows (empty CSV)"),
    Case("rec-csv-header-only", lambda t: inspect_sensor(mk.csv_file(t, "h.csv", rows=[])),
         ERR + "{t}/h.csv: a header and no data rows"),
    Case("rec-csv-not-text", lambda t: inspect_sensor(mk.edf.write(t / "b.csv", b"\xff\xfe\x00\x81" * 40)),
         ERR + "{t}/b.csv: cannot read as CSV (UnicodeDecodeError)"),
    Case("rec-csv-too-short", lambda t: inspect_sensor(mk.csv_file(t, "s.csv", rows=mk.sensor_rows(60))),
         ERR + "{t}/s.csv: no usable 2 s window (recording lasts 1.20 s)"),
    Case("rec-csv-inf", lambda t: inspect_sensor(mk.csv_file(t, "i.csv", rows=[[1, 2, 3], [4, "inf", 6]])),
         ERR + "{t}/i.csv: non-finite value inf at index [1, 1]"),
    Case("rec-npy-square", lambda t: inspect_sensor(mk.npy_file(t, "sq.npy", np.zeros((3, 3))) ),
         ERR + "{t}/sq.npy: shape [3, 3] is ambiguous: both axes have the card's 3 channels; save it as (samples, "
               "channels) with more samples than channels"),
    Case("rec-npy-no-channel-axis", lambda t: inspect_sensor(mk.npy_file(t, "five.npy", np.zeros((200, 5)))),
         ERR + "{t}/five.npy: shape [200, 5] has no axis of the card's 3 channels"),
    Case("rec-npy-3d", lambda t: inspect_sensor(mk.npy_file(t, "cube.npy", np.zeros((2, 3, 100)))),
         ERR + "{t}/cube.npy: array of shape [2, 3, 100], expected 2-D (samples, channels) or (channels, samples) "
               "with 3 channels"),
    Case("rec-npy-strings", lambda t: inspect_sensor(mk.npy_file(t, "s.npy", np.array([["a"] * 3] * 150)))
         , ERR + "{t}/s.npy: array of dtype <U1, expected numbers"),
    Case("rec-npy-nan", lambda t: inspect_sensor(mk.npy_file(t, "n.npy", np.where(np.arange(450).reshape(150, 3) == 7,
                                                                                   np.nan, 1.0))),
         ERR + "{t}/n.npy: non-finite value nan at index [2, 1]"),
    Case("rec-npy-garbage", lambda t: inspect_sensor(mk.edf.write(t / "g.npy", b"hello world\n" * 3)),
         r"edgeflow: error: {t}/g\.npy: cannot read as NPY \((ValueError|UnpicklingError|OSError): .*\)", regex=True),
    Case("rec-npz-unnamed-arrays", lambda t: inspect_sensor(mk.npz_file(t, "k.npz", a=np.zeros((150, 3)),
                                                                        b=np.zeros(4))),
         ERR + "{t}/k.npz: NPZ holds a, b; name the recording one of data, x, signal, samples (or save a single "
               "array)"),
    Case("rec-npz-rate-mismatch", lambda t: inspect_sensor(mk.npz_file(t, "r.npz", data=np.zeros((150, 3)),
                                                                       sample_rate=np.array(100.0))),
         ERR + "{t}/r.npz: sampled at 100 Hz, the card 'accel-har' expects 50 Hz (resample it, or use a card with "
               "that input.sample_rate)"),
    Case("rec-wav-rate-mismatch", lambda t: inspect_sensor(mk.wav_file(t, "r.wav", rate=8000)),
         ERR + "{t}/r.wav: sampled at 8000 Hz, the card 'accel-har' expects 50 Hz (resample it, or use a card with "
               "that input.sample_rate)"),
    Case("rec-wav-channels", lambda t: inspect_sensor(mk.wav_file(t, "m.wav", a=np.zeros(200, np.int16))),
         ERR + "{t}/m.wav: WAV has 1 channel(s), the card has 3"),
    Case("rec-wav-int32", lambda t: inspect_sensor(mk.wav_file(t, "i.wav", a=np.zeros((200, 3), np.int32))),
         ERR + "{t}/i.wav: WAV samples are int32; edgeflow reads 16-bit PCM or float WAV"),
    Case("rec-wav-not-wav", lambda t: inspect_sensor(mk.edf.write(t / "n.wav", b"RIFX" + b"\0" * 40)),
         r"edgeflow: error: {t}/n\.wav: cannot read as WAV \(ValueError: .*\)", regex=True),
    Case("rec-raw-with-eeg-card", lambda t: inspect_sensor(mk.csv_file(t, "e.csv"), "femba-micro"),
         ERR + "{t}/e.csv: card 'femba-micro' (kind femba) reads EEG recordings; raw CSV/NPY/NPZ/WAV files need a "
               'sensor card (--card accel-har or your own with model.kind = "sensor")'),
    Case("rec-edf-with-sensor-card", lambda t: inspect_sensor(mk.recording(t, "r.edf")),
         ERR + "{t}/r.edf: no signal labelled x, y, z (the file has EEG FP1-REF, EEG FP2-REF, EEG F3-REF, EEG F4-REF, "
               "EEG C3-REF, EEG C4-REF, EEG P3-REF, EEG P4-REF, ... (21 in all)); the card's channel names pick the "
               "signals by label"),
    Case("rec-sensor-unknown-type", lambda t: inspect_sensor(mk.edf.write(t / "r.txt", b"1,2,3\n")),
         ERR + "{t}/r.txt: unknown sensor file type '.txt' (a sensor card reads .csv, .npy, .npz, .wav, .edf, .bdf)"),
    Case("rec-sensor-missing-file", lambda t: inspect_sensor(t / "nope.csv"), ERR + "{t}/nope.csv: file not found"),
    Case("rec-csv-good", lambda t: inspect_sensor(mk.csv_file(t, "ok.csv")), None, rc=0),
]


BIOSEMI = tuple(f"{letter}{k}" for letter in "AB" for k in range(1, 33))
NO_EARS = tuple(f"EEG {e}-REF" for e in mk.edf.ELECTRODES if e not in ("A1", "A2"))
GAPS = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0]  # EDF+D record starts: 4 s, a 6 s gap, 3 s


def _edfd(t: Path, name: str, onsets: list[float]) -> Path:
    return mk.recording(t, name, data=mk.edf.signals(len(onsets), 256.0), onsets=onsets)


def _no_fdt(t: Path) -> Path:
    p = formats.eeglab(t / "rec.set", mk.edf.signals(6.0, 256.0), 256.0, mk.edf.LABELS, fdt=True)
    (t / "rec.fdt").unlink()
    return p


def _cut(p: Path, keep: int) -> Path:
    p.write_bytes(p.read_bytes()[:keep])
    return p


CLINIC_RECORDINGS = [  # issue 15: recordings as clinics write them
    Case("rec-biosemi-cap", lambda t: inspect(mk.recording(t, "cap.bdf", kind="bdf", labels=BIOSEMI,
                                                           data=mk.edf.signals(12.0, 256.0, n=64))),
         ERR + "{t}/cap.bdf: no usable 5 s window (BioSemi cap labels (A1..A32, B1..B32) are cap positions, not 10-20 "
               "electrodes; missing 19 channel(s) for the tcp montage: FP1, F7, T3, T5, O1, FP2, F8, T4, T6, O2, A1, "
               "C3, CZ, C4, A2, F3, P3, F4, P4 (map them in the card's input.electrodes))"),
    Case("rec-no-ear-electrodes", lambda t: inspect(mk.recording(t, "cap19.edf", labels=NO_EARS,
                                                                 data=mk.edf.signals(12.0, 256.0, n=19))),
         ERR + "{t}/cap19.edf: no usable 5 s window (missing channel(s) for the montage: A1, A2)"),
    Case("rec-edfd-no-window", lambda t: inspect(_edfd(t, "gaps.edf", GAPS)),
         ERR + "{t}/gaps.edf: no usable 5 s window (no stretch between the recording's 1 gap(s) lasts one 5 s window "
               "(the longest lasts 4.00 s))"),
    Case("rec-edfd-records-overlap", lambda t: inspect(_edfd(t, "back.edf", [0.0, 1.0, 2.0, 2.5, 3.5, 4.5])),
         ERR + "{t}/back.edf: data record 4 starts at 2.5 s, before record 3 ends (3 s)"),
    Case("rec-eeglab-without-fdt", lambda t: inspect(_no_fdt(t)),
         ERR + "{t}/rec.set: cannot read as EEGLAB (File {t}/rec.fdt not found.)"),
    Case("rec-gdf-not-gdf", lambda t: inspect(mk.edf.write(t / "rec.gdf", b"0       " + bytes(300))),
         ERR + "{t}/rec.gdf: cannot read as GDF (the first bytes b'0       ' are not a GDF 1.x/2.x header)"),
    Case("rec-gdf-truncated",
         lambda t: inspect(_cut(formats.gdf(t / "cut.gdf", mk.edf.signals(6.0, 256.0), 256.0, mk.edf.LABELS), 3000)),
         ERR + "{t}/cut.gdf: cannot read as GDF (truncated: 3000 bytes, its header alone declares 5632)"),
    Case("rec-cnt-truncated",
         lambda t: inspect(_cut(formats.cnt(t / "cut.cnt", mk.edf.signals(6.0, 256.0), 256.0, mk.edf.ELECTRODES),
                                 1500)),
         ERR + "{t}/cut.cnt: cannot read as Neuroscan CNT (header declares 21 electrodes, the file holds 1500 bytes, "
               "its headers alone need 2475)"),
    Case("rec-cnt-data-cut",
         lambda t: inspect(_cut(formats.cnt(t / "cut.cnt", mk.edf.signals(6.0, 256.0), 256.0, mk.edf.ELECTRODES),
                                 5000)),
         ERR + "{t}/cut.cnt: cannot read as Neuroscan CNT (Event table offset from header (66987) is larger than file "
               "size (5000), cannot automatically compute data format, pass data_format='int16' or 'int32' "
               "explicitly)"),
    Case("rec-cnt-ant-neuro", lambda t: inspect(mk.edf.write(t / "ant.cnt", b"RIFF" + bytes(2000))),
         ERR + "{t}/ant.cnt: an ANT Neuro CNT file (RIFF), not a Neuroscan one; this MNE reads it only with antio (not "
               "installed)"),
]

BDF_WARNING = "edgeflow: warning: {t}/bdf.edf: a BDF file named .edf; read as BDF"
RECORDINGS = [
    Case("rec-1hz", lambda t: inspect(mk.recording(t, "slow.edf", duration_s=60.0, sfreq=1.0)),
         ERR + "{t}/slow.edf: no usable 5 s window (sampled at 1 Hz, below the 64 Hz this model needs (its 256 Hz "
               "input upsampled at most 4x))"),
    Case("rec-bdf-named-edf", lambda t: inspect(mk.recording(t, "bdf.edf", kind="bdf")), BDF_WARNING, rc=0),
    Case("rec-nan-physical-range",
         lambda t: inspect(mk.recording(t, "nan.edf", signal_fields={2: {"pmax": "nan"}})),
         ERR + "{t}/nan.edf: channel 'EEG F3-REF': physical range -3200 .. nan is not finite"),
    Case("rec-inf-physical-range", lambda t: inspect(mk.recording(t, "inf.edf", phys=("-inf", 3200))),
         ERR + "{t}/inf.edf: channel 'EEG FP1-REF': physical range -inf .. 3200 is not finite"),
    Case("rec-1e22-volt-range", lambda t: inspect(mk.recording(t, "huge.edf", phys=(-1e22, 1e22), unit="V")),
         ERR + "{t}/huge.edf: channel 'EEG FP1-REF': physical range -1e+22 .. 1e+22 V reaches 1e+22 V, beyond the "
               "10 V of any EEG amplifier (corrupt header?)"),
    Case("rec-empty-physical-range", lambda t: inspect(mk.recording(t, "e.edf", signal_fields={4: {"pmax": -3200}})),
         ERR + "{t}/e.edf: channel 'EEG C3-REF': physical range -3200 .. -3200 is empty"),
    Case("rec-bad-digital-range",
         lambda t: inspect(mk.recording(t, "d.edf", signal_fields={1: {"dmin": 5, "dmax": 5}})),
         ERR + "{t}/d.edf: channel 'EEG FP2-REF': digital range 5 .. 5 must satisfy -32768 <= min < max <= 32767 "
               "(EDF)"),
    Case("rec-truncated-record", lambda t: inspect(mk.recording(t, "cut.edf", cut=1000)),
         ERR + "{t}/cut.edf: truncated: header declares 12 data records of 10752 bytes, the file holds 11 complete "
               "records and 9752 bytes of a partial one"),
    Case("rec-more-data-than-header", lambda t: inspect(mk.recording(t, "long.edf", n_records=6)),
         ERR + "{t}/long.edf: longer than its header says: header declares 6 data records of 10752 bytes, the file "
               "holds 12 complete records"),
    Case("rec-zero-records", lambda t: inspect(mk.recording(t, "zero.edf", n_records=0)),
         ERR + "{t}/zero.edf: header declares 0 data records (no data)"),
    Case("rec-zero-record-duration", lambda t: inspect(mk.recording(t, "dur.edf", duration_field="0")),
         ERR + "{t}/dur.edf: data record duration 0 s (must be > 0)"),
    Case("rec-not-edf", lambda t: inspect(mk.edf.write(t / "text.edf", b"hello world\n" * 30)),
         ERR + "{t}/text.edf: cannot read as EDF (the first bytes b'hello wo' are neither an EDF nor a BDF header)"),
    Case("rec-empty-file", lambda t: inspect(mk.edf.write(t / "empty.edf", b"")),
         ERR + "{t}/empty.edf: cannot read as EDF (0 bytes, too short for a header)"),
    Case("rec-header-word-field",
         lambda t: inspect(mk.recording(t, "w.edf", n_records="many")),
         ERR + "{t}/w.edf: header field 'number of data records' is 'many', not a number"),
    Case("rec-too-short", lambda t: inspect(mk.recording(t, "short.edf", duration_s=3.0)),
         ERR + "{t}/short.edf: no usable 5 s window (recording lasts 3.00 s, shorter than one 5 s window)"),
    Case("rec-missing-channels",
         lambda t: inspect(mk.recording(t, "few.edf", data=mk.edf.signals(12.0, 256.0, n=4))),
         ERR + "{t}/few.edf: no usable 5 s window (missing channel(s) for the montage: F7, T3, T5, O1, F8, T4, T6, "
               "O2, A1, C3, CZ, C4, A2, P3, P4)"),
    Case("rec-unknown-suffix", lambda t: inspect(mk.edf.write(t / "rec.txt", b"x")),
         ERR + "{t}/rec.txt: unknown EEG file type '.txt' (expected .edf, .bdf, .fif, .vhdr, .set, .gdf or .cnt)"),
    Case("rec-missing-file", lambda t: inspect(t / "nope.edf"), ERR + "{t}/nope.edf: file not found"),
    *CLINIC_RECORDINGS,
]


def _report(t: Path, text: str) -> Path:
    b = mk.build_folder(t)
    (b / "report.json").write_text(text)
    return b


def _graph(t: Path, text: str | None = None, npz: bytes | None = None, cut: bool = False) -> Path:
    b = mk.build_folder(t)
    if text is not None:
        (b / "graph.json").write_text(text)
    if npz is not None:
        (b / "weights.npz").write_bytes(npz)
    if cut:
        mk.corrupt_npz_shape(b)
    return b


HAS_QEMU = shutil.which("qemu-system-riscv32") is not None
BUILDS = [
    Case("build-report-not-json", lambda t: ["inspect", str(_report(t, "{oops"))],
         ERR + "{t}/build/report.json: corrupt, not valid JSON (JSONDecodeError: Expecting property name enclosed "
               "in double quotes: line 1 column 2 (char 1)); rebuild with `edgeflow build`"),
    Case("build-report-a-list", lambda t: ["inspect", str(_report(t, "[1, 2]"))],
         ERR + "{t}/build/report.json: corrupt, a JSON list instead of the build report object"),
    Case("build-report-wrong-types", lambda t: ["inspect", str(_report(t, '{"nodes": "abc"}'))],
         ERR + "{t}/build/report.json: corrupt, unexpected content (AttributeError: 'str' object has no attribute "
               "'get'); rebuild with `edgeflow build`"),
    Case("build-no-report", lambda t: ["inspect", str(t)],
         ERR + "{t}: not a build directory (no report.json); run `edgeflow build` first"),
    Case("build-graph-not-json", lambda t: stream(_graph(t, text="{"), "--port", "/dev/null"),
         ERR + "{t}/build/graph.json: corrupt, not valid JSON (JSONDecodeError: Expecting property name enclosed in "
               "double quotes: line 1 column 2 (char 1)); rebuild with `edgeflow build`"),
    Case("build-graph-empty-object", lambda t: stream(_graph(t, text="{}"), "--port", "/dev/null"),
         ERR + "{t}/build/graph.json: graph json: format None is not 1"),
    Case("build-weights-not-npz", lambda t: stream(_graph(t, npz=b"PK\x03\x04 broken"), "--port", "/dev/null"),
         ERR + "{t}/build/weights.npz: corrupt, not a readable .npz archive (BadZipFile: File is not a zip file); "
               "rebuild with `edgeflow build`"),
    Case("build-weights-wrong-shape", lambda t: stream(_graph(t, cut=True), "--port", "/dev/null"),
         r"edgeflow: error: {t}/build/weights\.npz: constant of tensor '[^']+' has shape \[\d+\], graph\.json says "
         r"\[[\d, ]+\]; rebuild with `edgeflow build`", regex=True),
    Case("build-no-graph", lambda t: stream(t, "--port", "/dev/null"),
         ERR + "{t}: not a build directory (no graph.json); run `edgeflow build` first"),
    Case("build-no-such-folder", lambda t: stream(t / "missing"),
         ERR + "{t}/missing: no such build directory; run `edgeflow build` first"),
    Case("build-no-port", lambda t: stream(mk.build_folder(t)),
         ERR + "{t}/build: no --port given and no device.json (start the device with `edgeflow flash` or pass --port)"),
    Case("build-device-json-corrupt", lambda t: stream(_device_json(t)),
         ERR + "{t}/build/device.json: not a device file with a \"port\" field"),
    Case("build-flash-report-not-json", lambda t: ["flash", str(_report(t, "nope"))],
         ERR + "{t}/build/report.json: corrupt, not valid JSON (JSONDecodeError: Expecting value: line 1 column 1 "
               "(char 0)); rebuild with `edgeflow build`",
         marks=(pytest.mark.skipif(not HAS_QEMU, reason="flash checks QEMU first"),)),
    Case("ckpt-not-a-checkpoint",
         lambda t: ["build", "--card", "femba-micro", "--ckpt", str(mk.edf.write(t / "q.pt", b"garbage")),
                    "--out", str(t / "out")],
         r"edgeflow: error: checkpoint {t}/q\.pt is not readable \(.*", regex=True),
]


def _card_file(t: Path, text: str) -> Path:
    b = mk.build_folder(t)
    (b / "card.toml").write_text(text)
    return b


def _device_json(t: Path) -> Path:
    b = mk.build_folder(t)
    (b / "device.json").write_text("[]")
    return b


PLANS = [
    Case("plan-arena-too-large",
         lambda t: build_random(str(mk.card(t, "c", ("window_s = 5.0", "window_s = 600.0"))), t),
         ERR + "{t}/c.toml: cannot fit target 'host': activations need at least 3,801,600 bytes of L2 (window 600 s, "
               "9600 tokens x d_model 44), usable 1,441,792"),
    Case("plan-weights-too-large",
         lambda t: build_random(str(mk.card(t, "c", ("embed_channels = 4", "embed_channels = 100"),
                                            ("n_blocks = 1", "n_blocks = 64"))), t),
         ERR + "{t}/c.toml: cannot fit target 'host': weights need at least 234,930,302 bytes at 2-bit, the levels "
               "hold 68,198,656 (L2 1,089,792 free + L3 67,108,864)"),
    Case("plan-weights-too-large-gap9",
         lambda t: build_random(str(mk.card(t, "c", ("embed_channels = 4", "embed_channels = 100"),
                                            ("n_blocks = 1", "n_blocks = 64"))), t, "gap9"),
         ERR + "{t}/c.toml: cannot fit target 'gap9': weights need at least 234,930,302 bytes at 2-bit, the levels "
               "hold 9,478,400 (L2 1,089,792 free + L3 8,388,608)"),
]

ONNX_ERRORS = {
    "scan_quant_json": r"node '[^']+': SelectiveScan's 'quant' attribute is not valid JSON \(JSONDecodeError: .+\)",
    "constant_without_value": r"Constant node 'const_without_value' has no tensor 'value' attribute \(got: none\)",
    "huge_initializer": r"initializer '[^']+' declares 1,000,000,000,000 elements \(dims \[1000000, 1000000\]\), "
                        r"more than the 67,108,864 any edge model holds",
    "unused_input": r"graph input 'extra' is not read by any node \(an edgeflow model takes one input window; "
                    r"remove the extra input\)",
}
ONNX = [
    Case(f"onnx-{kind}", lambda t, kind=kind: ["build", "--card", "femba-micro", "--onnx",
                                               str(mk.onnx_variant(t, kind)), "--out", str(t / "out")],
         rf"edgeflow: error: {{t}}/{kind}\.onnx: {line}", regex=True)
    for kind, line in ONNX_ERRORS.items()
]

CASES = CARDS + SENSOR_CARDS + OPTIONS + RECORDINGS + SENSOR_RECORDINGS + BUILDS + PLANS + ONNX


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: folders, links (target) and files (sha256)."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse refuses an option by exiting 2
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_malformed_input(case: Case, tmp_path, monkeypatch, capsys):
    t = tmp_path / "in"
    t.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written relative to the cwd (build/, runs/) shows in the snapshot
    argv = case.make(t)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(argv, capsys)
    after = snapshot(tmp_path)
    assert "Traceback" not in out + err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if case.line is not None:
        want = case.line.replace("{t}", re.escape(str(t)) if case.regex else str(t))
        assert lines, f"no stderr line; stdout: {out[-400:]}"
        if case.rc == 0:  # a warning line among the output
            assert want in lines, err
        elif case.regex:
            assert re.fullmatch(want, lines[-1]), lines[-1]
        else:
            assert lines[-1] == want
    if rc == 2 and not argv[0].startswith("-") and "usage:" not in err:  # an edgeflow error: exactly one line
        assert sum("error" in ln for ln in lines) == 1 and lines[-1].startswith(ERR), lines
    assert rc == case.rc, err
    assert after == before, "the command changed the tmp tree: " + ", ".join(
        sorted(set(after) ^ set(before)) or [k for k in after if after[k] != before.get(k)])


def test_corpus_covers_every_surface():
    ids = {c.id.split("-")[0] for c in CASES}
    assert ids == {"card", "opt", "rec", "build", "ckpt", "plan", "onnx"}
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id", ["card-sample-rate-string", "rec-truncated-record", "build-report-not-json",
                                     "opt-stream-windows-zero"])
def test_real_process_gives_the_same_line(case_id, tmp_path):
    """`python -m edgeflow` in a fresh process: same exit code and error line, nothing on stderr but that line
    (argparse: its usage line first)."""
    case = next(c for c in CASES if c.id == case_id)
    t = tmp_path / "in"
    t.mkdir()
    argv = case.make(t)
    before = snapshot(tmp_path)
    import edgeflow

    env = {**os.environ, "COLUMNS": "400", "PYTHONPATH": str(Path(edgeflow.__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "edgeflow", *argv], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=env)  # the edgeflow under test, not whatever the cwd would import
    assert res.returncode == case.rc
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and lines[-1] == case.line.replace("{t}", str(t))
    assert len(lines) == (2 if case_id.startswith("opt-") else 1), lines
    assert snapshot(tmp_path) == before
