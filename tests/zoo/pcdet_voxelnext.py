"""VoxelNeXt's sparse backbones as OpenPCDet writes them: modules of a ``batch_dict``, with the forward idioms the
exporter must take unchanged.

Re-created from Chen et al., "VoxelNeXt: Fully Sparse VoxelNet for 3D Object Detection and Tracking" (CVPR 2023)
and the layout of OpenPCDet's ``VoxelResBackBone8xVoxelNeXt`` (3D, ``cbgs_voxel0075_voxelnext.yaml``) and
``VoxelResBackBone8xVoxelNeXt2D`` (pillars, ``voxelnext2d_ioubranch.yaml``):

* a SubM stem and residual SubM blocks (``res1``..``res6``) after stride-2 convs (``spconv2``..``spconv6``, every
  axis padded), channels from ``CHANNELS``, kernel sizes from ``SPCONV_KERNEL_SIZES``;
* the sparse height compression: the stride-16 and stride-32 stages' sites are scaled back onto the stride-8
  grid *in place* (``x.indices[:, 1:] *= 2``), their features concatenated to the stride-8 tensor's with
  ``replace_feature`` (the row count changes) before the concatenated ``.indices`` are assigned;
* ``bev_out``: z dropped (3D) and duplicate sites merged by ``torch.unique(..., dim=0, return_inverse=True)``,
  ``new_zeros`` and ``index_add_``, into a new ``SparseConvTensor``;
* a regular 3x3 ``SparseConv2d`` (dilating the BEV) and a biased ``SubMConv2d`` + BN + ReLU.

Outputs (``batch_dict``): ``encoded_spconv_tensor`` (2D sparse, stride 8) and ``multi_scale_3d_features``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import spconv.pytorch as spconv
import torch
from torch import nn

from .layers import SparseBasicBlock, norm1d, post_act


def _conv_block(kind: str, ndim: int, cin: int, cout: int, kernel: int, key: str, stride: int = 1, padding: int = 0):
    conv = getattr(spconv, f"{kind}{ndim}d")
    layer = (
        conv(cin, cout, kernel, bias=False, indice_key=key)
        if kind == "SubMConv"
        else conv(cin, cout, kernel, stride=stride, padding=padding, bias=False, indice_key=key)
    )
    return post_act(layer)


class _VoxelNeXtBase(nn.Module):
    NDIM = 3
    FEATURES, COORDS = "voxel_features", "voxel_coords"

    def __init__(self, model_cfg: Mapping[str, Any], input_channels: int, grid_size: np.ndarray, **kwargs: Any):
        super().__init__()
        nd = self.NDIM
        channels = list(model_cfg.get("CHANNELS", [16, 32, 64, 128, 128]))
        kernels = list(model_cfg.get("SPCONV_KERNEL_SIZES", [3, 3, 3, 3]))
        out = int(model_cfg.get("OUT_CHANNEL", 128))
        blocks = int(model_cfg.get("BLOCKS", 2))
        # numpy arrays, as OpenPCDet computes them (an elementwise add: one more z layer).
        self.sparse_shape = grid_size[::-1] + [1, 0, 0] if nd == 3 else grid_size[[1, 0]]  # noqa: RUF005

        def residual(width: int, level: int) -> list[nn.Module]:
            return [SparseBasicBlock(width, width, f"res{level}", ndim=nd) for _ in range(blocks)]

        def stage(cin: int, cout: int, level: int) -> spconv.SparseSequential:
            k = kernels[min(level - 2, len(kernels) - 1)]
            down = _conv_block("SparseConv", nd, cin, cout, k, f"spconv{level}", stride=2, padding=k // 2)
            return spconv.SparseSequential(down, *residual(cout, level))

        first = channels[0]
        if nd == 3:
            self.conv_input = _conv_block("SubMConv", 3, input_channels, first, 3, "subm1", padding=1)
        self.conv1 = spconv.SparseSequential(*residual(first, 1))
        self.conv2 = stage(channels[0], channels[1], 2)
        self.conv3 = stage(channels[1], channels[2], 3)
        self.conv4 = stage(channels[2], channels[3], 4)
        self.conv5 = stage(channels[3], channels[4], 5)
        self.conv6 = stage(channels[4], channels[4], 6)
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv2d(channels[3], out, 3, stride=1, padding=1, bias=False, indice_key="spconv_down2"),
            norm1d(out),
            nn.ReLU(),
        )
        self.shared_conv = spconv.SparseSequential(
            spconv.SubMConv2d(out, out, 3, stride=1, padding=1, bias=True), nn.BatchNorm1d(out), nn.ReLU(True)
        )
        self.num_point_features = out

    def bev_out(self, x_conv: Any) -> Any:
        features_cat = x_conv.features
        if self.NDIM == 3:
            indices_cat = x_conv.indices[:, [0, 2, 3]]
            spatial_shape = x_conv.spatial_shape[1:]
        else:
            indices_cat, spatial_shape = x_conv.indices, x_conv.spatial_shape
        indices_unique, _inv = torch.unique(indices_cat, dim=0, return_inverse=True)
        features_unique = features_cat.new_zeros((indices_unique.shape[0], features_cat.shape[1]))
        features_unique.index_add_(0, _inv, features_cat)
        return spconv.SparseConvTensor(
            features=features_unique, indices=indices_unique, spatial_shape=spatial_shape, batch_size=x_conv.batch_size
        )

    def forward(self, batch_dict: dict[str, Any]) -> dict[str, Any]:
        features, coords = batch_dict[self.FEATURES], batch_dict[self.COORDS]
        x = spconv.SparseConvTensor(
            features=features,
            indices=coords.int(),
            spatial_shape=self.sparse_shape,
            batch_size=batch_dict["batch_size"],
        )
        if self.NDIM == 3:
            x = self.conv_input(x)
        x_conv1 = self.conv1(x)
        x_conv2 = self.conv2(x_conv1)
        x_conv3 = self.conv3(x_conv2)
        x_conv4 = self.conv4(x_conv3)
        x_conv5 = self.conv5(x_conv4)
        x_conv6 = self.conv6(x_conv5)

        x_conv5.indices[:, 1:] *= 2
        x_conv6.indices[:, 1:] *= 4
        x_conv4 = x_conv4.replace_feature(torch.cat([x_conv4.features, x_conv5.features, x_conv6.features]))
        x_conv4.indices = torch.cat([x_conv4.indices, x_conv5.indices, x_conv6.indices])

        out = self.shared_conv(self.conv_out(self.bev_out(x_conv4)))
        batch_dict.update({"encoded_spconv_tensor": out, "encoded_spconv_tensor_stride": 8})
        key = "multi_scale_3d_features" if self.NDIM == 3 else "multi_scale_2d_features"
        batch_dict[key] = {"x_conv1": x_conv1, "x_conv2": x_conv2, "x_conv3": x_conv3, "x_conv4": x_conv4}
        return batch_dict


class VoxelNeXtBackbone(_VoxelNeXtBase):
    """``VoxelResBackBone8xVoxelNeXt``: voxel_features [N, C], voxel_coords [N, 4] (b, z, y, x)."""


class VoxelNeXt2DBackbone(_VoxelNeXtBase):
    """``VoxelResBackBone8xVoxelNeXt2D``: pillar_features [N, C] (C = CHANNELS[0]), pillar_coords [N, 3] (b, y, x)."""

    NDIM = 2
    FEATURES, COORDS = "pillar_features", "pillar_coords"
