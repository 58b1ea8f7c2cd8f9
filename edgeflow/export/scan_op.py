"""The selective scan as one ONNX node `edgeflow.SelectiveScan`: torch symbolic, ONNX function body, checks.

A model in export mode calls `selective_scan_export`; `torch.onnx.export(..., dynamo=False)` (and brevitas'
`export_onnx_qcdq(..., dynamo=False)`) then emit a single `edgeflow::SelectiveScan` node per scan.
`attach_scan_function` adds a model-local ONNX function whose body is a plain `Scan` over time, so
onnx.checker (full check) accepts the file and onnxruntime runs it unmodified; the edgeflow compiler
matches the node itself and ignores the body.

Semantics (per batch b, step t, channel d, state n), h_0 = 0:
    h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * u_t[d]
    y_t[d]    = sum_n C_t[n] * h_t[d, n] + D[d] * u_t[d]
direction=1 runs the same scan over time-flipped inputs and flips the output back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import torch
from onnx import (
    AttributeProto,
    FunctionProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
    ValueInfoProto,
    helper,
)

from edgeflow.errors import EdgeflowError

SCAN_DOMAIN = "edgeflow"
SCAN_OP = "SelectiveScan"
SCAN_VERSION = 1
SCAN_INPUTS = ("u", "delta", "A", "B", "C", "D")
SCAN_OUTPUTS = ("y",)
FORWARD, REVERSE = 0, 1

# Attributes of the node, with their defaults (all optional, so an old file stays valid when one is added).
#   direction  0 = forward, 1 = reverse (time flipped in and out)
#   d_state    size of the state (A.shape[1]); 0 = not recorded
#   lut_id     name of the integer table(s) the compiler uses for exp(delta*A) / softplus; "" = default
#   quant      quantization parameters of the scan internals for the compiler (JSON text); "" = none
SCAN_ATTRIBUTES: dict[str, int | str] = {"direction": FORWARD, "d_state": 0, "lut_id": "", "quant": ""}

_INT64_MAX = 2**63 - 1


def _ref_attr(name: str, ref: str, kind: int) -> AttributeProto:
    """An attribute of a body node that takes its value from the function's attribute `ref`."""
    attr = AttributeProto()
    attr.name = name
    attr.ref_attr_name = ref
    attr.type = kind
    return attr


def _const_i64(name: str, values: list[int]) -> NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64,
                                                                              [len(values)], values))


def _scan_body() -> list[NodeProto]:
    """Nodes of the Scan body: state h (batch, d_inner, d_state); one step of the recurrence.

    Reads the outer-scope tensor A (d_inner, d_state). Emits s_t = sum_n C_t[n] h_t[:, :, n]; the D term
    is added outside the scan.
    """
    return [
        _const_i64("b_last", [-1]),
        _const_i64("b_mid", [1]),
        helper.make_node("Unsqueeze", ["dt_t", "b_last"], ["dt_col"]),          # (batch, d_inner, 1)
        helper.make_node("Mul", ["dt_col", "A"], ["dtA"]),                       # (batch, d_inner, d_state)
        helper.make_node("Exp", ["dtA"], ["decay"]),
        helper.make_node("Mul", ["dt_t", "u_t"], ["du"]),                        # (batch, d_inner)
        helper.make_node("Unsqueeze", ["du", "b_last"], ["du_col"]),            # (batch, d_inner, 1)
        helper.make_node("Unsqueeze", ["B_t", "b_mid"], ["B_row"]),             # (batch, 1, d_state)
        helper.make_node("Mul", ["du_col", "B_row"], ["drive"]),
        helper.make_node("Mul", ["decay", "h_in"], ["kept"]),
        helper.make_node("Add", ["kept", "drive"], ["h_out"]),
        helper.make_node("Unsqueeze", ["C_t", "b_last"], ["C_col"]),            # (batch, d_state, 1)
        helper.make_node("MatMul", ["h_out", "C_col"], ["s_col"]),              # (batch, d_inner, 1)
        helper.make_node("Squeeze", ["s_col", "b_last"], ["s_t"]),              # (batch, d_inner)
    ]


