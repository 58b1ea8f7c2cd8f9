"""rv32-virt firmware build: link script sized from target.toml (a plan that does not fit fails at link time with
one line naming the region), ELF section report, one-line errors for a missing cross compiler / QEMU / firmware."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from edgeflow.backends import BACKENDS
from edgeflow.backends.host import compile_host
from edgeflow.backends.rv32_virt import (
    FirmwareError,
    compile_rv32,
    layout,
    link_firmware,
    main_sources,
    render_link_script,
)
from edgeflow.errors import EdgeflowError
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.runners import qemu_rv32 as emulator

from .conftest import CASES, need_cross

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def micro():
    return load_onnx(CASES / "femba-micro-w2" / "model.onnx")


def _with_level(target, name: str, **changes):
    levels = tuple(dataclasses.replace(lvl, **changes) if lvl.name == name else lvl for lvl in target.memory)
    return dataclasses.replace(target, memory=levels)


def test_link_script_regions_come_from_target(rv32):
    text = render_link_script(rv32)
    lay = layout(rv32)
    assert re.search(r"@[A-Z0-9_]+@", text) is None
    assert f"LENGTH = {rv32.l2.size}" in text and f"LENGTH = {rv32.level('L3').size}" in text
    assert f"LENGTH = {lay['L1_USABLE']}" in text and lay["L1_USABLE"] + lay["STACK_SIZE"] == rv32.l1.size
    assert lay["L2_ORIGIN"] == 0x8000_0000 < lay["L1_ORIGIN"] < lay["L3_ORIGIN"]
    small = _with_level(rv32, "L1", size=65536, usable=49152)
    assert "LENGTH = 49152" in render_link_script(small)


def test_registered_backend_builds_firmware_with_section_report(rv32, micro, tmp_path):
    need_cross()
    assert "rv32-virt" in BACKENDS
    art = BACKENDS["rv32-virt"].compile(micro, rv32, tmp_path / "b")
    assert art.binary == tmp_path / "b" / "firmware.elf" and art.binary.read_bytes()[:4] == b"\x7fELF"
    fw = art.report["firmware"]
    assert fw["main"] == "device"
    assert fw["sections"][".text"] > 0 and fw["sections"][".l2"] > 0
    assert fw["sections"][{"L2": ".l2_weights", "L3": ".weights"}[art.report["memory"]["weights_level"]]] > 0
    assert fw["regions"]["L1"]["used"] <= fw["regions"]["L1"]["size"] == layout(rv32)["L1_USABLE"]
    assert (tmp_path / "b" / "src" / "ef_model_info.h").exists() and (tmp_path / "b" / "link.ld").exists()


def _link_against(graph, planned, linked, out: Path) -> str:
    """Plan and render for `planned`, link with the regions of `linked`: the link script is the last line of
    defence when a plan and the memory disagree. Returns the one-line error."""
    art = compile_host(graph, out, compile_binary=False, target=planned)
    mains, flags = main_sources(out)
    with pytest.raises(FirmwareError) as info:
        link_firmware(out, linked, [*art.sources, *mains], flags)
    msg = str(info.value)
    assert "\n" not in msg and "target.toml" in msg, msg
    return msg


def test_l2_too_small_fails_at_link_time(rv32, micro, tmp_path):
    need_cross()
    msg = _link_against(micro, rv32, _with_level(rv32, "L2", size=32768, usable=32768), tmp_path / "b")
    assert "region L2" in msg and "overflowed by" in msg, msg


def test_l1_tiles_larger_than_region_fail_at_link_time(rv32, micro, tmp_path):
    need_cross()
    smaller = _with_level(rv32, "L1", usable=rv32.l1.usable - 8192)   # the stack takes the rest of L1
    msg = _link_against(micro, rv32, smaller, tmp_path / "b")
    assert "region L1" in msg and "overflowed by 8192 bytes" in msg, msg


def test_missing_cross_compiler_names_the_package(rv32, micro, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FirmwareError) as info:
        compile_rv32(micro, rv32, tmp_path / "b")
    assert "gcc-riscv64-unknown-elf" in str(info.value) and "\n" not in str(info.value)


def test_missing_qemu_and_missing_firmware_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(EdgeflowError) as info:
        emulator.start(tmp_path)                  # no firmware.elf here
    if "not found on PATH" not in str(info.value):
        assert "firmware.elf" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EdgeflowError) as info:
        emulator.start(tmp_path)
    assert "qemu-system-misc" in str(info.value) and "\n" not in str(info.value)
    assert emulator.stop(Path(tmp_path)) is False


TRAP_MAIN = """\
#include <stdint.h>
#include "ef_hal.h"
int main(void)
{
    ef_hal_init();
    ef_hal_putc('\\n');           /* boot byte: the emulator lets the host in after it */
    (void)ef_hal_getc();
    __asm__ volatile(".word 0");  /* illegal instruction */
    return 0;
}
"""


def test_trap_is_reported_on_the_uart(rv32, tmp_path):
    need_cross()
    if shutil.which("qemu-system-riscv32") is None:
        pytest.skip("qemu-system-riscv32 missing")
    import serial

    main_c = tmp_path / "trap_main.c"
    main_c.write_text(TRAP_MAIN)
    elf = link_firmware(tmp_path, rv32, [main_c])
    with emulator.running(elf) as dev, serial.Serial(dev.port, timeout=5) as port:
        port.write(b"x")
        line = port.read_until(b"\n", 200).decode(errors="replace")
        line += port.read_until(b"\n", 200).decode(errors="replace")
    assert "EF-TRAP mcause=0x00000002" in line, line   # 2: illegal instruction, with mepc and mtval
    assert "mepc=0x8" in line and "mtval=" in line
