"""UniqueSites: the distinct rows of an int matrix [N, K], sorted, with each row's index among them and counts."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend import ops as backend_ops

from .common import KernelCall, ReferenceCall


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    unique, inverse, counts = backend_ops.unique_rows(call.inputs[0])
    return [unique, inverse, counts, torch.tensor(unique.shape[0], dtype=torch.int32)]


def kernels(call: KernelCall) -> list:
    indices, lib = call.input(0), call.lib
    n, k = indices.shape
    unique, inverse, counts = lib.empty((n, k), np.int32), lib.empty((n,), np.int32), lib.empty((n,), np.int32)
    m = ctypes.c_int64()
    lib.call(
        "spt_unique_sites", indices.ptr, ctypes.c_int64(n), ctypes.c_int64(k), unique.ptr, inverse.ptr, counts.ptr,
        ctypes.byref(m),
    )  # fmt: skip
    # Allocated at the bound M <= N, as TensorRT does; the first M rows are the result.
    unique.shape, counts.shape = (m.value, k), (m.value,)
    unique.nbytes, counts.nbytes = m.value * k * 4, m.value * 4
    return [unique, inverse, counts, np.array(m.value, np.int32)]
