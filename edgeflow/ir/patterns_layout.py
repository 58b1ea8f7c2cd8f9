"""Layout in the ONNX frontend: the element order of every activation tracked as an index array, so Transpose,
Reshape, Flatten, Squeeze/Unsqueeze, Slice and Gather of constants become a zero-copy view or a proven copy (a
transpose, a strided slice, or a gather of rows at constant offsets for uneven indices)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import NodeProto

from edgeflow.ir.graph import Graph
from edgeflow.ir.opdefs.structural import MAX_DIMS, c_strides, gather_index, strided
from edgeflow.ir.patterns import _FLOAT_TYPES, FrontendError, OnnxView, attrs

# How an activation is laid out: the IR tensor's bytes are its ONNX value's elements in C order (batch 1 dropped),
# except where a region says otherwise (self.layout[value] = index array of the value's ONNX shape, entry = flat
# element of the IR tensor). A consumer reads value v through layout nodes: the nodes are applied to the index
# array (the proof), and the result is the identity (zero-copy, perhaps a `reshape` view), an affine map (one
# `transpose` or `slice` copy) or refused in one line. Nothing is dropped.

#: Most rows of one gather node (its int32 offsets table is constant data of the network: 64 KiB at most).
MAX_GATHER_ROWS = 16384

#: ONNX ops a consumer may read an activation through (Slice and Gather need constant parameters).
CHAIN_OPS = ("Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze", "Identity", "Cast", "Slice", "Gather")


def _axes(view: OnnxView, n: NodeProto) -> list[int] | None:
    a = attrs(n).get("axes")
    if a is None and len(n.input) > 1 and n.input[1]:
        a = view.const(n.input[1]).reshape(-1).tolist()
    return None if a is None else [int(x) for x in a]


def _slice(view: OnnxView, n: NodeProto, idx: np.ndarray) -> np.ndarray:
    at = attrs(n)
    if "starts" in at:                               # opset < 10: attributes
        starts, ends, axes, steps = at["starts"], at["ends"], at.get("axes"), None
    else:
        get = [view.const(i).reshape(-1).tolist() if i else None for i in list(n.input[1:]) + [""] * 4]
        starts, ends, axes, steps = get[0], get[1], get[2], get[3]
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    sl = [slice(None)] * idx.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if int(st) == 0:
            raise view.err(f"node '{n.name}' (Slice): step 0")
        sl[int(a) % idx.ndim] = slice(int(s), int(e), int(st))
    return idx[tuple(sl)]


def apply_layout_node(view: OnnxView, n: NodeProto, idx: np.ndarray) -> np.ndarray:
    """The index array after ONNX layout node n (what n does to the elements, applied to their positions)."""
    op, a = n.op_type, attrs(n)
    if op in ("Identity", "Cast"):
        return idx
    if op == "Transpose":
        return idx.transpose(a.get("perm", list(range(idx.ndim))[::-1]))
    if op == "Reshape":
        shp = [int(s) for s in view.const(n.input[1]).reshape(-1)]
        shp = [idx.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shp)]
        return idx.reshape(shp)
    if op == "Flatten":
        ax = int(a.get("axis", 1)) % (idx.ndim + 1) if idx.ndim else 0
        return idx.reshape(int(np.prod(idx.shape[:ax])), -1)
    if op == "Unsqueeze":
        axes = _axes(view, n) or []
        for ax in sorted(int(x) % (idx.ndim + len(axes)) for x in axes):
            idx = np.expand_dims(idx, ax)
        return idx
    if op == "Squeeze":
        axes = _axes(view, n)
        return np.squeeze(idx, axis=None if axes is None else tuple(int(x) % idx.ndim for x in axes))
    if op == "Slice":
        return _slice(view, n, idx)
    if op == "Gather":
        return np.take(idx, view.const(n.input[1]).astype(np.int64), axis=int(a.get("axis", 0)))
    raise view.err(f"node '{n.name}' ({op}) is not a layout op")


def affine_form(want: np.ndarray) -> tuple[int, list[int], list[int]] | None:
    """(offset, shape, strides) with want.flat[i] = offset + sum_k i_k strides[k] over C-order multi-index i of
    `shape` (adjacent contiguous axes merged, size-1 axes dropped), or None when the map is not affine."""
    flat = want.reshape(-1).astype(np.int64)
    n = flat.size
    shape: list[int] = []
    strides: list[int] = []
    rows = flat
    while rows.size > 1:
        k = next((k for k in range(rows.size, 1, -1) if rows.size % k == 0 and _arith(rows, k)), None)
        if k is None:
            return None
        shape.insert(0, k)
        strides.insert(0, int(rows[1] - rows[0]))
        rows = rows.reshape(-1, k)[:, 0]
    return (int(flat[0]) if n else 0), shape, strides


def _arith(rows: np.ndarray, k: int) -> bool:
    """Every block of k consecutive entries is the same arithmetic progression, shifted."""
    blocks = rows.reshape(-1, k)
    step = blocks[0, 1] - blocks[0, 0]
    return bool(np.array_equal(blocks - blocks[:, :1], np.broadcast_to(np.arange(k) * step, blocks.shape)))


def rows_form(want: np.ndarray) -> tuple[list[int], int, int]:
    """(offsets, row_len, step) with want.flat[r * row_len + i] = offsets[r] + i * step: the longest rows that
    are one arithmetic progression each, all with the same step (rows of 1 element always are)."""
    flat = want.reshape(-1).astype(np.int64)
    n = flat.size
    k = next((k for k in range(n, 1, -1) if n % k == 0 and _arith(flat, k)), 1)
    step = int(flat[1] - flat[0]) if k > 1 else 1
    return [int(o) for o in flat.reshape(-1, k)[:, 0]], k, step


def as_permutation(shape: list[int], strides: list[int], n: int) -> tuple[list[int], list[int]] | None:
    """(dims d, perm p) with arange(n).reshape(d).transpose(p) laid out as (shape, strides) at offset 0, or None."""
    order = sorted(range(len(shape)), key=lambda k: -strides[k])
    dims = [shape[k] for k in order]
    if int(np.prod(dims)) != n or [strides[k] for k in order] != c_strides(dims):
        return None
    pos = {k: i for i, k in enumerate(order)}
    return dims, [pos[k] for k in range(len(shape))]


def _strip(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its leading 1s (the batch axis and any unit axes before the data)."""
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


