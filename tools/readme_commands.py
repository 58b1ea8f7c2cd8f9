"""Prints one of README.md's two Quick start commands (`setup` or `test`), so CI runs what the README says."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def quick_start_commands(readme: Path) -> list[str]:
    text = readme.read_text()
    m = re.search(r"^## Quick start\s*$(.*?)^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{readme}: no fenced block under '## Quick start'")
    lines = [ln.strip() for ln in m.group(2).splitlines() if ln.strip()]
    if len(lines) != 2:
        raise SystemExit(f"{readme}: Quick start block must hold exactly two commands, found {len(lines)}")
    return lines


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    cmds = quick_start_commands(Path(__file__).resolve().parent.parent / "README.md")
    print(cmds[0] if which == "setup" else cmds[1])
