"""Analytic, vectorised ray casting of one lidar sweep against a :class:`~sparsetrt.data.scene.Scene`.

Each primitive has a closed-form intersection evaluated for many rays at once in numpy:

* ground: a plane ``z = sx * x + sy * y``;
* facades: finite vertical rectangles (plane hit, then an in-rectangle test);
* poles: vertical cylinders with flat caps (a quadratic for the side, planes for the caps);
* road users: oriented boxes, by the slab method in the box's own frame.

A sweep's rays form a grid ``[beam, azimuth step]``. The ground is cast against the whole grid; every
other object only against the sub-grid inside its conservative azimuth/elevation bounds as seen from the
sensor, which is what keeps a 10-sweep, 32-beam frame well under a second on one core: the Python loop
runs over objects (tens), never over rays (hundreds of thousands).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .scene import Scene
from .sensor import LidarSpec

SURFACE_NONE = -1
SURFACE_GROUND = 0
SURFACE_FACADE = 1
SURFACE_POLE = 2
SURFACE_BOX = 3
SURFACE_NAMES: dict[int, str] = {0: "ground", 1: "facade", 2: "pole", 3: "box"}

_EPS = 1e-12
_ANGLE_SLACK = 1e-3  # radians added to every culling bound, so rounding never drops a grazing ray


@dataclass
class SweepHits:
    """Returns of one sweep, noise already applied.

    Attributes:
        xyz: float64 [M, 3] hit points in the scene frame.
        intensity: float64 [M] in [0, 1].
        surface: int8 [M], one of the ``SURFACE_*`` codes.
        object_index: int32 [M], index of the hit object within its kind (-1 for the ground).
    """

    xyz: np.ndarray
    intensity: np.ndarray
    surface: np.ndarray
    object_index: np.ndarray


# --- closed-form intersections: origin [3], unit directions [M, 3] -> (t [M], |cos incidence| [M]) ------
# A miss is t = +inf.

Intersector = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _safe(x: np.ndarray) -> np.ndarray:
    """``x`` with near-zero entries replaced by 1: a divisor whose rays are masked out anyway.

    Dividing by it keeps every intermediate finite (no inf * 0 = nan warnings); callers reject those
    rays with their own ``abs(x) > _EPS`` test.
    """
    return np.where(np.abs(x) > _EPS, x, 1.0)


def intersect_ground(origin: np.ndarray, dirs: np.ndarray, slope: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rays against the plane ``z = sx * x + sy * y``."""
    sx, sy = slope
    normal = np.array([-sx, -sy, 1.0]) / np.sqrt(1.0 + sx * sx + sy * sy)
    denom = dirs @ normal
    height = origin @ normal  # signed distance of the origin above the plane (plane passes through 0)
    t = -height / _safe(denom)
    t = np.where((denom < -_EPS) & (t > 0), t, np.inf)
    return t, np.abs(denom)


