"""A zoo of spconv 2.x networks re-created from published detectors and segmenters, used as parity oracles.

Each entry builds a fresh model (seeded random weights, randomised BN statistics and affine parameters, in
eval mode) and makes matching random inputs.  Every model's `forward(features, coords, batch_size)` takes
plain tensors -- `features [N, C] float32`, `coords [N, 1 + ndim] int32` as `(batch, z, y, x)` or
`(batch, y, x)` -- and builds its `spconv.SparseConvTensor` itself, like OpenPCDet's backbones.

Run the models with `zoo.run.spconv_forward`, which works around spconv's CPU quirks (thread count, conv
bias in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import nn

from . import centerpoint, minkunet, parta2, second, sparse_cnn2d, voxelnext

__all__ = ["ZOO", "ZooEntry"]


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Attributes:
        name: registry key.
        build: returns a fresh model in eval mode; deterministic (same weights on every call).
        make_inputs: `(seed, batch_size, num_voxels_approx) -> forward args`, i.e.
            `(features, coords, batch_size)`; deterministic in its arguments.  Per-sample site counts equal
            `num_voxels_approx` unless the grid cannot hold that many (the 2D generator caps ink at 40%).
        spatial_shape: the sparse grid, `(D, H, W)` or `(H, W)`.
        in_channels: feature channels of the input.
    """

    name: str
    build: Callable[[], nn.Module]
    make_inputs: Callable[[int, int, int], tuple[torch.Tensor, torch.Tensor, int]]
    spatial_shape: tuple[int, ...]
    in_channels: int


def _entry(name: str, module: ModuleType) -> ZooEntry:
    """Entry for a model module exposing `build`, `make_inputs`, `SPATIAL_SHAPE` and `IN_CHANNELS`."""
    return ZooEntry(name, module.build, module.make_inputs, tuple(module.SPATIAL_SHAPE), module.IN_CHANNELS)


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _entry("second", second),
        _entry("centerpoint", centerpoint),
        _entry("parta2", parta2),
        _entry("minkunet", minkunet),
        _entry("voxelnext", voxelnext),
        _entry("sparse_cnn2d", sparse_cnn2d),
    )
}
