"""A small CenterPoint-style car detector built from spconv-compatible layers, and its export recipe.

The layout follows CenterPoint as OpenPCDet configures it (``cbgs_voxel0075_res3d_centerpoint.yaml``):

* ``VoxelResBackBone8x``, reduced: a SubM input conv, then four stages (the last three open with a
  stride-2 ``SparseConv3d``) of residual ``SparseBasicBlock``\\ s, and a (3, 1, 1) stride-(2, 1, 1) output conv
  that collapses the height; one block per stage instead of two and narrower channels, so it trains on a
  CPU in minutes;
* ``HeightCompression``: densify and fold depth into channels, ``[B, C, D, H, W] -> [B, C·D, H, W]``;
* a 2D BEV backbone like OpenPCDet's ``BaseBEVBackbone``: a stride-1 and a stride-2 block of 3×3 convs,
  each upsampled by a transposed conv to twice the sparse backbone's resolution and concatenated;
* a center head: a shared 3×3 conv, then a heatmap branch (one channel per class, logits) and a box
  regression branch (centre offset x, y in cells, z, log dx, dy, dz, sin 2·yaw, cos 2·yaw; see ``BOX_CODE``).

The grid is smaller and coarser than a real dataset's, which is what makes CPU training feasible: ±25.6 m
around the sensor, 0.2 m voxels (``DetectorConfig``), 32-beam single-sweep frames of ``sparsetrt.data``.
The sparse backbone leaves a 32 × 32 map of 1.6 m cells; the BEV backbone's upsampling gives the head a
64 × 64 map of 0.8 m cells, the cell size of CenterPoint on Waymo.

``forward(voxel_features [N, 4] f32, voxel_coords [N, 4] i32 (b, z, y, x))`` returns the dense head
outputs ``(heatmap [B, classes, 64, 64] logits, box [B, 8, 64, 64])``; decoding them into boxes is Python
(``sparsetrt.demo.decode``) on either PyTorch's or an exported file's outputs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparsetrt.exporter import ExportRecipe, SparseTensor
from sparsetrt.exporter import nn as snn

from .config import BOX_CODE, INPUT_NAMES, OUTPUT_NAMES, TINY, DetectorConfig
from .scenes import collate, make_frames

__all__ = ["BOX_CODE", "INPUT_NAMES", "OUTPUT_NAMES", "TINY", "CenterPointDetector", "DetectorConfig"]


def norm1d(channels: int) -> nn.BatchNorm1d:
    # OpenPCDet's eps; its momentum (0.01) is made for days of training, ours is minutes.
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.1)


def norm2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)


class SparseBasicBlock(snn.SparseModule):
    """OpenPCDet's residual block: ``relu(bn(subm(relu(bn(subm(x))))) + x)`` over one set of sites.

    Both convs keep the sites, so they share one rulebook through ``indice_key`` (and the exporter
    emits a single rulebook node for them).
    """

    def __init__(self, channels: int, indice_key: str) -> None:
        super().__init__()
        self.conv1 = snn.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn1 = norm1d(channels)
        self.conv2 = snn.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=indice_key)
        self.bn2 = norm1d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: SparseTensor) -> SparseTensor:
        identity = x.features
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(self.relu(self.bn2(out.features) + identity))


def _down(cin: int, cout: int, kernel: Any, stride: Any, padding: Any, key: str) -> snn.SparseSequential:
    return snn.SparseSequential(
        snn.SparseConv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False, indice_key=key),
        norm1d(cout),
        nn.ReLU(),
    )


def _conv_out_depth(depth: int, paddings: list[int]) -> int:
    for p in paddings:
        depth = (depth + 2 * p - 3) // 2 + 1
    return (depth - 3) // 2 + 1


class SparseBackbone(nn.Module):
    """Reduced ``VoxelResBackBone8x`` + ``HeightCompression``: voxels -> ``[B, out·D, H/8, W/8]``."""

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = cfg.channels
        depth = cfg.spatial_shape[0]
        # OpenPCDet's conv4 pads only y and x, which takes its 41-high grid to 5 and the output conv to 2.
        # Our grids are shorter (21 for 0.2 m over 4 m), so conv4 pads z too whenever the output conv
        # would otherwise be left with no height at all.
        z_pad4 = 0 if _conv_out_depth(depth, [1, 1, 0]) >= 1 else 1
        self.out_depth = _conv_out_depth(depth, [1, 1, z_pad4])
        if self.out_depth < 1:
            raise ValueError(f"the grid is {depth} voxels high; the backbone needs at least 9 (got {cfg})")

        def stage(cin: int, cout: int, padding: Any, level: int) -> snn.SparseSequential:
            blocks = [SparseBasicBlock(cout, f"res{level}") for _ in range(cfg.blocks)]
            return snn.SparseSequential(_down(cin, cout, 3, 2, padding, f"spconv{level}"), *blocks)

        self.conv_input = snn.SparseSequential(
            snn.SubMConv3d(cfg.in_channels, c0, 3, padding=1, bias=False, indice_key="subm1"), norm1d(c0), nn.ReLU()
        )
        self.conv1 = snn.SparseSequential(*[SparseBasicBlock(c0, "res1") for _ in range(cfg.blocks)])
        self.conv2 = stage(c0, c1, 1, 2)
        self.conv3 = stage(c1, c2, 1, 3)
        self.conv4 = stage(c2, c3, (z_pad4, 1, 1), 4)
        self.conv_out = _down(c3, cfg.out_channels, (3, 1, 1), (2, 1, 1), 0, "spconv_down2")
        self.num_bev_features = cfg.out_channels * self.out_depth

    def forward(self, x: SparseTensor) -> torch.Tensor:
        x = self.conv4(self.conv3(self.conv2(self.conv1(self.conv_input(x)))))
        bev = self.conv_out(x).dense()
        n, c, d, h, w = bev.shape
        return bev.reshape(n, c * d, h, w)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), norm2d(cout), nn.ReLU()]


class BEVBackbone(nn.Module):
    """Two blocks (stride 1 and 2), each upsampled to 2× the input resolution and concatenated."""

    def __init__(self, cin: int, channels: tuple[int, int]) -> None:
        super().__init__()
        a, b = channels
        self.block1 = nn.Sequential(*_conv_bn_relu(cin, a), *_conv_bn_relu(a, a))
        self.block2 = nn.Sequential(*_conv_bn_relu(a, b, stride=2), *_conv_bn_relu(b, b))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(a, a, 2, stride=2, bias=False), norm2d(a), nn.ReLU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(b, a, 4, stride=4, bias=False), norm2d(a), nn.ReLU())
        self.num_features = 2 * a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.block1(x)
        x2 = self.block2(x1)
        return torch.cat([self.up1(x1), self.up2(x2)], dim=1)


class CenterHead(nn.Module):
    """Shared conv, then heatmap logits and box regression (``BOX_CODE``), like CenterPoint's head."""

    def __init__(self, cin: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(*_conv_bn_relu(cin, channels))
        self.heatmap = nn.Sequential(*_conv_bn_relu(channels, channels), nn.Conv2d(channels, num_classes, 1))
        self.box = nn.Sequential(*_conv_bn_relu(channels, channels), nn.Conv2d(channels, len(BOX_CODE), 1))
        # CenterNet's prior: start every cell at p = 0.1 so the focal loss is not swamped by the background.
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - 0.1) / 0.1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.shared(x)
        return self.heatmap(x), self.box(x)


