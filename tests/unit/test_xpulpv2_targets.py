"""Kernel variants by target: pulp-open and gap9 build the Xpulpv2 linear kernels; rv32-virt (QEMU implements no
Xpulp) and the host build the portable ones. The variant itself is checked on GVSoC (tests/gvsoc/test_xpulpv2.py)."""

import pytest

from edgeflow.backends import toolchain
from edgeflow.resources import firmware_dir
from edgeflow.target import load_target

pytestmark = pytest.mark.unit


def test_targets_select_the_variant_where_xpulp_runs() -> None:
    for name in ("pulp-open", "gap9"):
        t = load_target(name)
        assert t.compiler.kernels == ("xpulpv2",), name
        srcs = toolchain.kernel_sources(t.compiler.kernels)
        assert firmware_dir() / "kernels" / "xpulpv2" / "ef_linear.c" in srcs
    for name in ("rv32-virt", "host"):  # QEMU implements no Xpulp; the host is x86 (its own `host` variant)
        t = load_target(name)
        assert "xpulpv2" not in t.compiler.kernels
        assert all(p.parent.name != "xpulpv2" for p in toolchain.kernel_sources(t.compiler.kernels))
    rv32 = toolchain.kernel_sources(load_target("rv32-virt").compiler.kernels)
    assert all(p.parent == firmware_dir() / "kernels" for p in rv32)   # rv32-virt: the portable library only
