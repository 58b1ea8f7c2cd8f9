"""`edgeflow train|quantize|export`: training, QAT/PTQ and QCDQ export, glue to the terminal."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from edgeflow.commands import console


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from edgeflow.cards import load_model_card
    from edgeflow.train.common import TrainConfig
    from edgeflow.train.run import default_out, run_training

    card = load_model_card(a.card, "train")
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

    from edgeflow.cards import load_model_card
    from edgeflow.quant.layers import QuantPolicy
    from edgeflow.quant.ptq import check_quantizable
    from edgeflow.quant.qat import QuantConfig, load_splits, run_quantize

    card = load_model_card(a.card, "quantize")
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
    from edgeflow.cards import load_model_card
    from edgeflow.export.onnx import FORMS, export_and_verify
    from edgeflow.quant.qat import load_quant, load_splits

    card = load_model_card(a.card, "export")
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


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
