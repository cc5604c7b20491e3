"""Voxelization in the spconv / OpenPCDet convention, and the three common dataset presets.

Grid convention (the one OpenPCDet's data processor and ``VoxelBackBone8x`` use with spconv):

* ``grid_size`` (x, y, z order) is ``round((range_max - range_min) / voxel_size)``;
* a point's voxel is ``floor((p - range_min) / voxel_size)``, kept only when ``0 <= voxel < grid_size``
  on every axis (spconv's ``PointToVoxel`` drops the rest);
* coordinates are stored ``(z, y, x)``, and the backbone's ``spatial_shape`` is
  ``grid_size[::-1] + [1, 0, 0]``: one extra z layer. With OpenPCDet's paddings the height then goes
  41 -> 21 -> 11 -> 5 through the three stride-2 stages and to 2 in the (3, 1, 1) stride-2 output
  convolution, so 128 channels x 2 give the 256 BEV features the 2D backbone expects (40 would end in 1).
  Hence 41 = 40 + 1.

Voxel coordinates therefore never reach the last z layer; ``spatial_shape`` is what a sparse tensor built
from them must be declared with to match a trained backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoxelPreset:
    """A dataset's voxel grid and the coordinate frame its point cloud range assumes.

    Attributes:
        name: preset key.
        point_cloud_range: ``(x_min, y_min, z_min, x_max, y_max, z_max)`` in metres.
        voxel_size: ``(vx, vy, vz)`` in metres.
        frame: ``"sensor"`` when the dataset's z = 0 is the lidar's optical centre (nuScenes, KITTI:
            the ground lies at about minus the mount height), ``"ground"`` when z = 0 is on the ground
            (Waymo's vehicle frame).
        beams / sweeps: the lidar and accumulation the dataset is usually used with.
        fov_deg: horizontal field of view kept around +x, or None for all around. KITTI's labels only
            cover the front camera, and OpenPCDet keeps only points inside the camera frustum there
            (``FOV_POINTS_ONLY``); 90° approximates that frustum.
    """

    name: str
    point_cloud_range: tuple[float, float, float, float, float, float]
    voxel_size: tuple[float, float, float]
    frame: str
    beams: int
    sweeps: int
    fov_deg: float | None = None

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Voxels along (x, y, z): ``round((max - min) / voxel_size)``."""
        return grid_size(self.point_cloud_range, self.voxel_size)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The backbone's sparse shape ``[D, H, W] = grid_size[::-1] + [1, 0, 0]``."""
        return spatial_shape(self.point_cloud_range, self.voxel_size)


PRESETS: dict[str, VoxelPreset] = {
    "nuscenes": VoxelPreset("nuscenes", (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0), (0.075, 0.075, 0.2), "sensor", 32, 10),
    "waymo": VoxelPreset("waymo", (-75.2, -75.2, -2.0, 75.2, 75.2, 4.0), (0.1, 0.1, 0.15), "ground", 64, 1),
    "kitti": VoxelPreset("kitti", (0.0, -40.0, -3.0, 70.4, 40.0, 1.0), (0.05, 0.05, 0.1), "sensor", 64, 1, 90.0),
}


def grid_size(point_cloud_range: Sequence[float], voxel_size: Sequence[float]) -> tuple[int, int, int]:
    """Voxels along (x, y, z). Rounds rather than truncates: in float32, (75.2 + 75.2) / 0.1 is 1503.9999."""
    pcr = np.asarray(point_cloud_range, dtype=np.float64)
    size = np.round((pcr[3:6] - pcr[0:3]) / np.asarray(voxel_size, dtype=np.float64)).astype(np.int64)
    return int(size[0]), int(size[1]), int(size[2])


def spatial_shape(point_cloud_range: Sequence[float], voxel_size: Sequence[float]) -> tuple[int, int, int]:
    """``[D, H, W]`` of the backbone: ``grid_size`` reversed to (z, y, x), plus one z layer."""
    gx, gy, gz = grid_size(point_cloud_range, voxel_size)
    return gz + 1, gy, gx


@dataclass
class Voxels:
    """Unique voxels of one point cloud.

    Attributes:
        coords: int32 [N, 3] ``(z, y, x)``, sorted by that order, unique.
        features: float32 [N, C] mean of the points' features (x, y, z, intensity for 4 columns).
        num_points: int32 [N] points per voxel.
        spatial_shape: ``(D, H, W)`` to declare the sparse tensor with (see module docstring).
    """

    coords: np.ndarray
    features: np.ndarray
    num_points: np.ndarray
    spatial_shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.coords)


