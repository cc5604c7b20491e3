"""Coordinate keys and index validation.

An active site ``(b, c_0, ..., c_{D-1})`` is encoded as one int64 key in row-major order over
``[batch_size, *spatial_shape]``; sorting keys therefore sorts sites by batch, then z, y, x.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

_MAX_KEY = 2**62  # keep clear of int64 overflow when offsets are added to keys


def grid_strides(batch_size: int, spatial_shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides of ``[batch, *spatial_shape]``; raises if the key space overflows int64."""
    total = batch_size * math.prod(spatial_shape)
    if total >= _MAX_KEY:
        raise ValueError(
            f"batch_size {batch_size} x spatial_shape {list(spatial_shape)} has {total} sites, too many to "
            "address with 64-bit keys"
        )
    strides = []
    acc = 1
    for s in reversed(spatial_shape):
        strides.append(acc)
        acc *= int(s)
    return (acc, *reversed(strides))


def encode(indices: torch.Tensor, batch_size: int, spatial_shape: Sequence[int]) -> torch.Tensor:
    """int64 keys [N] of int coordinates [N, 1 + D] (batch first)."""
    strides = torch.tensor(grid_strides(batch_size, spatial_shape), dtype=torch.int64, device=indices.device)
    return (indices.to(torch.int64) * strides).sum(dim=1)


def decode(keys: torch.Tensor, batch_size: int, spatial_shape: Sequence[int]) -> torch.Tensor:
    """int32 coordinates [N, 1 + D] of int64 keys [N]; the inverse of :func:`encode`."""
    cols = []
    rest = keys
    for s in reversed(spatial_shape):
        cols.append(torch.remainder(rest, int(s)))
        rest = torch.div(rest, int(s), rounding_mode="floor")
    cols.append(rest)
    return torch.stack(cols[::-1], dim=1).to(torch.int32)


def outside_grid(indices: torch.Tensor, batch_size: int, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Which rows of ``indices [N, 1 + D]`` lie outside batch_size x spatial_shape (bool [N])."""
    limits = torch.tensor([batch_size, *spatial_shape], dtype=torch.int64, device=indices.device)
    idx = indices.to(torch.int64)
    return ((idx < 0) | (idx >= limits)).any(dim=1)


def _fmt_site(row: torch.Tensor) -> str:
    return "(" + ", ".join(str(int(v)) for v in row.tolist()) + ")"


def check_indices(indices: torch.Tensor, spatial_shape: Sequence[int], batch_size: int) -> None:
    """Raise a ValueError naming the first offending row if indices are malformed.

    Checks: an integer ``[N, 1 + D]`` tensor, every batch index in ``[0, batch_size)``, every coordinate
    inside ``spatial_shape``, and no site listed twice. Costs one sort of N keys; callers that build
    indices themselves and know them to be valid can skip it (``SparseTensor(..., validate=False)``).
    """
    ndim = len(spatial_shape)
    if indices.dim() != 2 or indices.shape[1] != ndim + 1:
        raise ValueError(
            f"indices must have shape [N, {ndim + 1}] = (batch, {ndim} spatial coords) for spatial_shape "
            f"{list(spatial_shape)}, got {list(indices.shape)}"
        )
    if indices.dtype.is_floating_point or indices.dtype == torch.bool or indices.is_complex():
        raise ValueError(f"indices must be an integer tensor (int32), got {indices.dtype}")
    if indices.shape[0] == 0:
        return
    bad = outside_grid(indices, batch_size, spatial_shape)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"indices row {row} = {_fmt_site(indices[row])} lies outside batch_size {batch_size} x "
            f"spatial_shape {list(spatial_shape)} ({int(bad.sum())} rows are outside); coordinates must "
            "satisfy 0 <= batch < batch_size and 0 <= coord[d] < spatial_shape[d] -- crop or drop those "
            "points before voxelization"
        )
    keys = encode(indices, batch_size, spatial_shape)
    sorted_keys, order = torch.sort(keys, stable=True)
    dup = sorted_keys[1:] == sorted_keys[:-1]
    if bool(dup.any()):
        pos = int(dup.nonzero()[0, 0])
        first, second = int(order[pos]), int(order[pos + 1])
        raise ValueError(
            f"indices rows {first} and {second} are the same site {_fmt_site(indices[first])} "
            f"({int(dup.sum())} duplicate rows in all); each active site must appear once -- merge duplicate "
            "voxels (e.g. average their features) before building the sparse tensor"
        )
