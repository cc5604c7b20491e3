"""SparseConv: ``out[m] = act(bias + sum_k W_k @ features[neighbors[k, m]])``.

Eagerly the backend computes it over the rulebook's cached row pairs, differentiably (training runs here). While
exporting it is one recorded SparseConv node with the weight as ``[C_out, K, C_in]`` and the activation fused.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from ..backend.rulebook import Rulebook
from ..custom_ops import ACTIVATION_CODES, apply_activation
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
