"""Random street scenes for the synthetic lidar: ground, building facades, poles and road users.

Everything is expressed in the *scene frame*: x forward along the street, y left, z up, the ground plane
through the origin (z = 0 under the sensor). The ego vehicle stands at the origin at the newest sweep
and drove along +x before it, so a strip around the negative x axis is kept free of obstacles.

Road users are oriented boxes ``(x, y, z, dx, dy, dz, yaw)`` with ``z`` the box centre (the OpenPCDet
convention), sized around the usual class means. Objects never overlap in bird's-eye view: every object
is represented by a few discs and a candidate is rejected when any of its discs comes too close to a disc
already placed (simple rejection sampling, a bounded number of tries per object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("car", "pedestrian", "cyclist")
"""Class label ``i`` of a ground-truth box is ``CLASS_NAMES[i]``."""

# Mean box sizes (dx, dy, dz) in metres; dx is the length along the heading.
CLASS_SIZES: dict[str, tuple[float, float, float]] = {
    "car": (4.5, 1.9, 1.6),
    "pedestrian": (0.7, 0.7, 1.75),
    "cyclist": (1.8, 0.6, 1.7),
}


@dataclass(frozen=True)
class SceneConfig:
    """How dense and how large a random scene is. Ranges ``(lo, hi)`` are sampled uniformly per scene.

    The defaults were tuned so that the nuScenes preset (32 beams, 10 sweeps, 0.075 m voxels) lands at
    the published order of magnitude of voxels per frame; see ``docs/synthetic_lidar.md``.
    """

    object_range: tuple[float, float] = (4.0, 50.0)
    """Box centres lie at this horizontal distance from the sensor (metres)."""
    num_cars: tuple[int, int] = (10, 25)
    num_pedestrians: tuple[int, int] = (4, 14)
    num_cyclists: tuple[int, int] = (1, 6)
    num_facades: tuple[int, int] = (8, 16)
    num_poles: tuple[int, int] = (8, 24)
    street_half_width: tuple[float, float] = (8.0, 16.0)
    """Distance from the street axis to the building line on each side."""
    facade_length: tuple[float, float] = (8.0, 40.0)
    facade_height: tuple[float, float] = (4.0, 16.0)
    max_ground_slope_deg: float = 0.0
    """Largest slope of the ground plane; 0 keeps the ground exactly at z = 0."""
    ego_speed: tuple[float, float] = (0.0, 8.0)
    """Ego speed in m/s; it moves the sensor between the sweeps of one frame."""
    ego_yaw_rate: tuple[float, float] = (-0.15, 0.15)
    """Ego yaw rate in rad/s."""
    max_tries: int = 40
    """Candidates drawn per object before giving up on it (keeps generation time bounded)."""


@dataclass
class Scene:
    """A static scene plus the ego motion that samples it.

    Attributes:
        ground_slope: ``(sx, sy)``; the ground is ``z = sx * x + sy * y``.
        boxes: float64 [B, 7] ``(x, y, z, dx, dy, dz, yaw)``, z the box centre.
        labels: int32 [B], indices into :data:`CLASS_NAMES`.
        box_reflectivity: float64 [B] in (0, 1].
        poles: float64 [P, 5] ``(x, y, z_bottom, height, radius)``: vertical capped cylinders.
        pole_reflectivity: float64 [P].
        facades: float64 [F, 6] ``(x, y, z_bottom, length, height, yaw)``: vertical rectangles centred on
            ``(x, y)``, running along ``yaw``.
        facade_reflectivity: float64 [F].
        ground_reflectivity: reflectivity of the road surface.
        ego_speed / ego_yaw_rate: constant ego motion during the sweeps of one frame.
    """

    ground_slope: tuple[float, float]
    boxes: np.ndarray
    labels: np.ndarray
    box_reflectivity: np.ndarray
    poles: np.ndarray
    pole_reflectivity: np.ndarray
    facades: np.ndarray
    facade_reflectivity: np.ndarray
    ground_reflectivity: float = 0.15
    ego_speed: float = 0.0
    ego_yaw_rate: float = 0.0
    config: SceneConfig = field(default_factory=SceneConfig)

    def ground_height(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | float:
        """Height of the ground plane under ``(x, y)``."""
        sx, sy = self.ground_slope
        return sx * x + sy * y

    def ego_pose(self, time: float) -> tuple[float, float, float]:
        """Ego ``(x, y, heading)`` at ``time`` seconds relative to the newest sweep (negative = past).

        Constant speed and yaw rate: an arc through the origin with heading 0 at time 0.
        """
        v, w = self.ego_speed, self.ego_yaw_rate
        heading = w * time
        if abs(w) < 1e-9:
            return v * time, 0.0, heading
        return v * np.sin(heading) / w, v * (1.0 - np.cos(heading)) / w, heading


class _DiscSet:
    """Bird's-eye-view discs of the objects placed so far, for overlap rejection."""

    def __init__(self, margin: float) -> None:
        self.margin = margin
        self.xyr = np.zeros((0, 3))

    def is_free(self, discs: np.ndarray) -> bool:
        if len(self.xyr) == 0:
            return True
        d = np.hypot(discs[:, None, 0] - self.xyr[None, :, 0], discs[:, None, 1] - self.xyr[None, :, 1])
        return bool(np.all(d >= discs[:, None, 2] + self.xyr[None, :, 2] + self.margin))

    def add(self, discs: np.ndarray) -> None:
        self.xyr = np.concatenate([self.xyr, discs], axis=0)


