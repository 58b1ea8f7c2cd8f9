"""Kernel calls in generated C: arguments matched to the prototype's names, named ones through ef_args.h."""

from __future__ import annotations

from edgeflow.codegen.emitter import CodegenError
from edgeflow.codegen.prototypes import WIDTH, kernel_prototypes

_INDENT = "    "
#: Room for one statement: the network body indents it by 4, a block inside the body by 8.
_ROOM = WIDTH - 8


def _bind(kernel: str, names: list[str], args: tuple[object, ...], named: dict[str, object]) -> dict[str, str]:
    """Arguments matched to the prototype's parameter names, as Python binds a call (positional, then by name)."""
    if len(args) > len(names):
        raise CodegenError(f"kernel {kernel}: {len(args)} arguments for {len(names)} parameters")
    bound = {k: str(v) for k, v in zip(names, args, strict=False)}
    for k, v in named.items():
        if k not in names or k in bound:
            raise CodegenError(f"kernel {kernel}: argument '{k}' is {'given twice' if k in bound else 'unknown'}")
        bound[k] = str(v)
    missing = [k for k in names if k not in bound]
    if missing:
        raise CodegenError(f"kernel {kernel}: missing arguments {', '.join(missing)}")
    return bound


def _layout(head: str, groups: list[list[str]]) -> list[str]:
    """head + pieces in lines of at most _ROOM characters, continuation lines indented by 4; a group (one line
    of the prototype) stays on one line when it fits one."""
    lines, cur = [], head

    def put(piece: str) -> None:
        nonlocal cur
        if len(cur) + len(piece.rstrip()) > _ROOM and cur != _INDENT:
            lines.append(cur.rstrip())
            cur = _INDENT
        cur += piece

    for group in groups:
        text = "".join(group)
        if len(_INDENT) + len(text.rstrip()) <= _ROOM:
            put(text)
        else:
            for piece in group:
                put(piece)
    return [*lines, cur]


def call(kernel: str, *args: object, **named: object) -> str:
    """The C statement calling `kernel` (a prototype of ef_kernels.h) with arguments given in its parameters'
    order and/or by parameter name. Few parameters: a plain call. Else the kernel's ef_args.h adapter on a
    designated initializer, every argument named after its parameter; a long one spans lines (broken between
    the prototype's parameter lines where it can; the caller indents every line of the text alike).

    >>> call("ef_lut_i8", "x", "y", 16, lut="t")
    'ef_lut_i8(x, y, 16, t);'
    >>> call("ef_mul_requant_i8", "a", "b", "y", 16, 3, sh=2)
    'ef_mul_requant_i8_args((ef_mul_requant_i8_args_t){.a = a, .b = b, .y = y, .n = 16, .m = 3, .sh = 2});'
    """
    proto = kernel_prototypes().get(kernel)
    if proto is None:
        raise CodegenError(f"kernel {kernel}: no prototype in ef_kernels.h")
    bound = _bind(kernel, [p.name for p in proto.params], args, named)
    if not proto.named:
        return f"{kernel}({', '.join(bound.values())});"
    head, last = f"{proto.adapter}(({proto.args_type}){{", len(proto.params) - 1
    groups: dict[int, list[str]] = {}
    for i, p in enumerate(proto.params):
        groups.setdefault(p.group, []).append(f".{p.name} = {bound[p.name]}" + ("});" if i == last else ", "))
    one = head + "".join(piece for g in groups.values() for piece in g)
    return one if len(one) <= _ROOM else "\n".join(_layout(head, list(groups.values())))
