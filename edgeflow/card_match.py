"""Model <-> card: the ONNX input shape checked against a card (or a minimal card made from it), the card a build
records (BUILD/card.toml) and the check that a later --card does not contradict it."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

from edgeflow.cards import SCHEMA, SENSOR, ModelCard, card_from_dict
from edgeflow.errors import CardError

CARD_FILE = "card.toml"   # the card a build was made with, beside report.json (which names it)


def describe_input(card: ModelCard) -> str:
    """'3 channels (x, y, z) at 50 Hz, 2 s windows of 100 samples, stride 1 s'."""
    i = card.input
    names = "TCP bipolar montage" if i.montage == "tcp" else ", ".join(i.montage)
    if len(names) > 60:
        names = names[:57] + "..."
    return (f"{i.n_channels} channels ({names}) at {i.sample_rate:g} Hz, {i.window_s:g} s windows of "
            f"{i.window_samples} samples, stride {i.stride_s:g} s")


def card_shape(card: ModelCard) -> tuple[int, int]:
    """(channels, samples) of one window the card makes."""
    return card.input.n_channels, card.input.window_samples


def window_fits(window: tuple[int, ...], model: tuple[int, ...]) -> bool:
    """A (channels, samples) window feeds a model input of that shape, with leading 1s allowed (EEGNet-style
    (1, C, T) after the batch dimension)."""
    model = tuple(model)
    while len(model) > len(window) and model[0] == 1:
        model = model[1:]
    return tuple(window) == model


def build_input_fits(window: tuple[int, ...], graph_input: tuple[int, ...], build: Path) -> bool:
    """A window feeds a build's graph: its input shape as window_fits says, or a model that flattens its input
    first (the frontend's graph then takes the window's values in C order as one row): the window fits the
    build's model.onnx input and holds as many values as the graph input."""
    if window_fits(window, graph_input):
        return True
    onnx_shape = onnx_input_shape(Path(build) / "model.onnx")
    return (onnx_shape is not None and window_fits(window, onnx_shape)
            and math.prod(window) == math.prod(graph_input))


def onnx_input_shape(path: Path) -> tuple[int, ...] | None:
    """The model's input shape without its batch dimension; None when the file cannot be read or its input has
    symbolic dimensions (the frontend names that problem when it loads the model)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a broken file is the frontend's to report, in its words
        return None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if not inputs:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
        return None
    return tuple(dims[1:])


def _channels_samples(shape: tuple[int, ...]) -> tuple[int, int] | None:
    core = list(shape)
    while len(core) > 2 and core[0] == 1:
        core = core[1:]
    return (core[0], core[1]) if len(core) == 2 else None


def _why_unread(path: Path) -> str:
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - named, not raised: the caller's line says what to do
        return f"cannot be read: not an ONNX file ({type(e).__name__})"
    return ("the model's input has no fixed shape (symbolic sizes?); export it with a (1, channels, samples) "
            "example input and no dynamic_axes")


def minimal_card(onnx_path: Path, shape: tuple[int, ...] | None, sfreq: float | None) -> ModelCard:
    """A sensor card made from the model alone: its input's channels and samples, the rate from --sfreq."""
    if not shape:
        raise CardError(f"{onnx_path}: {_why_unread(onnx_path)}")
    cs = _channels_samples(shape)
    if cs is None:
        raise CardError(f"{onnx_path}: no --card given and the model's input (without batch) is {list(shape)}, not "
                        "(channels, samples); give a card with --card")
    if sfreq is None:
        raise CardError(f"{onnx_path}: no --card given: the model's input is {cs[0]} channels x {cs[1]} samples; "
                        "give its sampling rate with --sfreq HZ, or a card with --card")
    raw = {"model": {"name": onnx_path.stem.strip(".") or "model", "kind": SENSOR,
                     "description": f"minimal card made from {onnx_path.name} by `edgeflow build`"},
           "input": {"channels": cs[0], "sample_rate": float(sfreq), "window_s": cs[1] / float(sfreq)}}
    return card_from_dict(raw, where=f"{onnx_path} (minimal card, --sfreq {sfreq:g})")


def _transposed_hint(shape: tuple[int, ...], window: tuple[int, int]) -> str:
    cs = _channels_samples(shape)
    if cs is None or cs != window[::-1] or cs == window:
        return ""
    return "; the model takes (samples, channels): export it with its input as (1, channels, samples)"


