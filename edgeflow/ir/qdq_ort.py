"""onnxruntime QDQ dialect (quantize_static): uint8 activations as int8 with shifted zero points, weight layouts
in the brevitas form, zero points folded into biases, and the check that every zero point was carried exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import NodeProto, numpy_helper

from edgeflow.ir.graph import Graph
from edgeflow.ir.patterns import FrontendError, OnnxView, attrs
from edgeflow.quant.intmath import INT32_MAX, INT32_MIN

if TYPE_CHECKING:
    from edgeflow.ir.from_onnx import _Builder

#: producer_name onnxruntime.quantization writes into the models it quantizes.
ORT_PRODUCER = "onnx.quantize"
#: IR ops that move int8 codes without arithmetic: their output carries their input's zero point.
PASS_THROUGH = ("reshape", "identity", "transpose", "slice", "gather", "flip_time")
_HINT = "quantize with extra_options={'ActivationSymmetric': True} for zero points 0"


def is_ort(proto: onnx.ModelProto) -> bool:
    """True for a model written by onnxruntime.quantization, or any QDQ model with a non-zero activation zero
    point (brevitas QCDQ always has zero point 0)."""
    if proto.producer_name == ORT_PRODUCER:
        return True
    init = {i.name: i for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in init and len(n.input) > 2 and n.input[2] in init:
            if np.any(numpy_helper.to_array(init[n.input[2]]) != 0):
                return True
    return False


def prepare(proto: onnx.ModelProto, path: object) -> bool:
    """True (and the proto normalized in place) for an onnxruntime QDQ model."""
    if not is_ort(proto):
        return False
    normalize(proto, lambda msg: FrontendError(f"{path}: {msg}"))
    return True


def normalize(proto: onnx.ModelProto, err: Callable[[str], FrontendError]) -> None:
    """Rewrite the ORT dialect in place into the form the frontend reads: an activation quantizer to uint8 with
    zero point z becomes int8 with z - 128 (exactly x - 128 for every code); Gemm transB 0 and MatMul weights
    become x @ Transpose(W^T) with the per-channel axis following the transpose."""
    g = proto.graph
    init = {i.name: i for i in g.initializer}
    changed: set[str] = set()
    for n in g.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in init:
            continue
        if len(n.input) < 3 or not n.input[2]:
            raise err(f"node '{n.name}': an activation QuantizeLinear needs an explicit zero point")
        z = init.get(n.input[2])
        if z is None:
            raise err(f"node '{n.name}': zero point '{n.input[2]}' must be an initializer")
        a = numpy_helper.to_array(z)
        if a.dtype == np.uint8:
            z.CopyFrom(numpy_helper.from_array((a.astype(np.int16) - 128).astype(np.int8), z.name))
        changed.add(n.output[0])
    keep = [vi for vi in g.value_info if vi.name not in changed]
    del g.value_info[:]
    g.value_info.extend(keep)
    _check_weight_codes(proto, init, err)
    for n in list(g.node):
        _weight_layout(proto, n, init)
    _hoist_input_quantizer(proto)
    _drop_layout_requant(proto, init)


_LAYOUT = ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze")


def _check_weight_codes(proto: onnx.ModelProto, init: dict, err: Callable[[str], FrontendError]) -> None:
    """Weights of Conv / Gemm / MatMul must be symmetric int8 codes: uint8 (asymmetric) weights refused, naming
    the node."""
    dqs = {n.output[0]: n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in init}
    for n in proto.graph.node:
        dq = dqs.get(n.input[1]) if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 else None
        if dq is not None and init[dq.input[0]].data_type != onnx.TensorProto.INT8:
            raise err(f"node '{n.name}' ({n.op_type}): its weights '{dq.input[0]}' are not int8 codes (asymmetric "
                      "weights are not supported); quantize_static(..., weight_type=QuantType.QInt8)")


def _same_const(init: dict, a: str, b: str) -> bool:
    return a == b or (a in init and b in init and
                      np.array_equal(numpy_helper.to_array(init[a]), numpy_helper.to_array(init[b])))


def _layout_chain(prod: dict, v: str) -> tuple[list[NodeProto], str]:
    """The layout nodes (Flatten/Reshape/Transpose/(Un)Squeeze) back from value v, last first, and the value
    before them."""
    chain = []
    while (lay := prod.get(v)) is not None and lay.op_type in _LAYOUT:
        chain.append(lay)
        v = lay.input[0]
    return chain, v


def _hoist_input_quantizer(proto: onnx.ModelProto) -> None:
    """graph input -> layout nodes -> Q -> DQ (onnxruntime quantizes where the first quantized op reads): a copy
    of Q/DQ moved onto the input itself (a per-tensor quantizer commutes with moving elements), the layout nodes
    then read its DQ and the original pair is a layout requantization (`_drop_layout_requant`)."""
    g = proto.graph
    prod = {o: n for n in g.node for o in n.output}
    inputs = {i.name for i in g.input} - {i.name for i in g.initializer}
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]:
        chain, v = _layout_chain(prod, q.input[0])
        readers = [n for n in g.node if v in n.input]
        if not chain or v not in inputs or readers != [chain[-1]]:
            continue
        qi = onnx.helper.make_node("QuantizeLinear", [v, *q.input[1:]], [f"{v}_edgeflow_q"], f"{v}_edgeflow_Q")
        dq = onnx.helper.make_node("DequantizeLinear", [qi.output[0], *q.input[1:]], [f"{v}_edgeflow_dq"],
                                   f"{v}_edgeflow_DQ")
        chain[-1].input[0] = dq.output[0]
        g.node.insert(0, dq)
        g.node.insert(0, qi)
        return


def _drop_layout_requant(proto: onnx.ModelProto, init: dict) -> None:
    """DQ(a) -> Flatten/Reshape/Transpose/(Un)Squeeze (one or more) -> Q -> DQ with the same scale and zero point
    is the layout ops on the codes: the second Q/DQ pair is removed (its consumers read the last layout output)."""
    g = proto.graph
    prod = {o: n for n in g.node for o in n.output}
    outputs = {o.name for o in g.output}
    for q in [n for n in g.node if n.op_type == "QuantizeLinear"]:
        chain, v = _layout_chain(prod, q.input[0])
        dq0 = prod.get(v) if chain else None
        if dq0 is None or dq0.op_type != "DequantizeLinear" or len(q.input) < 3 or len(dq0.input) < 3:
            continue
        if not (_same_const(init, q.input[1], dq0.input[1]) and _same_const(init, q.input[2], dq0.input[2])):
            continue
        dqs = [n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0]]
        if any(d.output[0] in outputs for d in dqs) or q.output[0] in outputs:
            continue
        for d in dqs:
            for n in g.node:
                for i, name in enumerate(n.input):
                    if name == d.output[0]:
                        n.input[i] = q.input[0]
            g.node.remove(d)
        g.node.remove(q)


def _weight_layout(proto: onnx.ModelProto, n: NodeProto, init: dict) -> None:
    """Gemm(x, DQ(W (I, O)), transB 0) -> Gemm(x, DQ(W^T), transB 1); MatMul(x, DQ(W (I, O))) ->
    MatMul(x, Transpose(DQ(W^T))): the frontend's forms, per-channel scales on axis 1 moved to axis 0."""
    if n.op_type not in ("Gemm", "MatMul") or len(n.input) < 2:
        return
    dq = next((d for d in proto.graph.node if n.input[1] in d.output and d.op_type == "DequantizeLinear"), None)
    if dq is None or dq.input[0] not in init or len(init[dq.input[0]].dims) != 2:
        return
    at = attrs(n)
    if n.op_type == "Gemm" and (at.get("transB", 0) or at.get("transA", 0)):
        return
    w = numpy_helper.to_array(init[dq.input[0]])
    init[dq.input[0]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w.T), dq.input[0]))
    scale = numpy_helper.to_array(init[dq.input[1]]) if dq.input[1] in init else np.zeros(1)
    if scale.size > 1:
        axis = int(attrs(dq).get("axis", 1))
        _set_int_attr(dq, "axis", 0 if axis in (1, -1) else 1)
    if n.op_type == "Gemm":
        _set_int_attr(n, "transB", 1)
        return
    t_out = f"{dq.output[0]}_edgeflow_T"
    proto.graph.node.insert(list(proto.graph.node).index(n),
                            onnx.helper.make_node("Transpose", [dq.output[0]], [t_out], f"{dq.name}_T", perm=[1, 0]))
    n.input[1] = t_out
    keep = [vi for vi in proto.graph.value_info if vi.name != dq.output[0]]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(keep)


