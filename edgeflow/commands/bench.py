"""`edgeflow bench`: the same models on every host peer, rv32, pulp-open and memory levels; results.json, plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeflow.commands import console


def _csv(kind: type):
    def parse(s: str) -> list:
        try:
            return [kind(x) for x in s.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{s}': expected a comma-separated list") from None
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeflow.argtypes import int_range
    from edgeflow.bench.run import ALL_PEERS

    p.add_argument("--models", type=_csv(str), default=["femba-mini"],
                   help="comma-separated cards, e.g. femba-mini,femba-tiny,vit-tiny-eeg (default femba-mini)")
    p.add_argument("--weights", type=_csv(int), default=[2], help="weight bits, e.g. 2,4,8 (default 2)")
    p.add_argument("--peers", type=_csv(str), default=list(ALL_PEERS),
                   help=f"subset of {','.join(ALL_PEERS)} (default all)")
    p.add_argument("--windows", type=int_range(1, 10_000), default=20, help="timed host windows (default 20)")
    p.add_argument("--rv32-windows", type=int_range(1, 1000), default=2,
                   help="windows run on QEMU rv32 and GVSoC (default 2)")
    p.add_argument("--out", default="build/bench", help="results folder (default build/bench)")


def cmd_bench(a: argparse.Namespace) -> int:
    from edgeflow.bench.plots import write_plots
    from edgeflow.bench.report import sources, tables
    from edgeflow.bench.run import BenchConfig, run_bench

    command = (f"edgeflow bench --models {','.join(a.models)} --weights {','.join(map(str, a.weights))} "
               f"--peers {','.join(a.peers)} --windows {a.windows} --rv32-windows {a.rv32_windows} --out {a.out}")
    cfg = BenchConfig(models=a.models, weights=a.weights, peers=a.peers, windows=a.windows,
                      rv32_windows=a.rv32_windows, out=Path(a.out), command=command)
    results = run_bench(cfg, log=lambda s: console.print(s, highlight=False))
    for line in sources(results):
        console.print(line, highlight=False)
    for t in tables(results):
        console.print(t)
    for path in write_plots(results, cfg.out):
        console.print(f"plot {path}")
    console.print(f"results {cfg.out / 'results.json'}")
    if not results["ok"]:
        console.print("[red]a correctness check failed[/] (see the check column)")
        return 1
    return 0
