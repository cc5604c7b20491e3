"""Deterministic, structured random inputs for the zoo models.

Uniformly random voxels are useless for testing sparse convolutions: at realistic occupancy almost no voxel
has an active neighbour, so every SubM conv degenerates to its kernel centre and strided convs never merge
sites.  Real inputs are 2D manifolds embedded in the grid (LiDAR returns lie on surfaces, pen strokes on
curves), so the generators below draw sites on such structures:

* `lidar_voxels`: a tilted, noisy ground plane plus a few yawed box surfaces ("cars") and vertical poles,
  cropped to the sites nearest a random sensor position (LiDAR density falls off with range), giving a
  connected blob with 3D neighbourhoods like a real scan.
* `pen_strokes`: smooth random pen trajectories rasterised onto a 2D grid, as in online handwriting.

Everything is drawn from a `numpy.random.Generator` seeded by the caller; no global RNG state is used.
Coordinates are int32 `(batch, *spatial)` and unique within each sample; features are float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["lidar_voxels", "pen_strokes"]


def _ground_height(rng: np.random.Generator, depth: int) -> tuple[float, float, float]:
    """Offset and slopes (per cell) of a gently tilted ground plane, in voxel units."""
    z0 = rng.uniform(0.15, 0.3) * depth
    return z0, rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)


def _box_surface_points(
    rng: np.random.Generator, centre_yx: np.ndarray, base_z: float, size_lwh: np.ndarray, yaw: float
) -> np.ndarray:
    """Points sampled on the four sides and the roof of a yawed box (the floor is hidden by the ground)."""
    length, width, height = size_lwh
    half = np.array([length / 2, width / 2])
    # Face samples in the box frame (u along length, v along width, h up), about 3 points per unit area
    # so that each face voxelises into a closed sheet.
    faces = []
    for axis, extent in ((0, width), (1, length)):  # the two faces normal to u, then the two normal to v
        for sign in (-1.0, 1.0):
            n = int(3 * extent * height) + 1
            uv = rng.uniform(-half, half, (n, 2))
            uv[:, axis] = sign * half[axis]
            faces.append(np.column_stack([uv, rng.uniform(0, height, n)]))
    n = int(3 * length * width) + 1
    faces.append(np.column_stack([rng.uniform(-half, half, (n, 2)), np.full(n, height)]))
    uvh = np.concatenate(faces)
    cos, sin = np.cos(yaw), np.sin(yaw)
    y = centre_yx[0] + cos * uvh[:, 0] - sin * uvh[:, 1]
    x = centre_yx[1] + sin * uvh[:, 0] + cos * uvh[:, 1]
    return np.stack([base_z + uvh[:, 2], y, x], axis=1)


def _scene_points(
    rng: np.random.Generator, spatial_shape: Sequence[int], sensor: np.ndarray, radius: float
) -> np.ndarray:
    """Continuous `(z, y, x)` points on the ground and on objects within `radius` (in y/x) of the sensor."""
    depth, height, width = spatial_shape
    z0, slope_y, slope_x = _ground_height(rng, depth)

    def ground(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return z0 + slope_y * (y - height / 2) + slope_x * (x - width / 2)

    low = np.maximum(np.floor(sensor - radius), 0).astype(int)
    high = np.minimum(np.ceil(sensor + radius), [height, width]).astype(int)
    # Ground: one return per column (occasionally two, where noise straddles a voxel boundary).
    yy, xx = np.meshgrid(np.arange(low[0], high[0]) + 0.5, np.arange(low[1], high[1]) + 0.5, indexing="ij")
    yy, xx = yy.ravel(), xx.ravel()
    extra = rng.random(yy.size) < 0.2
    gy = np.concatenate([yy, yy[extra]])
    gx = np.concatenate([xx, xx[extra]])
    parts = [np.stack([ground(gy, gx) + rng.normal(0, 0.35, gy.size), gy, gx], axis=1)]

    # Objects standing on the ground: boxes of car-like proportions and thin poles.
    scale = min(height, width) / 160.0
    for _ in range(int(rng.integers(4, 10))):
        centre = rng.uniform(low, high)
        length = rng.uniform(6, 16) * scale + 2
        width_ = rng.uniform(3, 7) * scale + 1.5
        size = np.array([length, width_, rng.uniform(0.08, 0.25) * depth + 1])
        base = ground(centre[0], centre[1])
        parts.append(_box_surface_points(rng, centre, base, size, rng.uniform(0, np.pi)))
    for _ in range(int(rng.integers(2, 6))):
        centre = rng.uniform(low, high)
        top = rng.uniform(0.3, 0.7) * depth
        n = int(4 * top) + 1
        ring = rng.uniform(0, 2 * np.pi, n)
        base = ground(centre[0], centre[1])
        pole = [
            rng.uniform(base, base + top, n),
            centre[0] + 0.6 * np.cos(ring),
            centre[1] + 0.6 * np.sin(ring),
        ]
        parts.append(np.stack(pole, axis=1))
    return np.concatenate(parts)


def _scene_sites(rng: np.random.Generator, spatial_shape: Sequence[int], num_sites: int) -> np.ndarray:
    """Unique `(z, y, x)` voxel sites of one synthetic LiDAR scene, `num_sites` of them if the grid allows."""
    height, width = spatial_shape[1:]
    sensor = rng.uniform([0.3 * height, 0.3 * width], [0.7 * height, 0.7 * width])
    # Only the sensor's surroundings survive the range crop below, so only they are populated: start with a
    # disc whose ground alone holds about twice the sites wanted, and widen it if the grid edge cut it short.
    radius = np.sqrt(2 * num_sites / np.pi) + 3
    while True:
        sites = np.floor(_scene_points(rng, spatial_shape, sensor, radius)).astype(np.int64)
        inside = np.all((sites >= 0) & (sites < np.asarray(spatial_shape)), axis=1)
        # Deduplicate on linear indices: much faster than np.unique(axis=0).
        linear = np.unique(np.ravel_multi_index(tuple(sites[inside].T), tuple(spatial_shape)))
        sites = np.stack(np.unravel_index(linear, tuple(spatial_shape)), axis=1)
        if len(sites) >= num_sites or radius > height + width:
            break
        radius *= 1.5

    # Range-limited sensor: keep the sites closest (in the ground plane) to the sensor, with a multiplicative
    # jitter so the crop boundary is ragged like a real scan's fall-off.
    dist = np.hypot(sites[:, 1] + 0.5 - sensor[0], sites[:, 2] + 0.5 - sensor[1])
    score = dist * np.exp(rng.normal(0, 0.1, dist.size))
    keep = np.argsort(score, kind="stable")[:num_sites]
    # Shuffle: voxelisers emit sites in arbitrary order, and consumers must not rely on any.
    return sites[rng.permutation(keep)]


def _lidar_features(
    rng: np.random.Generator, sites: np.ndarray, spatial_shape: Sequence[int], num_features: int
) -> np.ndarray:
    """Per-voxel features like a mean-VFE: normalised point position within the grid, intensity, extras."""
    extent = np.asarray(spatial_shape, dtype=np.float64)
    # Mean point inside the voxel, normalised to [-1, 1] per axis, ordered (x, y, z) as in point clouds.
    xyz = ((sites + rng.uniform(0.2, 0.8, sites.shape)) / extent * 2 - 1)[:, ::-1]
    intensity = rng.beta(2, 5, (len(sites), 1))
    extras = rng.normal(0, 0.5, (len(sites), max(0, num_features - 4)))
    return np.concatenate([xyz, intensity, extras], axis=1)[:, :num_features]


def _batched(samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate per-sample `(features, sites)` into `(features [N, C] f32, coords [N, 1+ndim] i32)`."""
    feats = np.concatenate([f for f, _ in samples])
    coords = np.concatenate([np.concatenate([np.full((len(s), 1), b), s], axis=1) for b, (_, s) in enumerate(samples)])
    return torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(coords.astype(np.int32))


