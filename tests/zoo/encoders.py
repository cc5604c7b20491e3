"""Two more published sparse encoders in their codebases' layouts.

* ``PillarRes18`` -- OpenPCDet's ``PillarRes18BackBone8x`` (PillarNet, Shi et al., ECCV 2022;
  ``tools/cfgs/waymo_models/pillarnet.yaml``), a ``batch_dict`` module on pillars (b, y, x): residual SparseConv2d
  stages ``res1``..``res4`` at strides 1-8, the stride-8 tensor densified and a dense stride-16 stage (``conv5``)
  after it; output ``multi_scale_2d_features`` (x_conv1..x_conv3 sparse, x_conv4 and x_conv5 dense).
* ``SparseEncoder`` -- mmdetection3d's middle encoder (SECOND, PointPillars' successors, CenterPoint), ``forward(
  voxel_features, coors, batch_size) -> spatial_features``: ``conv_module`` stages (a strided SparseConv3d, then
  SubM convs) or ``basicblock`` stages (key-less residual SubM blocks, a strided SparseConv3d ending each stage but
  the last, as in ``centerpoint_voxel01_second_secfpn_nus.py``), then a (3, 1, 1) stride (2, 1, 1) ``conv_out``
  and the dense BEV ``view(N, C * D, H, W)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import spconv.pytorch as spconv
from torch import nn

from .layers import SparseBasicBlock, norm1d, post_act


class BasicBlock(nn.Module):
    """Dense residual block (conv5 of PillarNet)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    def forward(self, x: Any) -> Any:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class PillarRes18(nn.Module):
    """``PillarRes18BackBone8x``: pillar_features [N, C0], pillar_coords [N, 3] (b, y, x); widths from WIDTHS."""

    def __init__(self, model_cfg: Mapping[str, Any], input_channels: int, grid_size: np.ndarray, **kwargs: Any):
        super().__init__()
        self.sparse_shape = grid_size[[1, 0]]
        c1, c2, c3, c4 = model_cfg.get("WIDTHS", [32, 64, 128, 256])
        assert input_channels == c1, "the first stage runs on the pillar features"

        def stage(cin: int, cout: int, level: int) -> spconv.SparseSequential:
            return spconv.SparseSequential(
                spconv.SparseConv2d(cin, cout, 3, stride=2, padding=1, bias=False, indice_key=f"spconv{level}"),
                norm1d(cout),
                nn.ReLU(),
                SparseBasicBlock(cout, cout, f"res{level}", ndim=2),
                SparseBasicBlock(cout, cout, f"res{level}", ndim=2),
            )

        self.conv1 = spconv.SparseSequential(*(SparseBasicBlock(c1, c1, "res1", ndim=2) for _ in range(2)))
        self.conv2 = stage(c1, c2, 2)
        self.conv3 = stage(c2, c3, 3)
        self.conv4 = stage(c3, c4, 4)
        self.conv5 = nn.Sequential(
            nn.Conv2d(c4, c4, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c4, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            BasicBlock(c4),
            BasicBlock(c4),
        )
        self.num_point_features = c4

    def forward(self, batch_dict: dict[str, Any]) -> dict[str, Any]:
        x = spconv.SparseConvTensor(
            features=batch_dict["pillar_features"],
            indices=batch_dict["pillar_coords"].int(),
            spatial_shape=self.sparse_shape,
            batch_size=batch_dict["batch_size"],
        )
        x_conv1 = self.conv1(x)
        x_conv2 = self.conv2(x_conv1)
        x_conv3 = self.conv3(x_conv2)
        x_conv4 = self.conv4(x_conv3).dense()
        x_conv5 = self.conv5(x_conv4)
        batch_dict["multi_scale_2d_features"] = {
            "x_conv1": x_conv1,
            "x_conv2": x_conv2,
            "x_conv3": x_conv3,
            "x_conv4": x_conv4,
            "x_conv5": x_conv5,
        }
        batch_dict["multi_scale_2d_strides"] = {"x_conv1": 1, "x_conv2": 2, "x_conv3": 4, "x_conv4": 8, "x_conv5": 16}
        return batch_dict


def _conv_module(cin: int, cout: int, key: str, kind: str, stride: Any = 1, padding: Any = 0) -> Any:
    if kind == "SubMConv3d":
        conv = spconv.SubMConv3d(cin, cout, 3, padding=padding, bias=False, indice_key=key)
    else:
        conv = spconv.SparseConv3d(cin, cout, 3, stride=stride, padding=padding, bias=False, indice_key=key)
    return post_act(conv)


class SparseEncoder(nn.Module):
    """mmdetection3d's ``SparseEncoder`` layout (``block_type`` ``conv_module`` or ``basicblock``)."""

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        base_channels: int = 16,
        output_channels: int = 128,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence[Any]] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        block_type: str = "conv_module",
    ) -> None:
        super().__init__()
        self.sparse_shape = list(sparse_shape)
        self.conv_input = _conv_module(in_channels, base_channels, "subm1", "SubMConv3d", padding=1)
        self.encoder_layers = spconv.SparseSequential()
        cin, last = base_channels, len(encoder_channels) - 1
        for i, (widths, pads) in enumerate(zip(encoder_channels, encoder_paddings, strict=True)):
            layers: list[nn.Module] = []
            for j, (cout, pad) in enumerate(zip(widths, pads, strict=True)):
                strided = (i != 0 and j == 0) if block_type == "conv_module" else (j == len(widths) - 1 and i != last)
                if strided:
                    layers.append(_conv_module(cin, cout, f"spconv{i + 1}", "SparseConv3d", 2, pad))
                elif block_type == "basicblock":
                    layers.append(SparseBasicBlock(cout, cout, None, bias=False))
                else:
                    layers.append(_conv_module(cin, cout, f"subm{i + 1}", "SubMConv3d", padding=pad))
                cin = cout
            self.encoder_layers.add_module(f"encoder_layer{i + 1}", spconv.SparseSequential(*layers))
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv3d(
                cin, output_channels, (3, 1, 1), stride=(2, 1, 1), bias=False, indice_key="spconv_down2"
            ),
            norm1d(output_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, voxel_features: Any, coors: Any, batch_size: int) -> Any:
        x = spconv.SparseConvTensor(voxel_features, coors.int(), self.sparse_shape, batch_size)
        x = self.conv_input(x)
        for encoder_layer in self.encoder_layers:
            x = encoder_layer(x)
        spatial_features = self.conv_out(x).dense()
        n, c, d, h, w = spatial_features.shape
        return spatial_features.view(n, c * d, h, w)
