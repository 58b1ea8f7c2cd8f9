"""Storage layouts of the constants: which tensors are packed, and each tiled linear's per-row parameter layout."""

from __future__ import annotations

import numpy as np

from edgeflow.ir.graph import Graph, Node, Tensor
from edgeflow.ir.ops import TERNARY, WEIGHT_BITS, is_ternary, row_bytes
from edgeflow.plan.tiling import LinearShape, TilingError

SH_SPAN = 4  # a packed shift is sh_base + 0..3 (two bits)
#: op -> index of the input stored as packed weight rows (every other constant input is stored in its dtype).
PACKED_INPUT = {"linear": 1, "linear_acc": 1, "conv2d_patch": 1, "conv": 1}
PLAIN, PACKED = "plain", "packed"


def pack_bits(bits: int) -> int:
    """The smallest storage width (2, 4, 8) holding `bits`-bit weights (3 -> 4).

    >>> pack_bits(3), pack_bits(8)
    (4, 8)
    """
    return next(b for b in WEIGHT_BITS if b >= bits)


def node_constants(graph: Graph, n: Node) -> list[tuple[str, str]]:
    """(tensor, kind) of every constant input of a whole-tensor node as the C renderer stores it."""
    out = []
    for i, name in enumerate(n.inputs):
        if graph.tensors[name].data is not None:
            key = (name, PACKED if PACKED_INPUT.get(n.op) == i else PLAIN)
            if key not in out:
                out.append(key)
    return out


def constant_bytes(t: Tensor, kind: str) -> int:
    """Bytes of constant `t` stored as `kind`: packed rows (O x row_bytes) or its own dtype."""
    data = np.asarray(t.data)
    if kind == PACKED:
        return int(t.shape[0]) * row_bytes(int(np.prod(t.shape[1:])), pack_bits(t.bits))
    return int(data.nbytes)


