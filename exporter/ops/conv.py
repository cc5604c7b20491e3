"""SparseConv: ``out[m] = act(bias + sum_k W_k @ features[neighbors[k, m]])``.

Eagerly the backend computes it over the rulebook's cached row pairs, differentiably (training runs here). While
exporting it is one recorded SparseConv node with the weight as ``[C_out, K, C_in]`` and the activation fused.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from ..backend.plan import conv_plan as backend_conv_plan
from ..backend.plan import is_plan, plan_to_map
from ..backend.rulebook import Rulebook
from ..custom_ops import ACTIVATION_CODES, ACTIVATION_NAMES, NAMESPACE, apply_activation
from .context import is_exporting


def sparse_conv(
    features: torch.Tensor,
    rulebook: Rulebook,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str | None = None,
    alpha: float = 0.0,
) -> torch.Tensor:
    """``features [N, C_in]`` through ``weight [C_out, *kernel, C_in]`` over ``rulebook`` -> ``[M, C_out]``;
    ``activation`` is None or a key of ``ACTIVATION_CODES`` (``alpha``: leaky_relu's slope)."""
    if not is_exporting():
        return apply_activation(backend.sparse_conv(features, weight, bias, rulebook), activation, alpha)
    weight_kc = weight.reshape(weight.shape[0], -1, weight.shape[-1])
    return torch.ops.sparsetrt.sparse_conv(
        features, rulebook.neighbors, weight_kc, bias, None, ACTIVATION_CODES[activation], float(alpha)
    )


# ------------------------------------------------------------------------------------------- custom ops
# What an export records: one torch.ops.sparsetrt op per schema op (its tensor arguments are the node's inputs, the
# others its attributes, in schema order). The real implementation runs the backend on bare tensors (the export's
# real run, the TorchScript trace); the fake one gives torch.export the output shapes (custom_ops.py says more).


# Made by a graph pass after export (exporter/graph_passes.py: attach_conv_plans), not by the layers; an op here
# too, so every schema op has one and a model may call it.
@torch.library.custom_op(f"{NAMESPACE}::conv_plan", mutates_args=())
def _conv_plan_op(neighbors: torch.Tensor) -> torch.Tensor:
    return backend_conv_plan(neighbors.to(torch.int32))


@_conv_plan_op.register_fake
def _(neighbors):
    k = neighbors.shape[0]
    return neighbors.new_empty((k + 1 + (k + 31) // 32, neighbors.shape[1]), dtype=torch.int32)


@torch.library.custom_op(f"{NAMESPACE}::sparse_conv", mutates_args=())
def _sparse_conv_op(
    features: torch.Tensor,
    neighbors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    residual: torch.Tensor | None,
    activation: int,
    alpha: float,
) -> torch.Tensor:
    """``residual`` (added before the activation) is made by a graph pass after export (fuse_residual_adds); the
    map may be a ConvPlan."""
    kernel_volume = int(weight.shape[1])
    if is_plan(neighbors, kernel_volume):
        neighbors = plan_to_map(neighbors, kernel_volume)
    pairs = backend.map_pairs(neighbors)
    out = backend.conv_over_map(features, weight, bias, neighbors.shape[1], pairs, residual=residual)
    return apply_activation(out, ACTIVATION_NAMES[activation], alpha)


@_sparse_conv_op.register_fake
def _(features, neighbors, weight, bias, residual, activation, alpha):
    return features.new_empty((neighbors.shape[1], weight.shape[0]))
