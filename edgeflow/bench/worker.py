"""Persistent worker process of one Python peer: loads its runtime once, then times one window per request.

    python -m edgeflow.bench.worker PEER SUBJECT.json

Protocol (stdout is the channel; library chatter is moved to stderr): one line `ready {json}` after set-up,
then per request line `I` (window index) one line `{"cpu_s", "wall_s", "out"}`; a line `q` or EOF ends it.
CPU time is time.process_time() of this process around the inference call only (all its threads count).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TVM_NUM_THREADS": "1"}


def setup_onnxruntime(subject: dict) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """onnxruntime on model.onnx (QCDQ): default graph optimizations, one intra-op and one inter-op thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    sess = ort.InferenceSession(subject["onnx"], so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    info = {"version": ort.__version__, "model": Path(subject["onnx"]).name,
            "settings": "default optimizations (ORT_ENABLE_ALL), 1 intra-op thread, sequential"}
    return (lambda x: sess.run(None, {name: x})[0]), info


def onnxruntime_unfused(onnx: str, xf: np.ndarray) -> np.ndarray:
    """onnxruntime's answers for windows xf with its QDQ fusion off (session.disable_quant_qdq): every
    DequantizeLinear -> op -> QuantizeLinear runs as written, the model's own float semantics. (With the default
    optimizations ORT fuses those into int8 kernels, QLinear* and friends, that requantize at every node with
    their own rounding.) Not timed: the bench's check of the onnxruntime peer."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([np.asarray(sess.run(None, {name: np.ascontiguousarray(x[None], dtype=np.float32)})[0],
                                dtype=np.float64).reshape(-1) for x in xf])


def setup_pytorch(subject: dict) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """The card's float PyTorch model (float32, eval, no_grad, one thread)."""
    import torch

    from edgeflow.cards import load_card
    from edgeflow.nn import build_model

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    model = build_model(load_card(subject["card"]))
    model.load_state_dict(torch.load(subject["float_pt"], map_location="cpu", weights_only=True))
    model.eval()

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return infer, {"version": torch.__version__, "model": subject["float_source"], "settings": "float32, 1 thread"}


def setup_tvm(subject: dict) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """TVM (Relax) llvm for this CPU, untuned, on the chunked ONNX form (TVM has no SelectiveScan converter)."""
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx
    from tvm.target import Target

    t0 = time.monotonic()
    mod = from_onnx(onnx.load(subject["chunked"]), keep_params_in_input=False)
    cpu = tvm.target.codegen.llvm_get_system_cpu()
    ex = tvm.compile(mod, target=Target({"kind": "llvm", "mcpu": cpu, "num-cores": 1}))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    fn = vm["main"]

    def infer(x: np.ndarray) -> np.ndarray:
        out = fn(tvm.runtime.tensor(x))
        return (out[0] if isinstance(out, (list, tuple)) else out).numpy()

    return infer, {"version": tvm.__version__, "model": Path(subject["chunked"]).name,
                   "settings": f"llvm mcpu={cpu}, untuned, TVM_NUM_THREADS=1", "compile_s": time.monotonic() - t0}


SETUPS = {"onnxruntime": setup_onnxruntime, "pytorch": setup_pytorch, "tvm": setup_tvm}


def serve(peer: str, subject: dict, inp, out) -> int:
    """Set the peer up, answer requests until `q` or EOF."""
    infer, info = SETUPS[peer](subject)
    xf = np.load(subject["windows"])["xf"]
    out.write("ready " + json.dumps(info) + "\n")
    out.flush()
    for line in inp:
        line = line.strip()
        if line in ("q", ""):
            break
        x = np.ascontiguousarray(xf[int(line)][None], dtype=np.float32)
        w0, c0 = time.perf_counter(), time.process_time()
        y = infer(x)
        c1, w1 = time.process_time(), time.perf_counter()
        out.write(json.dumps({"cpu_s": c1 - c0, "wall_s": w1 - w0,
                              "out": np.asarray(y, dtype=np.float64).reshape(-1).tolist()}) + "\n")
        out.flush()
    return 0


def main(argv: list[str]) -> int:
    peer, subject_json = argv
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    subject = json.loads(Path(subject_json).read_text())
    return serve(peer, subject, sys.stdin, channel)


if __name__ == "__main__":
    os.environ.update(THREAD_ENV)
    sys.exit(main(sys.argv[1:]))
