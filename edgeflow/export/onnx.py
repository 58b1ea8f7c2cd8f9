"""QCDQ ONNX export of a quantized model (scan as one custom node, or chunked for GPU compilers) + self-check."""

from __future__ import annotations

import io
import json
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edgeflow.errors import EdgeflowError
from edgeflow.export.scan_op import attach_scan_function

FORMS = ("scan", "chunked")  # "scan": one edgeflow.SelectiveScan node; "chunked": plain ops (TVM)
# Stated tolerances of the self-check (max |logit difference|, onnxruntime with optimizations off):
TOLERANCE = {"scan": 1e-4, "chunked": 1e-3}


class ExportError(EdgeflowError):
    """Export failed: a layer brevitas cannot export, or a file that does not check."""


OPSET = {"scan": 13, "chunked": 14}  # the chunked scan's triangular mask (Trilu) needs opset 14


def check_exportable(model: nn.Module) -> None:
    """Every leaf module must be one the QCDQ export and the compiler understand; name the first that is not."""
    import brevitas.nn as qnn

    allowed = (qnn.QuantLinear, qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantIdentity, nn.LayerNorm)
    for name, mod in model.named_modules():
        if isinstance(mod, allowed):
            continue
        inside_quant = any(name.startswith(p + ".") for p, m in model.named_modules() if isinstance(m, allowed))
        if inside_quant or len(list(mod.children())) > 0:
            continue
        raise ExportError(f"module '{name}' ({type(mod).__name__}) cannot be exported: not a quantized layer "
                          f"(supported: {', '.join(t.__name__ for t in allowed)})")


def export_qcdq(model: nn.Module, sample: np.ndarray, path: Path, form: str = "scan") -> onnx.ModelProto:
    """Write QCDQ ONNX for `model` (a quantized edgeflow model) traced on `sample` windows; returns it."""
    from brevitas.export import export_onnx_qcdq

    if form not in FORMS:
        raise ExportError(f"unknown export form '{form}'; choose one of {FORMS}")
    check_exportable(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    x = torch.as_tensor(sample[:1])
    model.eval()
    model.set_export_mode(form == "scan")
    old_mode = model.mixers[0].scan_mode if model.mixers else None
    if form == "chunked":
        model.set_scan_mode("chunked")
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            export_onnx_qcdq(model, args=x, export_path=str(tmp), keep_initializers_as_inputs=False,
                             dynamo=False, opset_version=OPSET[form])
    except Exception as e:  # name the module brevitas could not export when torch tells us
        raise ExportError(f"export of {type(model).__name__} failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]}") from None
    finally:
        model.set_export_mode(False)
        if old_mode is not None:
            model.set_scan_mode(old_mode)
    proto = attach_scan_function(onnx.load(str(tmp)))
    tmp.unlink(missing_ok=True)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the ONNX file in onnxruntime with graph optimizations disabled (the strict oracle)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))]
    return np.concatenate(outs)


@torch.no_grad()
def verify_export(model: nn.Module, path: Path, x: np.ndarray, form: str = "scan") -> dict:
    """Compare onnxruntime on the file with the PyTorch/brevitas model on windows x; raises if out of tolerance."""
    model.eval()
    ref = model(torch.as_tensor(x)).numpy()
    got = ort_run(path, x)
    diff = float(np.abs(ref - got).max())
    report = {"form": form, "windows": int(len(x)), "max_abs_logit_diff": diff, "tolerance": TOLERANCE[form],
              "exact": diff == 0.0, "argmax_agree": float((ref.argmax(1) == got.argmax(1)).mean())}
    if diff > TOLERANCE[form]:
        raise ExportError(f"{path}: onnxruntime differs from the PyTorch model by {diff:.3g} "
                          f"(> tolerance {TOLERANCE[form]:g}) on {len(x)} windows")
    return report


def count_ops(proto: onnx.ModelProto) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in proto.graph.node:
        key = n.op_type if not n.domain or n.domain == "ai.onnx" else f"{n.domain}.{n.op_type}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def export_and_verify(model: nn.Module, x: np.ndarray, out: Path, forms: tuple[str, ...] = FORMS) -> dict:
    """Export every form next to `out` (model.onnx, model.chunked.onnx), verify each; write export.json."""
    out = Path(out)
    reports = {}
    for form in forms:
        path = out if form == "scan" else out.with_name(out.stem + f".{form}.onnx")
        proto = export_qcdq(model, x, path, form=form)
        rep = verify_export(model, path, x, form)
        rep.update(path=str(path), ops=count_ops(proto), bytes=path.stat().st_size)
        reports[form] = rep
    out.with_suffix(".export.json").write_text(json.dumps(reports, indent=2))
    return reports
