"""SparseMaxPool: ``out[m] = max_k features[neighbors[k, m]]`` over the active inputs only.

Eagerly the backend computes it over the rulebook's cached row pairs; while exporting it is one SparseMaxPool node.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from ..backend.rulebook import Rulebook
from .context import is_exporting


def sparse_max_pool(features: torch.Tensor, rulebook: Rulebook) -> torch.Tensor:
    """``features [N, C]`` max-pooled over ``rulebook`` -> ``[M, C]``."""
    if not is_exporting():
        return backend.sparse_max_pool(features, rulebook)
    return torch.ops.sparsetrt.sparse_max_pool(features, rulebook.neighbors)
