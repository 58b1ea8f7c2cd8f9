"""Model cards: models/<name>.toml loaded into a validated, frozen ModelCard."""

from __future__ import annotations

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
    kind: str  # "femba" | "transformer"
    description: str
    input: InputSpec
    arch: Arch
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


KINDS = ("femba", "transformer")


def available_cards() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    cand = models_dir() / f"{name_or_path}.toml"
    if cand.exists():
        return cand
    raise CardError(f"model card '{name_or_path}' not found; available: {', '.join(available_cards())}")


def load_card(name_or_path: str | Path) -> ModelCard:
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{path}: not valid TOML ({e})") from None
    try:
        m, i, a = raw["model"], raw["input"], raw["arch"]
    except KeyError as e:
        raise CardError(f"{path}: missing section [{e.args[0]}]") from None
    montage = i.get("montage", "tcp")
    if not isinstance(montage, str):
        montage = tuple(montage)
    elif montage != "tcp":
        raise CardError(f"{path}: input.montage must be 'tcp' or a list of channel names, got '{montage}'")
    bp = i.get("bandpass")
    try:
        inp = InputSpec(montage=montage, sample_rate=float(i.get("sample_rate", 256.0)),
                        window_s=float(i.get("window_s", 5.0)), stride_s=float(i.get("stride_s", 5.0)),
                        bandpass=tuple(float(x) for x in bp) if bp else None)
        arch = Arch(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in a.items()})
        train = TrainSpec(**raw.get("train", {}))
    except TypeError as e:
        raise CardError(f"{path}: {e}") from None
    card = ModelCard(name=m.get("name", path.stem), kind=m.get("kind", "femba"),
                     description=m.get("description", ""), input=inp, arch=arch, train=train,
                     quant=raw.get("quant", {}), path=path)
    _validate(card)
    return card


def _validate(card: ModelCard) -> None:
    where = card.path or card.name
    a, i = card.arch, card.input
    if card.kind not in KINDS:
        raise CardError(f"{where}: model.kind must be one of {KINDS}, got '{card.kind}'")
    if len(a.patch) != 2 or min(a.patch) < 1:
        raise CardError(f"{where}: arch.patch must be two positive integers, got {a.patch}")
    if i.n_channels % a.patch[0]:
        raise CardError(f"{where}: {i.n_channels} channels not divisible by arch.patch[0]={a.patch[0]}")
    if i.window_samples % a.patch[1]:
        raise CardError(f"{where}: window of {i.window_samples} samples not divisible by "
                        f"arch.patch[1]={a.patch[1]}")
    if card.kind == "femba" and a.dt_rank < 1:
        raise CardError(f"{where}: arch.dt_rank must be >= 1 for a FEMBA model")
    if card.kind == "transformer" and card.d_model % a.n_heads:
        raise CardError(f"{where}: d_model {card.d_model} not divisible by arch.n_heads={a.n_heads}")
    if i.bandpass and not (0 <= i.bandpass[0] < i.bandpass[1] < i.sample_rate / 2):
        raise CardError(f"{where}: input.bandpass {i.bandpass} must satisfy 0 <= low < high < sample_rate/2")