def voxelize(points: np.ndarray, point_cloud_range: Sequence[float], voxel_size: Sequence[float]) -> Voxels:
    """Mean-feature ("dynamic", no per-voxel point cap) voxelization of ``points`` [P, C], C >= 3.

    Points outside the grid are dropped. Every point of a voxel contributes to its mean, unlike hard
    voxelization with ``MAX_POINTS_PER_VOXEL``; the set of voxels is the same either way (short of a
    ``MAX_NUMBER_OF_VOXELS`` cap).
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be [P, C>=3], got shape {points.shape}")
    pcr = np.asarray(point_cloud_range, dtype=np.float64)
    vsize = np.asarray(voxel_size, dtype=np.float64)
    gx, gy, gz = grid_size(pcr, vsize)
    shape = spatial_shape(pcr, vsize)

    cell = np.floor((points[:, :3].astype(np.float64) - pcr[:3]) / vsize).astype(np.int64)
    inside = np.all((cell >= 0) & (cell < np.array([gx, gy, gz])), axis=1)
    cell, kept = cell[inside], points[inside].astype(np.float64)

    # Row-major key over (z, y, x): sorting keys sorts voxels in (z, y, x) order.
    keys = (cell[:, 2] * gy + cell[:, 1]) * gx + cell[:, 0]
    unique_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    # Per-voxel sums by a weighted bincount per column: the same as np.add.at, many times faster.
    sums = np.stack(
        [np.bincount(inverse, weights=kept[:, c], minlength=len(unique_keys)) for c in range(kept.shape[1])],
        axis=1,
    ).reshape(len(unique_keys), kept.shape[1])
    coords = np.stack([unique_keys // (gx * gy), (unique_keys // gx) % gy, unique_keys % gx], axis=1)
    return Voxels(
        coords=coords.astype(np.int32),
        features=(sums / counts[:, None]).astype(np.float32),
        num_points=counts.astype(np.int32),
        spatial_shape=shape,
    )


def in_fov(points: np.ndarray, fov_deg: float | None) -> np.ndarray:
    """bool [P]: the points within ``fov_deg / 2`` of the +x axis (all of them for None)."""
    if fov_deg is None:
        return np.ones(len(points), dtype=bool)
    return np.abs(np.arctan2(points[:, 1], points[:, 0])) <= np.deg2rad(fov_deg) / 2


def voxelize_preset(points: np.ndarray, preset: VoxelPreset | str) -> Voxels:
    """:func:`voxelize` with a preset's range, voxel size and field of view.

    ``points`` must already be in the preset's frame (see :attr:`VoxelPreset.frame`).
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    return voxelize(points[in_fov(points, p.fov_deg)], p.point_cloud_range, p.voxel_size)


@dataclass
class VoxelBatch:
    """Voxels of several frames stacked the way spconv's ``SparseConvTensor`` takes them.

    Attributes:
        coords: int32 [N, 4] ``(b, z, y, x)``, frames in order, each frame sorted as in :class:`Voxels`.
        features: float32 [N, C].
        spatial_shape: ``(D, H, W)``.
        batch_size: number of frames.
    """

    coords: np.ndarray
    features: np.ndarray
    spatial_shape: tuple[int, int, int]
    batch_size: int


def collate_voxels(frames: Sequence[Voxels]) -> VoxelBatch:
    """Stack per-frame voxels into one batch with a leading batch-index column."""
    if not frames:
        raise ValueError("need at least one frame")
    shapes = {f.spatial_shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames have different spatial shapes: {sorted(shapes)}")
    coords = [np.concatenate([np.full((len(f), 1), b, dtype=np.int32), f.coords], axis=1) for b, f in enumerate(frames)]
    return VoxelBatch(
        coords=np.concatenate(coords, axis=0),
        features=np.concatenate([f.features for f in frames], axis=0),
        spatial_shape=frames[0].spatial_shape,
        batch_size=len(frames),
    )
