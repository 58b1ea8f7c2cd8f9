"""Jetson backend: chunked QCDQ ONNX -> TVM Relax -> dlight GPU schedules -> sm_87 cubin in an aarch64 library."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.backends.base import Artifact, Backend
from edgeflow.backends.jetson_bundle import LIBRARY, TRTEXEC, class_names, write_bundle  # noqa: F401  (re-exported)
from edgeflow.errors import EdgeflowError
from edgeflow.target import Target

#: Targets this backend builds (targets/<name>/target.toml with toolchain "tvm").
TARGETS = ("jetson-orin-nano", "jetson-agx-orin")
#: max |logit| between the TVM module (compiled for the host CPU) and onnxruntime; both run the dequantised
#: float32 graph, so only the order of float additions differs (measured ~1e-6 on femba-mini).
TOLERANCE = 1e-4
EM_AARCH64, EM_X86_64, EM_CUDA = 183, 62, 190
CACHE = Path(os.environ.get("EDGEFLOW_CACHE", Path.home() / ".cache" / "edgeflow")) / "jetson"
PIP = ('pip install "apache-tvm==0.27.0.post1" "cuda-bindings==12.9.*" nvidia-cuda-nvrtc-cu12==12.6.85 '
       "nvidia-cuda-runtime-cu12==12.6.77 nvidia-cuda-cccl-cu12==12.6.77  (or: pip install 'edgeflow[jetson]')")


class JetsonError(EdgeflowError):
    """A Jetson build cannot be produced: a missing tool, a scan-form ONNX, a library without device code."""


def require_tvm() -> Any:
    """Import TVM with its ONNX frontend; one line naming the package when it is not installed."""
    try:
        import tvm
        from tvm.relax.frontend import onnx as _  # noqa: F401  (a bare `import tvm` leaves it unset)
    except ImportError as e:
        raise JetsonError(f"Apache TVM is not importable ({e}); install it: pip install apache-tvm==0.27.0.post1 "
                          "(or pip install 'edgeflow[jetson]')") from None
    return tvm


def _nvidia_dir() -> Path | None:
    """site-packages/nvidia of the PyPI CUDA wheels (NVRTC, runtime headers, CCCL), if installed."""
    try:
        import nvidia
    except ImportError:
        return None
    return next((Path(p) for p in getattr(nvidia, "__path__", [])), None)


@dataclass(frozen=True)
class Toolchain:
    """What a cross build needs: the aarch64 C++ compiler, CUDA 12.6 NVRTC + headers, the build-time CUDA stubs."""

    cross_cxx: str
    cuda_runtime: Path   # CUDA_PATH: headers of the CUDA 12.6 runtime wheel
    cccl_include: Path
    stub_dir: Path       # libcuda.so.1 stand-in (and libcudart.so.13 when the machine has none)


def find_toolchain(spec: Any) -> Toolchain:
    """Locate every tool of the cross build; JetsonError naming the first missing one and what provides it."""
    cxx = shutil.which(f"{spec.host_triple}-g++")
    if cxx is None:
        raise JetsonError(f"{spec.host_triple}-g++ not found: install Debian's g++-aarch64-linux-gnu "
                          "(apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu), or build with --host-only")
    nv = _nvidia_dir()
    need = {"cuda_nvrtc/lib/libnvrtc.so.12": "nvidia-cuda-nvrtc-cu12==12.6.85",
            "cuda_runtime/include/cuda_runtime.h": "nvidia-cuda-runtime-cu12==12.6.77",
            "cuda_cccl/include/cuda/std/type_traits": "nvidia-cuda-cccl-cu12==12.6.77"}
    for rel, pkg in need.items():
        if nv is None or not (nv / rel).exists():
            raise JetsonError(f"CUDA 12.6 {rel.split('/')[0]} not found (nvidia/{rel}): pip install {pkg}, "
                              "or build with --host-only")
    try:
        import cuda.bindings.nvrtc  # noqa: F401  (TVM calls NVRTC through it)
    except ImportError:
        raise JetsonError('cuda-bindings not importable (TVM reaches NVRTC through it): pip install '
                          '"cuda-bindings==12.9.*", or build with --host-only') from None
    return Toolchain(cxx, nv / "cuda_runtime", nv / "cuda_cccl" / "include", cuda_stubs())


def _stub(out: Path, soname: str, symbols: list[str], version: str | None) -> None:
    """A C library named `soname` whose functions fail (CUDA error 100 'no device'); build time only."""
    body = []
    for s in symbols:
        body.append(f'int {s}(int e, const char **p) {{ (void)e; if (p) *p = "stub"; return 0; }}'
                    if "GetError" in s else f"int {s}(void) {{ return 100; }}")
    src = out.with_suffix(".c")
    src.write_text("\n".join(body) + "\n")
    cmd = ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(out), str(src)]
    if version:
        vs = out.with_suffix(".map")
        vs.write_text(f"{version} {{ global: *; }};\n")
        cmd.append(f"-Wl,--version-script={vs}")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise JetsonError(f"building the build-time stand-in {soname} failed: {res.stderr.strip()[:200]}")


def cuda_stubs() -> Path:
    """Stand-ins for libcuda.so.1 (and libcudart.so.13 if absent) in the cache, so TVM's CUDA runtime library
    loads and tvm.compile really compiles device code (without them it silently ships CUDA source)."""
    tvm = require_tvm()
    lib = Path(tvm.__file__).parent / "lib" / "libtvm_runtime_cuda.so"
    if not lib.is_file():
        raise JetsonError(f"{lib}: missing from the TVM install (pip install apache-tvm==0.27.0.post1)")
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        raise JetsonError("gcc and nm (binutils) are needed to build the libcuda.so.1 stand-in: apt-get install gcc")
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(lib)], capture_output=True, text=True, check=True)
    syms = sorted({ln.split()[-1] for ln in nm.stdout.splitlines() if ln.split()})
    key = f"{lib.stat().st_size}-{int(lib.stat().st_mtime)}"
    out = CACHE / f"stubs-{key}"
    if (out / "libcuda.so.1").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    driver = [s for s in syms if s.startswith("cu") and s[2:3].isupper()]
    _stub(out / "libcuda.so.1", "libcuda.so.1", driver, None)
    if ctypes.util.find_library("cudart") is None or not _loads("libcudart.so.13"):
        rt = [s.split("@")[0] for s in syms if s.startswith("cuda") and "@libcudart.so.13" in s]
        _stub(out / "libcudart.so.13", "libcudart.so.13", rt, "libcudart.so.13")
    return out


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


def device_target(spec: Any, cores: int) -> Any:
    """The board's TVM target: its tag with the host CPU overridden (the orin-nano tag says 'carmel')."""
    from tvm.target import Target as TvmTarget

    return TvmTarget(spec.tag, host={"kind": "llvm", "mtriple": spec.host_triple, "mcpu": spec.host_mcpu,
                                     "num-cores": int(cores)})


