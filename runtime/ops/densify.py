"""Densify: the sites' features scattered into a dense [batch_size, C, *spatial_shape] grid."""

from __future__ import annotations

import ctypes

import torch

from sparsetrt.exporter.backend import ops as backend_ops

from ..kernel_library import c_ints, dtype_code
from .common import KernelCall, ReferenceCall, check_sites


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    features, indices = call.inputs[0], call.inputs[1]
    shape, batch = call.attrs["spatial_shape"], call.attrs["batch_size"]
    check_sites(call.where, indices, batch, shape)
    return [backend_ops.densify(features, indices, shape, batch)]


def kernels(call: KernelCall) -> list:
    features, indices = call.input(0), call.input(1)
    n, c = features.shape
    shape, batch = list(call.attrs["spatial_shape"]), int(call.attrs["batch_size"])
    out = call.lib.empty((batch, c, *shape), features.dtype)
    call.lib.call(
        "spt_densify", dtype_code(features), features.ptr, indices.ptr, ctypes.c_int64(n),
        ctypes.c_int64(c), len(shape), c_ints(shape), batch, out.ptr,
    )  # fmt: skip
    return [out]