def _set_int_attr(n: NodeProto, name: str, value: int) -> None:
    for a in n.attribute:
        if a.name == name:
            a.i = value
            return
    n.attribute.append(onnx.helper.make_attribute(name, value))


def zero_point(view: OnnxView, ql: NodeProto) -> int:
    """The (int8, scalar) zero point of an activation quantizer after `normalize`."""
    if len(ql.input) < 3 or not ql.input[2]:
        return 0
    z = view.const(ql.input[2])
    if z.size != 1 or z.dtype != np.int8:
        raise view.err(f"node '{ql.name}': activation zero point must be one int8/uint8 value, got {z.dtype} "
                       f"{z.shape}")
    return int(z.reshape(-1)[0])


def fold_input_zp(view: OnnxView, node: str, bias: np.ndarray, w: np.ndarray, zp: int) -> np.ndarray:
    """bias[o] - zp * sum_i w[o, i]: the accumulator of x - zp from the codes x (exact in int32)."""
    b = bias.astype(np.int64) - int(zp) * w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
    if b.size and (b.min() < INT32_MIN or b.max() > INT32_MAX):
        raise view.err(f"node '{node}': the bias with the input zero point {zp} folded in does not fit int32")
    return b.astype(np.int32)


def flat_input(b: _Builder, flat: NodeProto, s_out: float, out: str) -> None:
    """The graph input through Flatten (axis 1): one row of all its values (C order), batch 1."""
    v = b.v
    shp = [d.dim_value for i in v.graph.input if i.name == flat.input[0] for d in i.type.tensor_type.shape.dim]
    if not shp or shp[0] != 1 or int(attrs(flat).get("axis", 1)) != 1:
        raise v.err(f"node '{flat.name}': the graph input must have batch 1 and be flattened on axis 1")
    b.act_out(out, (1, int(np.prod(shp[1:]))), s_out)
    b.g.inputs.append(out)
    b.g.meta["input_scale"] = s_out
    if b.zp_out:
        b.g.meta["input_zero_point"] = b.zp_out


