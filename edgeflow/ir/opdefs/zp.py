"""Zero-point ops of onnxruntime QDQ models (families elementwise, attention): add_zp, mul_zp, matmul_zp and
softmax_zp, the sum, product, attention matmul and softmax with their inputs' and output's zero points as
attributes (ir/ops_zp.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeflow.ir import ops_zp
from edgeflow.ir.opdefs.attention import infer_matmul, infer_softmax, matmul_macs
from edgeflow.ir.opdefs.base import Arg, OpDef
from edgeflow.ir.opdefs.elementwise import add_macs, infer_add, infer_mul, per_element


def _zps(a: Mapping[str, Any]) -> tuple[int, int, int]:
    return int(a["za"]), int(a["zb"]), int(a["zy"])


DEFS = (
    OpDef("add_zp", "elementwise", (Arg("x", variadic=True, dtypes=("int8",)),), infer_add,
          lambda ins, a: [ops_zp.add_zp(list(ins), a["M"], int(a["S"]), int(a["C"]))], attrs=("M", "S", "C"),
          macs=add_macs, kernel="ef_add_requant_zp_i8"),
    OpDef("mul_zp", "elementwise", (Arg("a", dtypes=("int8",)), Arg("b", dtypes=("int8",))), infer_mul,
          lambda ins, a: [ops_zp.mul_zp(ins[0], ins[1], int(a["m"]), int(a["sh"]), *_zps(a))],
          attrs=("m", "sh", "za", "zb", "zy"), macs=per_element, kernel="ef_mul_requant_zp_i8"),
    OpDef("matmul_zp", "attention", (Arg("a", dtypes=("int8",)), Arg("b", dtypes=("int8",))), infer_matmul,
          lambda ins, a: [ops_zp.matmul_zp(ins[0], ins[1], int(a["m"]), int(a["sh"]), *_zps(a))],
          attrs=("m", "sh", "za", "zb", "zy"), macs=matmul_macs, kernel="ef_matmul_zp_i8"),
    OpDef("softmax_zp", "attention", (Arg("x", dtypes=("int8",)),), infer_softmax,
          lambda ins, a: [ops_zp.softmax_zp(ins[0], int(a["ke"]), int(a["frac"]), int(a["m"]), int(a["sh"]),
                                            int(a["zy"]))],
          attrs=("ke", "frac", "m", "sh", "zy"), macs=per_element, kernel="ef_softmax_rows_zp_i8"),
)
