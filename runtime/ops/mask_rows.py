"""MaskRows: the rows where a mask [N] is nonzero, ascending."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend import ops as backend_ops

from .common import KernelCall, ReferenceCall


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    rows = backend_ops.mask_rows(call.inputs[0])
    return [rows, torch.tensor(rows.shape[0], dtype=torch.int32)]


def kernels(call: KernelCall) -> list:
    mask = call.input(0)
    (n,) = mask.shape
    rows = call.lib.empty((n,), np.int32)
    m = ctypes.c_int64()
    call.lib.call("spt_mask_rows", mask.ptr, ctypes.c_int64(n), rows.ptr, ctypes.byref(m))
    rows.shape, rows.nbytes = (m.value,), m.value * 4  # allocated at the bound M <= N, as TensorRT does
    return [rows, np.array(m.value, np.int32)]