def requant_output(b: _Builder, ins: list[str], shape: tuple[int, int], s_acc: np.ndarray, s_out: float,
                   m: np.ndarray, sh: np.ndarray, out: str) -> None:
    """A linear layer with an asymmetric output: linear_acc to out.acc (int32), then requant with b.zp_out."""
    acc = f"{out}.acc"
    b.act_out(acc, shape, s_acc, "int32")   # type: ignore[arg-type]
    b.emit("linear_acc", ins, acc)
    b.act_out(out, shape, s_out)
    b.emit("requant", [acc, b.const(out, "m", m, "int32"), b.const(out, "sh", sh, "int32")], out,
           {"zp": int(b.zp_out)})
    b.zp_done.add(f"{out}:out")


def zero_point_attrs(b: _Builder, x: str, out: str) -> dict[str, int]:
    """{zp_in, zp_out} of a conv / pool node lowered by builder b from x to out (only the non-zero ones: a
    symmetric model's nodes keep their attributes); both sides marked as carried."""
    a = {k: int(v) for k, v in (("zp_in", b.zp(x)), ("zp_out", b.zp_out)) if v}
    b.zp_done.update((f"{out}:in", f"{out}:out"))
    return a


def output_quantizers(view: OnnxView) -> set[str]:
    """Names of the quantizers whose dequantized value is a graph output and which quantize a linear layer: the
    logits stay the int32 accumulator (dequantized with the accumulator scale, no output rounding)."""
    out = set()
    for o in view.graph.output:
        ql = view.activation_ql(o.name)
        if ql is None:
            continue
        p = view.producer(view.skip_layout(ql.input[0]))
        if p is not None and (p.op_type in ("Gemm", "MatMul") or
                              (p.op_type == "Add" and any(view.is_bias(i) for i in p.input))):
            out.add(ql.name)
    return out


def check_zero_points(graph: Graph, done: set[str], err: Callable[[str], FrontendError]) -> None:
    """Every node reading or writing an activation with a non-zero zero point must have accounted for it (done:
    'NODE:in' for a node that folded its input's, 'NODE:out' for one that applied its output's; PASS_THROUGH ops
    keep it); anything else is refused in one line naming the node."""
    for n in graph.nodes:
        sides = [(t, "in") for t in n.inputs] + [(t, "out") for t in n.outputs]
        zps = {t: graph.tensors[t].zero_point for t, _ in sides if graph.tensors[t].data is None}
        if n.op in PASS_THROUGH and len(set(zps.values())) <= 1:
            continue
        for t, side in sides:
            z = zps.get(t, 0)
            if z != 0 and f"{n.name}:{side}" not in done:
                raise err(f"node '{n.name}' ({n.op}): {'input' if side == 'in' else 'output'} '{t}' has zero point "
                          f"{z}, which {n.op} cannot carry exactly ({_HINT})")