class LayoutMixin:
    """Builder methods that read activations through layout nodes (mixed into from_onnx._Builder)."""

    layout: dict[str, np.ndarray]       # ONNX activation value -> index array, when not the identity
    anchor_idx: dict[str, np.ndarray]   # IR region output -> index array of its ONNX value (when a region
                                        # writes another order than C order)
    _shapes: dict[str, tuple[int, ...]] | None = None

    # ---- shapes and index arrays -----------------------------------------------------------------------
    def static_shape(self, v: str) -> tuple[int, ...] | None:
        """The static ONNX shape of value v (shape inference), None when it has none."""
        if self._shapes is None:
            try:
                g = onnx.shape_inference.infer_shapes(self.v.proto).graph
            except Exception:  # a model shape inference cannot follow: fall back to the IR shapes
                g = self.v.graph
            self._shapes = {vi.name: tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)
                            for vi in list(g.value_info) + list(g.input) + list(g.output)
                            if all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}
        return self._shapes.get(v)

    def onnx_shape(self, v: str, ir: str) -> tuple[int, ...]:
        """The static ONNX shape of value v (shape inference), else the IR tensor's shape with a batch axis."""
        n = int(np.prod(self.shape(ir)))
        s = self.static_shape(v)
        return s if s is not None and int(np.prod(s)) == n else (1, *self.shape(ir))

    def index_of(self, v: str, ir: str) -> np.ndarray:
        """Index array of activation value v held by IR tensor ir (identity unless a region laid it out)."""
        if v in self.layout:
            return self.layout[v]
        return np.arange(int(np.prod(self.shape(ir)))).reshape(self.onnx_shape(v, ir))

    def region_index(self, v0: str, out: str, chain: list[NodeProto]) -> np.ndarray:
        """Index array of the value after `chain` for the region output `out` anchored at ONNX value v0."""
        idx = self.anchor_idx.get(out)
        if idx is None:
            idx = np.arange(int(np.prod(self.shape(out)))).reshape(self.onnx_shape(v0, out))
        for n in chain:
            idx = apply_layout_node(self.v, n, idx)
        return idx

    def record_layout(self, value: str, idx: np.ndarray) -> None:
        flat = idx.reshape(-1)
        if not np.array_equal(flat, np.arange(flat.size)):
            self.layout[value] = idx

    # ---- reading through layout nodes --------------------------------------------------------------------
    def layout_chain(self, v: str) -> tuple[str, list[NodeProto]]:
        """(source value, layout nodes in forward order) of v back to an activation or a non-layout producer."""
        chain: list[NodeProto] = []
        while v not in self.acts and not self.v.is_const(v):
            p = self.v.producer(v)
            if p is None or p.op_type not in CHAIN_OPS or self.v.flip_source(v) is not None:
                break
            if p.op_type == "Cast" and attrs(p).get("to") not in _FLOAT_TYPES:
                break
            if p.op_type in ("Slice", "Gather", "Reshape") and not all(self.v.is_const(i) for i in p.input[1:] if i):
                break
            chain.insert(0, p)
            v = p.input[0]
        return v, chain

    def read(self, v: str, base: str, src: str, chain: list[NodeProto], perm: tuple[int, ...] | None) -> str:
        """IR tensor holding value v (read from IR tensor `base` of value src through `chain`, then axes `perm`)
        in C order: base itself, a reshape view of it, or a transpose / slice copy the index arrays prove."""
        if not chain and perm is None and src not in self.layout:
            return base
        idx = self.index_of(src, base)
        for n in chain:
            idx = apply_layout_node(self.v, n, idx)
        if perm is not None:
            idx = idx.transpose(perm)
        want = idx[0] if idx.ndim > 1 and idx.shape[0] == 1 else idx     # the batch axis (1) goes
        n_src = int(np.prod(self.shape(base)))
        flat = want.reshape(-1)
        if flat.size == n_src and np.array_equal(flat, np.arange(n_src)):
            return self.view(base, tuple(want.shape))
        where = f"node '{chain[-1].name}' ({chain[-1].op_type})" if chain else f"value '{v}'"
        form = affine_form(want)
        key = (self._layout_name(chain[-1]) if chain else f"{base}.T") + ("" if perm is None else
                                                                            ".T" + "".join(map(str, perm)))
        if key in self.g.tensors:                      # a second reader of the same copy
            return self.view(key, tuple(want.shape))
        if form is None or len(form[1]) > MAX_DIMS:    # uneven indices: rows gathered at constant offsets
            offs, row, step = rows_form(want)
            if len(offs) > MAX_GATHER_ROWS:
                raise self.v.err(f"{where}: reorders the elements of '{base}' in a way no copy kernel covers (not a "
                                 f"transpose or a strided slice, and a gather of {len(offs)} rows is beyond "
                                 f"{MAX_GATHER_ROWS})")
            y = self._emit_layout("gather", base, key, tuple(want.shape),
                                  {"offsets": offs, "row_len": row, "step": step, "shape": list(want.shape)})
            self._check_proof(base, key, flat, where)
            return self.view(y, tuple(want.shape))
        off, shp, st = form
        pm = as_permutation(shp, st, n_src) if off == 0 else None
        if pm is not None:
            x = self.view(base, tuple(pm[0]), exact=True)
            y = self._emit_layout("transpose", x, key, tuple(pm[0][p] for p in pm[1]), {"perm": pm[1]})
        else:
            y = self._emit_layout("slice", base, key, tuple(shp), {"offset": off, "shape": shp, "strides": st})
        self._check_proof(base, key, flat, where)
        return self.view(y, tuple(want.shape))

    def _check_proof(self, base: str, key: str, flat: np.ndarray, where: str) -> None:
        if not np.array_equal(self._proof(base, key).reshape(-1), flat):
            raise FrontendError(f"{self.v.path}: {where}: internal layout proof failed for '{key}'")

    def _proof(self, base: str, y: str) -> np.ndarray:
        """Run the emitted layout nodes from base to y on an index array (each op's numpy reference). The walk back
        from y stops at base or at a tensor base is a reshape view of (`view` re-roots a view of a view there; both
        hold the same elements in the same order)."""
        stops, t = {base}, base
        while (p := self.g.producer(t)) is not None and p.op == "reshape":
            t = p.inputs[0]
            stops.add(t)
        chain, t = [], y
        while t not in stops:
            n = self.g.producer(t)
            if n is None:
                raise FrontendError(f"{self.v.path}: internal layout proof: '{y}' is not computed from '{base}'")
            chain.insert(0, n)
            t = n.inputs[0]
        idx = np.arange(int(np.prod(self.shape(t)))).reshape(self.shape(t))
        for n in chain:
            if n.op == "reshape":
                idx = idx.reshape(self.shape(n.outputs[0]))
            elif n.op == "transpose":
                idx = idx.transpose(n.attrs["perm"])
            elif n.op == "gather":
                idx = idx.reshape(-1)[gather_index(n.attrs["offsets"], n.attrs["row_len"], n.attrs["step"])]
            else:
                idx = strided(idx, n.attrs["offset"], n.attrs["shape"], n.attrs["strides"])
        return idx

    def _layout_name(self, n: NodeProto) -> str:
        return (n.name or n.output[0]).strip("/").replace("/", ".") or n.output[0]

    def _emit_layout(self, op: str, x: str, out: str, shape: tuple[int, ...], a: dict) -> str:
        t = self.g.tensors[x]
        self.act_out(out, shape, t.scale, t.dtype)
        self.emit(op, [x], out, a)   # emit: a data-movement op keeps its input's zero point (onnxruntime QDQ)
        return out

    def view(self, x: str, shape: tuple[int, ...], exact: bool = False) -> str:
        """x itself when its shape is `shape` (up to leading 1s unless exact), else a reshape view (no copy)."""
        have = self.shape(x)
        if int(np.prod(have)) != int(np.prod(shape)):
            return x                  # sizes differ: the consumer's shape check names both
        if have == tuple(shape) or (not exact and _strip(have) == _strip(tuple(shape))):
            return x
        shape = tuple(shape) if exact else _strip(tuple(shape))
        src = self.g.producer(x)
        if src is not None and src.op == "reshape":     # a view of a view: one view of the base
            x = src.inputs[0]
            if self.shape(x) == shape:
                return x
        out = f"{x}.view{'x'.join(map(str, shape))}"
        if out not in self.g.tensors:
            self._emit_layout("reshape", x, out, shape, {"shape": list(shape)})
        return out

    def view2d(self, x: str) -> str:
        """x as (rows, features): every axis but the last as rows (a view)."""
        shp = self.shape(x)
        return self.view(x, (int(np.prod(shp[:-1])) if len(shp) > 1 else 1, shp[-1]), exact=True)

    def check_output_order(self, v: str, out: str) -> None:
        """The float graph output v must be the IR output's elements in order (a layout node after the last
        linear layer that reorders them is refused, not dropped)."""
        v0 = self.v.skip_layout(v)
        chain = []
        while v != v0:
            chain.insert(0, self.v.producer(v))
            v = chain[0].input[0]
        flat = self.region_index(v0, out, chain).reshape(-1)
        if not np.array_equal(flat, np.arange(flat.size)):
            raise self.v.err(f"node '{chain[-1].name}' ({chain[-1].op_type}): reorders the logits after the last "
                             "linear layer; move it before the layer or drop it")

    def concat(self, p: NodeProto, s_out: float, out: str) -> None:
        """Concat of activations with their own scales: each input requantized to s_out where its scale differs
        (a one-input add_requant), then copied into place along the axis (batch axis excluded)."""
        from edgeflow.ir import ops

        parts = []
        for i, v in enumerate(p.input):
            x = self.act(v)
            shape = self.onnx_shape(v, x)
            x = self.view(x, tuple(shape[1:]) or (1,), exact=True)
            if not np.isclose(self.scale(x), s_out, rtol=1e-6, atol=0):
                m, s = ops.add_requant_params([self.scale(x)], s_out)
                y = f"{out}.in{i}"
                self.act_out(y, self.shape(x), s_out)
                self.emit("add_requant", [x], y, {"M": m, "S": int(s)})
                x = y
            parts.append(x)
        rank = len(self.shape(parts[0])) + 1
        axis = int(attrs(p).get("axis", 0)) % rank
        if axis == 0:
            raise self.v.err(f"node '{p.name}' (Concat): concatenates along the batch axis (batch must be 1)")
        shape = list(self.shape(parts[0]))
        shape[axis - 1] = sum(self.shape(x)[axis - 1] for x in parts)
        self.act_out(out, tuple(shape), s_out)
        self.emit("concat", parts, out, {"axis": axis - 1})

    def scaled_region(self, p: NodeProto, s_out: float, out: str) -> bool:
        """Mul / Div of an activation by a positive constant scalar (e.g. 1 / sqrt(d)): a requantized copy."""
        consts = [i for i in p.input if self.v.is_const(i)]
        if p.op_type not in ("Mul", "Div") or len(consts) != 1 or self.v.const(consts[0]).size != 1 \
                or (p.op_type == "Div" and consts[0] != p.input[1]):
            return False
        c = self.v.scalar(consts[0])
        c = 1.0 / c if p.op_type == "Div" else c
        x = next(i for i in p.input if i != consts[0])
        src, _ = self.layout_chain(x)
        if not c > 0 or (src not in self.acts and self.v.flip_source(src) is None):
            return False
        return self.copy_region(x, s_out, out, factor=c)

    def copy_region(self, v: str, s_out: float, out: str, factor: float = 1.0) -> bool:
        """A quantizer of a value that is only a view of another activation (QuantIdentity after a layout node,
        or two quantizers in a row), times `factor`: the view, requantized to s_out when the scales differ.
        False if v is none."""
        src, chain = self.layout_chain(v)
        if src not in self.acts and self.v.flip_source(src) is None:
            return False
        x = self.act(v)
        shape = self.shape(x)
        if factor == 1.0 and np.isclose(self.scale(x), s_out, rtol=1e-6, atol=0) and self.zp(x) == self.zp_out:
            self.act_out(out, shape, s_out)
            self.emit("reshape", [x], out, {"shape": list(shape)})
        elif self.zp(x) or self.zp_out:    # onnxruntime zero points: the requantization as a table
            from edgeflow.ir import qdq_ort_ops
            qdq_ort_ops.table(self, x, lambda t: t * factor, s_out, out, "requant")
        else:
            from edgeflow.ir import ops
            m, s = ops.add_requant_params([self.scale(x) * factor], s_out)
            self.act_out(out, shape, s_out)
            self.emit("add_requant", [x], out, {"M": m, "S": int(s)})
        return True


def drop_dead_views(g: Graph) -> None:
    """Remove reshape views nothing reads (a view of a view is re-rooted on its base by LayoutMixin.view,
    which can leave the first view unused); they are no-copy aliases, so nothing else changes."""
    while True:
        used = {t for n in g.nodes for t in n.inputs} | set(g.outputs)
        dead = [n for n in g.nodes if n.op == "reshape" and not any(o in used for o in n.outputs)]
        if not dead:
            return
        for n in dead:
            g.nodes.remove(n)
            for o in n.outputs:
                g.tensors.pop(o, None)
