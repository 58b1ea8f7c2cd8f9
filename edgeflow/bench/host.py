"""Host CPU peers, one persistent process each, run interleaved window by window: timings and correctness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.bench import stats
from edgeflow.bench.models import BenchError, Subject
from edgeflow.bench.worker import THREAD_ENV, onnxruntime_unfused

HOST_PEERS = ("edgeflow-c", "onnxruntime", "pytorch", "tvm")
BENCH_MAIN = Path(__file__).with_name("bench_main.c")


def available(peer: str) -> str | None:
    """None when the peer can run here, else why not (one line)."""
    import importlib.util

    module = {"edgeflow-c": None, "onnxruntime": "onnxruntime", "pytorch": "torch", "tvm": "tvm"}[peer]
    if peer == "edgeflow-c" and shutil.which("gcc") is None:
        return "gcc not found on PATH"
    if module and importlib.util.find_spec(module) is None:
        return f"not installed: python package '{module}' is not importable"
    return None


def compile_bench_binary(build_dir: Path) -> Path:
    """The host build's network, kernels and flags with the timing driver bench_main.c instead of host_main.c."""
    from edgeflow.backends import toolchain
    from edgeflow.resources import firmware_dir
    from edgeflow.target import load_target

    compiler = load_target("host").compiler  # the host build's own compiler and flags (targets/host/target.toml)

    fw = firmware_dir()
    srcs = sorted((build_dir / "src").glob("*.c"))
    hal = any("tiled" in s.name for s in srcs)
    kernels = toolchain.kernel_sources(compiler.kernels) + ([fw / "hal" / "ef_dma_memcpy.c"] if hal else [])
    binary = build_dir / "bench_main"
    cmd = [compiler.cc, *compiler.cflags, "-I", str(fw / "kernels"), *(["-I", str(fw / "hal")] if hal else []),
           "-I", str(build_dir / "src"), *map(str, srcs), str(BENCH_MAIN), *map(str, kernels), "-o", str(binary)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BenchError(f"{BENCH_MAIN.name}: gcc failed: {res.stderr.strip()[:300]}")
    return binary


@dataclass
class Peer:
    """A running peer process; call(i) runs window i and returns (cpu_s, wall_s, output)."""

    name: str
    proc: subprocess.Popen
    info: dict[str, Any] = field(default_factory=dict)
    xq: np.ndarray | None = None
    n_out: int = 0

    def call(self, i: int) -> tuple[float, float, np.ndarray]:
        if self.xq is not None:  # the C driver: raw window in, raw accumulators + two int64 ns out
            self.proc.stdin.write(np.ascontiguousarray(self.xq[i], dtype=np.int8).tobytes())
            self.proc.stdin.flush()
            raw = self.proc.stdout.read(4 * self.n_out + 16)
            if len(raw) != 4 * self.n_out + 16:
                raise BenchError(f"{self.name}: the bench binary stopped answering at window {i}")
            cpu_ns, wall_ns = np.frombuffer(raw[4 * self.n_out:], dtype=np.int64)
            return cpu_ns * 1e-9, wall_ns * 1e-9, np.frombuffer(raw[:4 * self.n_out], dtype=np.int32).copy()
        self.proc.stdin.write(f"{i}\n".encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"{self.name}: worker exited at window {i} (its log is next to subject.json)")
        r = json.loads(line)
        return r["cpu_s"], r["wall_s"], np.asarray(r["out"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def start(peer: str, subject: Subject, xq: np.ndarray, n_out: int) -> Peer:
    import edgeflow

    pkg_root = str(Path(edgeflow.__file__).resolve().parents[1])  # the workers import this same edgeflow
    env = {**os.environ, **THREAD_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [pkg_root,
                                                                                  os.environ.get("PYTHONPATH")]))}
    if peer == "edgeflow-c":
        binary = compile_bench_binary(subject.host_build)
        proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return Peer(peer, proc, {"binary": str(binary), "settings": "host build's gcc flags, 1 thread"}, xq, n_out)
    spec = subject.folder / "subject.json"
    log = subject.folder / f"worker-{peer}.log"
    t0 = time.monotonic()
    with log.open("wb") as err:  # library chatter (TVM warnings) goes to the log, not the terminal
        proc = subprocess.Popen([sys.executable, "-m", "edgeflow.bench.worker", peer, str(spec)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, cwd=os.getcwd())
    line = proc.stdout.readline().decode()
    if not line.startswith("ready "):
        proc.kill()
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"{peer}: worker failed to start ({log}: {tail[0][:200]})")
    info = json.loads(line[6:])
    info["setup_s"] = time.monotonic() - t0
    return Peer(peer, proc, info)


def run_host(subject: Subject, peers: list[str], n_windows: int, log=print) -> dict[str, Any]:
    """Start every available peer, run the interleaved schedule, return per-peer timings, checks and ratios."""
    w = np.load(subject.windows)
    xq, acc, logits = w["xq"], w["acc"], w["logits"]
    out: dict[str, Any] = {"peers": {}, "windows": n_windows, "warmup_windows": 1}
    running: list[Peer] = []
    try:
        for p in peers:
            why = available(p) or (None if p != "tvm" or subject.chunked else "chunked ONNX not exported")
            if why:
                out["peers"][p] = {"available": False, "reason": why}
                continue
            log(f"  starting {p} ...")
            try:
                running.append(start(p, subject, xq, acc.shape[1]))
            except BenchError as e:  # a peer tool that cannot load this model is a finding, not a crash
                if p == "edgeflow-c":
                    raise
                out["peers"][p] = {"available": False, "reason": f"failed to start: {e}"}
        samples = {p.name: {"cpu": [], "wall": [], "out": {}} for p in running}
        by_name = {p.name: p for p in running}
        for i, name, timed in stats.schedule(list(by_name), n_windows):
            cpu, wall, y = by_name[name].call(i)
            if timed:
                s = samples[name]
                s["cpu"].append(cpu)
                s["wall"].append(wall)
                s["out"][i] = y
    finally:
        for p in running:
            p.close()
    for p in running:
        s = samples[p.name]
        got = np.stack([s["out"][i] for i in range(1, n_windows + 1)])
        ref_acc, ref_logits = acc[1:n_windows + 1], logits[1:n_windows + 1]
        if p.name == "edgeflow-c":
            check = stats.check_exact(got, ref_acc)
        elif p.name == "pytorch":
            check = stats.check_float(got, ref_logits)
        elif p.name == "onnxruntime":  # timed as a user runs it (QDQ fused into int8 kernels), checked unfused
            xf = np.load(subject.windows)["xf"][1:n_windows + 1]
            check = stats.check_ort(got, onnxruntime_unfused(str(subject.onnx), xf), ref_logits)
        else:
            check = stats.check_close(got, ref_logits)
        out["peers"][p.name] = {"available": True, **p.info, "cpu": stats.summarize(s["cpu"]),
                                "wall": stats.summarize(s["wall"]), "check": check}
    out["peers"] = {p: out["peers"][p] for p in peers if p in out["peers"]}
    timed = {k: v for k, v in out["peers"].items() if v.get("available")}
    out["ratio_cpu"] = stats.ratios(timed, "edgeflow-c", "cpu")
    out["ratio_wall"] = stats.ratios(timed, "edgeflow-c", "wall")
    return out
