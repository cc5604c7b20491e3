"""SparseConv: gather -> GEMM -> scatter over a map [K, M] (or its ConvPlan), with bias, residual and activation."""

from __future__ import annotations

import ctypes

import torch

from sparsetrt.exporter.backend import ops as backend_ops
from sparsetrt.exporter.backend.plan import is_plan, plan_to_map
from sparsetrt.exporter.custom_ops import ACTIVATION_NAMES, apply_activation

from ..kernel_library import KernelError, c_ptr, dtype_code
from .common import KernelCall, ReferenceCall, check_map


def conv_map(map_or_plan: torch.Tensor, kernel_volume: int) -> torch.Tensor:
    """A SparseConv's map input as the map [K, M]: itself, or the map its ConvPlan was made from."""
    if is_plan(map_or_plan, kernel_volume):
        return plan_to_map(map_or_plan, kernel_volume)
    if map_or_plan.dim() != 2 or map_or_plan.shape[0] != kernel_volume:
        plan = kernel_volume + 1 + (kernel_volume + 31) // 32
        raise ValueError(
            f"SparseConv: the map input has shape {list(map_or_plan.shape)}; the weight's kernel volume "
            f"{kernel_volume} needs a map [{kernel_volume}, M] or its ConvPlan [{plan}, M]"
        )
    return map_or_plan


def reference(call: ReferenceCall) -> list[torch.Tensor]:
    features, weight = call.inputs[0], call.inputs[2]
    neighbors = conv_map(call.inputs[1], int(weight.shape[1]))  # a ConvPlan back into its map
    check_map(call.where, neighbors, features.shape[0], "features")
    pairs = call.pairs(1, neighbors)
    out = backend_ops.conv_over_map(features, weight, call.input(3), neighbors.shape[1], pairs, residual=call.input(4))
    return [apply_activation(out, ACTIVATION_NAMES[call.attrs["activation"]], call.attrs["alpha"])]


def kernels(call: KernelCall) -> list:
    features, neighbors, weight = call.input(0), call.input(1), call.input(2)
    bias, residual = call.input(3), call.input(4)
    c_out, k, c_in = weight.shape
    n, m = features.shape[0], neighbors.shape[1]
    if neighbors.shape[0] not in (k, k + 1 + (k + 31) // 32):
        raise KernelError(
            f"the map input is {list(neighbors.shape)}: a map [{k}, M] or its ConvPlan [{k + 1 + (k + 31) // 32}, M] "
            f"for this weight (kernel volume {k})"
        )
    layout = 0 if neighbors.shape[0] == k else 1  # the map itself, or its ConvPlan
    if residual is not None and residual.shape != (m, c_out):
        raise KernelError(f"residual is {list(residual.shape)}, the conv's output [{m}, {c_out}]")
    out = call.lib.empty((m, c_out), features.dtype)
    call.lib.call(
        "spt_sparse_conv", dtype_code(features), features.ptr, ctypes.c_int64(n), ctypes.c_int64(c_in),
        neighbors.ptr, layout, ctypes.c_int64(k), ctypes.c_int64(m), weight.ptr, c_ptr(bias), c_ptr(residual),
        ctypes.c_int64(c_out), int(call.attrs["activation"]), ctypes.c_float(call.attrs["alpha"]), out.ptr,
    )  # fmt: skip
    return [out]
