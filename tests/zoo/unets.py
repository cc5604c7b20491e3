"""Part-A²'s sparse UNet twice, as OpenPCDet (``UNetV2``, a ``batch_dict`` module) and mmdetection3d
(``SparseUNet``, ``forward(voxel_features, coors, batch_size) -> dict``) write it.

Re-created from Shi et al., "From Points to Parts" (TPAMI 2020) and the two codebases' published layouts
(``tools/cfgs/kitti_models/PartA2.yaml``; mmdetection3d's ``parta2`` configs): a SECOND-style encoder (SubM stem,
three stride-2 stages, the last padding y/x only), a (3, 1, 1) stride (2, 1, 1) ``conv_out`` for the detection
branch, and a decoder whose blocks run a residual block on the lateral tensor, concatenate it with the tensor
from below, merge with a SubM conv, add the parameter-free channel reduction ``features.view(n, C, -1).sum(
dim=2)`` (the pattern whose constants the node dedup used to corrupt) and go up with an inverse conv on the
encoder's strided key (a SubM conv at the top).

OpenPCDet's returns ``encoded_spconv_tensor``, ``point_features`` and ``point_coords`` (voxel centres in metres,
batch index first); mmdetection3d's ``spatial_features`` (the dense BEV) and ``seg_features``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import spconv.pytorch as spconv
import torch
from torch import nn

from .layers import SparseBasicBlock, norm1d, post_act
from .parta2 import channel_reduction as reduce_channels


def block(cin: int, cout: int, key: str, kind: str = "subm", stride: Any = 1, padding: Any = 1) -> Any:
    if kind == "subm":
        conv = spconv.SubMConv3d(cin, cout, 3, bias=False, indice_key=key)
    elif kind == "spconv":
        conv = spconv.SparseConv3d(cin, cout, 3, stride=stride, padding=padding, bias=False, indice_key=key)
    else:
        conv = spconv.SparseInverseConv3d(cin, cout, 3, indice_key=key, bias=False)
    return post_act(conv)


def channel_reduction(x: Any, out_channels: int) -> Any:
    return x.replace_feature(reduce_channels(x.features, out_channels))


def decode(x_lateral: Any, x_bottom: Any, lateral: nn.Module, merge: nn.Module, up: nn.Module) -> Any:
    x = lateral(x_lateral)
    x = x.replace_feature(torch.cat((x_bottom.features, x.features), dim=1))
    x_m = merge(x)
    x = channel_reduction(x, x_m.features.shape[1])
    x = x.replace_feature(x_m.features + x.features)
    return up(x)


class UNetV2(nn.Module):
    """OpenPCDet's ``UNetV2`` layout: ``forward(batch_dict)``; widths scaled by ``WIDTH`` (1 = 16-32-64-64)."""

    def __init__(
        self,
        model_cfg: Mapping[str, Any],
        input_channels: int,
        grid_size: np.ndarray,
        voxel_size: Sequence[float],
        point_cloud_range: np.ndarray,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.sparse_shape = grid_size[::-1] + [1, 0, 0]  # noqa: RUF005 (numpy's elementwise add)
        self.voxel_size, self.point_cloud_range = voxel_size, point_cloud_range
        w = int(model_cfg.get("WIDTH", 16))
        c1, c2, c3 = w, 2 * w, 4 * w
        self.conv_input = spconv.SparseSequential(
            spconv.SubMConv3d(input_channels, c1, 3, padding=1, bias=False, indice_key="subm1"), norm1d(c1), nn.ReLU()
        )
        self.conv1 = spconv.SparseSequential(block(c1, c1, "subm1"))
        self.conv2 = spconv.SparseSequential(
            block(c1, c2, "spconv2", "spconv", 2), block(c2, c2, "subm2"), block(c2, c2, "subm2")
        )
        self.conv3 = spconv.SparseSequential(
            block(c2, c3, "spconv3", "spconv", 2), block(c3, c3, "subm3"), block(c3, c3, "subm3")
        )
        self.conv4 = spconv.SparseSequential(
            block(c3, c3, "spconv4", "spconv", 2, (0, 1, 1)), block(c3, c3, "subm4"), block(c3, c3, "subm4")
        )
        out = int(model_cfg.get("OUT_CHANNELS", 8 * w))
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv3d(c3, out, (3, 1, 1), stride=(2, 1, 1), padding=0, bias=False, indice_key="spconv_down2"),
            norm1d(out),
            nn.ReLU(),
        )
        self.conv_up_t4, self.conv_up_m4 = SparseBasicBlock(c3, c3, "subm4", bias=False), block(2 * c3, c3, "subm4")
        self.inv_conv4 = block(c3, c3, "spconv4", "inverse")
        self.conv_up_t3, self.conv_up_m3 = SparseBasicBlock(c3, c3, "subm3", bias=False), block(2 * c3, c3, "subm3")
        self.inv_conv3 = block(c3, c2, "spconv3", "inverse")
        self.conv_up_t2, self.conv_up_m2 = SparseBasicBlock(c2, c2, "subm2", bias=False), block(2 * c2, c2, "subm2")
        self.inv_conv2 = block(c2, c1, "spconv2", "inverse")
        self.conv_up_t1, self.conv_up_m1 = SparseBasicBlock(c1, c1, "subm1", bias=False), block(2 * c1, c1, "subm1")
        self.conv5 = spconv.SparseSequential(block(c1, c1, "subm1"))
        self.num_point_features = c1

    def forward(self, batch_dict: dict[str, Any]) -> dict[str, Any]:
        x = spconv.SparseConvTensor(
            features=batch_dict["voxel_features"],
            indices=batch_dict["voxel_coords"].int(),
            spatial_shape=self.sparse_shape,
            batch_size=batch_dict["batch_size"],
        )
        x_conv1 = self.conv1(self.conv_input(x))
        x_conv2 = self.conv2(x_conv1)
        x_conv3 = self.conv3(x_conv2)
        x_conv4 = self.conv4(x_conv3)
        batch_dict["encoded_spconv_tensor"] = self.conv_out(x_conv4)
        batch_dict["encoded_spconv_tensor_stride"] = 8
        x_up4 = decode(x_conv4, x_conv4, self.conv_up_t4, self.conv_up_m4, self.inv_conv4)
        x_up3 = decode(x_conv3, x_up4, self.conv_up_t3, self.conv_up_m3, self.inv_conv3)
        x_up2 = decode(x_conv2, x_up3, self.conv_up_t2, self.conv_up_m2, self.inv_conv2)
        x_up1 = decode(x_conv1, x_up2, self.conv_up_t1, self.conv_up_m1, self.conv5)
        batch_dict["point_features"] = x_up1.features
        # Voxel centres in metres: (index + 0.5) * voxel size + range start, x y z order (indices are z y x).
        voxel_size = torch.tensor(self.voxel_size, dtype=torch.float32)
        start = torch.tensor(self.point_cloud_range[0:3], dtype=torch.float32)
        centers = (x_up1.indices[:, [3, 2, 1]].float() + 0.5) * voxel_size + start
        batch_dict["point_coords"] = torch.cat((x_up1.indices[:, 0:1].float(), centers), dim=1)
        return batch_dict


