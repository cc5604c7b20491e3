"""SubmRulebook: the submanifold neighbour map [K, N] of the input sites."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend.geometry import ConvGeometry, ConvKind
from sparsetrt.exporter.backend.rulebook import build_rulebook

from ..kernel_library import c_ints
from .common import KernelCall, ReferenceCall, batch_extent


def build(indices: torch.Tensor, attrs: dict) -> torch.Tensor:
    ndim = len(attrs["spatial_shape"])
    geo = ConvGeometry.make(ConvKind.SUBMANIFOLD, ndim, attrs["kernel_size"], 1, 0, attrs["dilation"])
    return build_rulebook(indices, attrs["spatial_shape"], batch_extent(indices), geo).neighbors


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    return [build(call.inputs[0], call.attrs)]


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