def lidar_voxels(
    seed: int, batch_size: int, num_voxels: int, spatial_shape: Sequence[int], num_features: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxelised synthetic LiDAR scenes.

    Args:
        seed: seed of the numpy Generator; equal arguments give identical tensors.
        batch_size: number of independent scenes.
        num_voxels: voxels per scene (fewer only if the grid cannot hold that many surface voxels).
        spatial_shape: `(D, H, W)` grid, indexed `(z, y, x)` like OpenPCDet's `sparse_shape`.
        num_features: feature channels: `x, y, z, intensity`, then standard-normal extras (or a prefix).

    Returns:
        `features [N, num_features] float32` and `coords [N, 4] int32` as `(batch, z, y, x)`.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch_size):
        sites = _scene_sites(rng, spatial_shape, num_voxels)
        samples.append((_lidar_features(rng, sites, spatial_shape, num_features), sites))
    return _batched(samples)


def _stroke(rng: np.random.Generator, spatial_shape: Sequence[int]) -> np.ndarray:
    """Pixels `[n, 2]` inked by one smooth random pen stroke, in drawing order (with repeats)."""
    height, width = spatial_shape
    steps = int(rng.integers(20, 120))
    # The curvature itself is an AR(1) random walk, which gives loops and hooks like handwriting.
    turn = np.convolve(rng.normal(0, 0.15, steps), 0.8 ** np.arange(steps))[:steps]
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(turn)
    start = rng.uniform([0.15 * height, 0.15 * width], [0.85 * height, 0.85 * width])
    pos = start + 0.7 * np.cumsum(np.stack([np.sin(heading), np.cos(heading)], axis=1), axis=0)
    outside = np.flatnonzero((pos < 0).any(axis=1) | (pos >= [height, width]).any(axis=1))
    pix = pos[: outside[0] if outside.size else steps].astype(np.int64)  # the pen leaves the paper: stop
    # A pen is about 1.5 pixels wide: at some points ink the pixels below and to the right as well.
    candidates = pix[:, None, :] + np.array([[0, 0], [1, 0], [0, 1]])  # [n, 3, 2]
    inked = np.ones((len(pix), 3), dtype=bool)
    inked[:, 1:] = (rng.random(len(pix)) < 0.4)[:, None]
    # Boolean indexing walks [n, 3] row-major, so the drawing order is kept.
    return np.minimum(candidates[inked], [height - 1, width - 1])


