"""InverseRulebook: the map [K, N] of an inverse conv, from the map [K, M] of the conv it inverts."""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from sparsetrt.exporter.backend.rulebook import invert_map

from .common import KernelCall, ReferenceCall, check_map


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    neighbors, indices = call.inputs[0], call.inputs[1]
    check_map(call.where, neighbors, indices.shape[0], "indices")
    return [invert_map(neighbors, indices.shape[0])]


def kernels(call: KernelCall) -> list:
    neighbors = call.input(0)
    k, m = neighbors.shape
    n = call.input(1).shape[0]
    out = call.lib.empty((k, n), np.int32)
    call.lib.call(
        "spt_inverse_rulebook", neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), ctypes.c_int64(n), out.ptr
    )
    return [out]
