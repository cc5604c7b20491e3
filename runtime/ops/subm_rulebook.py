"""SubmRulebook: the submanifold neighbour map [K, N] of the input sites."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend.rulebook import submanifold_map

from ..kernel_library import c_ints
from .common import KernelCall, ReferenceCall


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    a = call.attrs
    return [submanifold_map(call.inputs[0], a["spatial_shape"], a["kernel_size"], a["dilation"])]


def kernels(call: KernelCall) -> list:
    attrs, indices = call.attrs, call.input(0)
    n, ndim = indices.shape[0], len(attrs["spatial_shape"])
    k = int(np.prod(attrs["kernel_size"]))
    out = call.lib.empty((k, n), np.int32)
    call.lib.call(
        "spt_subm_rulebook", indices.ptr, ctypes.c_int64(n), ndim, c_ints(attrs["spatial_shape"]),
        c_ints(attrs["kernel_size"]), c_ints(attrs["dilation"]), out.ptr,
    )  # fmt: skip
    return [out]