def intersect_box(origin: np.ndarray, dirs: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays against an oriented box ``(x, y, z, dx, dy, dz, yaw)``: slab method in the box frame."""
    c, s = np.cos(box[6]), np.sin(box[6])
    rel = origin - box[:3]
    # Rotate by -yaw so the box is axis-aligned and centred at the origin.
    o_local = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]])
    d_local = np.stack([c * dirs[:, 0] + s * dirs[:, 1], -s * dirs[:, 0] + c * dirs[:, 1], dirs[:, 2]], axis=1)
    half = 0.5 * box[3:6]
    # A zero direction component would give 0 * inf = nan on a slab boundary; nudge it to a tiny value
    # instead, which makes that slab's interval (-huge, +huge) or empty, as the limit says.
    inv = 1.0 / np.where(np.abs(d_local) < _EPS, _EPS, d_local)
    t1 = (-half - o_local) * inv
    t2 = (half - o_local) * inv
    t_near = np.minimum(t1, t2)
    t_far = np.maximum(t1, t2)
    entry_axis = np.argmax(t_near, axis=1)
    t_enter = np.take_along_axis(t_near, entry_axis[:, None], axis=1)[:, 0]
    t_exit = t_far.min(axis=1)
    hit = (t_enter <= t_exit) & (t_enter > 0)
    cos = np.abs(np.take_along_axis(d_local, entry_axis[:, None], axis=1)[:, 0])  # entry face normal = axis
    return np.where(hit, t_enter, np.inf), cos


def intersect_pole(origin: np.ndarray, dirs: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays against a vertical capped cylinder ``(x, y, z_bottom, height, radius)``."""
    px, py, z0, height, radius = pole
    z1 = z0 + height
    ox, oy, oz = origin[0] - px, origin[1] - py, origin[2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    a = dx * dx + dy * dy
    b = 2.0 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4.0 * a * c
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * _safe(a))
    z_side = oz + t_side * dz
    side_ok = (disc >= 0) & (a > _EPS) & (t_side > 0) & (z_side >= z0) & (z_side <= z1)
    # Outward side normal is ((x, y) - axis) / radius; its dot with the ray gives the incidence.
    cos_side = np.abs((ox + t_side * dx) * dx + (oy + t_side * dy) * dy) / radius
    t_side = np.where(side_ok, t_side, np.inf)

    t_cap = np.full_like(dz, np.inf)
    for z_cap, facing in ((z1, dz < -_EPS), (z0, dz > _EPS)):  # top cap seen from above, bottom from below
        t = (z_cap - oz) / _safe(dz)
        rx, ry = ox + t * dx, oy + t * dy
        ok = facing & (t > 0) & (rx * rx + ry * ry <= radius * radius)
        t_cap = np.where(ok & (t < t_cap), t, t_cap)

    use_cap = t_cap < t_side
    return np.where(use_cap, t_cap, t_side), np.where(use_cap, np.abs(dz), cos_side)


def intersect_facade(origin: np.ndarray, dirs: np.ndarray, facade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays against a vertical rectangle ``(x, y, z_bottom, length, height, yaw)`` (two-sided)."""
    fx, fy, z0, length, height, yaw = facade
    ux, uy = np.cos(yaw), np.sin(yaw)
    nx, ny = -uy, ux
    denom = dirs[:, 0] * nx + dirs[:, 1] * ny
    dist = (fx - origin[0]) * nx + (fy - origin[1]) * ny
    t = dist / _safe(denom)
    hx = origin[0] + t * dirs[:, 0] - fx
    hy = origin[1] + t * dirs[:, 1] - fy
    hz = origin[2] + t * dirs[:, 2]
    ok = (np.abs(denom) > _EPS) & (t > 0) & (np.abs(hx * ux + hy * uy) <= 0.5 * length)
    ok &= (hz >= z0) & (hz <= z0 + height)
    return np.where(ok, t, np.inf), np.abs(denom)


# --- culling bounds: for many objects at once, the azimuth interval and elevation band they can occupy ---

Bounds = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per object: azimuth centre, azimuth half-width, lowest and highest elevation (radians)."""


def _disc_bounds(
    origin: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, z_lo: np.ndarray, z_hi: np.ndarray
) -> Bounds:
    """(azimuth centre, azimuth half-width, lowest, highest elevation) of vertical prisms over discs."""
    ex, ey = cx - origin[0], cy - origin[1]
    dist = np.hypot(ex, ey)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.where(dist > radius, np.arcsin(np.clip(radius / dist, 0.0, 1.0)), np.pi)
    d_near = np.maximum(dist - radius, 0.0)
    return np.arctan2(ey, ex), half, *_elevation_band(origin[2], d_near, dist + radius, z_lo, z_hi)


def _pole_bounds(origin: np.ndarray, poles: np.ndarray) -> Bounds:
    x, y, z0, height, radius = poles.T
    return _disc_bounds(origin, x, y, radius, z0, z0 + height)


def _box_bounds(origin: np.ndarray, boxes: np.ndarray) -> Bounds:
    x, y, z, dx, dy, dz, _ = boxes.T
    return _disc_bounds(origin, x, y, 0.5 * np.hypot(dx, dy), z - dz / 2, z + dz / 2)


def _segment_bounds(origin: np.ndarray, facades: np.ndarray) -> Bounds:
    """Like :func:`_disc_bounds` for facades: the azimuth arc between the two end points."""
    fx, fy, z0, length, height, yaw = facades.T
    ux, uy = np.cos(yaw) * length / 2, np.sin(yaw) * length / 2
    ax, ay = fx - ux - origin[0], fy - uy - origin[1]
    bx, by = fx + ux - origin[0], fy + uy - origin[1]
    az_a, az_b = np.arctan2(ay, ax), np.arctan2(by, bx)
    span = np.angle(np.exp(1j * (az_b - az_a)))  # signed shorter arc from a to b
    # Distance from the sensor to the segment (clamped projection) bounds the nearest point.
    seg_x, seg_y = bx - ax, by - ay
    s = np.clip(-(ax * seg_x + ay * seg_y) / np.maximum(seg_x**2 + seg_y**2, _EPS), 0.0, 1.0)
    d_near = np.hypot(ax + s * seg_x, ay + s * seg_y)
    d_far = np.maximum(np.hypot(ax, ay), np.hypot(bx, by))
    return az_a + span / 2, np.abs(span) / 2, *_elevation_band(origin[2], d_near, d_far, z0, z0 + height)


def _elevation_band(
    oz: float, d_near: np.ndarray, d_far: np.ndarray, z_lo: np.ndarray, z_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # The steepest view of a height is from the nearest horizontal distance, the shallowest from the
    # farthest; which one bounds the band depends on whether that height is above or below the sensor.
    hi = np.where(z_hi >= oz, np.arctan2(z_hi - oz, d_near), np.arctan2(z_hi - oz, d_far))
    lo = np.where(z_lo <= oz, np.arctan2(z_lo - oz, d_near), np.arctan2(z_lo - oz, d_far))
    return lo, hi


# --- one sweep ----------------------------------------------------------------------------------------


def cast_sweep(
    scene: Scene,
    spec: LidarSpec,
    origin: np.ndarray,
    azimuth0: float,
    rng: np.random.Generator,
) -> SweepHits:
    """Cast one revolution of ``spec`` from ``origin`` (scene frame) and return its noisy returns.

    Args:
        scene: what the rays hit.
        spec: the lidar.
        origin: float [3], the optical centre in the scene frame.
        azimuth0: scene-frame azimuth (radians) of firing step 0; the sensor heading plus the random
            phase at which this revolution started.
        rng: draws the range and intensity noise.
    """
    origin = np.asarray(origin, dtype=np.float64)
    elev = spec.elevations_rad()
    num_az = spec.num_azimuth
    step = 2.0 * np.pi / num_az
    az = azimuth0 + step * np.arange(num_az)
    cos_el, sin_el = np.cos(elev), np.sin(elev)
    cos_az, sin_az = np.cos(az), np.sin(az)

    def grid_dirs(beams: np.ndarray | slice, steps: np.ndarray | slice) -> np.ndarray:
        ce, se = cos_el[beams], sin_el[beams]
        ca, sa = cos_az[steps], sin_az[steps]
        dirs = np.empty((len(ce), len(ca), 3))
        dirs[..., 0] = ce[:, None] * ca[None, :]
        dirs[..., 1] = ce[:, None] * sa[None, :]
        dirs[..., 2] = se[:, None]
        return dirs.reshape(-1, 3)

    shape = (len(elev), num_az)
    t_best, cos_best = intersect_ground(origin, grid_dirs(slice(None), slice(None)), scene.ground_slope)
    t_best, cos_best = t_best.reshape(shape), cos_best.reshape(shape)
    surface = np.where(np.isfinite(t_best), SURFACE_GROUND, SURFACE_NONE).astype(np.int8)
    index = np.full(shape, -1, dtype=np.int32)

    kinds: list[tuple[int, np.ndarray, Intersector, Bounds]] = [
        (SURFACE_FACADE, scene.facades, intersect_facade, _segment_bounds(origin, scene.facades)),
        (SURFACE_POLE, scene.poles, intersect_pole, _pole_bounds(origin, scene.poles)),
        (SURFACE_BOX, scene.boxes, intersect_box, _box_bounds(origin, scene.boxes)),
    ]
    for code, params, intersect, (az_mid, az_half, el_lo, el_hi) in kinds:
        beam_lo = np.searchsorted(-elev, -(el_hi + _ANGLE_SLACK), side="left")  # elev is descending
        beam_hi = np.searchsorted(-elev, -(el_lo - _ANGLE_SLACK), side="right")
        first = np.ceil((az_mid - az_half - _ANGLE_SLACK - azimuth0) / step).astype(np.int64)
        last = np.floor((az_mid + az_half + _ANGLE_SLACK - azimuth0) / step).astype(np.int64)
        for k in range(len(params)):
            if beam_hi[k] <= beam_lo[k]:
                continue
            beams = np.arange(beam_lo[k], beam_hi[k])
            steps = np.arange(num_az) if last[k] - first[k] + 1 >= num_az else np.arange(first[k], last[k] + 1) % num_az
            if len(steps) == 0:
                continue
            t, cos = intersect(origin, grid_dirs(beams, steps), params[k])
            t = t.reshape(len(beams), len(steps))
            block = np.ix_(beams, steps)
            t_cur = t_best[block]
            closer = t < t_cur
            if not closer.any():
                continue
            t_best[block] = np.where(closer, t, t_cur)
            cos_best[block] = np.where(closer, cos.reshape(t.shape), cos_best[block])
            surface[block] = np.where(closer, code, surface[block])
            index[block] = np.where(closer, k, index[block])

    valid = (t_best >= spec.min_range) & (t_best <= spec.max_range)
    beam_idx, step_idx = np.nonzero(valid)
    t = t_best[valid] + rng.normal(0.0, spec.range_noise_std, size=len(beam_idx))
    dirs = np.stack(
        [cos_el[beam_idx] * cos_az[step_idx], cos_el[beam_idx] * sin_az[step_idx], sin_el[beam_idx]], axis=1
    )
    surf = surface[valid]
    idx = index[valid]
    reflectivity = np.full(len(t), scene.ground_reflectivity)
    for code, values in (
        (SURFACE_FACADE, scene.facade_reflectivity),
        (SURFACE_POLE, scene.pole_reflectivity),
        (SURFACE_BOX, scene.box_reflectivity),
    ):
        sel = surf == code
        reflectivity[sel] = values[idx[sel]]
    # A simple diffuse model: brighter when hit head-on, plus a little sensor noise.
    intensity = reflectivity * (0.2 + 0.8 * cos_best[valid]) + rng.normal(0.0, 0.01, size=len(t))
    return SweepHits(
        xyz=origin + t[:, None] * dirs,
        intensity=np.clip(intensity, 0.0, 1.0),
        surface=surf,
        object_index=idx,
    )
