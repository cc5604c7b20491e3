"""The demo detector's configuration and output layout: what the model, the scenes, the targets and the decoder
share. A module of its own, so that scenes (data) and model (network) need not import each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sparsetrt.data.voxelize import spatial_shape as grid_spatial_shape

BOX_CODE = ("dx_cell", "dy_cell", "z", "log_dx", "log_dy", "log_dz", "sin_2yaw", "cos_2yaw")
"""The box regression channels, in order (offsets are in BEV output cells, z and sizes in metres).

The angle is doubled: the synthetic cars are boxes, the same seen from the front and from the back, so
their heading is unobservable and only the orientation of their long axis (yaw modulo π) can be learnt.
Regressing ``sin yaw, cos yaw`` as CenterPoint does would average the two equally likely headings to
about zero; ``sin 2·yaw, cos 2·yaw`` is the same for both. BEV IoU does not depend on the heading."""

INPUT_NAMES = ["voxel_features", "voxel_coords"]
OUTPUT_NAMES = ["heatmap", "box"]


@dataclass(frozen=True)
class DetectorConfig:
    """Grid, widths and data of the demo detector. The defaults are the shipped model's.

    Attributes:
        point_cloud_range: ``(x_min, y_min, z_min, x_max, y_max, z_max)`` in the lidar's frame (the
            ground lies at about −1.84 m, the 32-beam lidar's mount height).
        voxel_size: ``(vx, vy, vz)`` in metres.
        channels: widths of the four sparse stages; ``out_channels`` that of the height-collapsing conv.
        blocks: residual blocks per sparse stage (``VoxelResBackBone8x`` has two).
        bev_channels: widths of the two BEV blocks (the upsampled maps have ``bev_channels[0]`` each).
        head_channels: width of the head's convs.
        class_names: the classes the heatmap has a channel for, names of ``sparsetrt.data.CLASS_NAMES``.
        beams / sweeps: the synthetic lidar the model is trained and evaluated on.
        object_range: distance band (metres) the scene generator places road users in: the grid's
            half-width plus a margin, so that most generated objects land inside the grid.
    """

    point_cloud_range: tuple[float, float, float, float, float, float] = (-25.6, -25.6, -3.0, 25.6, 25.6, 1.0)
    voxel_size: tuple[float, float, float] = (0.2, 0.2, 0.2)
    in_channels: int = 4
    channels: tuple[int, int, int, int] = (16, 32, 48, 64)
    out_channels: int = 64
    blocks: int = 1
    bev_channels: tuple[int, int] = (64, 96)
    head_channels: int = 64
    class_names: tuple[str, ...] = ("car",)
    beams: int = 32
    sweeps: int = 1
    object_range: tuple[float, float] = (4.0, 36.0)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The sparse backbone's ``[D, H, W]`` (OpenPCDet's: grid size reversed, one extra z layer)."""
        return grid_spatial_shape(self.point_cloud_range, self.voxel_size)

    @property
    def out_size_factor(self) -> int:
        """Voxels per head cell along x and y: 8 in the sparse backbone, halved by the BEV upsampling."""
        return 4

    @property
    def bev_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the head outputs."""
        _, h, w = self.spatial_shape
        return h // self.out_size_factor, w // self.out_size_factor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DetectorConfig fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


TINY = DetectorConfig(
    point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 1.0),
    voxel_size=(0.4, 0.4, 0.2),
    channels=(8, 8, 16, 16),
    out_channels=16,
    bev_channels=(16, 16),
    head_channels=16,
    object_range=(4.0, 26.0),  # the scene generator places cross-street facades out to this + 10 m, >= 36 m
)
"""A few-second config for tests: a 25.6 m square of 0.4 m voxels, 16 × 16 head cells."""
