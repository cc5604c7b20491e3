"""Synthetic lidar frames for the demo detector: voxels plus the ground truth it is trained and scored on.

Frames come from :mod:`sparsetrt.data` (a 32-beam, single-sweep lidar in the sensor frame by default),
voxelized on the detector's grid. Ground truth is every box of the detector's classes whose centre lies
inside the grid, with the number of lidar returns on it: a box no ray reaches cannot be detected, so
training skips boxes without returns and evaluation treats sparsely hit ones as "don't care"
(:data:`MIN_POINTS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparsetrt.data import CLASS_NAMES, SceneConfig, generate_frame, voxelize
from sparsetrt.data.raycast import SURFACE_BOX

from .config import DetectorConfig

MIN_POINTS = 5
"""Evaluation counts a ground-truth box with fewer lidar returns as "don't care" (as KITTI's difficulty
levels and nuScenes' zero-point filter do): detecting it is neither rewarded nor penalised."""

TRAIN_SEED = 1
EVAL_SEED = 2
"""Training frames use seeds ``[TRAIN_SEED, i]``, held-out evaluation frames ``[EVAL_SEED, i]``."""


@dataclass
class DemoFrame:
    """One frame on the detector's grid.

    Attributes:
        coords: int32 [N, 3] voxel ``(z, y, x)``.
        features: float32 [N, 4] mean ``(x, y, z, intensity)`` of the voxel's points.
        points: float32 [P, 4] the returns inside the grid (for pictures).
        boxes: float32 [M, 7] ``(x, y, z, dx, dy, dz, yaw)`` of the boxes of the detector's classes whose
            centre lies in the grid; labels int32 [M] index ``DetectorConfig.class_names``.
        num_points: int32 [M] lidar returns on each box inside the grid.
    """

    coords: np.ndarray
    features: np.ndarray
    points: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    num_points: np.ndarray


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    return [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]


def make_frame(cfg: DetectorConfig, seed: int | Sequence[int]) -> DemoFrame:
    """The frame drawn from ``seed``; identical for identical arguments."""
    unknown = [c for c in cfg.class_names if c not in CLASS_NAMES]
    if unknown:
        raise ValueError(f"unknown class names {unknown}; the generator has {list(CLASS_NAMES)}")
    scene_cfg = SceneConfig(object_range=cfg.object_range)
    frame = generate_frame(seed, beams=cfg.beams, num_sweeps=cfg.sweeps, frame="sensor", scene_config=scene_cfg)
    pcr = np.asarray(cfg.point_cloud_range, dtype=np.float32)
    vox = voxelize(frame.points, cfg.point_cloud_range, cfg.voxel_size)

    inside = np.all((frame.points[:, :3] >= pcr[:3]) & (frame.points[:, :3] < pcr[3:]), axis=1)
    on_box = inside & (frame.surface == SURFACE_BOX)
    hits = np.bincount(frame.object_index[on_box], minlength=len(frame.boxes)).astype(np.int32)

    names = [CLASS_NAMES[i] for i in frame.labels]
    wanted = np.array([n in cfg.class_names for n in names], dtype=bool)
    centre_in = np.all((frame.boxes[:, :2] >= pcr[:2]) & (frame.boxes[:, :2] < pcr[3:5]), axis=1)
    keep = wanted & centre_in
    labels = np.array([cfg.class_names.index(n) for n, k in zip(names, keep, strict=True) if k], dtype=np.int32)
    return DemoFrame(
        coords=vox.coords,
        features=vox.features,
        points=frame.points[inside],
        boxes=frame.boxes[keep],
        labels=labels,
        num_points=hits[keep],
    )


def make_frames(cfg: DetectorConfig, seed: int | Sequence[int], count: int, start: int = 0) -> list[DemoFrame]:
    """Frames ``start .. start + count - 1`` of the stream ``seed`` (frame i uses ``[*seed, i]``)."""
    base = _seed_list(seed)
    return [make_frame(cfg, [*base, i]) for i in range(start, start + count)]


def collate(frames: Sequence[DemoFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Voxel ``features [N, 4]`` and ``coords [N, 4]`` (b, z, y, x) of a batch, as the model takes them."""
    if not frames:
        raise ValueError("need at least one frame")
    coords = np.concatenate([np.pad(f.coords, ((0, 0), (1, 0)), constant_values=b) for b, f in enumerate(frames)])
    return np.concatenate([f.features for f in frames]), coords.astype(np.int32)
