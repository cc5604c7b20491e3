"""Synthetic lidar data for tests and benchmarks: numpy only, deterministic from a seed.

Modules:
    scene       -- random street scenes (ground, facades, poles, car / pedestrian / cyclist boxes)
    sensor      -- 32- and 64-beam spinning lidar models
    raycast     -- vectorised analytic ray casting of one sweep
    voxelize    -- spconv/OpenPCDet-convention voxelization and the nuScenes / Waymo / KITTI presets
    neighbours  -- active-neighbour counts in a 3x3x3 window
    lidar       -- frames (multi-sweep, ego motion), batches, statistics and the command line
"""

from typing import Any

from .neighbours import active_neighbour_counts, mean_active_neighbours
from .scene import CLASS_NAMES, Scene, SceneConfig, generate_scene
from .sensor import LIDAR_32, LIDAR_64, LidarSpec, sensor_for_beams
from .voxelize import PRESETS, VoxelBatch, VoxelPreset, Voxels, collate_voxels, voxelize, voxelize_preset

__all__ = [
    "CLASS_NAMES",
    "LIDAR_32",
    "LIDAR_64",
    "PRESETS",
    "FrameStats",
    "LidarFrame",
    "LidarSpec",
    "Scene",
    "SceneConfig",
    "VoxelBatch",
    "VoxelPreset",
    "Voxels",
    "active_neighbour_counts",
    "collate_voxels",
    "generate_frame",
    "generate_scene",
    "lidar_statistics",
    "mean_active_neighbours",
    "preset_batch",
    "preset_frame",
    "sensor_for_beams",
    "simulate_frame",
    "voxelize",
    "voxelize_preset",
]

# `lidar` is also the command-line entry point (`python -m sparsetrt.data.lidar`); importing it here
# eagerly would make runpy execute a module that is already in sys.modules (and warn). Its names are
# therefore resolved on first access instead.
_LIDAR_NAMES = frozenset(
    {
        "FrameStats",
        "LidarFrame",
        "generate_frame",
        "lidar_statistics",
        "preset_batch",
        "preset_frame",
        "simulate_frame",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LIDAR_NAMES:
        from . import lidar

        return getattr(lidar, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
