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
    from edgeflow.cards import load_card
    from edgeflow.data.eeg import Preprocess, describe, render_inspect, require_usable

    pp = Preprocess.from_card(load_card(a.card))
    info = describe(Path(a.file), pp)
    console.print(render_inspect(info))
    require_usable(info)  # DataError (exit 2) when the recording yields no usable window
    return 0
