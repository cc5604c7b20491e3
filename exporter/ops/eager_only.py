"""Work done only on an eager run: checking a sparse tensor's inputs and spconv's voxel-count statistic.

An export records the model's ops, not these: a check that sorts the sites, or a buffer updated from a Python
int, would become nodes of the file (TorchScript) or cannot run on symbolic sizes (torch.export).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..backend.coords import check_indices
from .context import is_exporting


def checked_sites(features: Any, indices: torch.Tensor, spatial_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    """``indices`` as int32 after checking a sparse tensor's parts (raising a ValueError that names the problem):
    ``batch_size >= 1``, ``features`` a floating [N, C] tensor, every site inside ``batch_size x spatial_shape``,
    no site twice, one feature row per site. While exporting, ``indices`` unchanged and unchecked."""
    if is_exporting():
        return indices
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be a 2-D tensor [N, C], got {shape}")
    if not features.dtype.is_floating_point:
        raise ValueError(f"features must be floating point (float32 or float16), got {features.dtype}")
    check_indices(indices, spatial_shape, batch_size)
    if features.shape[0] != indices.shape[0]:
        raise ValueError(
            f"features have {features.shape[0]} rows but indices have {indices.shape[0]}; "
            "each row of features belongs to the site in the same row of indices"
        )
    return indices if indices.dtype == torch.int32 else indices.to(torch.int32)


def record_max_sites(buffer: torch.Tensor, sites: int) -> None:
    """spconv's ``record_voxel_count``: ``buffer`` keeps the most output sites a layer has produced (training)."""
    if is_exporting():
        return
    buffer.fill_(max(int(buffer.max()), sites))