def host_target() -> Any:
    tvm = require_tvm()
    return tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(),
                              "num-cores": max(1, min(os.cpu_count() or 1, 4))})


def check_chunked(onnx_path: Path) -> None:
    """The jetson path reads the chunked form; the scan form's custom node has no TVM converter."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    if any(n.op_type == "SelectiveScan" for n in proto.graph.node):
        raise JetsonError(f"{onnx_path}: scan form (edgeflow.SelectiveScan node), which TVM cannot import; "
                          "give the chunked form: edgeflow export --form chunked (model.chunked.onnx)")


def import_relax(onnx_path: Path) -> Any:
    """The Relax module of the chunked ONNX, weights as constants (one import shared by every build)."""
    import onnx

    require_tvm()
    from tvm.relax.frontend.onnx import from_onnx

    check_chunked(onnx_path)
    return from_onnx(onnx.load(str(onnx_path)), keep_params_in_input=False)


def compile_host(onnx_path: Path, out: Path) -> Path:
    """The same Relax module compiled for this machine's CPU (llvm), exported as a shared library."""
    tvm = require_tvm()
    ex = tvm.compile(import_relax(onnx_path), target=host_target())
    ex.export_library(str(out))
    return out


def _cross_main(onnx_path: str, tag: str, triple: str, mcpu: str, cores: str, cxx: str, out: str) -> None:
    """In a fresh process whose loader sees the CUDA stand-ins: schedule, compile sm_87, cross-link."""
    import tvm
    from tvm import relax
    from tvm.s_tir import dlight as dl

    if "tvm_runtime_cuda" not in tvm.base._LOADED_LIBS:
        raise SystemExit("TVM's CUDA runtime library did not load even with the stand-ins: no device code "
                         "could be compiled")
    spec = type("Spec", (), {"tag": tag, "host_triple": triple, "host_mcpu": mcpu})
    tgt = device_target(spec, int(cores))
    mod = import_relax(Path(onnx_path))
    with tgt:  # the NVRTC callback reads the arch from Target.current()
        mod = relax.get_pipeline("zero")(mod)
        mod = dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GeneralReduction(), dl.gpu.Fallback())(mod)
        ex = tvm.compile(mod, target=tgt)
    ex.export_library(out, fcompile=tvm.support.cc.cross_compiler(cxx))