class CenterPointDetector(nn.Module):
    """Voxels -> (heatmap logits ``[B, classes, H, W]``, box regression ``[B, 8, H, W]``).

    ``batch_size`` is a Python int fixed at construction: an exported file holds one batch size.
    """

    def __init__(self, cfg: DetectorConfig | None = None, batch_size: int = 1) -> None:
        super().__init__()
        self.cfg = cfg or DetectorConfig()
        self.batch_size = batch_size
        self.spatial_shape = list(self.cfg.spatial_shape)
        self.backbone = SparseBackbone(self.cfg)
        self.bev = BEVBackbone(self.backbone.num_bev_features, self.cfg.bev_channels)
        self.head = CenterHead(self.bev.num_features, self.cfg.head_channels, len(self.cfg.class_names))

    def forward(self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = SparseTensor(voxel_features, voxel_coords, self.spatial_shape, self.batch_size)
        return self.head(self.bev(self.backbone(x)))


# ------------------------------------------------------------------------------------------ checkpoints

CHECKPOINT_ENV = "SPARSETRT_DEMO_CHECKPOINT"
SHIPPED_CHECKPOINT = Path(__file__).with_name("centerpoint_demo.pt")
"""The checkpoint trained by ``python -m sparsetrt.demo.train`` with the default config (ships with us)."""


def save_checkpoint(path: str | os.PathLike, model: CenterPointDetector, meta: Mapping[str, Any]) -> None:
    """A plain state_dict plus the config that built it (``{"state_dict", "config", "meta"}``)."""
    torch.save({"state_dict": model.state_dict(), "config": model.cfg.to_dict(), "meta": dict(meta)}, path)


def load_checkpoint(path: str | os.PathLike, batch_size: int = 1) -> tuple[CenterPointDetector, dict[str, Any]]:
    """The model a checkpoint of :func:`save_checkpoint` describes, its weights loaded strictly, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train one with `python -m sparsetrt.demo.train --out {path}`"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a sparsetrt.demo checkpoint (a dict with 'state_dict' and 'config')")
    model = CenterPointDetector(DetectorConfig.from_dict(ckpt["config"]), batch_size=batch_size)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), dict(ckpt.get("meta", {}))


def example_inputs(cfg: DetectorConfig, seed: Any = 0, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxels ``(features [N, 4], coords [N, 4])`` of ``batch_size`` synthetic frames (seeds ``[seed, b]``)."""
    feats, coords = collate(make_frames(cfg, seed, batch_size))
    return torch.from_numpy(feats), torch.from_numpy(coords)


def export_recipe(cfg: DetectorConfig | None = None, batch_size: int = 1) -> ExportRecipe:
    """The factory for ``sparsetrt export sparsetrt.demo.model:export_recipe --checkpoint CKPT``.

    Builds the default-config detector (weights come from the checkpoint the CLI loads afterwards) and
    one synthetic frame to trace it on. The file takes ``voxel_features [N, 4]`` and ``voxel_coords [N, 4]``
    (N dynamic) for ``batch_size`` frames and returns ``heatmap`` (logits) and ``box``.
    """
    cfg = cfg or DetectorConfig()
    model = CenterPointDetector(cfg, batch_size=batch_size).eval()
    return ExportRecipe(
        model=model,
        args=example_inputs(cfg, seed=[2**20, 0], batch_size=batch_size),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
    )


def tiny_export_recipe() -> ExportRecipe:
    """:func:`export_recipe` for the :data:`TINY` config (checkpoints of ``train --tiny``)."""
    return export_recipe(TINY)
