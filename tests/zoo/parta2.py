"""Part-A² `UNetV2`: sparse encoder-decoder producing per-voxel features at the input resolution.

Follows Shi et al., "From Points to Parts: 3D Object Detection from Point Cloud with Part-aware and
Part-aggregation Network" (TPAMI 2020), as configured in OpenPCDet (`tools/cfgs/kitti_models/PartA2.yaml`,
`UNetV2`):

* Encoder = SECOND's `VoxelBackBone8x` without `conv_out`: SubM stem (`subm1`), then three stride-2
  SparseConv3d stages (`spconv2..4`, the last padding y/x only) each followed by two SubM blocks
  (`subm2..4`).
* Decoder: at each level an "up-residual" block: the lateral encoder features go through a residual
  block on the encoder's SubM key, are concatenated with the features coming from below
  (`torch.cat` on `.features` -- both tensors live on exactly the same sites, which is what makes the
  concatenation valid), a SubM block maps the concatenation back to the level width, and the
  *channel-reduction trick* adds a parameter-free shortcut (the concatenation reshaped `[N, C_out, k]`
  and summed over k).  A SparseInverseConv3d on the encoder's strided-conv key then restores the site set
  of the level above; the top level ends with a SubM block instead.

Output: `(features [N, c0], indices [N, 4])` on exactly the input sites (the seg/part head input).  The
encoder's detection branch (`conv_out`) is omitted.  The zoo uses half of OpenPCDet's widths.
"""

from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from .inputs import lidar_voxels
from .layers import SparseBasicBlock, post_act, seeded_build

SPATIAL_SHAPE = (41, 160, 160)
IN_CHANNELS = 4


def channel_reduction(features: torch.Tensor, out_channels: int) -> torch.Tensor:
    """Sum groups of adjacent channels: `[N, C] -> [N, out_channels]`, C a multiple of out_channels."""
    n, channels = features.shape
    assert channels % out_channels == 0, (channels, out_channels)
    return features.view(n, out_channels, channels // out_channels).sum(dim=2)


class UpBlock(nn.Module):
    """One decoder level: lateral residual block, concat, SubM merge + channel-reduction shortcut, upsample.

    `lateral_key` is the SubM key of the encoder level the lateral comes from; `up` maps back to the
    level above (a SparseInverseConv3d block) or refines in place at the top level (a SubM block).
    """

    def __init__(self, lateral: int, bottom: int, out: int, lateral_key: str, up: spconv.SparseSequential) -> None:
        super().__init__()
        self.trans = SparseBasicBlock(lateral, lateral, indice_key=lateral_key, bias=False)
        self.merge = post_act(
            spconv.SubMConv3d(lateral + bottom, out, 3, padding=1, bias=False, indice_key=lateral_key)
        )
        self.up = up

    def forward(self, lateral: spconv.SparseConvTensor, bottom: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        x = self.trans(lateral)
        x = x.replace_feature(torch.cat((bottom.features, x.features), dim=1))
        merged = self.merge(x)
        x = merged.replace_feature(merged.features + channel_reduction(x.features, merged.features.shape[1]))
        return self.up(x)


class PartA2UNet(nn.Module):
    """`UNetV2`.

    forward(voxel_features [N, C_in] f32, voxel_coords [N, 4] i32 (b, z, y, x), batch_size)
        -> (features [N, c0] f32, indices [N, 4] i32): per-voxel features on the input sites.
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        spatial_shape: Sequence[int] = SPATIAL_SHAPE,
        channels: Sequence[int] = (16, 32, 64, 64),
    ) -> None:
        super().__init__()
        self.spatial_shape = list(spatial_shape)
        c0, c1, c2, c3 = channels
        self.conv_input = post_act(spconv.SubMConv3d(in_channels, c0, 3, padding=1, bias=False, indice_key="subm1"))
        self.conv1 = post_act(spconv.SubMConv3d(c0, c0, 3, padding=1, bias=False, indice_key="subm1"))
        self.conv2 = self._stage(c0, c1, padding=1, level=2)
        self.conv3 = self._stage(c1, c2, padding=1, level=3)
        self.conv4 = self._stage(c2, c3, padding=(0, 1, 1), level=4)

        def inverse(cin: int, cout: int, key: str) -> spconv.SparseSequential:
            # Same kernel as the strided conv it inverts (spconv checks), sites taken from its rulebook.
            return post_act(spconv.SparseInverseConv3d(cin, cout, 3, indice_key=key, bias=False))

        # Bottom level: the "bottom" input is the encoder output itself, as in UNetV2.
        self.up4 = UpBlock(c3, c3, c3, "subm4", inverse(c3, c2, "spconv4"))
        self.up3 = UpBlock(c2, c2, c2, "subm3", inverse(c2, c1, "spconv3"))
        self.up2 = UpBlock(c1, c1, c1, "subm2", inverse(c1, c0, "spconv2"))
        self.up1 = UpBlock(
            c0,
            c0,
            c0,
            "subm1",
            post_act(spconv.SubMConv3d(c0, c0, 3, padding=1, bias=False, indice_key="subm1")),
        )

    @staticmethod
    def _stage(cin: int, cout: int, padding: int | tuple[int, int, int], level: int) -> spconv.SparseSequential:
        return spconv.SparseSequential(
            post_act(
                spconv.SparseConv3d(cin, cout, 3, stride=2, padding=padding, bias=False, indice_key=f"spconv{level}")
            ),
            post_act(spconv.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"subm{level}")),
            post_act(spconv.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"subm{level}")),
        )

    def forward(
        self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, self.spatial_shape, batch_size)
        x_conv1 = self.conv1(self.conv_input(x))
        x_conv2 = self.conv2(x_conv1)
        x_conv3 = self.conv3(x_conv2)
        x_conv4 = self.conv4(x_conv3)
        x = self.up4(x_conv4, x_conv4)
        x = self.up3(x_conv3, x)
        x = self.up2(x_conv2, x)
        x = self.up1(x_conv1, x)
        return x.features, x.indices


def build() -> PartA2UNet:
    """Half-width UNetV2 with seeded random weights and randomised, input-calibrated BN statistics."""
    return seeded_build(
        lambda: PartA2UNet(channels=(8, 16, 32, 32)),
        seed=3,
        calibration_inputs=make_inputs(seed=1000, batch_size=2, num_voxels=3000),
    )


def make_inputs(seed: int, batch_size: int, num_voxels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(voxel_features [N, 4], voxel_coords [N, 4], batch_size)` from synthetic LiDAR scenes."""
    feats, coords = lidar_voxels(seed, batch_size, num_voxels, SPATIAL_SHAPE, IN_CHANNELS)
    return feats, coords, batch_size
