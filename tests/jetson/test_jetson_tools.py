"""Jetson backend pieces that need no TVM: targets as data, missing-tool errors, ELF/cubin reading, the bundle's
copy of the preprocessing."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends import jetson
from edgeflow.backends.jetson import JetsonError
from edgeflow.target import TargetError, load_target

pytestmark = pytest.mark.jetson


def test_jetson_targets_as_data():
    nano, agx = load_target("jetson-orin-nano"), load_target("jetson-agx-orin")
    assert nano.toolchain == agx.toolchain == "tvm" and nano.memory == () == agx.memory
    assert nano.tvm.tag == "nvidia/jetson-orin-nano" and nano.tvm.host_mcpu == "cortex-a78ae"
    assert nano.tvm.arch == agx.tvm.arch == "sm_87" and (nano.tvm.sm_count, agx.tvm.sm_count) == (8, 16)
    assert nano.tvm.cuda == "12.6" and nano.tvm.jetpack == "6" and nano.cores == 6
    assert load_target("gap9").tvm is None
    with pytest.raises(TargetError, match="no memory level 'L1'"):
        _ = nano.l1


TVM_TOML = """[target]
name = "x"
description = "d"
clock_hz = 1
cores = 6
toolchain = "tvm"

[tvm]
tag = "nvidia/jetson-orin-nano"
arch = "sm_87"
host_triple = "aarch64-linux-gnu"
host_mcpu = "cortex-a78ae"
sm_count = 8
memory_bytes = 100
cuda = "12.6"
jetpack = "6"
"""


@pytest.mark.parametrize("old, new, expected", [
    ("sm_count = 8", "sm_count = 0", "tvm.sm_count must be > 0"),
    ('cuda = "12.6"\n', "", "tvm.cuda is missing"),
    ('arch = "sm_87"', 'arch = ""', "tvm.arch must be non-empty"),
    ("jetpack", "jetpak", "tvm.jetpak is not a known field"),
    ('toolchain = "tvm"', 'toolchain = "gcc"', "a TVM target has toolchain"),
    ("[tvm]", "[[memory]]\nname = 'L1'\n[tvm]", "a TVM target has toolchain"),
])
def test_invalid_tvm_target(tmp_path, old, new, expected):
    assert old in TVM_TOML
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "target.toml").write_text(TVM_TOML.replace(old, new, 1))
    with pytest.raises(TargetError, match=expected):
        load_target(tmp_path / "x")


def test_missing_cross_compiler_named(monkeypatch):
    monkeypatch.setattr(jetson.shutil, "which", lambda name: None)
    with pytest.raises(JetsonError, match=r"^aarch64-linux-gnu-g\+\+ not found: install Debian's g\+\+-aarch64"):
        jetson.find_toolchain(load_target("jetson-orin-nano").tvm)


def test_missing_nvrtc_named(monkeypatch):
    monkeypatch.setattr(jetson.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(jetson, "_nvidia_dir", lambda: None)
    with pytest.raises(JetsonError, match=r"cuda_nvrtc not found .*pip install nvidia-cuda-nvrtc-cu12==12\.6\.85"):
        jetson.find_toolchain(load_target("jetson-orin-nano").tvm)


def test_missing_tvm_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "tvm", None)
    with pytest.raises(JetsonError, match=r"Apache TVM is not importable .*apache-tvm==0\.27\.0\.post1"):
        jetson.require_tvm()


def _elf(machine: int, flags: int = 0, version: int = 1, size: int = 64) -> bytes:
    head = bytearray(size)
    head[:5] = b"\x7fELF\x02"
    struct.pack_into("<HI", head, 18, machine, version)
    struct.pack_into("<I", head, 48, flags)
    return bytes(head)


def test_cubin_headers_read_not_assumed(tmp_path):
    spec = load_target("jetson-orin-nano").tvm
    lib = tmp_path / "model.so"
    lib.write_bytes(_elf(183, size=256) + _elf(190, 0x570557, 126) + b"\0" * 32)
    info = jetson.inspect_library(lib)
    assert info["machine"] == 183 and [(c["sm"], c["toolkit"]) for c in info["cubins"]] == [(87, "12.6")]
    assert jetson.verify_library(lib, spec, host_only=False)["cubins"][0]["e_flags"] == "0x570557"
    lib.write_bytes(_elf(183, size=256) + _elf(190, 0x590559, 130))
    with pytest.raises(JetsonError, match="cubin for sm_89 toolkit 13.0, expected sm_87 toolkit 12.6"):
        jetson.verify_library(lib, spec, host_only=False)
    lib.write_bytes(_elf(183, size=256) + b'extern "C" __global__ void k() {}')
    with pytest.raises(JetsonError, match="carries CUDA source, no cubin"):
        jetson.verify_library(lib, spec, host_only=False)
    lib.write_bytes(_elf(62, size=256) + _elf(190, 0x570557, 126))
    with pytest.raises(JetsonError, match="e_machine 62, not aarch64"):
        jetson.verify_library(lib, spec, host_only=False)


def test_bundle_preprocessing_is_edgeflows(tmp_path, synth_edf, mini_card, mini_windows):
    """The bundle's edgeflow_eeg.py (copied at build time) gives exactly edgeflow's windows, without edgeflow."""
    info = {"model": "m", "device": "cpu", "input": {"name": "x", "shape": [1, 22, 1280]},
            "output": {"name": "y", "shape": [1, 2]}}
    jetson.write_bundle(tmp_path, load_target("jetson-orin-nano"), mini_card, "model.onnx", info)
    text = (tmp_path / "edgeflow_eeg.py").read_text()
    assert "import edgeflow" not in text and "from edgeflow" not in text
    spec = importlib.util.spec_from_file_location("bundle_run_under_test", tmp_path / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    meta = __import__("json").loads((tmp_path / "model.json").read_text())
    got = run.load_windows(synth_edf, meta)
    assert got.dtype == np.float32 and np.array_equal(got, mini_windows)


def test_host_only_is_for_tvm_targets(capsys):
    from edgeflow.cli import main

    assert main(["build", "--target", "host", "--host-only", "--onnx", "x.onnx"]) == 2
    assert "--host-only applies to the TVM targets (jetson-agx-orin, jetson-orin-nano)" in capsys.readouterr().err


def test_cross_build_subprocess_gets_absolute_paths(tmp_path, monkeypatch):
    """The cross build runs in the source tree; a relative --onnx or build folder (what the CLI passes) must reach
    it absolute (it once linked model.so into a build/ folder that did not exist there)."""
    seen = {}

    def fake_run(cmd, **kw):
        seen["args"], seen["cwd"] = cmd[3:], kw["cwd"]
        Path(cmd[-1]).write_bytes(b"\x7fELF")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").mkdir()
    monkeypatch.setattr(jetson.subprocess, "run", fake_run)
    tc = jetson.Toolchain("aarch64-linux-gnu-g++", tmp_path, tmp_path, tmp_path)
    jetson.compile_device(Path("m.onnx"), load_target("jetson-orin-nano"), Path("build/model.so"), tc)
    onnx_arg, out_arg = seen["args"][0], seen["args"][-1]
    assert onnx_arg == str(tmp_path / "m.onnx") and out_arg == str(tmp_path / "build" / "model.so")
    assert Path(seen["cwd"]) != tmp_path and (tmp_path / "build" / "model.so").is_file()
