"""Sparse-tensor functions over different site sets: merging duplicate sites, spconv's ``sparse_add``.

Both are ``UniqueSites`` + ``SegmentReduce`` (``ops.sites``): eagerly on the reference backend, and while ``export``
traces as those nodes (the same ops ``torch.unique`` + ``index_add_`` in a user's forward become).
"""

from __future__ import annotations

from typing import Any

import torch

from . import ops
from .sparse_tensor import SparseTensor, as_sparse_tensor

REDUCTIONS = ("sum", "max", "mean")


def merge_duplicate_sites(x: Any, reduction: str = "sum") -> SparseTensor:
    """The tensor with every site once, sorted by (batch, *coords); the features of a site listed several times
    are summed (``"sum"``, as VoxelNeXt's ``torch.unique`` + ``index_add_``), maxed or averaged. The rulebook
    cache is dropped: the sites changed."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    x = as_sparse_tensor(x, "merge_duplicate_sites")
    features = x.features
    unique, inverse, counts = ops.unique_sites(x.indices)
    shape = (unique.shape[0], features.shape[1])
    if reduction == "max":
        init = features.new_full(shape, float("-inf"))
    else:
        init = features.new_zeros(shape)
    merged = ops.segment_reduce(features, inverse, init, "max" if reduction == "max" else "sum")
    if reduction == "mean":
        merged = merged / counts.unsqueeze(1).to(merged.dtype)
    return SparseTensor(merged, unique, x.spatial_shape, x.batch_size, validate=False)


def sparse_add(*tensors: Any) -> SparseTensor:
    """spconv's ``sparse_add``: the sum of sparse tensors over the union of their sites (sorted by site); a site
    present in several tensors gets the sum of their features. All must share spatial shape, batch size and
    channels. Unlike spconv, the result never keeps an operand's rulebook cache: which operand's it would be
    depends on the data (spconv keeps it when the union is no larger than the largest operand), and an
    exported file cannot depend on that."""
    if not tensors:
        raise ValueError("sparse_add needs at least one sparse tensor")
    xs = [as_sparse_tensor(t, "sparse_add") for t in tensors]
    first = xs[0]
    for i, t in enumerate(xs[1:], start=1):
        if t.spatial_shape != first.spatial_shape or t.batch_size != first.batch_size:
            raise ValueError(
                f"sparse_add: tensor {i} has spatial_shape {t.spatial_shape}, batch_size {t.batch_size}; tensor 0 "
                f"has {first.spatial_shape}, {first.batch_size}: add tensors of one grid"
            )
        if t.features.shape[1] != first.features.shape[1]:
            raise ValueError(
                f"sparse_add: tensor {i} has {t.features.shape[1]} channels, tensor 0 {first.features.shape[1]}"
            )
    features = torch.cat([t.features for t in xs])
    indices = torch.cat([t.indices for t in xs])
    merged = SparseTensor(features, indices, first.spatial_shape, first.batch_size, validate=False)
    return merge_duplicate_sites(merged, "sum")
