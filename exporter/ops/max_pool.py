"""SparseMaxPool: ``out[m] = max_k features[neighbors[k, m]]`` over the active inputs only.

Eagerly the backend computes it over the rulebook's cached row pairs; while exporting it is one SparseMaxPool node.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from ..backend.rulebook import Rulebook
from ..custom_ops import NAMESPACE
from .context import is_exporting


def sparse_max_pool(features: torch.Tensor, rulebook: Rulebook) -> torch.Tensor:
    """``features [N, C]`` max-pooled over ``rulebook`` -> ``[M, C]``."""
    if not is_exporting():
        return backend.sparse_max_pool(features, rulebook)
    return torch.ops.sparsetrt.sparse_max_pool(features, rulebook.neighbors)


# ------------------------------------------------------------------------------------------- custom ops
# What an export records: one torch.ops.sparsetrt op per schema op (its tensor arguments are the node's inputs, the
# others its attributes, in schema order). The real implementation runs the backend on bare tensors (the export's
# real run, the TorchScript trace); the fake one gives torch.export the output shapes (custom_ops.py says more).


@torch.library.custom_op(f"{NAMESPACE}::sparse_max_pool", mutates_args=())
def _sparse_max_pool_op(features: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    pairs = backend.map_pairs(neighbors)
    return backend.max_pool_over_map(features, neighbors.shape[0], neighbors.shape[1], pairs)


@_sparse_max_pool_op.register_fake
def _(features, neighbors):
    return features.new_empty((neighbors.shape[1], features.shape[1]))
