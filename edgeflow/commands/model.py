"""`edgeflow model list|info`: the shipped model cards, their layers, params and MACs."""

from __future__ import annotations

import argparse

from edgeflow.commands import console


def cmd_model_info(a: argparse.Namespace) -> int:
    from edgeflow.cards import load_card
    from edgeflow.nn.summary import render_table, totals

    card = load_card(a.card)
    console.print(f"[bold]{card.name}[/]: {card.description}")
    if card.arch is None:  # a sensor card: the model is the user's ONNX file
        from edgeflow.card_match import describe_input

        console.print(f"{card.kind} card: {describe_input(card)}; the layers are those of the ONNX model given to "
                      "`edgeflow build --onnx` (see `edgeflow inspect BUILD`)")
        return 0
    console.print(render_table(card))
    params, macs = totals(card)
    console.print(f"params {params:,}   MACs per {card.input.window_s:g} s window {macs:,}")
    return 0


def cmd_model_list(a: argparse.Namespace) -> int:
    from edgeflow.cards import available_cards, load_card
    from edgeflow.resources import models_dir

    for name in available_cards():
        card = load_card(name)
        ckpt = models_dir() / f"{name}.pt"
        console.print(f"{name:16s} {card.kind:12s} {'[trained]' if ckpt.exists() else '         '} "
                      f"{card.description}")
    return 0
