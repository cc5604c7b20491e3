"""SECOND: sparse 3D backbone, height compression to a BEV map, and a small 2D conv head.

Follows Yan, Mao & Li, "SECOND: Sparsely Embedded Convolutional Detection" (Sensors 2018), in the form
OpenPCDet configures it (`tools/cfgs/kitti_models/second.yaml`: `VoxelBackBone8x` + `HeightCompression`):

* `conv_input`: SubMConv3d(C_in -> c0) + BN + ReLU, indice key `subm1`; `conv1`: one more SubM block.
* `conv2`..`conv4`: a stride-2 SparseConv3d (keys `spconv2..4`) followed by two SubM blocks (`subm2..4`);
  `conv4` pads only y/x (`padding=(0, 1, 1)`), so a 41-deep grid shrinks 41 -> 21 -> 11 -> 5.
* `conv_out`: SparseConv3d kernel (3, 1, 1), stride (2, 1, 1), no padding -> depth 2.
* `HeightCompression`: `dense()` and fold depth into channels, `[B, C, D, H, W] -> [B, C*D, H, W]`.

OpenPCDet's multi-scale BEV backbone and anchor head are replaced by two Conv2d+BN+ReLU layers and a 1x1
output conv standing in for the class/box/direction maps.  Channel widths are parameters; the zoo uses
half of OpenPCDet's (16, 32, 64, 64 -> 128) to keep the CPU tests fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from .inputs import lidar_voxels
from .layers import post_act, seeded_build

SPATIAL_SHAPE = (41, 160, 160)
IN_CHANNELS = 4


class Second(nn.Module):
    """SECOND `VoxelBackBone8x` + `HeightCompression` + BEV conv head.

    forward(voxel_features [N, C_in] f32, voxel_coords [N, 4] i32 (b, z, y, x), batch_size)
        -> BEV head output [B, num_outputs, H/8, W/8] (20 x 20 for the zoo's 160 x 160 grid).
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        spatial_shape: Sequence[int] = SPATIAL_SHAPE,
        channels: Sequence[int] = (16, 32, 64, 64),
        out_channels: int = 128,
        head_channels: int = 64,
        num_outputs: int = 16,
    ) -> None:
        super().__init__()
        self.spatial_shape = list(spatial_shape)
        c0, c1, c2, c3 = channels
        self.conv_input = post_act(spconv.SubMConv3d(in_channels, c0, 3, padding=1, bias=False, indice_key="subm1"))
        self.conv1 = post_act(spconv.SubMConv3d(c0, c0, 3, padding=1, bias=False, indice_key="subm1"))
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
        bev_depth = self._bev_depth(spatial_shape[0])
        self.head = nn.Sequential(
            nn.Conv2d(out_channels * bev_depth, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.Conv2d(head_channels, num_outputs, 1),
        )

    @staticmethod
    def _stage(cin: int, cout: int, padding: int | tuple[int, int, int], level: int) -> spconv.SparseSequential:
        """Stride-2 downsampling conv followed by two SubM blocks sharing one rulebook."""
        return spconv.SparseSequential(
            post_act(
                spconv.SparseConv3d(cin, cout, 3, stride=2, padding=padding, bias=False, indice_key=f"spconv{level}")
            ),
            post_act(spconv.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"subm{level}")),
            post_act(spconv.SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=f"subm{level}")),
        )

    @staticmethod
    def _bev_depth(depth: int) -> int:
        """Depth left after conv2..conv4 and conv_out (e.g. 41 -> 21 -> 11 -> 5 -> 2)."""
        for _ in range(2):  # kernel 3, stride 2, padding 1
            depth = (depth - 1) // 2 + 1
        depth = (depth - 3) // 2 + 1  # conv4: kernel 3, stride 2, no z padding
        return (depth - 3) // 2 + 1  # conv_out: kernel 3, stride 2, no padding

    def forward(self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, self.spatial_shape, batch_size)
        x = self.conv1(self.conv_input(x))
        x = self.conv4(self.conv3(self.conv2(x)))
        encoded = self.conv_out(x)
        # HeightCompression: stack the remaining z slices as BEV channels.
        bev = encoded.dense()
        n, c, d, h, w = bev.shape
        return self.head(bev.view(n, c * d, h, w))


def build() -> Second:
    """Half-width SECOND with seeded random weights and randomised, input-calibrated BN statistics."""
    return seeded_build(
        lambda: Second(channels=(8, 16, 32, 32), out_channels=64, head_channels=32),
        seed=1,
        calibration_inputs=make_inputs(seed=1000, batch_size=2, num_voxels=3000),
    )


def make_inputs(seed: int, batch_size: int, num_voxels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(voxel_features [N, 4], voxel_coords [N, 4], batch_size)` from synthetic LiDAR scenes."""
    feats, coords = lidar_voxels(seed, batch_size, num_voxels, SPATIAL_SHAPE, IN_CHANNELS)
    return feats, coords, batch_size
