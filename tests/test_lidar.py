"""Synthetic lidar generator: determinism, geometry of the returns, voxelization and neighbour statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sparsetrt.data import (
    CLASS_NAMES,
    LIDAR_32,
    PRESETS,
    LidarSpec,
    SceneConfig,
    active_neighbour_counts,
    collate_voxels,
    generate_frame,
    generate_scene,
    lidar_statistics,
    mean_active_neighbours,
    preset_batch,
    preset_frame,
    voxelize,
)
from sparsetrt.data.lidar import main
from sparsetrt.data.raycast import (
    SURFACE_BOX,
    SURFACE_FACADE,
    SURFACE_GROUND,
    SURFACE_POLE,
    cast_sweep,
    intersect_box,
    intersect_facade,
    intersect_ground,
    intersect_pole,
)
from sparsetrt.data.scene import CLASS_SIZES
from sparsetrt.data.voxelize import grid_size, spatial_shape


@pytest.fixture
def seed(gen: torch.Generator) -> int:
    """A fresh numpy seed per run, reproducible from the session seed the test header prints."""
    return int(gen.initial_seed() % 2**32)


@pytest.fixture
def frame(seed: int):
    return generate_frame(seed, beams=32, num_sweeps=3)


# --- determinism --------------------------------------------------------------------------------------


def test_same_seed_same_frame_different_seed_different_frame(seed: int) -> None:
    a = generate_frame([seed, 7], beams=32, num_sweeps=2)
    b = generate_frame([seed, 7], beams=32, num_sweeps=2)
    c = generate_frame([seed, 8], beams=32, num_sweeps=2)
    for name in ("points", "boxes", "labels", "sweep_index", "surface", "object_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.points.shape != c.points.shape or not np.array_equal(a.points, c.points)
    assert a.boxes.shape != c.boxes.shape or not np.array_equal(a.boxes, c.boxes)


def test_generation_leaves_global_random_state_alone(seed: int) -> None:
    np.random.seed(1)
    expected = np.random.random(3)
    np.random.seed(1)
    generate_frame(seed, beams=32, num_sweeps=1)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_output_types_and_shapes(frame) -> None:
    assert frame.points.dtype == np.float32 and frame.points.ndim == 2 and frame.points.shape[1] == 4
    assert frame.boxes.dtype == np.float32 and frame.boxes.shape == (len(frame.labels), 7)
    assert frame.labels.dtype == np.int32 and set(frame.labels.tolist()) <= set(range(len(CLASS_NAMES)))
    assert len(frame.sweep_index) == len(frame.surface) == len(frame.object_index) == len(frame.points)
    assert set(np.unique(frame.sweep_index).tolist()) == {0, 1, 2}
    assert np.all((frame.points[:, 3] >= 0) & (frame.points[:, 3] <= 1))
    assert np.all(np.isfinite(frame.points))


# --- the returns lie on the scene's surfaces ------------------------------------------------------------

TOL = 0.1  # metres: 5 standard deviations of the 2 cm range noise, with room for grazing hits


def test_ground_returns_lie_on_the_ground_plane(frame) -> None:
    ground = frame.points[frame.surface == SURFACE_GROUND].astype(np.float64)
    assert len(ground) > 0.5 * len(frame.points), "most returns of a street scene are road"
    assert np.abs(ground[:, 2]).max() < TOL


def test_sloped_ground_returns_lie_on_the_sloped_plane(seed: int) -> None:
    f = generate_frame(seed, beams=32, num_sweeps=2, scene_config=SceneConfig(max_ground_slope_deg=3.0))
    ground = f.points[f.surface == SURFACE_GROUND].astype(np.float64)
    assert f.scene.ground_slope != (0.0, 0.0)
    height = f.scene.ground_height(ground[:, 0], ground[:, 1])
    assert np.abs(ground[:, 2] - height).max() < TOL
    np.testing.assert_allclose(
        f.boxes[:, 2] - f.boxes[:, 5] / 2, f.scene.ground_height(f.boxes[:, 0], f.boxes[:, 1]), atol=1e-4
    )


def test_sensor_frame_puts_the_ground_at_minus_mount_height(seed: int) -> None:
    f = generate_frame(seed, beams=32, num_sweeps=1, frame="sensor")
    ground_z = f.points[f.surface == SURFACE_GROUND, 2]
    np.testing.assert_allclose(np.median(ground_z), -LIDAR_32.mount_height, atol=TOL)
    np.testing.assert_allclose(f.boxes[:, 2], f.boxes[:, 5] / 2 - LIDAR_32.mount_height, atol=1e-5)


def test_box_returns_lie_on_their_box(frame) -> None:
    sel = frame.surface == SURFACE_BOX
    pts, idx = frame.points[sel, :3].astype(np.float64), frame.object_index[sel]
    assert len(pts) > 0
    box = frame.scene.boxes[idx]
    c, s = np.cos(box[:, 6]), np.sin(box[:, 6])
    rel = pts - box[:, :3]
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
    half = box[:, 3:6] / 2
    assert np.all(np.abs(local) <= half + TOL), "inside the box (up to noise)"
    assert np.all(np.min(half - np.abs(local), axis=1) < TOL), "on one of its faces"


def test_pole_and_facade_returns_lie_on_their_surfaces(frame) -> None:
    sel = frame.surface == SURFACE_POLE
    pts, pole = frame.points[sel].astype(np.float64), frame.scene.poles[frame.object_index[sel]]
    radial = np.hypot(pts[:, 0] - pole[:, 0], pts[:, 1] - pole[:, 1])
    on_side = np.abs(radial - pole[:, 4]) < TOL
    on_top = (np.abs(pts[:, 2] - pole[:, 2] - pole[:, 3]) < TOL) & (radial < pole[:, 4] + TOL)
    assert np.all(on_side | on_top)

    sel = frame.surface == SURFACE_FACADE
    pts, fac = frame.points[sel].astype(np.float64), frame.scene.facades[frame.object_index[sel]]
    assert len(pts) > 0
    ux, uy = np.cos(fac[:, 5]), np.sin(fac[:, 5])
    dx, dy = pts[:, 0] - fac[:, 0], pts[:, 1] - fac[:, 1]
    assert np.all(np.abs(-uy * dx + ux * dy) < TOL), "on the facade's plane"
    assert np.all(np.abs(ux * dx + uy * dy) <= fac[:, 3] / 2 + TOL), "within its length"


def test_closed_form_intersections_on_hand_made_rays() -> None:
    origin = np.array([0.0, 0.0, 2.0])
    down45 = np.array([[np.sqrt(0.5), 0.0, -np.sqrt(0.5)]])
    t, cos = intersect_ground(origin, down45, (0.0, 0.0))
    np.testing.assert_allclose(t, [2.0 * np.sqrt(2.0)])
    np.testing.assert_allclose(cos, [np.sqrt(0.5)])
    assert np.isinf(intersect_ground(origin, np.array([[1.0, 0.0, 0.0]]), (0.0, 0.0))[0][0])

    forward = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    box = np.array([10.0, 0.0, 2.0, 4.0, 2.0, 2.0, np.pi / 2])  # rotated: 2 m deep along x
    t, cos = intersect_box(origin, forward, box)
    np.testing.assert_allclose(t, [9.0, np.inf])
    np.testing.assert_allclose(cos[0], 1.0)

    pole = np.array([5.0, 0.0, 0.0, 4.0, 0.5])
    np.testing.assert_allclose(intersect_pole(origin, forward, pole)[0], [4.5, np.inf])
    from_above = np.array([[0.0, 0.0, -1.0]])
    np.testing.assert_allclose(intersect_pole(np.array([5.0, 0.0, 10.0]), from_above, pole)[0], [6.0])

    facade = np.array([0.0, 8.0, 0.0, 6.0, 5.0, 0.0])  # along x at y = 8
    t, cos = intersect_facade(origin, forward, facade)
    np.testing.assert_allclose(t, [np.inf, 8.0])
    np.testing.assert_allclose(cos[1], 1.0)


def test_culled_sweep_equals_casting_every_ray_at_every_object(seed: int) -> None:
    """The azimuth/elevation culling in cast_sweep must never drop a hit."""
    rng = np.random.default_rng(seed)
    scene = generate_scene(rng)
    spec = LidarSpec("test", tuple(np.linspace(12.0, -30.0, 24)), num_azimuth=720, range_noise_std=0.0)
    origin = np.array([-2.0, 0.3, 1.8])
    azimuth0 = 0.37
    hits = cast_sweep(scene, spec, origin, azimuth0, rng)

    el = spec.elevations_rad()[:, None]
    az = (azimuth0 + 2 * np.pi * np.arange(spec.num_azimuth) / spec.num_azimuth)[None, :]
    dirs = np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)), -1)
    dirs = dirs.reshape(-1, 3)
    best = intersect_ground(origin, dirs, scene.ground_slope)[0]
    surface = np.where(np.isfinite(best), SURFACE_GROUND, -1)
    for code, params, intersect in (
        (SURFACE_FACADE, scene.facades, intersect_facade),
        (SURFACE_POLE, scene.poles, intersect_pole),
        (SURFACE_BOX, scene.boxes, intersect_box),
    ):
        for p in params:
            t = intersect(origin, dirs, p)[0]
            surface = np.where(t < best, code, surface)
            best = np.minimum(best, t)
    keep = (best >= spec.min_range) & (best <= spec.max_range)
    np.testing.assert_array_equal(hits.surface, surface[keep])
    np.testing.assert_allclose(hits.xyz, origin + best[keep, None] * dirs[keep], atol=1e-9)


# --- scene layout ----------------------------------------------------------------------------------------


def test_boxes_are_in_range_sized_like_their_class_and_do_not_overlap(seed: int) -> None:
    cfg = SceneConfig()
    f = generate_frame(seed, beams=32, num_sweeps=1, scene_config=cfg)
    boxes = f.boxes.astype(np.float64)
    assert len(boxes) >= sum(lo for lo, _ in (cfg.num_cars, cfg.num_pedestrians, cfg.num_cyclists)) // 2
    dist = np.hypot(boxes[:, 0], boxes[:, 1])
    assert np.all((dist >= cfg.object_range[0]) & (dist <= cfg.object_range[1]))
    means = np.array([CLASS_SIZES[name] for name in CLASS_NAMES])[f.labels]
    assert np.all(np.abs(boxes[:, 3:6] / means - 1.0) <= 0.1 + 1e-6)
    np.testing.assert_allclose(boxes[:, 2], boxes[:, 5] / 2, atol=1e-5)  # standing on the flat ground
    assert np.all(np.abs(boxes[:, 6]) <= np.pi + 1e-6)
    radius = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4])
    gap = np.hypot(*(boxes[:, None, :2] - boxes[None, :, :2]).transpose(2, 0, 1)) - radius[:, None] - radius
    np.fill_diagonal(gap, np.inf)
    assert gap.min() > 0, "bird's-eye-view circumcircles of two boxes overlap"


# --- voxelization ---------------------------------------------------------------------------------------


def test_preset_grids_follow_the_spconv_openpcdet_arithmetic() -> None:
    expected = {"nuscenes": (41, 1440, 1440), "waymo": (41, 1504, 1504), "kitti": (41, 1600, 1408)}
    for name, shape in expected.items():
        p = PRESETS[name]
        assert p.spatial_shape == shape
        assert p.grid_size == (shape[2], shape[1], shape[0] - 1)
    assert grid_size((0, -40, -3, 70.4, 40, 1), (0.05, 0.05, 0.1)) == (1408, 1600, 40)  # 70.4/0.05 rounds
    assert spatial_shape((0, 0, 0, 1, 2, 3), (0.5, 0.5, 0.5)) == (7, 4, 2)


def test_voxelize_matches_a_dictionary_of_cells(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pcr, vs = (-1.0, -2.0, -0.5, 1.0, 2.0, 0.5), (0.25, 0.5, 0.25)
    points = rng.uniform([-1.3, -2.3, -0.7, 0], [1.3, 2.3, 0.7, 1], size=(400, 4)).astype(np.float32)
    vox = voxelize(points, pcr, vs)

    cells: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for p in points.astype(np.float64):
        c = np.floor((p[:3] - np.array(pcr[:3])) / np.array(vs)).astype(int)
        if np.all(c >= 0) and np.all(c < [8, 8, 4]):
            cells.setdefault((int(c[2]), int(c[1]), int(c[0])), []).append(p)
    assert vox.spatial_shape == (5, 8, 8)
    assert [tuple(r) for r in vox.coords.tolist()] == sorted(cells)
    for row, feat, n in zip(vox.coords.tolist(), vox.features, vox.num_points, strict=True):
        members = np.array(cells[tuple(row)])
        assert n == len(members)
        np.testing.assert_allclose(feat, members.mean(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["nuscenes", "kitti"])
def test_preset_voxels_are_unique_sorted_and_inside_the_grid(preset: str, seed: int) -> None:
    frame, vox = preset_frame(preset, seed, num_sweeps=2)
    p = PRESETS[preset]
    assert vox.coords.dtype == np.int32 and vox.features.dtype == np.float32
    assert vox.spatial_shape == p.spatial_shape
    d, h, w = vox.spatial_shape
    keys = (vox.coords[:, 0].astype(np.int64) * h + vox.coords[:, 1]) * w + vox.coords[:, 2]
    assert np.all(np.diff(keys) > 0), "unique and in (z, y, x) order"
    assert np.all(vox.coords >= 0)
    assert np.all(vox.coords < np.array([d - 1, h, w])), "the extra z layer of spatial_shape stays empty"
    assert vox.num_points.sum() <= len(frame.points)
    lo, hi = np.array(p.point_cloud_range[:3]), np.array(p.point_cloud_range[3:])
    assert np.all((vox.features[:, :3] >= lo - 1e-4) & (vox.features[:, :3] <= hi + 1e-4))


def test_batches_carry_a_batch_column(seed: int) -> None:
    batch = preset_batch("kitti", batch_size=2, seed=seed)
    singles = [preset_frame("kitti", [seed, b])[1] for b in range(2)]
    assert batch.batch_size == 2 and batch.spatial_shape == PRESETS["kitti"].spatial_shape
    assert batch.coords.shape[1] == 4 and batch.coords.dtype == np.int32
    for b, single in enumerate(singles):
        np.testing.assert_array_equal(batch.coords[batch.coords[:, 0] == b, 1:], single.coords)
    np.testing.assert_array_equal(collate_voxels(singles).features, batch.features)


# --- neighbour statistics ------------------------------------------------------------------------------


def _brute_force_counts(coords: np.ndarray) -> list[int]:
    active = {tuple(r) for r in coords.tolist()}
    counts = []
    for r in coords.tolist():
        *b, z, y, x = r
        n = 0
        for dz, dy, dx in itertools.product((-1, 0, 1), repeat=3):
            if (dz, dy, dx) != (0, 0, 0) and (*b, z + dz, y + dy, x + dx) in active:
                n += 1
        counts.append(n)
    return counts


@pytest.mark.parametrize("with_batch", [False, True])
def test_neighbour_counts_match_a_brute_force_loop(with_batch: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (4, 5, 6)  # small enough that borders (where keys could wrap) are everywhere
    cells = np.array(list(itertools.product(*(range(s) for s in shape))))
    coords = cells[rng.choice(len(cells), size=60, replace=False)]
    if with_batch:
        other = cells[rng.choice(len(cells), size=50, replace=False)]
        coords = np.concatenate([np.pad(coords, ((0, 0), (1, 0))), np.pad(other, ((0, 0), (1, 0)), constant_values=1)])
    counts = active_neighbour_counts(coords, shape)
    assert counts.tolist() == _brute_force_counts(coords)
    assert active_neighbour_counts(np.zeros((0, 3), dtype=np.int32), shape).shape == (0,)


def test_statistics_are_within_sane_bounds(seed: int) -> None:
    (stats,) = lidar_statistics("nuscenes", sweeps=3, frames=1, seed=seed)
    assert 50_000 < stats.points < 200_000
    assert stats.points_in_grid <= stats.points
    assert 10_000 < stats.voxels <= stats.points_in_grid
    # Surfaces give several neighbours per voxel ...
    assert 2.0 < stats.mean_neighbours < 12.0
    # ... voxels scattered uniformly at random in the same grid give almost none.
    shape = PRESETS["nuscenes"].spatial_shape
    rng = np.random.default_rng(seed)
    keys = rng.choice(np.prod(shape), size=stats.voxels, replace=False)
    uniform = np.stack(np.unravel_index(keys, shape), axis=1)
    assert mean_active_neighbours(uniform, shape) < 0.05


def test_command_line_prints_a_row_per_frame(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--preset", "kitti", "--frames", "2", "--seed", "3"])
    out = capsys.readouterr().out
    assert "[41, 1600, 1408]" in out
    lines = out.strip().splitlines()
    assert lines[-1].split()[0] == "mean" and [ln.split()[0] for ln in lines[-3:-1]] == ["0", "1"]
