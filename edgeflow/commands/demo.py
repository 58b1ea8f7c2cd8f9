"""`edgeflow demo`: synthesise EEG, build the shipped femba-mini for emulated rv32, flash, stream, summarise."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from edgeflow.errors import EdgeflowError

CARD = "femba-mini"
CHECKPOINT = "femba-mini-w2.quant.pt"   # the shipped 2-bit QAT femba-mini (models/)
TARGET = "rv32-virt"


@dataclass
class DemoConfig:
    """Where the demo writes, how many windows it streams, which synthetic subject it records."""

    out: Path = Path("build/demo")
    windows: int = 6
    seed: int = 7
    abnormal: bool = True
    progress: bool = True


def _step(console: Console, n: int, text: str) -> float:
    console.print(f"[bold]{n}/4[/] {text}")
    return time.monotonic()


def _export(out: Path, sample) -> Path:
    """The shipped quantized checkpoint as QCDQ ONNX (traced on one window of the demo recording); an export
    newer than the checkpoint is reused (the firmware is always rebuilt)."""
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.quant.qat import load_quant
    from edgeflow.resources import models_dir

    ckpt = models_dir() / CHECKPOINT
    if not ckpt.is_file():
        raise EdgeflowError(f"{ckpt}: the shipped checkpoint is missing (reinstall edgeflow: bash tools/setup.sh)")
    path = out / f"{CARD}-w2.onnx"
    if path.is_file() and path.stat().st_mtime >= ckpt.stat().st_mtime:
        return path
    with warnings.catch_warnings():   # brevitas' optional-package notices are no news to a newcomer
        warnings.simplefilter("ignore")
        model, _ = load_quant(load_card(CARD), ckpt)
        export_qcdq(model, sample, path, form="scan")
    return path


def run_demo(cfg: DemoConfig, console: Console) -> tuple[dict[str, Any], bool]:
    """The whole story in one call; returns (stream summary, every answer bit-exact). QEMU is always stopped."""
    from edgeflow.build import build
    from edgeflow.cards import load_card
    from edgeflow.commands.stream import progress_table, stream_live
    from edgeflow.ir.graph import Graph
    from edgeflow.link.harness import StreamConfig, load_stream_windows, ok, quantized_windows, synth_recording
    from edgeflow.link.model_info import model_hash
    from edgeflow.link.session import Session, open_port
    from edgeflow.runners import qemu_rv32 as emulator

    if cfg.windows < 1:
        raise EdgeflowError(f"--windows must be >= 1, got {cfg.windows}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    emulator.qemu_binary()
    t = _step(console, 1, f"synthesising {cfg.windows * 5 + 1} s of 22-channel EEG "
                          f"({'abnormal' if cfg.abnormal else 'normal'} subject, seed {cfg.seed}) as EDF")
    edf = synth_recording(out / "recording.edf", cfg.windows * 5.0 + 1.0, seed=cfg.seed, abnormal=cfg.abnormal)
    card = load_card(CARD)   # recorded in the build (card.toml): the windows go through the card the build carries
    x, meta = load_stream_windows(edf, card, n_windows=cfg.windows)
    console.print(f"    {edf}: {len(x)} windows of 5 s through the training preprocessing "
                  f"({time.monotonic() - t:.1f} s)")

    t = _step(console, 2, f"building the shipped {CARD} (2-bit QAT) for {TARGET}: ONNX -> integer IR -> plan -> C "
                          "-> firmware.elf (riscv64-unknown-elf-gcc)")
    build_dir = out / f"{CARD}-{TARGET}"
    onnx = _export(out, x[:1])
    report = build(onnx, TARGET, build_dir, name=CARD, card=card)
    used = {k: v["used"] for k, v in report["firmware"]["regions"].items()}
    console.print(f"    {build_dir / 'firmware.elf'}: {report['macs']:,} MACs / window; bytes in L1 {used['L1']:,}, "
                  f"L2 {used['L2']:,}, L3 {used['L3']:,} ({time.monotonic() - t:.1f} s)")

    t = _step(console, 3, "flashing: QEMU virt rv32imc boots the firmware, its UART on a pty")
    dev = emulator.start(build_dir)
    try:
        console.print(f"    device on {dev.port} (QEMU pid {dev.pid}, {time.monotonic() - t:.1f} s)")
        _step(console, 4, f"streaming {len(x)} windows; every answer checked bit for bit against the numpy reference")
        graph = Graph.load(build_dir)
        xq = quantized_windows(x, graph)
        port = open_port(dev.port, write_timeout=emulator.WRITE_TIMEOUT_S)
        try:
            session = Session(port, model_hash(build_dir), timeout_s=30.0, name=dev.port)
            session.handshake()
            scfg = StreamConfig(stride_s=meta["stride_s"], timeout_s=30.0, out_dir=build_dir / "stream")
            summary, records = stream_live(session, graph, xq, scfg, console, progress=cfg.progress)
        finally:
            port.close()
    finally:
        emulator.stop(build_dir)
    console.print(progress_table(summary))
    good = ok(summary)
    votes = [r.prediction for r in records if r.prediction is not None]
    console.print(f"    device predictions: abnormal in {sum(v == 1 for v in votes)} of {len(votes)} windows "
                  f"(the recording is a synthetic {'abnormal' if cfg.abnormal else 'normal'} subject)")
    ins = summary.get("instret_per_window")
    if ins:
        console.print(f"    {ins / report['macs']:.2f} rv32 instructions per MAC; records in {build_dir / 'stream'}")
    console.print("[green]demo passed:[/] every window answered once, bit-exact with the reference; QEMU stopped"
                  if good else "[red]demo FAILED:[/] answers mismatched or lost (see the table above)")
    return summary, good


def cmd_demo(a) -> int:
    from edgeflow.commands import console

    cfg = DemoConfig(out=Path(a.out), windows=a.windows, seed=a.seed, abnormal=not a.normal,
                     progress=not a.no_progress)
    _, good = run_demo(cfg, console)
    return 0 if good else 1