def _body_graph() -> GraphProto:
    def vi(name: str) -> ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)

    return helper.make_graph(
        _scan_body(), "selective_scan_step",
        inputs=[vi("h_in"), vi("u_t"), vi("dt_t"), vi("B_t"), vi("C_t")],
        outputs=[vi("h_out"), vi("s_t")],
    )


def _flip_params() -> list[NodeProto]:
    """Slice parameters along time (axis 1) for direction 0 (step 1) or 1 (step -1), branch-free.

    step = 1 - 2 * direction, starts = -direction, ends = step * INT64_MAX: forward copies [0, L); reverse
    walks from L-1 down to 0 (an end below -L is clamped so that index 0 is included).
    """
    dir_s = helper.make_node("Constant", [], ["dir_s"])                       # the attribute, int64 scalar
    dir_s.attribute.append(_ref_attr("value_int", "direction", AttributeProto.INT))
    return [
        dir_s,
        _const_i64("zero_ax", [0]),
        _const_i64("one", [1]),
        _const_i64("two", [2]),
        _const_i64("imax", [_INT64_MAX]),
        _const_i64("t_axis", [1]),
        helper.make_node("Unsqueeze", ["dir_s", "zero_ax"], ["dir"]),         # (1,)
        helper.make_node("Mul", ["dir", "two"], ["dir2"]),
        helper.make_node("Sub", ["one", "dir2"], ["step"]),
        helper.make_node("Neg", ["dir"], ["start"]),
        helper.make_node("Mul", ["step", "imax"], ["stop"]),
    ]


def _flip(src: str, dst: str) -> NodeProto:
    return helper.make_node("Slice", [src, "start", "stop", "t_axis", "step"], [dst])