class SparseUNet(nn.Module):
    """mmdetection3d's ``SparseUNet`` layout: ``forward(voxel_features, coors, batch_size) -> dict``, with its
    ``encoder_layers`` / ``lateral_layer{i}`` / ``merge_layer{i}`` / ``upsample_layer{i}`` names."""

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        base_channels: int = 16,
        output_channels: int = 128,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence[Any]] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        decoder_channels: Sequence[Sequence[int]] = ((64, 64, 64), (64, 64, 32), (32, 32, 16), (16, 16, 16)),
        decoder_paddings: Sequence[Sequence[int]] = ((1, 0), (1, 0), (0, 0), (0, 1)),
    ) -> None:
        super().__init__()
        self.sparse_shape = list(sparse_shape)
        self.stage_num = len(encoder_channels)
        self.conv_input = block(in_channels, base_channels, "subm1")
        self.encoder_layers = spconv.SparseSequential()
        cin = base_channels
        for i, (widths, pads) in enumerate(zip(encoder_channels, encoder_paddings, strict=True)):
            layers = []
            for j, (cout, pad) in enumerate(zip(widths, pads, strict=True)):
                if i != 0 and j == 0:
                    layers.append(block(cin, cout, f"spconv{i + 1}", "spconv", 2, pad))
                else:
                    layers.append(block(cin, cout, f"subm{i + 1}", padding=pad))
                cin = cout
            self.encoder_layers.add_module(f"encoder_layer{i + 1}", spconv.SparseSequential(*layers))
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv3d(
                cin, output_channels, (3, 1, 1), stride=(2, 1, 1), bias=False, indice_key="spconv_down2"
            ),
            norm1d(output_channels),
            nn.ReLU(),
        )
        n = len(decoder_channels)
        for i, widths in enumerate(decoder_channels):
            level = n - i
            setattr(self, f"lateral_layer{level}", SparseBasicBlock(cin, cin, f"subm{level}", bias=False))
            setattr(self, f"merge_layer{level}", block(2 * cin, widths[1], f"subm{level}"))
            kind = "inverse" if level != 1 else "subm"
            setattr(
                self, f"upsample_layer{level}", block(cin, widths[2], f"spconv{level}" if level != 1 else "subm1", kind)
            )
            cin = widths[2]

    def forward(self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
        x = spconv.SparseConvTensor(voxel_features, coors.int(), self.sparse_shape, batch_size)
        x = self.conv_input(x)
        encode_features = []
        for encoder_layer in self.encoder_layers:
            x = encoder_layer(x)
            encode_features.append(x)
        spatial_features = self.conv_out(encode_features[-1]).dense()
        n, c, d, h, w = spatial_features.shape
        spatial_features = spatial_features.view(n, c * d, h, w)
        x = encode_features[-1]
        for i in range(self.stage_num, 0, -1):
            x = decode(
                encode_features[i - 1],
                x,
                getattr(self, f"lateral_layer{i}"),
                getattr(self, f"merge_layer{i}"),
                getattr(self, f"upsample_layer{i}"),
            )
        return {"spatial_features": spatial_features, "seg_features": x.features}
