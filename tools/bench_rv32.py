"""Instructions per window and per MAC on the emulated rv32imc board: a thin wrapper of `edgeflow bench --peers rv32`.

    python tools/bench_rv32.py                          # femba-mini (shipped 2-bit QAT checkpoint), 3 windows
    python tools/bench_rv32.py --cards femba-mini femba-tiny --windows 1

The logic lives in edgeflow/bench/rv32.py (QEMU -icount: exact counts, every answer checked against the numpy
reference); cards without a checkpoint run an untrained 2-bit model (the count depends on shapes and bit widths,
not on trained values). Writes <out>/results.json; not part of CI (femba-tiny runs ~4.4 G instructions).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", nargs="+", default=["femba-mini"])
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--out", default="build/bench-rv32")
    a = ap.parse_args(argv)
    from edgeflow.cli import main as edgeflow_main

    return edgeflow_main(["bench", "--peers", "rv32", "--models", ",".join(a.cards), "--weights", "2",
                          "--windows", str(a.windows), "--rv32-windows", str(a.windows), "--out", a.out])


if __name__ == "__main__":
    sys.exit(main())