def make_scan_function(opset: int = 13) -> FunctionProto:
    """The model-local function `edgeflow.SelectiveScan` (u, delta, A, B, C, D) -> y, body in ONNX `opset`.

    The body uses only operators whose semantics are the same from opset 13 on (Scan, Slice, Unsqueeze and
    Squeeze with axes as inputs, ConstantOfShape, elementwise ops), so the same nodes serve 13..current.
    """
    if opset < 13:
        raise ValueError(f"SelectiveScan function needs ONNX opset >= 13, got {opset}")
    nodes = _flip_params() + [_flip(x, f"{x}_s") for x in ("u", "delta", "B", "C")]
    nodes += [
        # h0 = zeros(batch, d_inner, d_state)
        helper.make_node("Shape", ["u"], ["u_shape"]),
        helper.make_node("Gather", ["u_shape", "zero_ax"], ["batch"]),
        helper.make_node("Shape", ["A"], ["a_shape"]),
        helper.make_node("Concat", ["batch", "a_shape"], ["h0_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["h0_shape"], ["h0"],
                         value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("Scan", ["h0", "u_s", "delta_s", "B_s", "C_s"], ["h_last", "s_s"],
                         body=_body_graph(), num_scan_inputs=4,
                         scan_input_axes=[1, 1, 1, 1], scan_output_axes=[1]),
    ]
    nodes += [
        _flip("s_s", "s"),                                                     # back to input time order
        helper.make_node("Mul", ["D", "u"], ["skip"]),
        helper.make_node("Add", ["s", "skip"], ["y"]),
    ]
    return helper.make_function(
        SCAN_DOMAIN, SCAN_OP, list(SCAN_INPUTS), list(SCAN_OUTPUTS), nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attribute_protos=[helper.make_attribute(k, v) for k, v in SCAN_ATTRIBUTES.items()],
        doc_string="Selective scan (Mamba); direction 0 = forward, 1 = reverse (time flipped in and out).",
    )


def _scan_torch(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor, direction: int) -> torch.Tensor:
    """Plain sequential scan in torch (the export vehicle's forward; training uses edgeflow.nn)."""
    if direction == REVERSE:
        u, delta, B, C = (t.flip(1) for t in (u, delta, B, C))
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    steps = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        steps.append((h @ C[:, t, :, None]).squeeze(-1))
    s = torch.stack(steps, dim=1) if steps else u.new_zeros(u.shape)
    if direction == REVERSE:
        s, u = s.flip(1), u.flip(1)
    return s + u * D


class SelectiveScanFn(torch.autograd.Function):
    """Computes the scan in torch; `symbolic` makes the TorchScript ONNX exporter emit one custom node."""

    @staticmethod
    def forward(ctx: object, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, D: torch.Tensor, direction: int = FORWARD, d_state: int = 0,
                quant: str = "") -> torch.Tensor:
        return _scan_torch(u, delta, A, B, C, D, direction)

    @staticmethod
    def symbolic(g: object, u: object, delta: object, A: object, B: object, C: object, D: object,
                 direction: int = FORWARD, d_state: int = 0, quant: str = "") -> object:
        extra = {"quant_s": quant} if quant else {}
        y = g.op(f"{SCAN_DOMAIN}::{SCAN_OP}", u, delta, A, B, C, D,
                 direction_i=int(direction), d_state_i=int(d_state), **extra)
        y.setType(u.type())
        return y


@torch.library.custom_op(f"{SCAN_DOMAIN}::selective_scan", mutates_args=())
def _scan_custom_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    D: torch.Tensor, direction: int, d_state: int) -> torch.Tensor:
    """The scan as one opaque op for torch.export (the dynamo ONNX exporter), see `scan_translation_table`."""
    return _scan_torch(u, delta, A, B, C, D, direction)


@_scan_custom_op.register_fake
def _scan_custom_op_fake(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                         C: torch.Tensor, D: torch.Tensor, direction: int, d_state: int) -> torch.Tensor:
    return torch.empty_like(u)


def selective_scan_export(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                          C: torch.Tensor, D: torch.Tensor, direction: int = FORWARD,
                          quant: str = "") -> torch.Tensor:
    """The scan as models call it in export mode: one `edgeflow.SelectiveScan` node in the ONNX file.

    Eager and `torch.onnx.export(dynamo=False)`: the autograd Function with its symbolic. Under torch.export
    (`dynamo=True`): an opaque custom op; pass `custom_translation_table=scan_translation_table()`.
    Not for training (no backward). Shapes as in the module docstring; returns y (batch, L, d_inner).
    `quant` (JSON text, TorchScript path only) becomes the node's `quant` attribute for the compiler.
    """
    if direction not in (FORWARD, REVERSE):
        raise ValueError(f"scan direction must be 0 (forward) or 1 (reverse), got {direction}")
    with warnings.catch_warnings():                  # d_state is static: the tracer's int() warning is noise
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        d_state = int(A.shape[1])
    if torch.compiler.is_exporting():
        return _scan_custom_op(u, delta, A, B, C, D, direction, d_state)
    return SelectiveScanFn.apply(u, delta, A, B, C, D, direction, d_state, quant)


def scan_translation_table() -> dict[object, Callable[..., object]]:
    """`custom_translation_table` for `torch.onnx.export(..., dynamo=True)`: custom op -> one SelectiveScan.

    The dynamo exporter only emits ops it has an `onnx.defs.OpSchema` for; the schema is built here and
    handed to onnxscript directly, not registered process-wide with `onnx.defs.register_schema`.
    """
    import onnxscript  # only the dynamo exporter needs it
    from onnx.defs import OpSchema

    param = OpSchema.FormalParameter
    schema = OpSchema(
        SCAN_OP, SCAN_DOMAIN, SCAN_VERSION,
        inputs=[param(name, "T") for name in SCAN_INPUTS],
        outputs=[param(name, "T") for name in SCAN_OUTPUTS],
        type_constraints=[("T", ["tensor(float)"], "float32 tensors")],
        attributes=[OpSchema.Attribute("direction", OpSchema.AttrType.INT, "0 forward, 1 reverse"),
                    OpSchema.Attribute("d_state", OpSchema.AttrType.INT, "state size")],
    )
    scan = onnxscript.values.Op(onnxscript.values.Opset(SCAN_DOMAIN, SCAN_VERSION), SCAN_OP, schema)

    def translate(u: object, delta: object, A: object, B: object, C: object, D: object,
                  direction: int, d_state: int) -> object:
        return scan(u, delta, A, B, C, D, direction=direction, d_state=d_state)

    return {torch.ops.edgeflow.selective_scan.default: translate}


class ScanNodeError(EdgeflowError, ValueError):
    """An `edgeflow` node the compiler does not know (op type, domain version, attribute)."""


def _all_nodes(graph: GraphProto) -> Iterator[NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def _node_label(node: NodeProto, index: int) -> str:
    return f"node '{node.name}'" if node.name else f"node #{index} ({node.domain}.{node.op_type})"


def check_scan_nodes(model_proto: ModelProto) -> int:
    """Check every `edgeflow` node: known op, domain version 1, sane attributes. Returns their count.

    Raises ScanNodeError (a ValueError) with one line naming the first offending node.
    """
    versions = {o.domain: o.version for o in model_proto.opset_import}
    count = 0
    for i, node in enumerate(_all_nodes(model_proto.graph)):
        if node.domain != SCAN_DOMAIN:
            continue
        label = _node_label(node, i)
        if node.op_type != SCAN_OP:
            raise ScanNodeError(f"{label}: unknown op {SCAN_DOMAIN}.{node.op_type} (known: {SCAN_OP})")
        version = versions.get(SCAN_DOMAIN)
        if version != SCAN_VERSION:
            raise ScanNodeError(f"{label}: {SCAN_DOMAIN} domain version {version}, expected {SCAN_VERSION}")
        if len(node.input) != len(SCAN_INPUTS) or len(node.output) != len(SCAN_OUTPUTS):
            raise ScanNodeError(f"{label}: {SCAN_OP} takes {len(SCAN_INPUTS)} inputs and 1 output, "
                                f"got {len(node.input)} and {len(node.output)}")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        unknown = sorted(set(attrs) - set(SCAN_ATTRIBUTES))
        if unknown:
            raise ScanNodeError(f"{label}: unknown {SCAN_OP} attribute(s) {unknown}")
        if attrs.get("direction", FORWARD) not in (FORWARD, REVERSE):
            raise ScanNodeError(f"{label}: direction must be 0 or 1, got {attrs['direction']}")
        count += 1
    return count


def attach_scan_function(model_proto: ModelProto) -> ModelProto:
    """A copy of the model with the `edgeflow.SelectiveScan` function and `edgeflow` opset 1 (idempotent).

    The function body is rebuilt for the model's default opset, so onnx.checker and onnxruntime accept
    the file. A model without `edgeflow` nodes is returned unchanged (as a copy).
    """
    model = ModelProto()
    model.CopyFrom(model_proto)
    if check_scan_nodes(model) == 0 and not any(o.domain == SCAN_DOMAIN for o in model.opset_import):
        return model
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ScanNodeError(f"model: default ONNX opset {opset} is below 13, {SCAN_OP} needs >= 13")
    declared = [o.version for o in model.opset_import if o.domain == SCAN_DOMAIN]
    if declared and declared != [SCAN_VERSION]:
        raise ScanNodeError(f"model: {SCAN_DOMAIN} domain version {declared}, expected {SCAN_VERSION}")
    if not declared:
        model.opset_import.append(helper.make_opsetid(SCAN_DOMAIN, SCAN_VERSION))
    kept = [f for f in model.functions if (f.domain, f.name) != (SCAN_DOMAIN, SCAN_OP)]
    del model.functions[:]
    model.functions.extend(kept + [make_scan_function(opset)])
    return model
