"""libFuzzer + AddressSanitizer + UBSan on the C link receiver and on the device main loop with femba-micro's
generated network: the regression inputs and seeds run clean, then each target fuzzes for a bounded time
(EDGEFLOW_FUZZ_SECONDS, default 20 s; the slow run 120 s). A crash fails with the input in hex: keep it as
corpus/<target>/<name>.hex after the fix."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from .targets import TARGETS, build_targets, crash_report, find_clang, read_hex, run_fuzzer, seeds, write_corpus

CLANG = find_clang()
pytestmark = [pytest.mark.c, pytest.mark.skipif(CLANG is None, reason="no clang with libFuzzer (apt-get install "
                                                                      "clang libclang-rt-14-dev, tools/setup.sh)")]
SECONDS = int(os.environ.get("EDGEFLOW_FUZZ_SECONDS", "20"))


@pytest.fixture(scope="module")
def fuzzers(tmp_path_factory):
    assert CLANG is not None
    return build_targets(CLANG, tmp_path_factory.mktemp("fuzz"))


def _run_inputs(binary, files, env=None) -> subprocess.CompletedProcess:
    """Each file once through the target (libFuzzer's reproduce mode)."""
    return subprocess.run([str(binary), *map(str, files)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_and_regression_inputs_run_clean(fuzzers, target, tmp_path):
    corpus = write_corpus(target, tmp_path / "corpus")
    files = sorted(corpus.iterdir())
    assert len(files) >= len(seeds(target))
    res = _run_inputs(fuzzers[target], files)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(re.findall(r"Executed .* in \d+ ms", res.stderr)) == len(files)


def test_device_harness_reaches_the_network(fuzzers, tmp_path):
    """The device target really runs windows through the network and sees replays and errors (trace mode)."""
    corpus = write_corpus("fuzz_device", tmp_path / "corpus")
    res = _run_inputs(fuzzers["fuzz_device"], [corpus / "raw-window-replay", corpus / "raw-errors", corpus / "ops"],
                      env={"EF_FUZZ_TRACE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    frames = re.findall(r"device: type (\d+) seq (\d+) length (\d+) first (\d+)", res.stderr)
    outputs = [f for f in frames if f[0] == "4"]
    assert ("4", "1", str(28 + 4 * 2 + 16 * 33), "0") in outputs  # a fresh OUTPUT for window 1 ...
    assert ("4", "1", str(28 + 4 * 2 + 16 * 33), "1") in outputs  # ... and its replay
    assert {"1", "2", "5", "6", "7", "8"} <= {f[3] for f in frames if f[0] == "5"}  # ERROR codes seen


def test_regression_inputs_are_hex_text():
    from .targets import CORPUS

    for p in CORPUS.rglob("*.hex"):
        assert read_hex(p), p


def _fuzz(fuzzers, target, seconds, tmp_path):
    corpus = write_corpus(target, tmp_path / "corpus")
    res = run_fuzzer(fuzzers[target], corpus, seconds, tmp_path / "crashes")
    crashes = crash_report(tmp_path / "crashes")
    assert res.returncode == 0 and not crashes, f"{target} crashed:\n{res.stderr[-4000:]}\ninputs:\n{crashes}"
    runs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", res.stderr).group(1))
    assert runs >= 20, res.stderr[-2000:]  # it really fuzzed (beyond its starting corpus)
    print(f"{target}: {runs} inputs in {seconds} s, no crash")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_bounded(fuzzers, target, tmp_path):
    _fuzz(fuzzers, target, SECONDS, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_long(fuzzers, target, tmp_path):
    _fuzz(fuzzers, target, max(SECONDS, 120), tmp_path)