def compile_device(onnx_path: Path, target: Target, out: Path, tc: Toolchain) -> float:
    """Cross-build model.so for the board in a subprocess (stand-ins on its library path); seconds taken."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(tc.stub_dir), env.get("LD_LIBRARY_PATH")) if p)
    env["CUDA_PATH"] = str(tc.cuda_runtime)
    env["TVM_CUDA_NVRTC_EXTRA_OPTS"] = f"-I{tc.cccl_include}"
    env.pop("TVM_CUDA_COMPILE_MODE", None)  # NVRTC (12.6 from PyPI), never a CUDA 13 nvcc on PATH
    spec = target.tvm
    # absolute paths: the subprocess runs in the source tree, not in the caller's folder (relative --onnx / build)
    args = [str(Path(onnx_path).resolve()), spec.tag, spec.host_triple, spec.host_mcpu, str(target.cores),
            tc.cross_cxx, str(Path(out).resolve())]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", "import sys; from edgeflow.backends.jetson import _cross_main; "
                          "_cross_main(*sys.argv[1:])", *args], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    if res.returncode != 0 or not out.is_file():
        tail = [ln for ln in (res.stderr or res.stdout).strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise JetsonError(f"TVM cross build for {spec.tag} failed: {tail[0][:300]}")
    return time.perf_counter() - t0


def elf_header(blob: bytes, at: int = 0) -> dict[str, int]:
    """e_machine, e_flags, OS ABI and ABI version of the 64-bit little-endian ELF at offset `at`."""
    import struct

    machine = struct.unpack_from("<H", blob, at + 18)[0]
    flags = struct.unpack_from("<I", blob, at + 48)[0]
    version = struct.unpack_from("<I", blob, at + 20)[0]  # a cubin keeps its CUDA toolkit here (126 = 12.6)
    return {"machine": machine, "flags": flags, "version": version, "osabi": blob[at + 7], "abiversion": blob[at + 8]}


def inspect_library(path: Path) -> dict[str, Any]:
    """The library's ELF machine and every embedded CUDA ELF (cubin): its sm from e_flags, its size."""
    blob = Path(path).read_bytes()
    if blob[:4] != b"\x7fELF":
        raise JetsonError(f"{path}: not an ELF file")
    cubins, at = [], blob.find(b"\x7fELF", 1)
    while at >= 0:
        if blob[at + 4] == 2 and at + 64 <= len(blob):
            h = elf_header(blob, at)
            if h["machine"] == EM_CUDA:
                cubins.append({"offset": at, "sm": h["flags"] & 0xFF, "e_flags": hex(h["flags"]),
                               "abi_version": h["abiversion"],
                               "toolkit": f"{h['version'] // 10}.{h['version'] % 10}"})
        at = blob.find(b"\x7fELF", at + 1)
    return {"machine": elf_header(blob)["machine"], "cubins": cubins, "bytes": len(blob),
            "cuda_source": b"extern \"C\" __global__" in blob}


def _io(onnx_path: Path) -> dict[str, Any]:
    import onnx

    g = onnx.load(str(onnx_path), load_external_data=False).graph
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in (g.input[0], g.output[0])]
    return {"model": g.name or onnx_path.stem, "input": {"name": g.input[0].name, "shape": dims[0]},
            "output": {"name": g.output[0].name, "shape": dims[1]}}


def load_runner(bundle: Path, library: Path | None = None, device: str | None = None) -> Any:
    """The bundle's own run.py Model (the code the board runs), imported from the bundle folder."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"edgeflow_bundle_run_{abs(hash(str(bundle)))}", bundle / "run.py")
    if spec is None or spec.loader is None:
        raise JetsonError(f"{bundle / 'run.py'}: cannot be imported")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Model(bundle, library, device)


def run_windows(bundle: Path, windows: np.ndarray, library: Path | None = None) -> np.ndarray:
    """Logits (N, classes) of float windows through the bundle's run.py (host library: device 'cpu')."""
    model = load_runner(Path(bundle), library, "cpu" if library is not None else None)
    return model.run_windows(np.asarray(windows, dtype=np.float32))[0]


def check_host(bundle: Path, onnx_path: Path, windows: np.ndarray, library: Path) -> dict[str, Any]:
    """The Relax module compiled for the host CPU vs onnxruntime (optimizations off) on the windows."""
    from edgeflow.export.onnx import ort_run

    got = run_windows(bundle, windows, library)
    ref = ort_run(onnx_path, windows).reshape(got.shape)
    diff = float(np.abs(got - ref).max())
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    report = {"windows": int(len(windows)), "against": "onnxruntime (optimizations off)", "device": "host cpu (llvm)",
              "max_abs_logit_diff": diff, "tolerance": TOLERANCE, "argmax_agree": agree}
    if diff > TOLERANCE or agree < 1.0:
        raise JetsonError(f"{library}: TVM differs from onnxruntime by {diff:.3g} (tolerance {TOLERANCE:g}), "
                          f"argmax agreement {agree:.0%} on {len(windows)} windows")
    return report


