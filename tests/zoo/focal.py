"""Focals Conv (Chen et al., "Focal Sparse Convolutional Networks for 3D Object Detection", CVPR 2022), as
OpenPCDet's ``VoxelBackBone8xFocal`` / ``FocalSparseConv`` compute it, re-created to the idioms that decide whether
it exports:

* a SubM conv predicts, per voxel, an importance and one score per kernel offset;
* foreground voxels (importance above ``threshold``, or the top ``ratio`` of them) are kept, and for each the
  neighbour sites whose offset score passes the threshold are added (kernel offsets added to the coordinates,
  sites outside the grid dropped);
* duplicates are merged the way ``check_repeat`` does: a per-site key, ``sort``, ``unique_consecutive``
  (``return_inverse``, ``return_counts``) and ``index_add_``, the site of each group taken by a ``scatter_``;
* the background voxels are concatenated back and a SubM conv runs on the result.

``torch.unique_consecutive`` has no exportable form (its result depends on the input's order); export must stop at
it with a message naming the module and this file's line.
"""

from __future__ import annotations

from typing import Any

import spconv.pytorch as spconv
import torch
from torch import nn

from .layers import norm1d

SPATIAL_SHAPE = (21, 80, 80)


def check_repeat(features: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx = indices[:, 1:]
    key = (idx[:, 0] * SPATIAL_SHAPE[1] + idx[:, 1]) * SPATIAL_SHAPE[2] + idx[:, 2]
    key, order = key.sort()
    features, indices = features[order], indices[order]
    unique, inverse, _counts = torch.unique_consecutive(key, return_inverse=True, return_counts=True, dim=0)
    merged = torch.zeros((unique.shape[0], features.shape[1]), dtype=features.dtype)
    merged.index_add_(0, inverse, features)
    perm = torch.arange(inverse.shape[0], dtype=inverse.dtype)
    first = inverse.new_empty(unique.shape[0]).scatter_(0, inverse, perm)
    return merged, indices[first]


class FocalSparseConv(spconv.SparseModule):
    def __init__(self, channels: int, key: str, threshold: float = 0.5) -> None:
        super().__init__()
        self.conv_imp = spconv.SubMConv3d(channels, 27, 3, padding=1, bias=False, indice_key=f"{key}_imp")
        self.conv = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        self.bn = norm1d(channels)
        self.threshold = threshold
        offsets = [[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)]
        self.register_buffer("kernel_offsets", torch.tensor(offsets, dtype=torch.int32), persistent=False)

    def forward(self, x: Any) -> Any:
        imps = self.conv_imp(x).features
        mask_voxel, mask_kernel = imps[:, -1].sigmoid(), imps[:, :-1].sigmoid()
        fore = mask_voxel > self.threshold
        features_fore, coords_fore = x.features[fore], x.indices[fore]
        chosen = mask_kernel[fore] >= self.threshold
        grown = coords_fore[:, 1:].unsqueeze(1) + self.kernel_offsets.unsqueeze(0)
        sites = grown[chosen]
        inside = ((sites >= 0) & (sites < torch.tensor(SPATIAL_SHAPE, dtype=torch.int32))).all(dim=1)
        sites = sites[inside]
        batch = coords_fore[:, :1].unsqueeze(1).expand(-1, 26, -1)[chosen][inside]
        new_sites = torch.cat([batch, sites], dim=1)
        features = torch.cat([features_fore, features_fore.new_zeros((new_sites.shape[0], features_fore.shape[1]))])
        features, coords = check_repeat(features, torch.cat([coords_fore, new_sites]))
        background = ~fore
        out = x.replace_feature(torch.cat([features, x.features[background]]))
        out.indices = torch.cat([coords, x.indices[background]])
        out = self.conv(spconv.SparseConvTensor(out.features, out.indices, x.spatial_shape, x.batch_size))
        return out.replace_feature(torch.relu(self.bn(out.features)))


class FocalBackbone(nn.Module):
    """A SubM stem and one Focals Conv: forward(voxel_features, voxel_coords, batch_size) -> (features, indices)."""

    def __init__(self, in_channels: int = 4, channels: int = 8) -> None:
        super().__init__()
        self.conv_input = spconv.SparseSequential(
            spconv.SubMConv3d(in_channels, channels, 3, padding=1, bias=False, indice_key="subm1"),
            norm1d(channels),
            nn.ReLU(),
        )
        self.focal = FocalSparseConv(channels, "focal1")

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
        x = spconv.SparseConvTensor(features, coords, list(SPATIAL_SHAPE), batch_size)
        out = self.focal(self.conv_input(x))
        return out.features, out.indices