def pack_requant(m: np.ndarray, sh: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(words, sh_base = min(sh)) with each row's shift packed into its multiplier's two free top bits, when the
    shifts span at most SH_SPAN values and every m has its top bit at the same place: 15-bit m in [2^14, 2^15)
    -> uint16 (m - 2^14) | ((sh - sh_base) << 14); Q31 m in [2^30, 2^31) -> uint32 (m - 2^30) | (.. << 30).
    None otherwise (e.g. m == 0): m stays int32 with an int8 shift array.

    >>> w, base = pack_requant(np.array([1 << 30, (1 << 31) - 1]), np.array([9, 12]))
    >>> [hex(v) for v in w], base
    (['0x0', '0xffffffff'], 9)
    >>> w, base = pack_requant(np.array([1 << 14, (1 << 15) - 1]), np.array([20, 21]))
    >>> [hex(v) for v in w], w.dtype.name, base
    (['0x0', '0x7fff'], 'uint16', 20)
    """
    m, sh = np.asarray(m, np.int64).reshape(-1), np.asarray(sh, np.int64).reshape(-1)
    if m.size == 0 or int(sh.max() - sh.min()) >= SH_SPAN:
        return None
    base = int(sh.min())
    for bits, dtype in ((15, np.uint16), (31, np.uint32)):
        top = 1 << (bits - 1)
        if m.min() >= top and m.max() < 2 * top:
            return ((m - top) | ((sh - base) << (bits - 1))).astype(dtype), base
    return None


def unpack_requant(words: np.ndarray, sh_base: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, sh) int64 from packed words, as the C runner does (16-bit: m = (w & 0x3FFF) | 2^14, sh = sh_base +
    (w >> 14); 32-bit: m = (w & 0x3FFFFFFF) | 2^30, sh = sh_base + (w >> 30))."""
    w = np.asarray(words)
    top = 1 << (8 * w.dtype.itemsize - 2)
    w = w.astype(np.int64)
    return (w & (top - 1)) | top, sh_base + (w // top)


def _requant(graph: Graph, n: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(m, sh) of a linear node as int64 row vectors, or None when either is not a constant."""
    m, sh = (graph.tensors[name].data for name in n.inputs[3:5])
    if m is None or sh is None:
        return None
    return np.asarray(m).reshape(-1).astype(np.int64), np.asarray(sh).reshape(-1).astype(np.int64)


def packed_requant(graph: Graph, n: Node) -> tuple[np.ndarray, int] | None:
    """pack_requant of a linear node's (m, sh), None when they stay int32 m + int8 shifts."""
    req = _requant(graph, n)
    return None if req is None else pack_requant(*req)


def _bias(graph: Graph, n: Node) -> np.ndarray | None:
    """The stored bias of a linear node: None when absent or all zero, else int64 values."""
    b = graph.tensors[n.inputs[2]].data
    if b is None or not np.any(np.asarray(b) != 0):
        return None
    return np.asarray(b).reshape(-1).astype(np.int64)


def linear_shape(graph: Graph, n: Node) -> LinearShape:
    """The storage layout of a tiled `linear` node (x (T, ...) int8, w (O, n_in) packed, bias/m/sh per output
    row): an all-zero bias is not stored, one that fits int16 is stored int16, ternary 2-bit weights go five to a
    byte, and the shifts are packed into m when pack_requant allows (16-bit words for 15-bit multipliers)."""
    if n.op != "linear" or len(n.inputs) != 5:
        raise TilingError(f"node '{n.name}' ({n.op}): only 5-input linear nodes are tiled")
    xs = tuple(graph.tensors[n.inputs[0]].shape)
    tokens, n_in = (1, int(np.prod(xs))) if len(xs) <= 1 else (int(xs[0]), int(np.prod(xs[1:])))
    w = graph.tensors[n.inputs[1]]
    if graph.tensors[n.outputs[0]].dtype != "int8":
        raise TilingError(f"node '{n.name}' (linear): tiled output must be int8")
    bits = pack_bits(w.bits)
    if bits == 2 and w.data is not None and is_ternary(w.data):
        bits = TERNARY  # 2-bit narrow range: five weights a byte instead of four
    bias = _bias(graph, n)
    narrow = bias is not None and bias.min() >= -(1 << 15) and bias.max() < 1 << 15
    packed = packed_requant(graph, n)
    return LinearShape(n.name, tokens, n_in, int(w.shape[0]), bits, bias is not None, packed is not None,
                       2 if narrow else 4, 4 if packed is None else packed[0].dtype.itemsize)


def row_params(g: Graph, n: Node, shape: LinearShape) -> list[tuple[np.ndarray, str]]:
    """The per-row parameter arrays of a tile block in order, each with its little-endian storage dtype."""
    names = ([n.inputs[2]] if shape.has_bias else []) + [n.inputs[3], n.inputs[4]]
    for name in names:
        v = np.asarray(g.tensors[name].data).reshape(-1).astype(np.int64)
        if v.size != shape.n_out or v.min() < -(1 << 31) or v.max() >= 1 << 31:
            raise TilingError(f"layer '{n.name}': per-row parameter '{name}' is not {shape.n_out} int32 values")
    parts = []
    if shape.has_bias:
        parts.append((np.asarray(g.tensors[n.inputs[2]].data).reshape(-1).astype(np.int64),
                      "<i2" if shape.bias_bytes == 2 else "<i4"))
    packed = packed_requant(g, n)
    if shape.sh_packed != (packed is not None):
        raise TilingError(f"layer '{n.name}': shift packing of the shape and the parameters disagree")
    if packed is not None:
        return [*parts, (packed[0].astype(np.int64), "<u2" if shape.m_bytes == 2 else "<u4")]
    m, sh = _requant(g, n) or (None, None)
    if sh is None or sh.min() < -128 or sh.max() > 127:
        raise TilingError(f"layer '{n.name}': requantization shifts do not fit int8")
    return [*parts, (m, "<i4"), (sh, "i1")]


def describe(shape: LinearShape) -> str:
    """The per-row parameter layout in words ('bias int16 | m|sh uint16')."""
    bias = f"bias int{8 * shape.bias_bytes} | " if shape.has_bias else ""
    return bias + (f"m|sh uint{8 * shape.m_bytes}" if shape.sh_packed else "m int32 | sh int8")