def compile(onnx_path: Path, target: Target, out_dir: Path, *, card: Any | None = None,
            check_windows: np.ndarray | None = None, host_only: bool = False) -> Artifact:
    """Build the Jetson bundle in out_dir from the chunked ONNX; host_only compiles the same Relax module for
    this machine's CPU instead (no cross tools needed). With check_windows, the host-CPU module must agree
    with onnxruntime within TOLERANCE (the host build is compiled for that when not host_only)."""
    import tempfile

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if target.tvm is None:
        raise JetsonError(f"target '{target.name}' has no [tvm] table; the jetson backend needs one")
    require_tvm()
    check_chunked(onnx_path)
    spec, lib = target.tvm, out_dir / LIBRARY
    tc = None if host_only else find_toolchain(spec)  # every missing tool is named before any work
    info = _io(onnx_path)
    info["model"] = card.name if card is not None else info["model"]
    t0 = time.perf_counter()
    if host_only:
        compile_host(onnx_path, lib)
    else:
        compile_device(onnx_path, target, lib, tc)
    seconds = time.perf_counter() - t0
    elf = verify_library(lib, spec, host_only)
    info["device"] = "cpu" if host_only else "cuda"
    write_bundle(out_dir, target, card, "model.onnx", info)
    report = {"model": info["model"], "backend": "jetson", "target": target.name, "tvm_target": spec.tag,
              "host_only": host_only, "library": {"file": LIBRARY, **elf}, "compile_s": round(seconds, 2),
              "weights": "float32: QCDQ weights dequantised (constant-folded) at compile time",
              "cuda": spec.cuda, "jetpack": spec.jetpack, "arch": spec.arch, "input": info["input"],
              "trtexec": TRTEXEC}
    if check_windows is not None:
        with tempfile.TemporaryDirectory(prefix="edgeflow-jetson-host-") as tmp:
            host_lib = lib if host_only else compile_host(onnx_path, Path(tmp) / "model.host.so")
            report["check"] = check_host(out_dir, onnx_path, np.asarray(check_windows), host_lib)
    return Artifact(out_dir=out_dir, sources=[], binary=None, plan={}, report=report)


def verify_library(lib: Path, spec: Any, host_only: bool) -> dict[str, Any]:
    """The library's ELF header (aarch64 for the board) and cubins (sm and toolkit from their headers)."""
    elf = inspect_library(lib)
    if host_only:
        return {"machine": elf["machine"], "cubins": []}
    if elf["machine"] != EM_AARCH64:
        raise JetsonError(f"{lib}: ELF e_machine {elf['machine']}, not aarch64 ({EM_AARCH64})")
    sm = int(spec.arch.removeprefix("sm_"))
    if elf["cuda_source"] or not elf["cubins"]:
        raise JetsonError(f"{lib}: carries CUDA source, no cubin (TVM's CUDA runtime did not load at build time)")
    bad = [c for c in elf["cubins"] if c["sm"] != sm or c["toolkit"] != spec.cuda]
    if bad:
        raise JetsonError(f"{lib}: cubin for sm_{bad[0]['sm']} toolkit {bad[0]['toolkit']}, expected {spec.arch} "
                          f"toolkit {spec.cuda}")
    return {"machine": elf["machine"], "cubins": elf["cubins"]}


def describe(report: dict[str, Any]) -> str:
    """One paragraph for `edgeflow build`: the library, its machine and cubins, the weights."""
    lib = report["library"]
    machine = {EM_AARCH64: "aarch64", EM_X86_64: "x86_64"}.get(lib["machine"], f"e_machine {lib['machine']}")
    cubins = ", ".join(f"sm_{c['sm']} cubin (CUDA {c['toolkit']}, e_flags {c['e_flags']})" for c in lib["cubins"])
    where = "this machine's CPU (--host-only)" if report["host_only"] else f"{report['tvm_target']}"
    return (f"{report['model']} -> {report['target']}: {lib['file']} for {where}, {machine} ELF"
            f"{' embedding ' + cubins if cubins else ''}; weights {report['weights']}; "
            f"TVM compile {report['compile_s']:.1f} s")


#: One registry entry per Jetson target: takes the chunked ONNX, float tolerance against onnxruntime.
BACKENDS = tuple(Backend(name=t, compile=compile, tolerance=TOLERANCE, takes="onnx", binary=LIBRARY,
                         description="TVM bundle for NVIDIA Jetson (CUDA sm_87 + aarch64 host library)")
                 for t in TARGETS)
