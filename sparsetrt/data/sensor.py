"""Spinning-lidar models: beam elevations, azimuth resolution, mounting, range limits and noise.

Two sensors cover the usual benchmarks:

* ``LIDAR_32``: a Velodyne HDL-32E-like sensor as on the nuScenes car (32 evenly spaced beams from
  +10.67° to -30.67°, about 1080 firings per revolution at 20 Hz).
* ``LIDAR_64``: an HDL-64E-like sensor as on the KITTI car, also standing in for Waymo's top lidar
  (64 beams from +2° to -24.8°, denser near the horizon, about 2083 firings per revolution at 10 Hz).

The numbers are rounded public specifications; nothing here tries to reproduce a particular unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LidarSpec:
    """A spinning lidar: one ray per (beam, azimuth step) and revolution.

    Attributes:
        name: a label for reports.
        elevations_deg: beam elevations in degrees, highest first.
        num_azimuth: firings per revolution (azimuth steps).
        mount_height: height of the optical centre above the ground, metres.
        min_range / max_range: returns outside this range are dropped (the near limit stands in for the
            ego vehicle's own body, which real pipelines also crop).
        range_noise_std: standard deviation of the Gaussian range error, metres.
        rate_hz: revolutions per second; sweeps of a multi-sweep frame are ``1 / rate_hz`` apart.
    """

    name: str
    elevations_deg: tuple[float, ...]
    num_azimuth: int
    mount_height: float = 1.8
    min_range: float = 1.0
    max_range: float = 80.0
    range_noise_std: float = 0.02
    rate_hz: float = 10.0

    @property
    def num_beams(self) -> int:
        return len(self.elevations_deg)

    @property
    def rays_per_sweep(self) -> int:
        return self.num_beams * self.num_azimuth

    def elevations_rad(self) -> np.ndarray:
        """Beam elevations [num_beams] in radians, float64."""
        return np.deg2rad(np.asarray(self.elevations_deg, dtype=np.float64))


def _even(top: float, bottom: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(top, bottom, n))


LIDAR_32 = LidarSpec(
    name="32-beam (nuScenes-like)",
    elevations_deg=_even(10.67, -30.67, 32),
    num_azimuth=1080,
    mount_height=1.84,
    max_range=70.0,
    rate_hz=20.0,
)

# The HDL-64E has an upper block of 32 lasers at about 1/3° spacing and a lower block at about 1/2°;
# keeping the two blocks matters because the fine upper block is what lands on distant objects.
LIDAR_64 = LidarSpec(
    name="64-beam (KITTI/Waymo-like)",
    elevations_deg=_even(2.0, -8.33, 32) + _even(-8.83, -24.8, 32),
    num_azimuth=2083,
    mount_height=1.8,
    max_range=100.0,
    rate_hz=10.0,
)

SENSORS: dict[int, LidarSpec] = {32: LIDAR_32, 64: LIDAR_64}


def sensor_for_beams(beams: int) -> LidarSpec:
    """The built-in sensor with ``beams`` beams (32 or 64)."""
    try:
        return SENSORS[beams]
    except KeyError:
        raise ValueError(f"no built-in lidar with {beams} beams; choose one of {sorted(SENSORS)}") from None
