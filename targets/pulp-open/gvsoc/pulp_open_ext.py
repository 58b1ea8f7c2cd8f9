"""GVSoC target `pulp_open_ext`: stock pulp-open plus a plain memory on the SoC's free AXI `ddr` port (0x80000000).

It models the external level (L3 of targets/pulp-open/target.toml) the weights stream from. The cluster DMA
reaches it; the HAL never lets the cores load from it, and adds its latency and bandwidth in software (MCHAN
ignores a target's timing). Tied to GVSoC 209c147 (it reaches into pulp-open's board by child names).
"""

import os

import gvsoc.runner
import memory.memory
from pulp.chips.pulp_open.pulp_open_board import Pulp_open_board

EXT_SIZE = int(os.environ.get("EDGEFLOW_EXT_SIZE", str(8 << 20)), 0)


class Pulp_open_ext_board(Pulp_open_board):
    """pulp-open board whose chip has a memory on the SoC's `ddr` port."""

    def __init__(self, parent, name, parser, options):
        super().__init__(parent, name, parser, options)
        chip = self.get_component("chip")
        soc = chip.get_component("soc")
        ext = memory.memory.Memory(chip, "ext_weights", size=EXT_SIZE)
        chip.bind(chip.get_component("soc_clock_domain"), "out", ext, "clock")
        chip.bind(soc, "ddr", ext, "input")


class Target(gvsoc.runner.Target):
    gapy_description = "pulp-open + an external weight memory at 0x80000000 (edgeflow)"
    model = Pulp_open_ext_board
    name = "pulp_open_ext"

    def __init__(self, parser, options=None, name=None):
        super().__init__(parser, options, model=Pulp_open_ext_board, name=name)
