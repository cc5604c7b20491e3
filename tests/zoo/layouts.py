"""Backbones in their codebases' own layouts (OpenPCDet ``batch_dict`` modules, mmdetection3d middle encoders),
wrapped only by sparsetrt's adapters, as a user would export them.

Each entry builds the module with config-style values (narrowed widths and grids, so tests stay fast), seeded
weights and randomised, input-calibrated BN statistics; wraps it in ``OpenPCDetModules`` / ``MMDet3DModule``; and
makes inputs ``(features, coords, batch_size)`` on its grid (voxels from synthetic lidar scenes; pillars are their
(b, y, x) columns). ``ops`` names sparsetrt ops the exported file must hold (the idioms that made these models fail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sparsetrt.exporter.adapters import MMDet3DModule, OpenPCDetModules

from .encoders import PillarRes18, SparseEncoder
from .inputs import lidar_voxels
from .layers import seeded_build
from .pcdet_voxelnext import VoxelNeXt2DBackbone, VoxelNeXtBackbone
from .unets import SparseUNet, UNetV2

__all__ = ["LAYOUTS", "Layout"]

GRID_3D = (41, 160, 144)  # (z, y, x)
GRID_2D = (128, 112)  # (y, x)


@dataclass(frozen=True)
class Layout:
    name: str
    build: Callable[[], nn.Module]
    make_inputs: Callable[[int, int, int], tuple[torch.Tensor, torch.Tensor, int]]
    input_names: tuple[str, str]
    ops: tuple[str, ...] = field(default=())


def _grid_size(zyx: tuple[int, ...]) -> np.ndarray:
    """OpenPCDet's grid_size (x, y, z) for a sparse shape (z, y, x): its 3D backbones add 1 to z."""
    if len(zyx) == 3:
        return np.array([zyx[2], zyx[1], zyx[0] - 1], dtype=np.int64)
    return np.array([zyx[1], zyx[0], 1], dtype=np.int64)


def voxels(seed: int, batch_size: int, num_voxels: int, channels: int = 4) -> tuple[torch.Tensor, torch.Tensor, int]:
    features, coords = lidar_voxels(seed, batch_size, num_voxels, GRID_3D, channels)
    return features, coords, batch_size


def pillars(seed: int, batch_size: int, num_pillars: int, channels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The (b, y, x) columns of a lidar scene's voxels, with random features (a pillar VFE's output)."""
    _, coords = lidar_voxels(seed, batch_size, num_pillars, (16, *GRID_2D), 4)
    columns = torch.unique(coords[:, [0, 2, 3]], dim=0)
    columns = columns[torch.randperm(columns.shape[0], generator=torch.Generator().manual_seed(seed))]
    features = torch.randn(columns.shape[0], channels, generator=torch.Generator().manual_seed(seed + 1))
    return features, columns.to(torch.int32).contiguous(), batch_size


def _seeded(factory: Callable[[], nn.Module], make_inputs: Callable, seed: int) -> Callable[[], nn.Module]:
    return lambda: seeded_build(factory, seed, calibration_inputs=make_inputs(1000 + seed, 2, 2500))


def _layouts() -> dict[str, Layout]:
    v = {"CHANNELS": [8, 16, 16, 24, 24], "OUT_CHANNEL": 24, "BLOCKS": 1}
    grid3, grid2 = _grid_size(GRID_3D), _grid_size(GRID_2D)
    voxel_size, pc_range = [0.1, 0.1, 0.2], np.array([0, -8, -3, 14.4, 8, 1], dtype=np.float32)

    def voxel5(seed: int, b: int, n: int) -> tuple:
        return voxels(seed, b, n, 5)

    def pillar8(seed: int, b: int, n: int) -> tuple:
        return pillars(seed, b, n, 8)

    def pcdet(module: Callable[[], nn.Module], inputs: tuple[str, str]) -> Callable[[], nn.Module]:
        return lambda: OpenPCDetModules({"backbone_3d": module()}, 1, inputs)

    def mmdet(module: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        return lambda: MMDet3DModule(module(), 1, prefix="middle_encoder")

    voxel_inputs, pillar_inputs = ("voxel_features", "voxel_coords"), ("pillar_features", "pillar_coords")
    entries = [
        Layout(
            "voxelnext_pcdet",
            _seeded(pcdet(lambda: VoxelNeXtBackbone(v, 5, grid3), voxel_inputs), voxel5, 11),
            voxel5,
            voxel_inputs,
            ("UniqueSites", "SegmentReduce"),
        ),
        Layout(
            "voxelnext2d_pcdet",
            _seeded(pcdet(lambda: VoxelNeXt2DBackbone(v, 8, grid2), pillar_inputs), pillar8, 12),
            pillar8,
            pillar_inputs,
            ("UniqueSites", "SegmentReduce"),
        ),
        Layout(
            "unetv2_pcdet",
            _seeded(pcdet(lambda: UNetV2({"WIDTH": 8}, 4, grid3, voxel_size, pc_range), voxel_inputs), voxels, 13),
            voxels,
            voxel_inputs,
            ("InverseRulebook",),
        ),
        Layout(
            "sparse_unet_mmdet3d",
            _seeded(
                mmdet(
                    lambda: SparseUNet(
                        4,
                        GRID_3D,
                        base_channels=8,
                        output_channels=32,
                        encoder_channels=((8,), (16, 16, 16), (32, 32, 32), (32, 32, 32)),
                        decoder_channels=((32, 32, 32), (32, 32, 16), (16, 16, 8), (8, 8, 8)),
                    )
                ),
                voxels,
                14,
            ),
            voxels,
            ("voxel_features", "coors"),
            ("InverseRulebook", "Densify"),
        ),
        Layout(
            "pillarres18_pcdet",
            _seeded(pcdet(lambda: PillarRes18({"WIDTHS": [8, 16, 24, 32]}, 8, grid2), pillar_inputs), pillar8, 15),
            pillar8,
            pillar_inputs,
            ("Densify",),
        ),
        Layout(
            "sparse_encoder_mmdet3d",
            _seeded(
                mmdet(
                    lambda: SparseEncoder(
                        4,
                        GRID_3D,
                        base_channels=8,
                        output_channels=32,
                        encoder_channels=((8,), (16, 16, 16), (32, 32, 32), (32, 32, 32)),
                    )
                ),
                voxels,
                16,
            ),
            voxels,
            ("voxel_features", "coors"),
            ("Densify",),
        ),
        Layout(
            "sparse_encoder_basicblock_mmdet3d",
            _seeded(
                mmdet(
                    lambda: SparseEncoder(
                        5,
                        GRID_3D,
                        base_channels=8,
                        output_channels=32,
                        encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)),
                        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
                        block_type="basicblock",
                    )
                ),
                voxel5,
                17,
            ),
            voxel5,
            ("voxel_features", "coors"),
            ("Densify",),
        ),
    ]
    return {e.name: e for e in entries}


LAYOUTS = _layouts()
