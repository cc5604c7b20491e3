"""Densify: sparse features scattered into a dense tensor, zeros at inactive sites.

Eagerly the backend scatters them; while exporting it is one Densify node (channels first, as the node's output
is; channels last is a transpose after it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..backend import ops as backend
from ..custom_ops import NAMESPACE
from .context import is_exporting


def densify(
    features: torch.Tensor,
    indices: torch.Tensor,
    spatial_shape: Sequence[int],
    batch_size: int,
    channels_first: bool = True,
) -> torch.Tensor:
    """``features [N, C]`` at ``indices [N, 1 + D]`` -> ``[B, C, *spatial_shape]`` (or ``[B, *spatial_shape, C]``)."""
    if not is_exporting():
        return backend.densify(features, indices, spatial_shape, batch_size, channels_first)
    dense = torch.ops.sparsetrt.densify(features, indices, [int(s) for s in spatial_shape], int(batch_size))
    if channels_first:
        return dense
    ndim = len(spatial_shape)
    return dense.permute(0, *range(2, ndim + 2), 1)


# ------------------------------------------------------------------------------------------- custom ops
# What an export records: one torch.ops.sparsetrt op per schema op (its tensor arguments are the node's inputs, the
# others its attributes, in schema order). The real implementation runs the backend on bare tensors (the export's
# real run, the TorchScript trace); the fake one gives torch.export the output shapes (custom_ops.py says more).


@torch.library.custom_op(f"{NAMESPACE}::densify", mutates_args=())
def _densify_op(
    features: torch.Tensor, indices: torch.Tensor, spatial_shape: list[int], batch_size: int
) -> torch.Tensor:
    return backend.densify(features, indices, spatial_shape, batch_size)


@_densify_op.register_fake
def _(features, indices, spatial_shape, batch_size):
    return features.new_empty((batch_size, features.shape[1], *spatial_shape))
