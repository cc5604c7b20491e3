"""SparseMaxPool: the per-channel max over each output site's neighbours in a map [K, M]."""

from __future__ import annotations

import ctypes

import torch

from sparsetrt.exporter.backend import ops as backend_ops

from ..kernel_library import dtype_code
from .common import KernelCall, ReferenceCall, check_map


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    features, neighbors = call.inputs[0], call.inputs[1]
    check_map(call.where, neighbors, features.shape[0], "features")
    pairs = call.pairs(1, neighbors)
    return [backend_ops.max_pool_over_map(features, neighbors.shape[0], neighbors.shape[1], pairs)]


def kernels(call: KernelCall) -> list:
    features, neighbors = call.input(0), call.input(1)
    n, c = features.shape
    k, m = neighbors.shape
    out = call.lib.empty((m, c), features.dtype)
    call.lib.call(
        "spt_sparse_max_pool", dtype_code(features), features.ptr, ctypes.c_int64(n), ctypes.c_int64(c),
        neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), out.ptr,
    )  # fmt: skip
    return [out]
