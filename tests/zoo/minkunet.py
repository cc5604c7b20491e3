"""MinkUNet-style semantic segmentation U-Net on sparse voxels.

Follows Choy, Gwak & Savarese, "4D Spatio-Temporal ConvNets: Minkowski Convolutional Neural Networks"
(CVPR 2019; MinkUNet), in the compact form used for LiDAR segmentation by SPVNAS / mmdet3d's
`MinkUNetBackbone` (`configs/minkunet/minkunet18_w32_torchsparse_8xb2-amp-15e_semantickitti.py`):

* stem: two SubM 3x3x3 conv+BN+ReLU;
* encoder, per level: SparseConv3d kernel 2 stride 2 (+BN+ReLU), then residual blocks (the first one
  changing the width, with a per-voxel linear projection on its shortcut);
* decoder, per level: a kernel-2 stride-2 "transposed" conv back to the finer level, concatenation with the
  encoder's lateral features, residual blocks;
* per-voxel classifier.

Upsampling uses SparseInverseConv3d, not SparseConvTranspose3d.  MinkowskiEngine's and torchsparse's
transposed convs are non-generative: they write onto the coordinate set cached for the finer stride, so
the upsampled tensor and the skip share their sites and can be concatenated channel-wise.  spconv's
SparseConvTranspose3d is generative instead: kernel 2 / stride 2 emits all 8 children of every coarse site,
a superset of the encoder's sites (strictly larger unless every child was active) in an unrelated order, so
`torch.cat` on the features would fail on the row count or pair unrelated voxels.  SparseInverseConv3d on
the downsampling conv's indice key reproduces exactly the encoder's site set and order -- the spconv
equivalent of MinkUNet's upsampling, and what spconv ports of such U-Nets use (e.g. Pointcept's `SpUNet`,
PointGroup's `UBlock`).

The classifier is an `nn.Linear` on the features rather than a kernel-1 sparse conv (spconv's kernel-1
path mis-reads the weight layout).  Three levels instead of four, and narrow widths, keep the CPU test fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from .inputs import lidar_voxels
from .layers import SparseBasicBlock, post_act, seeded_build

SPATIAL_SHAPE = (32, 96, 128)
IN_CHANNELS = 4


class MinkUNet(nn.Module):
    """Three-level MinkUNet.

    forward(voxel_features [N, C_in] f32, voxel_coords [N, 4] i32 (b, z, y, x), batch_size)
        -> (logits [N, num_classes] f32, indices [N, 4] i32) on exactly the input sites.
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        spatial_shape: Sequence[int] = SPATIAL_SHAPE,
        base_channels: int = 16,
        encoder_channels: Sequence[int] = (16, 32, 48),
        decoder_channels: Sequence[int] = (32, 24, 24),
        num_classes: int = 19,
    ) -> None:
        super().__init__()
        assert len(encoder_channels) == len(decoder_channels)
        self.spatial_shape = list(spatial_shape)
        self.stem = spconv.SparseSequential(
            post_act(spconv.SubMConv3d(in_channels, base_channels, 3, padding=1, bias=False, indice_key="subm0")),
            post_act(spconv.SubMConv3d(base_channels, base_channels, 3, padding=1, bias=False, indice_key="subm0")),
        )
        levels = len(encoder_channels)
        widths = [base_channels, *encoder_channels]  # width at level 0 (input resolution) .. levels
        self.encoder = nn.ModuleList()
        for level in range(1, levels + 1):
            cin, cout = widths[level - 1], widths[level]
            self.encoder.append(
                spconv.SparseSequential(
                    post_act(spconv.SparseConv3d(cin, cin, 2, stride=2, bias=False, indice_key=f"down{level}")),
                    SparseBasicBlock(cin, cout, indice_key=f"subm{level}", bias=False),
                    SparseBasicBlock(cout, cout, indice_key=f"subm{level}", bias=False),
                )
            )
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        cin = widths[-1]
        for i, cout in enumerate(decoder_channels):
            level = levels - i  # coarse level we upsample from; lands on level - 1
            self.up.append(post_act(spconv.SparseInverseConv3d(cin, cout, 2, indice_key=f"down{level}", bias=False)))
            skip = widths[level - 1]
            self.decoder.append(
                spconv.SparseSequential(
                    SparseBasicBlock(cout + skip, cout, indice_key=f"subm{level - 1}", bias=False),
                    SparseBasicBlock(cout, cout, indice_key=f"subm{level - 1}", bias=False),
                )
            )
            cin = cout
        self.classifier = nn.Linear(cin, num_classes)

    def forward(
        self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, self.spatial_shape, batch_size)
        x = self.stem(x)
        laterals = []
        for stage in self.encoder:
            laterals.append(x)
            x = stage(x)
        for up, decode, lateral in zip(self.up, self.decoder, reversed(laterals), strict=True):
            x = up(x)
            # Valid only because the inverse conv restored the lateral's exact site set and order.
            x = x.replace_feature(torch.cat((x.features, lateral.features), dim=1))
            x = decode(x)
        return self.classifier(x.features), x.indices


def build() -> MinkUNet:
    """MinkUNet with seeded random weights and randomised, input-calibrated BN statistics."""
    return seeded_build(MinkUNet, seed=4, calibration_inputs=make_inputs(seed=1000, batch_size=2, num_voxels=3000))


def make_inputs(seed: int, batch_size: int, num_voxels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(voxel_features [N, 4], voxel_coords [N, 4], batch_size)` from synthetic LiDAR scenes."""
    feats, coords = lidar_voxels(seed, batch_size, num_voxels, SPATIAL_SHAPE, IN_CHANNELS)
    return feats, coords, batch_size