def card_for_onnx(onnx_path: Path, card_arg: str | None, sfreq: float | None) -> ModelCard:
    """The card of an --onnx build: --card checked against the model's input shape (one line naming both), or
    a minimal card made from the model when no --card is given."""
    from edgeflow.cards import load_card

    if not Path(onnx_path).is_file():
        raise CardError(f"{onnx_path}: no such file (--onnx takes the path of your .onnx model)")
    shape = onnx_input_shape(onnx_path)
    if card_arg is None:
        return minimal_card(onnx_path, shape, sfreq)
    card = load_card(card_arg)
    if sfreq is not None and not math.isclose(sfreq, card.input.sample_rate):
        raise CardError(f"--sfreq {sfreq:g} contradicts card '{card.name}' (input.sample_rate = "
                        f"{card.input.sample_rate:g}); drop one of them")
    if shape is not None and not window_fits(card_shape(card), shape):
        c, w = card_shape(card)
        raise CardError(f"{onnx_path}: the model's input is {list(shape)} (without batch), card '{card.name}' makes "
                        f"windows of [{c}, {w}] ({c} channels x {card.input.window_s:g} s x "
                        f"{card.input.sample_rate:g} Hz)" + _transposed_hint(shape, (c, w)))
    return card


# ---- the card recorded in a build --------------------------------------------------------------------------------

def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _table(name: str, values: dict) -> list[str]:
    lines = [f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for k, v in values.items():
        if isinstance(v, dict):
            lines += [""] + _table(f"{name}.{k}", v)
    return lines + [""]


def card_dict(card: ModelCard) -> dict[str, dict]:
    """The card as the TOML tables load_card reads (only the fields its kind uses)."""
    i = card.input
    model = {"name": card.name, "kind": card.kind, "description": card.description}
    if card.kind == SENSOR:
        inp: dict = {"channels": list(i.montage), "sample_rate": i.sample_rate, "window_s": i.window_s,
                     "stride_s": i.stride_s}
        inp.update({k: list(getattr(i, k)) for k in ("scale", "offset") if getattr(i, k) is not None})
        return {"model": model, "input": inp}
    inp = {"montage": i.montage if isinstance(i.montage, str) else list(i.montage), "sample_rate": i.sample_rate,
           "window_s": i.window_s, "stride_s": i.stride_s}
    if i.bandpass is not None:
        inp["bandpass"] = list(i.bandpass)
    if i.electrodes:
        inp["electrodes"] = dict(i.electrodes)
    arch = {f.name: getattr(card.arch, f.name) for f in fields(card.arch)
            if card.kind in SCHEMA["arch"][f.name].kinds}
    train = {f.name: getattr(card.train, f.name) for f in fields(card.train)}
    out = {"model": model, "input": inp, "arch": arch, "train": train}
    if card.quant:
        out["quant"] = dict(card.quant)
    return out


def card_toml(card: ModelCard) -> str:
    """The card as a TOML file that load_card reads back to an equal card (comments of the source are not kept)."""
    src = f" (from {card.path.name})" if card.path else ""
    lines = [f"# The card this build was made with{src}: `edgeflow stream` and `demo` read the input through it."]
    for name, values in card_dict(card).items():
        lines += _table(name, values)
    return "\n".join(lines)


def recorded_card(build: Path) -> ModelCard | None:
    """BUILD/card.toml (a corrupt one is one line naming it); None for a build made before builds recorded it."""
    from edgeflow.cards import load_card

    path = Path(build) / CARD_FILE
    return load_card(path) if path.is_file() else None


def _input_fields(card: ModelCard) -> dict[str, object]:
    """What decides the windows a card makes from a recording (the stride is streaming's choice, not the model's)."""
    i = card.input
    return {"model.kind": card.kind, "input.channels" if card.kind == SENSOR else "input.montage": i.montage,
            "input.sample_rate": i.sample_rate, "input.window_s": i.window_s, "input.bandpass": i.bandpass,
            "input.electrodes": i.electrodes, "input.scale": i.scale, "input.offset": i.offset}


def _show(v: object) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(map(str, v)) + "]" if len(v) <= 8 else f"[{v[0]}, ... {len(v)} values]"
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def check_card_agrees(recorded: ModelCard, given: ModelCard, build: Path) -> None:
    """CardError naming the first field where `given` (--card) contradicts the card the build recorded."""
    want, got = _input_fields(recorded), _input_fields(given)
    for key, v in want.items():
        if got.get(key) != v:
            raise CardError(f"--card {given.path or given.name} contradicts the card this build was made with "
                            f"({Path(build) / CARD_FILE}): {key} {_show(got.get(key))} vs {_show(v)}; drop --card "
                            "to use the recorded one")


def stream_card(build: Path, card_arg: str | None, default: str = "femba-mini") -> ModelCard:
    """The card `stream` reads the recording through: the build's recorded card (a --card must agree with it),
    else --card, else `default` (builds made before cards were recorded)."""
    from edgeflow.cards import load_card

    recorded = recorded_card(build)
    if card_arg is None:
        return recorded or load_card(default)
    given = load_card(card_arg)
    if recorded is not None:
        check_card_agrees(recorded, given, build)
    return given
