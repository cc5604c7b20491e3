"""ConvPlan: a map [K, M] with the per-row offset masks the conv kernels read, [K + 1 + ceil(K/32), M]."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend.plan import conv_plan as backend_conv_plan

from .common import KernelCall, ReferenceCall


def build(neighbors: torch.Tensor) -> torch.Tensor:
    return backend_conv_plan(neighbors.to(torch.int32))


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    return [build(call.inputs[0])]


def kernels(call: KernelCall) -> list:
    neighbors = call.input(0)
    k, m = neighbors.shape
    out = call.lib.empty((k + 1 + (k + 31) // 32, m), np.int32)
    call.lib.call("spt_conv_plan", neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), out.ptr)
    return [out]
