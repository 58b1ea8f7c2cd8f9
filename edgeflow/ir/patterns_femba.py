"""FEMBA's own regions in the ONNX frontend: the patch embedding (2-D Conv with kernel = stride, an optional
constant addend) and the causal depthwise Conv1d (padding K-1, cut to the first L steps)."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from edgeflow.ir import ops
from edgeflow.ir.patterns import attrs
from edgeflow.ir.patterns_layout import apply_layout_node


class FembaMixin:
    """Builder methods for the patch embedding and the causal depthwise conv (mixed into from_onnx._Builder)."""

    def patch(self, v: str, addend_v: str | None, s_out: float, out: str) -> None:
        v_read, v = v, self.v.skip_layout(v)
        conv = self.v.producer(v, "Conv")
        if conv is None:
            raise self.v.err(f"'{v_read}': an Add of a constant must follow a Conv or a linear layer (Gemm / MatMul); "
                             "quantize the other operand and add the constant in the model's weights")
        at = attrs(conv)
        k = list(at.get("kernel_shape", []))
        if len(k) != 2 or list(at.get("strides", [])) != k or any(at.get("pads", [0])) or at.get("group", 1) != 1:
            raise self.v.err(f"node '{conv.name}' (Conv): only a 2-D Conv with kernel = stride, no padding and one "
                             f"group has an integer lowering here (kernel {k}, strides {list(at.get('strides', []))}, "
                             f"pads {list(at.get('pads', []))}, group {at.get('group', 1)})")
        x = self.act(conv.input[0])
        w, s_w, bits, _ = self.v.weight(conv.input[1])
        s_in = self.scale(x)
        bias = self.v.bias(conv.input[2], s_in * s_w) if len(conv.input) > 2 else np.zeros(w.shape[0], np.int32)
        h, wd = self.shape(x)
        rows, n_tok = h // k[0], wd // k[1]
        m, sh = ops.requant_params(s_in, s_w, s_out)
        ins = [x, self.const(out, "w", w.reshape(w.shape[0], -1), "int8", bits, s_w),
               self.const(out, "b", bias, "int32"), self.const(out, "m", m, "int16"),
               self.const(out, "sh", sh, "int8")]
        # conv output (1, E, rows, L) element (e, r, l) is IR element (l, e*rows + r); the layout nodes after it
        # are applied to that index array (the proof; identity for a (1, L, E*rows) token view)
        n_e = w.shape[0]
        idx = (np.arange(n_tok) * (n_e * rows) + np.arange(n_e)[:, None, None] * rows
               + np.arange(rows)[None, :, None])[None]
        for node in self._nodes_between(v, v_read):
            idx = apply_layout_node(self.v, node, idx)
        self.anchor_idx[out] = idx
        if addend_v is not None:
            a = self.v.const(addend_v)
            try:
                a = np.broadcast_to(a, idx.shape)
            except ValueError:
                raise self.v.err(f"constant '{addend_v}' added after node '{conv.name}' has shape {a.shape}, the "
                                 f"conv output {idx.shape}") from None
            flat = np.zeros(idx.size)
            flat[idx.reshape(-1)] = a.reshape(-1)
            add = ops.fold_addend(flat.reshape(n_tok, n_e * rows), s_in, s_w, rows)
            narrow = add.size and -(1 << 15) <= add.min() and add.max() < 1 << 15  # stored int16 when it fits
            ins.append(self.const(out, "addend", add, "int16" if narrow else "int32"))
        self.act_out(out, (n_tok, w.shape[0] * rows), s_out)
        self.emit("conv2d_patch", ins, out, {"kernel": (int(k[0]), int(k[1]))})

    def dwconv(self, sl: NodeProto, s_out: float, out: str) -> None:
        conv = self.v.producer(sl.input[0], "Conv")
        at = attrs(conv) if conv is not None else {}
        if conv is None or len(at.get("kernel_shape", [])) != 1:
            raise self.v.err(f"node '{sl.name}': Slice must cut a depthwise causal Conv1d")
        x = self.act(conv.input[0], perm=(0, 2, 1))     # the kernel reads token layout (L, C)
        n_t, n_c = self.shape(x)
        kk = int(at["kernel_shape"][0])
        starts, ends = self.v.const(sl.input[1]).reshape(-1), self.v.const(sl.input[2]).reshape(-1)
        axes = self.v.const(sl.input[3]).reshape(-1) if len(sl.input) > 3 else np.asarray([0])
        if (at.get("group", 1) != n_c or list(at.get("pads", [])) != [kk - 1, kk - 1] or list(axes) not in ([2], [-1])
                or int(starts[0]) != 0 or int(ends[0]) != n_t or any(s != 1 for s in at.get("strides", [1]))):
            raise self.v.err(f"node '{conv.name}': Conv1d must be depthwise, padding K-1, cut to the first L steps")
        w, s_w, bits, _ = self.v.weight(conv.input[1])
        s_in = self.scale(x)
        bias = self.v.bias(conv.input[2], s_in * s_w) if len(conv.input) > 2 else np.zeros(n_c, np.int32)
        m, sh = ops.requant_params(s_in, s_w, s_out)
        ins = [x, self.const(out, "w", w.reshape(n_c, kk), "int8", bits, s_w), self.const(out, "b", bias, "int32"),
               self.const(out, "m", m, "int16"), self.const(out, "sh", sh, "int8")]
        self.act_out(out, (n_t, n_c), s_out)
        self.anchor_idx[out] = np.arange(n_t * n_c).reshape(1, n_t, n_c).transpose(0, 2, 1)  # ONNX: (1, C, L)
        self.emit("dwconv1d_causal", ins, out)
