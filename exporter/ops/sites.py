"""UniqueSites, SegmentReduce and MaskRows: the ops over site sets that merges and a forward's torch idioms use.

Eagerly the backend computes them; while exporting each is one recorded node (its count output, which only the
runtime needs, is dropped here). ``functional.merge_duplicate_sites`` / ``sparse_add`` and the idioms that
``export`` records (``torch.unique``, ``index_add_``, ``x[mask]``) call these.
"""

from __future__ import annotations

import torch

from ..backend import ops as backend
from ..custom_ops import NAMESPACE, site_count
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


# ------------------------------------------------------------------------------------------- custom ops
# What an export records: one torch.ops.sparsetrt op per schema op (its tensor arguments are the node's inputs, the
# others its attributes, in schema order). The real implementation runs the backend on bare tensors (the export's
# real run, the TorchScript trace); the fake one gives torch.export the output shapes (custom_ops.py says more).


# Recorded for torch.unique of sites (exporter/idioms.py) and by exporter/functional.py's merges.
@torch.library.custom_op(f"{NAMESPACE}::unique_sites", mutates_args=())
def _unique_sites_op(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    unique, inverse, counts = backend.unique_rows(indices.to(torch.int32))
    return unique, inverse, counts, torch.tensor(unique.shape[0], dtype=torch.int32)


@_unique_sites_op.register_fake
def _(indices):
    m = site_count(torch.library.get_ctx())
    return (
        indices.new_empty((m, indices.shape[1]), dtype=torch.int32),
        indices.new_empty((indices.shape[0],), dtype=torch.int32),
        indices.new_empty((m,), dtype=torch.int32),
        indices.new_empty((), dtype=torch.int32),
    )


@torch.library.custom_op(f"{NAMESPACE}::segment_reduce", mutates_args=())
def _segment_reduce_op(
    features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: int
) -> torch.Tensor:
    return backend.segment_reduce(features, segments, init, backend.SEGMENT_REDUCTIONS[reduction])


@_segment_reduce_op.register_fake
def _(features, segments, init, reduction):
    return init.new_empty(init.shape)


@torch.library.custom_op(f"{NAMESPACE}::mask_rows", mutates_args=())
def _mask_rows_op(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = backend.mask_rows(mask)
    return rows, torch.tensor(rows.shape[0], dtype=torch.int32)


@_mask_rows_op.register_fake
def _(mask):
    m = site_count(torch.library.get_ctx())
    return mask.new_empty((m,), dtype=torch.int32), mask.new_empty((), dtype=torch.int32)
