"""`edgeflow data synth|inspect`: write the synthetic corpus, show what a model sees of a recording."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeflow.commands import console


def cmd_data_synth(a: argparse.Namespace) -> int:
    from edgeflow.data.synthetic import write_corpus

    out = write_corpus(Path(a.out), n_subjects=a.subjects, duration_s=a.duration, seed=a.seed,
                       difficulty=a.difficulty, sfreq=a.sfreq, progress=not a.no_progress)
    console.print(f"wrote {a.subjects} subjects to {out} (labels.csv, corpus.json)")
    return 0


def cmd_data_inspect(a: argparse.Namespace) -> int:
    from edgeflow.cards import SENSOR, load_card
    from edgeflow.data.eeg import Preprocess, describe, render_inspect, require_usable
    from edgeflow.data.raw import RAW_SUFFIXES, describe_sensor, is_raw, render_sensor
    from edgeflow.errors import DataError

    card = load_card(a.card)
    if card.kind == SENSOR:  # a CSV/NPY/NPZ/WAV/EDF/BDF recording through the sensor card
        info = describe_sensor(Path(a.file), card)
        console.print(render_sensor(info))
        if not info["n_windows"]:
            raise DataError(f"{a.file}: no usable {card.input.window_s:g} s window (recording lasts "
                            f"{info['duration_s']:.2f} s)")
        return 0
    if is_raw(a.file):
        raise DataError(f"{a.file}: card '{card.name}' (kind {card.kind}) reads EEG recordings; raw "
                        f"{'/'.join(s[1:].upper() for s in RAW_SUFFIXES)} files need a sensor card (--card accel-har "
                        'or your own with model.kind = "sensor")')
    pp = Preprocess.from_card(card)
    info = describe(Path(a.file), pp)
    console.print(render_inspect(info))
    require_usable(info)  # DataError (exit 2) when the recording yields no usable window
    return 0
