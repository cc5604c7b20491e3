"""UniqueSites, SegmentReduce and MaskRows: the ops over site sets that merges and a forward's torch idioms use.

Eagerly the backend computes them; while exporting each is one recorded node (its count output, which only the
runtime needs, is dropped here). ``functional.merge_duplicate_sites`` / ``sparse_add`` and the idioms that
``export`` records (``torch.unique``, ``index_add_``, ``x[mask]``) call these.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from .context import is_exporting


def unique_sites(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(unique [M, K], inverse [N], counts [M])`` of the int rows ``indices [N, K]``: the distinct rows sorted,
    the row of each input row among them, and how many input rows each stands for (int32)."""
    if not is_exporting():
        return backend.unique_rows(indices.to(torch.int32))
    unique, inverse, counts, _ = torch.ops.sparsetrt.unique_sites(indices.to(torch.int32))
    return unique, inverse, counts


def segment_reduce(
    features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """``init [M, C]`` combined (``"sum"`` or ``"max"``) with every ``features[n]`` whose ``segments[n] == m``."""
    if not is_exporting():
        return backend.segment_reduce(features, segments, init, reduction)
    code = backend.SEGMENT_REDUCTIONS.index(reduction)
    return torch.ops.sparsetrt.segment_reduce(features, segments.to(torch.int32), init.to(features.dtype), code)


def mask_rows(mask: torch.Tensor) -> torch.Tensor:
    """int32 rows where ``mask [N]`` is nonzero, ascending."""
    if not is_exporting():
        return backend.mask_rows(mask)
    rows, _ = torch.ops.sparsetrt.mask_rows(mask.to(torch.int32))
    return rows
