"""out.bin of the pulp-open firmware (edgeflow/runners/gvsoc.py): the window records and the stack check."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.runners import gvsoc


def _out_bin(n_out: int, n_layers: int, peaks: list[int], stack: int) -> bytes:
    head = [gvsoc.MAGIC, 1, len(peaks), n_layers, n_out, 8, 256, 900, 16384, 3000]
    words = list(head)
    for w, peak in enumerate(peaks):
        words += [w, 1000 + w, peak, stack, *range(n_out), *([7] * (n_layers * gvsoc.LAYER_WORDS))]
    return np.array(words, dtype="<u4").tobytes()


def test_stack_high_water_mark_is_reported():
    logits, raw = gvsoc.parse_outputs(_out_bin(3, 2, [1800, 2100], 2304), 3)
    assert logits.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert raw["stack_peak_bytes"] == 2100 and raw["stack_bytes"] == 2304
    assert raw["cycles"].tolist() == [1000, 1001]


def test_a_core_that_used_its_whole_stack_is_refused():
    with pytest.raises(gvsoc.GvsocError) as e:
        gvsoc.parse_outputs(_out_bin(3, 2, [1800, 2304], 2304), 3)
    msg = str(e.value)
    assert "\n" not in msg and "stack" in msg and "2304" in msg and "gvsoc.toml" in msg


def test_firmware_without_the_stack_words_is_still_read():
    _, raw = gvsoc.parse_outputs(_out_bin(3, 1, [0], 0), 3)
    assert raw["stack_peak_bytes"] == 0 and raw["stack_bytes"] == 0


def test_headline_line_names_cycles_rate_and_stack():
    s = {"label": gvsoc.CLOCK_LABEL, "cycles": 5248902, "cores": 8, "mac_per_cycle": 3.5, "seconds_at_clock": 0.0142,
         "clock_hz": 370_000_000, "dma_hidden_fraction": 0.29, "stack_peak_bytes": 2124, "stack_bytes": 2304}
    line = gvsoc.describe(s)
    assert "\n" not in line and line.startswith(gvsoc.CLOCK_LABEL)
    for part in ("5,248,902 cycles a window on 8 cores", "3.50 MAC/cycle", "14.2 ms at 370 MHz", "DMA 29% hidden",
                 "stack peak 2,124 of 2,304 B"):
        assert part in line, (part, line)
    assert "stack" not in gvsoc.describe({**s, "stack_bytes": 0})
