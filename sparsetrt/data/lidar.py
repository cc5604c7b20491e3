"""Synthetic lidar frames: scene + spinning lidar + multi-sweep accumulation, voxelized per dataset preset.

Typical use::

    from sparsetrt.data import lidar
    frame = lidar.generate_frame(seed=0, beams=32, num_sweeps=10, frame="sensor")
    voxels = voxelize_preset(frame.points, "nuscenes")

or, for a dataset preset in one call, :func:`preset_frame`. Statistics (points, voxels, mean active
neighbours per voxel) come from :func:`lidar_statistics` or the command line::

    python -m sparsetrt.data.lidar --preset nuscenes --beams 32 --sweeps 10 --frames 5 --seed 0

Everything is numpy and deterministic from the seed: frame ``i`` of a run with seed ``s`` is drawn from
``numpy.random.default_rng([s, i])``, with no global random state involved.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .neighbours import mean_active_neighbours
from .raycast import cast_sweep
from .scene import Scene, SceneConfig, generate_scene
from .sensor import LidarSpec, sensor_for_beams
from .voxelize import PRESETS, VoxelBatch, VoxelPreset, Voxels, collate_voxels, voxelize_preset

SeedLike = int | Sequence[int]


@dataclass
class LidarFrame:
    """One (possibly multi-sweep) lidar frame with its ground truth.

    Attributes:
        points: float32 [P, 4] ``(x, y, z, intensity)``, all sweeps motion-compensated into the newest
            sweep's frame; intensity in [0, 1].
        boxes: float32 [B, 7] ``(x, y, z, dx, dy, dz, yaw)``, z the box centre.
        labels: int32 [B], indices into :data:`sparsetrt.data.scene.CLASS_NAMES`.
        sweep_index: int32 [P], 0 for the newest sweep, k for the sweep k revolutions earlier (nuScenes
            models feed the matching time lag as a fifth feature).
        surface: int8 [P], what each point hit (``raycast.SURFACE_*``).
        object_index: int32 [P], index of the hit facade / pole / box within its kind, -1 for ground.
        z_offset: what was added to scene-frame z: 0 in the ``"ground"`` frame, minus the mount height in
            the ``"sensor"`` frame.
        scene: the scene the frame was cast from (scene frame, ground at z = 0).
        sensor: the lidar used.
    """

    points: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    sweep_index: np.ndarray
    surface: np.ndarray
    object_index: np.ndarray
    z_offset: float
    scene: Scene
    sensor: LidarSpec


def simulate_frame(
    scene: Scene, sensor: LidarSpec, num_sweeps: int, rng: np.random.Generator, frame: str = "ground"
) -> LidarFrame:
    """Cast ``num_sweeps`` revolutions of ``sensor`` through ``scene`` while the ego vehicle moves.

    Sweep k is fired ``k / sensor.rate_hz`` seconds before the newest one from the ego pose the scene's
    constant-speed, constant-yaw-rate motion gives at that time; its returns are expressed directly in
    the newest sweep's frame, which is what ego-motion-compensated accumulation (nuScenes' 10 sweeps)
    produces for a static world. Every revolution starts at a random azimuth phase: a real spinning
    lidar is not locked to its previous revolution, so repeated sweeps from a standing car do not land
    on exactly the same spots.
    """
    if num_sweeps < 1:
        raise ValueError(f"num_sweeps must be >= 1, got {num_sweeps}")
    if frame not in ("ground", "sensor"):
        raise ValueError(f"frame must be 'ground' or 'sensor', got {frame!r}")
    step = 2.0 * np.pi / sensor.num_azimuth
    parts = []
    for k in range(num_sweeps):
        x, y, heading = scene.ego_pose(-k / sensor.rate_hz)
        origin = np.array([x, y, scene.ground_height(x, y) + sensor.mount_height])
        hits = cast_sweep(scene, sensor, origin, heading + rng.uniform(0.0, step), rng)
        parts.append((hits, k))

    z_offset = 0.0 if frame == "ground" else -sensor.mount_height
    xyz = np.concatenate([h.xyz for h, _ in parts], axis=0)
    points = np.empty((len(xyz), 4), dtype=np.float32)
    points[:, :3] = xyz + np.array([0.0, 0.0, z_offset])
    points[:, 3] = np.concatenate([h.intensity for h, _ in parts])
    boxes = scene.boxes.astype(np.float32)
    boxes[:, 2] += z_offset
    return LidarFrame(
        points=points,
        boxes=boxes,
        labels=scene.labels.copy(),
        sweep_index=np.concatenate([np.full(len(h.xyz), k, dtype=np.int32) for h, k in parts]),
        surface=np.concatenate([h.surface for h, _ in parts]),
        object_index=np.concatenate([h.object_index for h, _ in parts]),
        z_offset=z_offset,
        scene=scene,
        sensor=sensor,
    )


def generate_frame(
    seed: SeedLike,
    beams: int = 32,
    num_sweeps: int = 1,
    frame: str = "ground",
    scene_config: SceneConfig | None = None,
) -> LidarFrame:
    """A random scene seen by the built-in ``beams``-beam lidar; identical for identical arguments."""
    rng = np.random.default_rng(seed)
    scene = generate_scene(rng, scene_config)
    return simulate_frame(scene, sensor_for_beams(beams), num_sweeps, rng, frame)


def _preset(preset: VoxelPreset | str) -> VoxelPreset:
    if isinstance(preset, VoxelPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}") from None


def preset_frame(
    preset: VoxelPreset | str,
    seed: SeedLike,
    beams: int | None = None,
    num_sweeps: int | None = None,
    scene_config: SceneConfig | None = None,
) -> tuple[LidarFrame, Voxels]:
    """A frame in the preset's coordinate frame and its voxels; beams/sweeps default to the preset's."""
    p = _preset(preset)
    frame = generate_frame(
        seed,
        beams=p.beams if beams is None else beams,
        num_sweeps=p.sweeps if num_sweeps is None else num_sweeps,
        frame=p.frame,
        scene_config=scene_config,
    )
    return frame, voxelize_preset(frame.points, p)


def preset_batch(
    preset: VoxelPreset | str,
    batch_size: int,
    seed: int = 0,
    beams: int | None = None,
    num_sweeps: int | None = None,
    scene_config: SceneConfig | None = None,
) -> VoxelBatch:
    """Voxels of ``batch_size`` frames with coords ``(b, z, y, x)``; frame b uses seed ``[seed, b]``."""
    return collate_voxels(
        [preset_frame(preset, [seed, b], beams, num_sweeps, scene_config)[1] for b in range(batch_size)]
    )


@dataclass
class FrameStats:
    """Statistics of one generated frame (times in seconds, wall clock)."""

    frame: int
    points: int
    points_in_grid: int
    voxels: int
    mean_neighbours: float
    boxes: int
    simulate_s: float
    voxelize_s: float
    neighbours_s: float


def lidar_statistics(
    preset: VoxelPreset | str = "nuscenes",
    beams: int | None = None,
    sweeps: int | None = None,
    frames: int = 5,
    seed: int = 0,
    scene_config: SceneConfig | None = None,
) -> list[FrameStats]:
    """Generate ``frames`` frames for ``preset`` and measure each (frame i uses seed ``[seed, i]``)."""
    p = _preset(preset)
    beams = p.beams if beams is None else beams
    sweeps = p.sweeps if sweeps is None else sweeps
    stats = []
    for i in range(frames):
        t0 = time.perf_counter()
        frame = generate_frame([seed, i], beams=beams, num_sweeps=sweeps, frame=p.frame, scene_config=scene_config)
        t1 = time.perf_counter()
        vox = voxelize_preset(frame.points, p)
        t2 = time.perf_counter()
        mean_nb = mean_active_neighbours(vox.coords, vox.spatial_shape)
        t3 = time.perf_counter()
        stats.append(
            FrameStats(
                frame=i,
                points=len(frame.points),
                points_in_grid=int(vox.num_points.sum()),
                voxels=len(vox),
                mean_neighbours=mean_nb,
                boxes=len(frame.boxes),
                simulate_s=t1 - t0,
                voxelize_s=t2 - t1,
                neighbours_s=t3 - t2,
            )
        )
    return stats


def format_statistics(preset: VoxelPreset | str, beams: int, sweeps: int, stats: Sequence[FrameStats]) -> str:
    """The CLI's report: one row per frame and a mean row."""
    p = _preset(preset)
    lines = [
        f"preset {p.name}: range {list(p.point_cloud_range)}, voxel {list(p.voxel_size)}, "
        f"spatial_shape [D, H, W] = {list(p.spatial_shape)} ({p.frame} frame)",
        f"lidar: {sensor_for_beams(beams).name}, {sweeps} sweep(s)",
        f"{'frame':>5} {'points':>9} {'in grid':>9} {'voxels':>9} {'nbrs/vox':>8} {'boxes':>5} "
        f"{'cast ms':>8} {'voxel ms':>8} {'nbr ms':>7}",
    ]

    def row(label: str, s: FrameStats) -> str:
        return (
            f"{label:>5} {s.points:>9,} {s.points_in_grid:>9,} {s.voxels:>9,} {s.mean_neighbours:>8.2f} "
            f"{s.boxes:>5} {1e3 * s.simulate_s:>8.0f} {1e3 * s.voxelize_s:>8.0f} {1e3 * s.neighbours_s:>7.0f}"
        )

    lines += [row(str(s.frame), s) for s in stats]
    if stats:
        mean = FrameStats(
            frame=-1,
            points=round(np.mean([s.points for s in stats])),
            points_in_grid=round(np.mean([s.points_in_grid for s in stats])),
            voxels=round(np.mean([s.voxels for s in stats])),
            mean_neighbours=float(np.mean([s.mean_neighbours for s in stats])),
            boxes=round(np.mean([s.boxes for s in stats])),
            simulate_s=float(np.mean([s.simulate_s for s in stats])),
            voxelize_s=float(np.mean([s.voxelize_s for s in stats])),
            neighbours_s=float(np.mean([s.neighbours_s for s in stats])),
        )
        lines.append(row("mean", mean))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: print per-frame points, voxels and mean active neighbours for a preset."""
    parser = argparse.ArgumentParser(
        prog="python -m sparsetrt.data.lidar", description="Synthetic lidar frame statistics."
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="nuscenes")
    parser.add_argument("--beams", type=int, choices=(32, 64), default=None, help="default: the preset's")
    parser.add_argument("--sweeps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    p = PRESETS[args.preset]
    beams = p.beams if args.beams is None else args.beams
    sweeps = p.sweeps if args.sweeps is None else args.sweeps
    stats = lidar_statistics(p, beams, sweeps, args.frames, args.seed)
    print(format_statistics(p, beams, sweeps, stats))


if __name__ == "__main__":
    main()
