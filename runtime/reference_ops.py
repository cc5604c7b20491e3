"""CPU kernels of the ``sparsetrt`` ops for the reference runtime, on the reference backend (torch).

Each kernel takes the node's inputs as torch tensors and its attributes as Python values and returns
its outputs; the semantics are the schema's (``exporter/schema/sparsetrt_ops.json``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sparsetrt.errors import InputError, SiteLimitError
from sparsetrt.exporter.backend import ops as backend_ops
from sparsetrt.exporter.backend.geometry import ConvGeometry, ConvKind
from sparsetrt.exporter.backend.plan import conv_plan as backend_conv_plan
from sparsetrt.exporter.backend.plan import is_plan, plan_to_map
from sparsetrt.exporter.backend.rulebook import build_rulebook, invert_map
from sparsetrt.exporter.custom_ops import apply_activation

ACTIVATION_NAMES = {0: None, 1: "relu", 2: "leaky_relu", 3: "sigmoid"}
REDUCTIONS = {0: "sum", 1: "max"}

Pairs = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def _batch_extent(indices: torch.Tensor) -> int:
    # Rulebooks only need the batch extent to size their int64 keys; the data gives it.
    return int(indices[:, 0].max()) + 1 if indices.shape[0] else 1


def subm_rulebook(indices: torch.Tensor, attrs: dict) -> list[torch.Tensor]:
    ndim = len(attrs["spatial_shape"])
    geo = ConvGeometry.make(ConvKind.SUBMANIFOLD, ndim, attrs["kernel_size"], 1, 0, attrs["dilation"])
    return [build_rulebook(indices, attrs["spatial_shape"], _batch_extent(indices), geo).neighbors]


def sparse_rulebook(indices: torch.Tensor, attrs: dict, where: str = "SparseRulebook") -> list[torch.Tensor]:
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


def inverse_rulebook(neighbors: torch.Tensor, indices: torch.Tensor) -> list[torch.Tensor]:
    return [invert_map(neighbors, indices.shape[0])]


def conv_plan(neighbors: torch.Tensor) -> list[torch.Tensor]:
    return [backend_conv_plan(neighbors.to(torch.int32))]


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


def sparse_conv(
    features: torch.Tensor,
    neighbors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    attrs: dict,
    pairs: Pairs,
    residual: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """``neighbors`` is the map [K, M] (a ConvPlan already turned back into it: ``conv_map``)."""
    out = backend_ops.conv_over_map(features, weight, bias, neighbors.shape[1], pairs, residual=residual)
    return [apply_activation(out, ACTIVATION_NAMES[attrs["activation"]], attrs["alpha"])]


def sparse_max_pool(features: torch.Tensor, neighbors: torch.Tensor, pairs: Pairs) -> list[torch.Tensor]:
    return [backend_ops.max_pool_over_map(features, neighbors.shape[0], neighbors.shape[1], pairs)]


def densify(features: torch.Tensor, indices: torch.Tensor, attrs: dict) -> list[torch.Tensor]:
    return [backend_ops.densify(features, indices, attrs["spatial_shape"], attrs["batch_size"])]


def unique_sites(indices: torch.Tensor) -> list[torch.Tensor]:
    unique, inverse, counts = backend_ops.unique_rows(indices)
    return [unique, inverse, counts, torch.tensor(unique.shape[0], dtype=torch.int32)]


def segment_reduce(
    features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, attrs: dict
) -> list[torch.Tensor]:
    return [backend_ops.segment_reduce(features, segments, init, REDUCTIONS[attrs["reduction"]])]


def mask_rows(mask: torch.Tensor) -> list[torch.Tensor]:
    rows = backend_ops.mask_rows(mask)
    return [rows, torch.tensor(rows.shape[0], dtype=torch.int32)]
