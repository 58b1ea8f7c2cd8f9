"""The strided gather kernel (transpose and slice ops) and the row gather kernel (gather op) against the op
registry's numpy references, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.ir.opdefs import OPDEFS
from edgeflow.ir.opdefs.structural import MAX_DIMS, c_strides

from .conftest import ptr

pytestmark = pytest.mark.c


def _gather(kernels, x: np.ndarray, offset: int, shape: list[int], strides: list[int]) -> np.ndarray:
    y = np.zeros(int(np.prod(shape)) if shape else 1, np.int8)
    s = np.asarray(shape or [1], np.int32)
    st = np.asarray(strides or [0], np.int32)
    kernels.ef_gather_strided_i8(x.ctypes.data + offset, len(shape), ptr(s), ptr(st), ptr(y))
    return y.reshape(shape)


@pytest.mark.parametrize("dims, perm", [((80, 22), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((4, 80, 22), (1, 0, 2)),
                                        ((1, 5, 1, 7), (3, 2, 1, 0)), ((2,) * MAX_DIMS, tuple(range(MAX_DIMS))[::-1]),
                                        ((9,), (0,))])
def test_transpose(kernels, dims, perm):
    x = np.random.default_rng(len(dims)).integers(-128, 128, dims).astype(np.int8)
    st = c_strides(dims)
    got = _gather(kernels, x, 0, [dims[p] for p in perm], [st[p] for p in perm])
    assert np.array_equal(got, OPDEFS["transpose"].reference([x], {"perm": list(perm)})[0])


@pytest.mark.parametrize("offset, shape, strides", [(2, [6, 3], [5, 1]), (29, [3, 2], [-10, -2]), (0, [], []),
                                                    (7, [4], [0]), (4, [2, 2, 5], [15, 5, 1]), (1, [3, 4], [1, 8])])
def test_slice(kernels, offset, shape, strides):
    x = np.random.default_rng(offset).integers(-128, 128, (6, 5)).astype(np.int8)
    got = _gather(kernels, x, offset, shape, strides)
    want = OPDEFS["slice"].reference([x], {"offset": offset, "shape": shape, "strides": strides})[0]
    assert np.array_equal(got, want)


@pytest.mark.parametrize("offsets, row_len, step, shape", [
    ([0, 12, 18, 42], 6, 1, [4, 6]),            # channels 0, 2, 3, 7 of an (8, 6) window
    ([29, 0, 0, 17, 3], 1, 1, [5]),             # single elements, one twice
    ([29, 14], 3, -5, [2, 3]),                  # rows read backwards with a stride
    ([7, 7], 4, 0, [2, 2, 2])])                 # a broadcast row
def test_gather_rows(kernels, offsets, row_len, step, shape):
    x = np.random.default_rng(row_len).integers(-128, 128, (6, 8)).astype(np.int8)
    y = np.zeros(len(offsets) * row_len, np.int8)
    offs = np.asarray(offsets, np.int32)
    kernels.ef_gather_rows_i8(ptr(x), ptr(offs), len(offsets), row_len, step, ptr(y))
    want = OPDEFS["gather"].reference([x], {"offsets": offsets, "row_len": row_len, "step": step, "shape": shape})[0]
    assert want.shape == tuple(shape) and np.array_equal(y.reshape(shape), want)
