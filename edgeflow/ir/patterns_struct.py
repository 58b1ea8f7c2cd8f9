"""Frontend messages that name the culprit and say what to do: every unsupported op at once, non-quantized values,
float regions that match no lowering (none of them assumes the model is FEMBA)."""

from __future__ import annotations

from onnx import ModelProto, NodeProto

from edgeflow.export.scan_op import SCAN_DOMAIN
from edgeflow.ir.patterns import SUPPORTED_OPS, OnnxView

#: ONNX ops the layout and fully connected lowerings add to patterns.SUPPORTED_OPS.
STRUCT_OPS = ("Flatten", "Gather", "Relu", "Concat")

#: What to do about an op edgeflow does not compile (op type -> hint).
HINTS = {
    "Shape": ("a shape read at run time that is not static (shapes of static values are folded): export with "
              "dynamo=False and a fixed input size, or use constant shapes in reshape/view"),
    "ConstantOfShape": "export with dynamo=False (static shapes are folded into constants)",
    "Expand": "export with dynamo=False, or broadcast the tensor in the model with explicit shapes",
    "Where": "export with dynamo=False (masks of static shapes become constants)",
    "Range": "export with dynamo=False (static shapes are folded into constants)",
    "Dropout": "export the model in eval mode (model.eval())",
    "BatchNormalization": "fold BatchNorm into the preceding conv / linear before export",
    "LSTM": "recurrent layers are not supported; use convolutions, attention or the Mamba block",
    "GRU": "recurrent layers are not supported; use convolutions, attention or the Mamba block",
    "RNN": "recurrent layers are not supported; use convolutions, attention or the Mamba block",
    "Quant": "export QCDQ (brevitas export_onnx_qcdq), not QONNX",
    "QLinearConv": "quantize to QDQ (quantize_static(..., quant_format=QuantFormat.QDQ)), not QOperator",
    "QLinearMatMul": "quantize to QDQ (quantize_static(..., quant_format=QuantFormat.QDQ)), not QOperator",
    "MatMulInteger": "quantize to QDQ (quantize_static(..., quant_format=QuantFormat.QDQ)), not QOperator",
    "ConvInteger": "quantize to QDQ (quantize_static(..., quant_format=QuantFormat.QDQ)), not QOperator",
    "DynamicQuantizeLinear": "quantize statically (QuantIdentity / quantize_static), not dynamically",
}
DEFAULT_HINT = "no integer lowering; replace the layer or ask for the op"


def _module(node_name: str) -> str:
    """The PyTorch module a node comes from: '/fc1/Gemm' -> '/fc1' (the node name when it has no scope)."""
    parts = node_name.strip("/").split("/")
    return "/" + "/".join(parts[:-1]) if len(parts) > 1 else node_name


def check_ops(proto: ModelProto, view: OnnxView, extra: tuple[str, ...] = ()) -> None:
    """FrontendError listing every node whose op edgeflow does not compile, in one line with a hint each:
    `N unsupported ops: 'node' (Op): hint; ...` (the same op type is named once per node)."""
    known = set(SUPPORTED_OPS) | set(STRUCT_OPS) | set(extra)
    bad = []
    for n in proto.graph.node:
        custom = n.domain not in ("", "ai.onnx") and n.domain != SCAN_DOMAIN
        if custom:
            bad.append(f"'{n.name}' ({n.domain}.{n.op_type}): custom-domain op; edgeflow compiles standard ONNX ops "
                       f"and {SCAN_DOMAIN}.SelectiveScan")
        elif n.op_type not in known:
            bad.append(f"'{n.name}' ({n.op_type}): {HINTS.get(n.op_type, DEFAULT_HINT)}")
    if bad:
        raise view.err(f"{len(bad)} unsupported op{'s' if len(bad) > 1 else ''}: {'; '.join(bad)}")


def not_an_activation(view: OnnxView, v: str) -> str:
    """Why value v cannot be read as an int8 activation, and what to change in the model."""
    if v in view.inputs:
        return (f"graph input '{v}' is read by a float op without a quantizer; start the model with a "
                "QuantIdentity (brevitas) or quantize the input (QuantizeLinear)")
    p = view.producer(v)
    if p is None:
        return f"value '{v}' is no activation, constant or node output"
    return (f"value '{v}' (output of '{p.name}', {p.op_type}) is a float tensor where an int8 activation is needed; "
            f"insert a QuantIdentity after {_module(p.name)}")


def unmatched_region(view: OnnxView, p: NodeProto) -> str:
    """A float region ending at node p that no lowering matches."""
    return (f"node '{p.name}' ({p.op_type}): this float computation between quantizers has no integer lowering; "
            f"quantize its inputs and output (a QuantIdentity before and after {_module(p.name)}) or simplify it")
