"""Kernel prototypes, the generated ef_args.h and the named-argument calls the emitters render."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeflow.codegen import c_ops
from edgeflow.codegen.calls import call
from edgeflow.codegen.emitter import CodegenError
from edgeflow.codegen.prototypes import (
    ARGS_HEADER,
    NAMED_MIN_PARAMS,
    WIDTH,
    kernel_prototypes,
    kernels_dir,
    parse_prototypes,
    render_args_header,
)
from edgeflow.ir.opdefs import OPDEFS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]

_HEADER = """\
static inline int64_t ef_helper(int64_t x, int32_t s)
{
    return x >> s;
}
extern const int32_t ef_table[4];
/** doc mentioning ef_fake(a, b); */
void ef_two(const int8_t *const *xs, int32_t n);
int32_t ef_many(const ef_scan_consts_t *c,
                const int8_t *u, int32_t u_stride,
                int64_t eps_q, int8_t **out);
"""


def test_parser_reads_types_names_and_lines():
    protos = parse_prototypes(_HEADER)
    assert list(protos) == ["ef_two", "ef_many"]                  # inline definitions, tables, comments: not kernels
    two, many = protos["ef_two"], protos["ef_many"]
    assert [(q.ctype, q.name) for q in two.params] == [("const int8_t *const *", "xs"), ("int32_t", "n")]
    assert many.ret == "int32_t" and [q.decl() for q in many.params] == [
        "const ef_scan_consts_t *c", "const int8_t *u", "int32_t u_stride", "int64_t eps_q", "int8_t **out"]
    assert [q.group for q in many.params] == [0, 1, 1, 2, 2]       # the prototype's lines
    assert not two.named and many.named and many.adapter == "ef_many_args"


def test_every_op_kernel_has_a_prototype():
    protos = kernel_prototypes()
    missing = {d.kernel for d in OPDEFS.values() if d.kernel} - set(protos)
    assert not missing


def test_checked_in_args_header_is_up_to_date():
    """firmware/kernels/ef_args.h is what tools/gen_ef_args.py renders from ef_kernels.h now."""
    want = render_args_header(kernel_prototypes())
    got = (kernels_dir() / ARGS_HEADER).read_text()
    assert got == want, f"{ARGS_HEADER} is out of date: run `python tools/gen_ef_args.py`"
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_ef_args.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "up to date" in res.stdout


def test_args_header_has_one_struct_per_named_kernel():
    text = (kernels_dir() / ARGS_HEADER).read_text()
    protos = kernel_prototypes()
    named = [p for p in protos.values() if len(p.params) >= NAMED_MIN_PARAMS]
    assert named and sorted(re.findall(r"\} (ef_\w+)_args_t;", text)) == sorted(p.name for p in named)
    scan = protos["ef_scan_i8"]
    fields = re.search(r"typedef struct \{\n([^}]*)\} ef_scan_i8_args_t;", text).group(1)
    assert [ln.strip() for ln in fields.splitlines()] == [f"{q.decl()};" for q in scan.params]
    body = re.search(r"ef_scan_i8_args\(ef_scan_i8_args_t a\)\n\{\n(.*?)\n\}", text, re.DOTALL).group(1)
    assert " ".join(body.split()) == f"ef_scan_i8({', '.join(f'a.{q.name}' for q in scan.params)});"
    assert max(map(len, text.splitlines())) <= WIDTH


def test_call_names_every_argument_in_prototype_order():
    proto = kernel_prototypes()["ef_scan_i8"]
    values = [f"v{i}" for i in range(len(proto.params))]
    text = call("ef_scan_i8", *values[:-3], d0=values[-3], d1=values[-2], reverse=values[-1])
    assert text.startswith("ef_scan_i8_args((ef_scan_i8_args_t){") and text.endswith("});")
    assert re.findall(r"\.(\w+) = (\w+)", text) == [(q.name, v) for q, v in zip(proto.params, values, strict=True)]
    long = call("ef_scan_i8", *(f"a_rather_long_buffer_name_{i}" for i in range(len(proto.params))))
    lines = long.split("\n")
    assert len(lines) > 1 and max(map(len, lines)) <= WIDTH - 8 and all(ln.startswith("    ") for ln in lines[1:])
    assert call("ef_flip_rows_i8", "x", "y", 3, 4) == "ef_flip_rows_i8(x, y, 3, 4);"   # few arguments: plain


@pytest.mark.parametrize("args, named, match", [
    ((1, 2, 3), {}, r"^kernel ef_lut_i8: missing arguments lut$"),
    ((1, 2, 3, 4, 5), {}, r"^kernel ef_lut_i8: 5 arguments for 4 parameters$"),
    ((1, 2, 3), {"x": 4}, r"^kernel ef_lut_i8: argument 'x' is given twice$"),
    ((1, 2, 3), {"table": 4}, r"^kernel ef_lut_i8: argument 'table' is unknown$"),
])
def test_call_refuses_a_wrong_binding(args, named, match):
    with pytest.raises(CodegenError, match=match):
        call("ef_lut_i8", *args, **named)


def test_call_refuses_an_unknown_kernel():
    with pytest.raises(CodegenError, match=r"^kernel ef_nope: no prototype in ef_kernels.h$"):
        call("ef_nope", 1)


def test_emitters_call_kernels_through_call():
    """No emitter writes a call of a kernel with named arguments by hand (it would bypass the names)."""
    named = {p.name for p in kernel_prototypes().values() if p.named}
    for op, fn in c_ops.EMITTERS.items():
        by_hand = set(re.findall(r"\"(ef_\w+)\(", inspect.getsource(fn))) & named
        assert not by_hand, f"emitter of '{op}' writes {sorted(by_hand)} by hand: render it with calls.call"