def _segment_discs(x: float, y: float, length: float, yaw: float, radius: float) -> np.ndarray:
    """Discs of ``radius`` spaced at most ``radius`` apart covering a segment (a facade's footprint)."""
    n = max(2, int(np.ceil(length / radius)) + 1)
    s = np.linspace(-length / 2, length / 2, n)
    return np.stack([x + s * np.cos(yaw), y + s * np.sin(yaw), np.full(n, radius)], axis=1)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _count(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def generate_scene(rng: np.random.Generator, config: SceneConfig | None = None) -> Scene:
    """Draw a random street scene; the same generator state gives the same scene.

    Layout: a street along x with building facades on both sides (a few cross streets' facades run
    along y), poles along the kerbs, cars mostly in lanes and parked along the kerbs, pedestrians and
    cyclists anywhere in the free space within ``config.object_range``.
    """
    cfg = config or SceneConfig()
    slope_max = np.tan(np.deg2rad(cfg.max_ground_slope_deg))
    ground_slope = (float(rng.uniform(-slope_max, slope_max)), float(rng.uniform(-slope_max, slope_max)))
    ego_speed = _uniform(rng, cfg.ego_speed)
    ego_yaw_rate = _uniform(rng, cfg.ego_yaw_rate)

    occupied = _DiscSet(margin=0.3)
    # Keep the ego vehicle's recent path clear: at most ~1 s of driving at the top speed, plus its body.
    occupied.add(_segment_discs(-4.0, 0.0, 16.0, 0.0, 2.5))
    # Distance from the street axis to the building line: [right (y < 0), left (y > 0)].
    building_line = (_uniform(rng, cfg.street_half_width), _uniform(rng, cfg.street_half_width))

    facades = _place_facades(rng, cfg, occupied, building_line, ground_slope)
    poles = _place_poles(rng, cfg, occupied, building_line, ground_slope)
    boxes, labels = _place_road_users(rng, cfg, occupied, building_line, ground_slope)

    # Cars span dark paint to retro-reflective plates; people and facades are mid-grey, asphalt is dark.
    refl_lo = np.array([0.1, 0.2, 0.2])[labels]
    refl_hi = np.array([0.9, 0.5, 0.6])[labels]
    return Scene(
        ground_slope=ground_slope,
        boxes=boxes,
        labels=labels,
        box_reflectivity=rng.uniform(refl_lo, refl_hi),
        poles=poles,
        pole_reflectivity=rng.uniform(0.3, 0.8, size=len(poles)),
        facades=facades,
        facade_reflectivity=rng.uniform(0.2, 0.6, size=len(facades)),
        ground_reflectivity=float(rng.uniform(0.08, 0.2)),
        ego_speed=ego_speed,
        ego_yaw_rate=ego_yaw_rate,
        config=cfg,
    )


def _side(rng: np.random.Generator) -> int:
    """0 for the right-hand side of the street (y < 0), 1 for the left; indexes ``building_line``."""
    return int(rng.random() < 0.5)


def _place_facades(
    rng: np.random.Generator,
    cfg: SceneConfig,
    occupied: _DiscSet,
    building_line: tuple[float, float],
    slope: tuple[float, float],
) -> np.ndarray:
    """float64 [F, 6] facades ``(x, y, z_bottom, length, height, yaw)``."""
    r_max = cfg.object_range[1]
    grade = np.hypot(*slope)
    facades = []
    for _ in range(_count(rng, cfg.num_facades)):
        for _try in range(cfg.max_tries):
            length = _uniform(rng, cfg.facade_length)
            height = _uniform(rng, cfg.facade_height)
            if rng.random() < 0.75:  # on a building line along the street
                side = _side(rng)
                y = (2 * side - 1) * (building_line[side] + rng.uniform(0.0, 6.0))
                x = rng.uniform(-r_max - 10, r_max + 10)
                yaw = rng.normal(0.0, 0.03)
            else:  # facing a cross street
                x = rng.uniform(-r_max, r_max)
                y = (2 * _side(rng) - 1) * rng.uniform(max(building_line) + length / 2, r_max + 10)
                yaw = np.pi / 2 + rng.normal(0.0, 0.03)
            discs = _segment_discs(x, y, length, yaw, 0.3)
            if occupied.is_free(discs):
                occupied.add(discs)
                # Reach below the (possibly sloped) ground along the whole length: no gap under a wall.
                sink = 0.3 + grade * length / 2
                bottom = slope[0] * x + slope[1] * y - sink
                facades.append([x, y, bottom, length, height + sink, yaw])
                break
    return np.asarray(facades, dtype=np.float64).reshape(-1, 6)


def _place_poles(
    rng: np.random.Generator,
    cfg: SceneConfig,
    occupied: _DiscSet,
    building_line: tuple[float, float],
    slope: tuple[float, float],
) -> np.ndarray:
    """float64 [P, 5] poles ``(x, y, z_bottom, height, radius)`` along the kerbs."""
    r_max = cfg.object_range[1]
    poles = []
    for _ in range(_count(rng, cfg.num_poles)):
        for _try in range(cfg.max_tries):
            side = _side(rng)
            x = rng.uniform(-r_max, r_max)
            y = (2 * side - 1) * (building_line[side] - rng.uniform(0.5, 2.5))
            radius = rng.uniform(0.06, 0.3)
            disc = np.array([[x, y, radius]])
            if occupied.is_free(disc):
                occupied.add(disc)
                poles.append([x, y, slope[0] * x + slope[1] * y - 0.3, rng.uniform(3.0, 9.0), radius])
                break
    return np.asarray(poles, dtype=np.float64).reshape(-1, 5)


def _place_road_users(
    rng: np.random.Generator,
    cfg: SceneConfig,
    occupied: _DiscSet,
    building_line: tuple[float, float],
    slope: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """float64 [B, 7] boxes ``(x, y, z, dx, dy, dz, yaw)`` standing on the ground, int32 [B] labels."""
    r_min, r_max = cfg.object_range
    counts = {"car": cfg.num_cars, "pedestrian": cfg.num_pedestrians, "cyclist": cfg.num_cyclists}
    boxes, labels = [], []
    for label, name in enumerate(CLASS_NAMES):
        mean_size = np.asarray(CLASS_SIZES[name])
        for _ in range(_count(rng, counts[name])):
            for _try in range(cfg.max_tries):
                size = mean_size * rng.uniform(0.9, 1.1, size=3)
                if name == "car" and rng.random() < 0.7:
                    # In a lane or parked along the kerb, driving on the right, roughly along the street.
                    side = _side(rng)
                    lane_y = rng.choice([1.8, 5.4, building_line[side] - 3.5])
                    x, y = rng.uniform(-r_max, r_max), (2 * side - 1) * lane_y + rng.normal(0.0, 0.3)
                    yaw = (np.pi if side else 0.0) + rng.normal(0.0, 0.05)
                else:
                    r = np.sqrt(rng.uniform(r_min**2, r_max**2))  # uniform over the annulus' area
                    phi = rng.uniform(-np.pi, np.pi)
                    x, y, yaw = r * np.cos(phi), r * np.sin(phi), rng.uniform(-np.pi, np.pi)
                if not r_min <= np.hypot(x, y) <= r_max:
                    continue
                disc = np.array([[x, y, 0.5 * np.hypot(size[0], size[1])]])
                if occupied.is_free(disc):
                    occupied.add(disc)
                    z = slope[0] * x + slope[1] * y + size[2] / 2
                    boxes.append([x, y, z, *size, np.arctan2(np.sin(yaw), np.cos(yaw))])
                    labels.append(label)
                    break
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 7), np.asarray(labels, dtype=np.int32)
