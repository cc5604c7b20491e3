"""Active-neighbour counts of sparse voxels: how many of the 26 cells around each voxel are occupied.

The mean of this count is the average number of non-centre entries per output row of a 3x3x3
submanifold convolution's rulebook, i.e. how much gather/GEMM/scatter work such a layer does per voxel.
Surfaces sampled by a lidar give several neighbours per voxel; voxels scattered uniformly at random in a
large grid give almost none.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

OFFSETS_26: np.ndarray = np.array([o for o in product((-1, 0, 1), repeat=3) if o != (0, 0, 0)], dtype=np.int64)
"""The 26 (dz, dy, dx) offsets of a 3x3x3 window without its centre."""


def active_neighbour_counts(coords: np.ndarray, spatial_shape: Sequence[int]) -> np.ndarray:
    """For each voxel, the number of its 26 neighbours that are also in ``coords``.

    Args:
        coords: int [N, 3] ``(z, y, x)`` or [N, 4] ``(b, z, y, x)``, unique rows, inside ``spatial_shape``.
            With a batch column, neighbours are only looked for within the same batch entry.
        spatial_shape: ``(D, H, W)``.

    Returns:
        int32 [N].

    Vectorised: each voxel becomes one int64 key in a grid padded by one cell on every side (so that a
    neighbour across a border lands on a padding cell, which is never active, instead of wrapping onto
    the next row); keys are sorted once and each of the 26 shifted key sets is looked up with
    ``np.searchsorted``.
    """
    coords = np.asarray(coords, dtype=np.int64)
    if coords.ndim != 2 or coords.shape[1] not in (3, 4):
        raise ValueError(f"coords must be [N, 3] or [N, 4], got shape {coords.shape}")
    n = len(coords)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    spatial = coords[:, -3:] + 1
    padded = np.asarray(spatial_shape, dtype=np.int64) + 2
    batch = coords[:, 0] if coords.shape[1] == 4 else np.zeros(n, dtype=np.int64)
    if int(batch.max() + 1) * int(np.prod(padded)) >= 2**62:
        raise ValueError(f"grid {list(spatial_shape)} with {int(batch.max()) + 1} frames is too large for int64 keys")
    strides = np.array([padded[1] * padded[2], padded[2], 1], dtype=np.int64)
    keys = batch * int(np.prod(padded)) + spatial @ strides
    sorted_keys = np.sort(keys)
    counts = np.zeros(n, dtype=np.int32)
    for delta in OFFSETS_26 @ strides:
        query = keys + delta
        pos = np.searchsorted(sorted_keys, query)
        pos_clipped = np.minimum(pos, n - 1)
        counts += (sorted_keys[pos_clipped] == query).astype(np.int32)
    return counts


def mean_active_neighbours(coords: np.ndarray, spatial_shape: Sequence[int]) -> float:
    """Mean of :func:`active_neighbour_counts` (0.0 for no voxels)."""
    counts = active_neighbour_counts(coords, spatial_shape)
    return float(counts.mean()) if len(counts) else 0.0