def _stroke_pixels(rng: np.random.Generator, spatial_shape: Sequence[int], num_pixels: int) -> np.ndarray:
    """Unique `(y, x)` pixels of random pen strokes, in drawing order, `num_pixels` of them."""
    ink = np.zeros(tuple(spatial_shape), dtype=bool)
    strokes = []
    while ink.sum() < num_pixels:
        strokes.append(_stroke(rng, spatial_shape))
        ink[strokes[-1][:, 0], strokes[-1][:, 1]] = True
    pixels = np.concatenate(strokes)
    # First occurrence of every pixel, in drawing order, so the cut below drops the tail of the last stroke.
    _, first = np.unique(np.ravel_multi_index(tuple(pixels.T), tuple(spatial_shape)), return_index=True)
    return pixels[np.sort(first)][:num_pixels]


def pen_strokes(
    seed: int, batch_size: int, num_pixels: int, spatial_shape: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterised synthetic handwriting with one feature channel (ink intensity in (0.5, 1]).

    `num_pixels` is clamped to 40% of the grid: handwriting never covers more, and the stroke sampler would
    otherwise take very long to fill the last free pixels.

    Returns:
        `features [N, 1] float32` and `coords [N, 3] int32` as `(batch, y, x)`.
    """
    rng = np.random.default_rng(seed)
    target = min(num_pixels, int(0.4 * spatial_shape[0] * spatial_shape[1]))
    samples = []
    for _ in range(batch_size):
        pixels = _stroke_pixels(rng, spatial_shape, target)
        samples.append((1.0 - 0.5 * rng.random((len(pixels), 1)), rng.permutation(pixels)))
    return _batched(samples)
