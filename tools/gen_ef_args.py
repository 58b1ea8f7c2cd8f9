"""Writes firmware/kernels/ef_args.h (named-argument structs and inline adapters) from ef_kernels.h's prototypes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeflow.codegen.prototypes import ARGS_HEADER, parse_prototypes, render_args_header  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kernels", type=Path, default=ROOT / "firmware" / "kernels", help="kernel library folder")
    ap.add_argument("--check", action="store_true", help="exit 1 when the checked-in header is out of date")
    a = ap.parse_args(argv)
    text = render_args_header(parse_prototypes((a.kernels / "ef_kernels.h").read_text()))
    out = a.kernels / ARGS_HEADER
    if a.check:
        ok = out.is_file() and out.read_text() == text
        print(f"{out}: {'up to date' if ok else 'out of date: run python tools/gen_ef_args.py'}")
        return 0 if ok else 1
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
