"""Model cards: models/<name>.toml loaded into a validated, frozen ModelCard."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgeflow.errors import CardError
from edgeflow.resources import models_dir

TCP_CHANNELS = 22  # length of the TUH bipolar TCP montage (edgeflow.data.eeg.TCP_MONTAGE)


@dataclass(frozen=True)
class InputSpec:
    montage: str | tuple[str, ...]  # "tcp" or explicit channel names
    sample_rate: float
    window_s: float
    stride_s: float
    bandpass: tuple[float, float] | None
    # sensor cards: each channel's value fed to the model is (raw - offset) * scale (per channel, or one number)
    scale: tuple[float, ...] | None = None
    offset: tuple[float, ...] | None = None
    electrodes: tuple[tuple[str, str], ...] = ()  # (10-20 name, recorded label): a cap's own labels mapped

    @property
    def n_channels(self) -> int:
        return TCP_CHANNELS if self.montage == "tcp" else len(self.montage)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))


@dataclass(frozen=True)
class Arch:
    patch: tuple[int, int]
    embed_channels: int
    n_blocks: int
    n_classes: int = 2
    # FEMBA (Mamba) fields
    expand: int = 4
    d_state: int = 16
    dt_rank: int = 0
    d_conv: int = 4
    # transformer fields
    n_heads: int = 4
    mlp_ratio: int = 2


@dataclass(frozen=True)
class TrainSpec:
    pretrain_epochs: int = 2
    finetune_epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    mask_ratio: float = 0.5


@dataclass(frozen=True)
class ModelCard:
    name: str
    kind: str  # "femba" | "transformer" | "sensor" (a user's ONNX model on raw sensor data: no [arch])
    description: str
    input: InputSpec
    arch: Arch | None
    train: TrainSpec = field(default_factory=TrainSpec)
    quant: dict = field(default_factory=dict)  # filled by the quantization stage's card section
    path: Path | None = None

    @property
    def n_tokens(self) -> int:
        return self.input.window_samples // self.arch.patch[1]

    @property
    def token_rows(self) -> int:
        return self.input.n_channels // self.arch.patch[0]

    @property
    def d_model(self) -> int:
        return self.arch.embed_channels * self.token_rows

    @property
    def d_inner(self) -> int:
        return self.arch.expand * self.d_model


EEG_KINDS = ("femba", "transformer")   # EEG models edgeflow trains itself: montage, filters, [arch]
SENSOR = "sensor"                      # any sensor model given as ONNX: channels, rate, window, scaling
KINDS = (*EEG_KINDS, SENSOR)
FEMBA_FIELDS = ("expand", "d_state", "dt_rank", "d_conv")
TRANSFORMER_FIELDS = ("n_heads", "mlp_ratio")
D_STATE_MAX = 256        # edgeflow.quant.intscan.D_STATE_MAX: the integer scan's accumulator bound
QUANT_BITS = (2, 4, 8)   # edgeflow.quant.layers.WEIGHT_BITS (not imported: that pulls in brevitas)


@dataclass(frozen=True)
class Spec:
    """One card field: its type ('int', 'float', 'str', 'pair_int', 'pair_float', 'montage'), range and kinds."""

    type: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    required: bool = False
    kinds: tuple[str, ...] = EEG_KINDS      # the model kinds that use the field
    choices: tuple[str, ...] = ()


def _ints(lo: int, hi: int, **kw) -> Spec:
    return Spec("int", lo, hi, **kw)


SCHEMA: dict[str, dict[str, Spec]] = {
    "model": {"name": Spec("str", kinds=KINDS), "kind": Spec("str", choices=KINDS, kinds=KINDS),
              "description": Spec("str", kinds=KINDS)},
    "input": {"montage": Spec("montage"), "channels": Spec("channels", 1, 4096, kinds=(SENSOR,), required=True),
              "sample_rate": Spec("float", 1.0, 16_384.0, kinds=KINDS),
              "window_s": Spec("float", 0.0, 3600.0, lo_open=True, kinds=KINDS),
              "stride_s": Spec("float", 0.0, 3600.0, lo_open=True, kinds=KINDS),
              "bandpass": Spec("pair_float", 0.0, 8_192.0), "electrodes": Spec("electrodes"),
              "scale": Spec("floats", -1e12, 1e12, kinds=(SENSOR,)), "offset": Spec("floats", -1e12, 1e12,
                                                                                 kinds=(SENSOR,))},
    "arch": {"patch": Spec("pair_int", 1, 4096, required=True), "embed_channels": _ints(1, 4096, required=True),
             "n_blocks": _ints(1, 64, required=True), "n_classes": _ints(2, 1000),
             "expand": _ints(1, 16, kinds=("femba",)), "d_state": _ints(1, D_STATE_MAX, kinds=("femba",)),
             "dt_rank": _ints(1, 4096, kinds=("femba",), required=True), "d_conv": _ints(1, 64, kinds=("femba",)),
             "n_heads": _ints(1, 256, kinds=("transformer",)), "mlp_ratio": _ints(1, 64, kinds=("transformer",))},
    "train": {"pretrain_epochs": _ints(0, 100_000), "finetune_epochs": _ints(0, 100_000),
              "batch_size": _ints(1, 65_536), "lr": Spec("float", 0.0, 10.0, lo_open=True),
              "mask_ratio": Spec("float", 0.0, 1.0)},
}
REQUIRED_SECTIONS = ("model", "input", "arch")
SENSOR_REQUIRED = ("sample_rate", "window_s")      # no EEG defaults for a sensor's rate and window
SECTIONS_OF = {SENSOR: ("model", "input")}   # the sections a kind uses (default: all of SCHEMA and [quant])
DERIVED = {"d_model": "embed_channels x channels / patch[0]", "d_inner": "expand x d_model",
           "n_tokens": "window samples / patch[1]", "n_channels": "the montage's length"}


def available_cards() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    cand = models_dir() / f"{name_or_path}.toml"
    if cand.is_file():
        return cand
    raise CardError(f"model card '{name_or_path}' not found; available: {', '.join(available_cards())}")


def _allowed(spec: Spec) -> str:
    if spec.choices:
        return f"one of {', '.join(spec.choices)}"
    lo = "inf" if spec.lo is None else f"{spec.lo:g}"
    hi = "inf" if spec.hi is None else f"{spec.hi:g}"
    rng = f"{'(' if spec.lo_open else '['}{lo}, {hi}]"
    return {"int": f"an integer in {rng}", "float": f"a number in {rng}", "str": "a string",
            "pair_int": f"a list of two integers in {rng}", "pair_float": f"a list of two numbers in {rng}",
            "montage": "'tcp' or a list of channel names",
            "channels": f"a channel count in {rng} or a list of distinct channel names",
            "floats": "a number or a list of numbers, one per channel",
            "electrodes": "a table of 10-20 electrode names to distinct recorded channel labels"}[spec.type]


def _number(v: object, integer: bool, spec: Spec) -> bool:
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
        return False
    if not math.isfinite(v):
        return False
    return not ((spec.lo is not None and (v < spec.lo or (spec.lo_open and v <= spec.lo)))
                or (spec.hi is not None and v > spec.hi))


def _valid(v: object, spec: Spec) -> bool:
    if spec.type in ("int", "float"):
        return _number(v, spec.type == "int", spec)
    if spec.type == "str":
        return isinstance(v, str) and (not spec.choices or v in spec.choices)
    if spec.type in ("pair_int", "pair_float"):
        return (isinstance(v, list) and len(v) == 2
                and all(_number(x, spec.type == "pair_int", spec) for x in v))
    if spec.type == "channels":  # a count or distinct non-empty names
        if isinstance(v, list):
            return _valid(v, Spec("montage")) and len(v) <= (spec.hi or len(v))
        return _number(v, True, spec)
    if spec.type == "floats":
        return (_number(v, False, spec) or isinstance(v, list) and len(v) > 0
                and all(_number(x, False, spec) for x in v))
    if spec.type == "montage":  # "tcp" or distinct non-empty names
        if isinstance(v, str):
            return v == "tcp"
        return (isinstance(v, list) and len(v) > 0 and all(isinstance(x, str) and x.strip() for x in v)
                and len(set(v)) == len(v))
    if spec.type == "electrodes":  # {"FP1" = "C29", ...}
        from edgeflow.data.montage import canonical_name

        return (isinstance(v, dict) and len(v) > 0 and len(set(v.values())) == len(v)
                and all(isinstance(x, str) and x.strip() for x in v.values())
                and all(canonical_name(k) is not None and "-" not in (canonical_name(k) or "") for k in v))
    raise AssertionError(spec.type)


def _show(v: object) -> str:
    return repr(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def check_schema(raw: dict, where: object) -> None:
    """Types, ranges and kinds of every field of a parsed card; CardError naming the card file and field."""
    known = (*SCHEMA, "quant")
    for section in raw:
        if section not in known:
            raise CardError(f"{where}: unknown section [{section}] (sections: {', '.join(known)})")
    for section in known:
        if not isinstance(raw.get(section, {}), dict):
            raise CardError(f"{where}: {section} must be a table [{section}], not a value")
    kind = raw.get("model", {}).get("kind", "femba")
    if kind not in KINDS:
        raise CardError(f"{where}: model.kind = {_show(kind)} must be one of {', '.join(KINDS)}")
    used = SECTIONS_OF.get(kind, known)
    for section in REQUIRED_SECTIONS:
        if section in used and section not in raw:
            hint = "" if "kind" in raw.get("model", {}) else \
                ' (model.kind is not set, so it is "femba"; a sensor card sets model.kind = "sensor")'
            raise CardError(f"{where}: missing section [{section}]{hint}")
    for section in raw:
        if section not in used:
            raise CardError(f"{where}: section [{section}] is not used by model.kind '{kind}' "
                            f"(sections: {', '.join(used)})")
    for section, fields in SCHEMA.items():
        if section not in used:
            continue
        values = raw.get(section, {})
        for key, v in values.items():
            spec = fields.get(key)
            if spec is None or kind not in spec.kinds:
                usable = [k for k, s in fields.items() if kind in s.kinds]
                what = f"is not used by model.kind '{kind}'" if spec else "is not a known field"
                if key in DERIVED:
                    what = f"is derived ({key} = {DERIVED[key]}), not set"
                raise CardError(f"{where}: {section}.{key} {what} (fields of [{section}]: {', '.join(usable)})")
            if not _valid(v, spec):
                raise CardError(f"{where}: {section}.{key} = {_show(v)} must be {_allowed(spec)}")
        for key, spec in fields.items():
            if spec.required and kind in spec.kinds and key not in values:
                raise CardError(f"{where}: {section}.{key} is required for model.kind '{kind}' "
                                f"({_allowed(spec)})")
    for key, v in raw.get("quant", {}).items():
        if not isinstance(v, dict) and (isinstance(v, bool) or v not in QUANT_BITS):
            raise CardError(f"{where}: quant.{key} = {_show(v)} must be a weight bit width, one of "
                            f"{', '.join(map(str, QUANT_BITS))}")


def load_card(name_or_path: str | Path) -> ModelCard:
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CardError(f"{path}: cannot read the card ({type(e).__name__}: {e})") from None
    return card_from_dict(raw, path)


def load_model_card(name_or_path: str | Path, what: str) -> ModelCard:
    """load_card for the commands that build edgeflow's own networks (train, quantize, export, bench): a card
    with an [arch]; a sensor card is refused in one line (its model is the user's ONNX)."""
    card = load_card(name_or_path)
    if card.arch is None:
        raise CardError(f"card '{card.name}' (kind {card.kind}) has no [arch]: `edgeflow {what}` makes edgeflow's own "
                        f"{'/'.join(EEG_KINDS)} networks; compile your own model with `edgeflow build --onnx`")
    return card


def channel_names(channels: int | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A sensor card's channels: its names, or ch1 .. chN for a bare count."""
    return tuple(channels) if isinstance(channels, (list, tuple)) else tuple(f"ch{k + 1}" for k in range(channels))


def _per_channel(v: float | list | None) -> tuple[float, ...] | None:
    return None if v is None else tuple(float(x) for x in (v if isinstance(v, list) else [v]))


def card_from_dict(raw: dict, path: Path | None = None, where: object = None) -> ModelCard:
    """A parsed card (TOML tables) checked by the schema and the relations between fields; `path` the file it
    came from (its stem names a card without model.name)."""
    where = where or path
    check_schema(raw, where)
    m, i = raw["model"], raw["input"]
    kind = m.get("kind", "femba")
    if kind == SENSOR:
        for key in SENSOR_REQUIRED:
            if key not in i:
                raise CardError(f"{where}: input.{key} is required for model.kind '{kind}' "
                                f"({_allowed(SCHEMA['input'][key])})")
        window = float(i["window_s"])
        inp = InputSpec(montage=channel_names(i["channels"]), sample_rate=float(i["sample_rate"]), window_s=window,
                        stride_s=float(i.get("stride_s", window)), bandpass=None, scale=_per_channel(i.get("scale")),
                        offset=_per_channel(i.get("offset")))
        arch = None
    else:
        montage = i.get("montage", "tcp")
        bp = i.get("bandpass")
        inp = InputSpec(montage=montage if isinstance(montage, str) else tuple(montage),
                        sample_rate=float(i.get("sample_rate", 256.0)), window_s=float(i.get("window_s", 5.0)),
                        stride_s=float(i.get("stride_s", 5.0)), bandpass=tuple(float(x) for x in bp) if bp else None,
                        electrodes=tuple(i.get("electrodes", {}).items()))
        arch = Arch(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in raw["arch"].items()})
    train = TrainSpec(**{k: (float(v) if k in ("lr", "mask_ratio") else v) for k, v in raw.get("train", {}).items()})
    card = ModelCard(name=m.get("name", path.stem if path else "model"), kind=kind,
                     description=m.get("description", ""), input=inp, arch=arch, train=train,
                     quant=raw.get("quant", {}), path=path)
    _validate(card)
    return card


def _validate(card: ModelCard) -> None:
    """Relations between fields (the schema has checked each field alone)."""
    where = card.path or card.name
    a, i = card.arch, card.input
    if card.kind not in KINDS:
        raise CardError(f"{where}: model.kind must be one of {KINDS}, got '{card.kind}'")
    if a is None:
        return _validate_sensor(card)
    if len(a.patch) != 2 or min(a.patch) < 1:
        raise CardError(f"{where}: arch.patch must be two positive integers, got {a.patch}")
    if i.n_channels % a.patch[0]:
        raise CardError(f"{where}: {i.n_channels} channels not divisible by arch.patch[0]={a.patch[0]}")
    if i.window_samples < a.patch[1] or i.window_samples % a.patch[1]:
        raise CardError(f"{where}: window of {i.window_samples} samples (input.window_s x input.sample_rate) not a "
                        f"positive multiple of arch.patch[1]={a.patch[1]}")
    if card.kind == "femba" and a.dt_rank < 1:
        raise CardError(f"{where}: arch.dt_rank must be >= 1 for a FEMBA model")
    if card.kind == "transformer" and card.d_model % a.n_heads:
        raise CardError(f"{where}: d_model {card.d_model} not divisible by arch.n_heads={a.n_heads}")
    if i.bandpass and not (0 <= i.bandpass[0] < i.bandpass[1] < i.sample_rate / 2):
        raise CardError(f"{where}: input.bandpass {list(i.bandpass)} must satisfy 0 <= low < high < "
                        f"input.sample_rate/2 = {i.sample_rate / 2:g}")


def _validate_sensor(card: ModelCard) -> None:
    """A sensor card's window is a whole number of samples; scale and offset give one number or one per channel."""
    where = card.path or card.name
    i = card.input
    exact = i.window_s * i.sample_rate
    if i.window_samples < 1 or abs(exact - i.window_samples) > 1e-6 * max(1.0, exact):
        raise CardError(f"{where}: input.window_s = {i.window_s:g} s x input.sample_rate = {i.sample_rate:g} Hz is "
                        f"{exact:g} samples, not a whole positive number")
    for key in ("scale", "offset"):
        v = getattr(i, key)
        if v is not None and len(v) not in (1, i.n_channels):
            raise CardError(f"{where}: input.{key} has {len(v)} values for {i.n_channels} channels (give one number "
                            "or one per channel)")
