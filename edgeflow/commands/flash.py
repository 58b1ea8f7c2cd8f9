"""`edgeflow flash`: start (or stop) the emulated device of a build, or flash a board."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeflow.commands import console


def cmd_flash(a: argparse.Namespace) -> int:
    from edgeflow.link.flash import flash, stop

    if a.stop:
        stopped = stop(a.build_dir)
        console.print(f"stopped the emulated device of {a.build_dir}" if stopped else
                      f"no emulated device running for {a.build_dir}")
        return 0
    f = flash(a.target, a.build_dir)
    if f.rebuilt:
        console.print(f"built {Path(a.build_dir) / 'firmware.elf'}")
    if f.port is None:
        console.print(f"{a.target}: {f.note}")
        return 0
    console.print(f.port)
    console.print(f"{a.target} device running ({f.note}); port written to {Path(a.build_dir) / 'device.json'}. "
                  f"Next: `edgeflow stream --build {a.build_dir}`; stop it with `edgeflow flash --stop {a.build_dir}`",
                  highlight=False)
    return 0
