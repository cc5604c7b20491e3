"""SparseRulebook: the output sites of a regular or transposed sparse conv and its neighbour map [K, M]."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.errors import InputError, SiteLimitError
from sparsetrt.exporter.backend.geometry import ConvGeometry, ConvKind
from sparsetrt.exporter.backend.rulebook import build_rulebook

from ..kernel_library import c_ints
from .common import KernelCall, ReferenceCall


def build(indices: torch.Tensor, attrs: dict, where: str = "SparseRulebook") -> list[torch.Tensor]:
    """``[out_indices, neighbors, num_out]``; ``max_out`` = 0 measures the true count (``sparsetrt bounds``)."""
    ndim = len(attrs["spatial_shape"])
    kind = ConvKind.TRANSPOSED if attrs["transposed"] else ConvKind.REGULAR
    geo = ConvGeometry.make(
        kind, ndim, attrs["kernel_size"], attrs["stride"], attrs["padding"], attrs["dilation"], attrs["output_padding"]
    )
    batch_size = attrs["batch_size"]
    if indices.shape[0] and not 0 <= int(indices[:, 0].min()) <= int(indices[:, 0].max()) < batch_size:
        raise InputError(
            f"{where}: batch indices must lie in [0, {batch_size}) (the batch size the model was exported with), got "
            f"[{int(indices[:, 0].min())}, {int(indices[:, 0].max())}]: re-export with that batch size"
        )
    rb = build_rulebook(indices, attrs["spatial_shape"], batch_size, geo)
    if attrs["max_out"] and rb.num_out > attrs["max_out"]:
        raise SiteLimitError(
            f"{where} creates {rb.num_out} output sites, more than its bound max_out={attrs['max_out']}: "
            "raise the bound at export (max_out, `sparsetrt export --max-sites`) or feed fewer voxels"
        )
    return [rb.out_indices, rb.neighbors, torch.tensor(rb.num_out, dtype=torch.int32)]


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    return build(call.inputs[0], call.attrs, call.where)


def kernels(call: KernelCall) -> list:
    attrs, indices, lib = call.attrs, call.input(0), call.lib
    n, ndim = indices.shape[0], len(attrs["spatial_shape"])
    geometry = [c_ints(attrs[a]) for a in ("spatial_shape", "kernel_size", "stride", "padding", "dilation")]
    geometry.append(c_ints(attrs["output_padding"]))
    flags = [attrs["transposed"], attrs["max_out"], attrs["batch_size"]]
    bound, shape = ctypes.c_int64(), (ctypes.c_int64 * ndim)()
    lib.call("spt_sparse_rulebook_bound", ctypes.c_int64(n), ndim, *geometry, *flags, ctypes.byref(bound), shape)
    k = int(np.prod(attrs["kernel_size"]))
    cap = bound.value
    out_indices = lib.empty((cap, 1 + ndim), np.int32)
    neighbors = lib.empty((k, cap), np.int32)
    m = ctypes.c_int64()
    lib.call(
        "spt_sparse_rulebook", indices.ptr, ctypes.c_int64(n), ndim, *geometry, *flags, out_indices.ptr,
        neighbors.ptr, ctypes.byref(m),
    )  # fmt: skip
    # Outputs are allocated at the bound, as TensorRT does; the first M rows (the first K * M map entries,
    # row k at k * M) are the result.
    out_indices.shape, neighbors.shape = (m.value, 1 + ndim), (k, m.value)
    out_indices.nbytes = m.value * (1 + ndim) * 4
    neighbors.nbytes = k * m.value * 4
    return [out_indices, neighbors, np.array(m.value, np.int32)]
