"""SegmentReduce: ``init [M, C]`` combined (sum or max) with every feature row of its segment."""

from __future__ import annotations

import ctypes

import torch

from sparsetrt.exporter.backend import ops as backend_ops

from ..kernel_library import dtype_code
from .common import KernelCall, ReferenceCall


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    features, segments, init = call.inputs[0], call.inputs[1], call.inputs[2]
    reduction = backend_ops.SEGMENT_REDUCTIONS[call.attrs["reduction"]]
    return [backend_ops.segment_reduce(features, segments, init, reduction)]


def kernels(call: KernelCall) -> list:
    features, segments, init = call.input(0), call.input(1), call.input(2)
    n, c = features.shape
    m = init.shape[0]
    out = call.lib.empty((m, c), features.dtype)
    call.lib.call(
        "spt_segment_reduce", dtype_code(features), features.ptr, segments.ptr, ctypes.c_int64(n), ctypes.c_int64(c),
        init.ptr, ctypes.c_int64(m), int(call.attrs["reduction"]), out.ptr,
    )  # fmt: skip
    return [out]
