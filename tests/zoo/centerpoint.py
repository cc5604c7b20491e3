"""CenterPoint's residual sparse backbone (`VoxelResBackBone8x`) with height compression to a BEV map.

Follows Yin, Zhou & Krähenbühl, "Center-based 3D Object Detection and Tracking" (CVPR 2021), as configured
in OpenPCDet (`tools/cfgs/nuscenes_models/cbgs_voxel0075_res3d_centerpoint.yaml`): the SECOND layout with
every pair of SubM blocks replaced by a residual `SparseBasicBlock` (two SubMConv3d+BN with `bias=True`,
identity added through `replace_feature`, then ReLU), each block pair on its own indice key `res1..4`:

* `conv_input` SubM (C_in -> c0, key `subm1`), `conv1` = 2 residual blocks;
* `conv2..conv4`: stride-2 SparseConv3d (keys `spconv2..4`; `conv4` pads y/x only) + 2 residual blocks;
* `conv_out`: SparseConv3d kernel (3, 1, 1), stride (2, 1, 1) -> depth 2; `dense()` and fold depth into
  channels.

Input features are 5-dimensional as on nuScenes (x, y, z, intensity, time lag).  The zoo uses half of
OpenPCDet's widths (16, 32, 64, 128 -> 128).
"""

from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from .inputs import lidar_voxels
from .layers import SparseBasicBlock, post_act, seeded_build

SPATIAL_SHAPE = (41, 128, 128)
IN_CHANNELS = 5


class CenterPointBackbone(nn.Module):
    """`VoxelResBackBone8x` + `HeightCompression`.

    forward(voxel_features [N, C_in] f32, voxel_coords [N, 4] i32 (b, z, y, x), batch_size)
        -> dense BEV map [B, out_channels * 2, H/8, W/8] (16 x 16 for the zoo's 128 x 128 grid).
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        spatial_shape: Sequence[int] = SPATIAL_SHAPE,
        channels: Sequence[int] = (16, 32, 64, 128),
        out_channels: int = 128,
    ) -> None:
        super().__init__()
        self.spatial_shape = list(spatial_shape)
        c0, c1, c2, c3 = channels
        self.conv_input = post_act(spconv.SubMConv3d(in_channels, c0, 3, padding=1, bias=False, indice_key="subm1"))
        self.conv1 = spconv.SparseSequential(
            SparseBasicBlock(c0, c0, indice_key="res1"), SparseBasicBlock(c0, c0, indice_key="res1")
        )
        self.conv2 = self._stage(c0, c1, padding=1, level=2)
        self.conv3 = self._stage(c1, c2, padding=1, level=3)
        self.conv4 = self._stage(c2, c3, padding=(0, 1, 1), level=4)
        self.conv_out = post_act(
            spconv.SparseConv3d(
                c3,
                out_channels,
                (3, 1, 1),
                stride=(2, 1, 1),
                padding=0,
                bias=False,
                indice_key="spconv_down2",
            )
        )

    @staticmethod
    def _stage(cin: int, cout: int, padding: int | tuple[int, int, int], level: int) -> spconv.SparseSequential:
        """Stride-2 downsampling conv followed by two residual blocks."""
        return spconv.SparseSequential(
            post_act(
                spconv.SparseConv3d(cin, cout, 3, stride=2, padding=padding, bias=False, indice_key=f"spconv{level}")
            ),
            SparseBasicBlock(cout, cout, indice_key=f"res{level}"),
            SparseBasicBlock(cout, cout, indice_key=f"res{level}"),
        )

    def forward(self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, self.spatial_shape, batch_size)
        x = self.conv1(self.conv_input(x))
        x = self.conv4(self.conv3(self.conv2(x)))
        bev = self.conv_out(x).dense()
        n, c, d, h, w = bev.shape
        return bev.view(n, c * d, h, w)


def build() -> CenterPointBackbone:
    """Half-width backbone with seeded random weights and randomised, input-calibrated BN statistics."""
    return seeded_build(
        lambda: CenterPointBackbone(channels=(8, 16, 32, 64), out_channels=64),
        seed=2,
        calibration_inputs=make_inputs(seed=1000, batch_size=2, num_voxels=3000),
    )


def make_inputs(seed: int, batch_size: int, num_voxels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(voxel_features [N, 5], voxel_coords [N, 4], batch_size)` from synthetic LiDAR scenes."""
    feats, coords = lidar_voxels(seed, batch_size, num_voxels, SPATIAL_SHAPE, IN_CHANNELS)
    return feats, coords, batch_size
