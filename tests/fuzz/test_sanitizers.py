"""The c tier once more under AddressSanitizer + UBSan: the generated network, the kernels and the host runner
built with -fsanitize=address,undefined (no recovery: the first finding aborts), bit-exact on the golden windows,
for the whole-tensor host build and for the gap9 plan's L1 tiles (DMA double buffers, packed blobs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends.c_pipeline import build_host_binary as build
from edgeflow.backends.host import compile_host
from edgeflow.ir.from_onnx import load_onnx

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]
CASES = Path(__file__).resolve().parents[1] / "cases"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


def _sanitizers_link() -> bool:
    probe = subprocess.run(["gcc", *SANITIZE, "-x", "c", "-", "-o", "/dev/null"], input="int main(void){return 0;}",
                           capture_output=True, text=True)
    return probe.returncode == 0


def _run(binary: Path, x: np.ndarray, n_out: int) -> np.ndarray:
    import os

    res = subprocess.run([str(binary)], input=np.ascontiguousarray(x, dtype=np.int8).tobytes(), capture_output=True,
                         env={**os.environ, **ENV})
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-4000:]
    assert b"runtime error" not in res.stderr, res.stderr.decode(errors="replace")[-4000:]
    return np.frombuffer(res.stdout, dtype=np.int32).reshape(len(x), n_out)


@pytest.mark.skipif(not _sanitizers_link(), reason="gcc cannot link -fsanitize=address,undefined (libasan/libubsan)")
@pytest.mark.parametrize(("name", "tiled"), [("femba-micro-w2", False), ("vit-tiny-w2", False),
                                             ("femba-micro-w2", True)])
def test_golden_bit_exact_under_asan_ubsan(name, tiled, tmp_path):
    from edgeflow.target import load_target

    graph = load_onnx(CASES / name / "model.onnx")
    x = np.load(CASES / name / "inputs.npz")["x"]
    acc = np.load(CASES / name / "outputs.npz")["logits_acc"]
    art = compile_host(graph, tmp_path / "build", compile_binary=False, target=load_target("gap9") if tiled else None)
    assert bool(art.plan.get("memory")) == tiled
    binary = build(tmp_path / "build", art.sources, hal=tiled, extra_cflags=SANITIZE)
    got = _run(binary, x, acc.shape[1])
    assert np.array_equal(got, acc), f"{name}: {int((got != acc).any(1).sum())} windows differ under sanitizers"


@pytest.mark.skipif(not _sanitizers_link(), reason="gcc cannot link -fsanitize=address,undefined (libasan/libubsan)")
def test_sanitized_build_catches_a_read_past_the_window(tmp_path):
    """Negative control: a network that reads one byte past its input aborts the sanitized runner."""
    src = tmp_path / "build" / "src"
    src.mkdir(parents=True)
    (src / "network.h").write_text("#include <stdint.h>\n#define EF_INPUT_SIZE 16\n#define EF_OUTPUT_SIZE 1\n"
                                   "void ef_network_run(const int8_t *x, int32_t *y);\n")
    (src / "network.c").write_text('#include "network.h"\nvoid ef_network_run(const int8_t *x, int32_t *y)\n'
                                   "{ int32_t i, s = 0; for (i = 0; i <= EF_INPUT_SIZE; ++i) s += x[i]; *y = s; }\n")
    binary = build(tmp_path / "build", [src / "network.c"], extra_cflags=SANITIZE)
    with pytest.raises(AssertionError, match="global-buffer-overflow"):
        _run(binary, np.ones((1, 16), dtype=np.int8), 1)
