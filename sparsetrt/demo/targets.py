"""Training targets and losses of the center head, as in CenterPoint (Yin et al., CVPR 2021).

Every ground-truth box puts a Gaussian peak on its class's heatmap at the cell holding its centre, with
CenterNet's size-dependent radius, and the box regression (``model.BOX_CODE``) is supervised at that one
cell only. The heatmap loss is CenterNet's penalty-reduced focal loss, the regression loss an L1, both
normalised by the number of boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import BOX_CODE, DetectorConfig
from .scenes import DemoFrame

MIN_RADIUS = 2
"""Smallest Gaussian radius in cells (CenterPoint's ``MIN_RADIUS``)."""

BOX_LOSS_WEIGHT = 0.25
"""Weight of the regression loss against the heatmap loss (OpenPCDet's CenterPoint ``LOC_WEIGHT``)."""


def gaussian_radius(height: float, width: float, min_overlap: float = 0.1) -> float:
    """CenterNet's radius: the largest centre shift keeping IoU >= ``min_overlap`` with the true box,
    the smallest of its three cases (both corners move, one moves inside, one outside)."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def draw_gaussian(heatmap: np.ndarray, cx: int, cy: int, radius: int) -> None:
    """Max a Gaussian of ``sigma = (2r + 1) / 6`` centred on cell ``(cx, cy)`` into ``heatmap [H, W]``."""
    sigma = (2 * radius + 1) / 6
    d = np.arange(-radius, radius + 1)
    g = np.exp(-(d[None, :] ** 2 + d[:, None] ** 2) / (2 * sigma**2))
    h, w = heatmap.shape
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    if x0 >= x1 or y0 >= y1:
        return
    patch = g[y0 - cy + radius : y1 - cy + radius, x0 - cx + radius : x1 - cx + radius]
    np.maximum(heatmap[y0:y1, x0:x1], patch, out=heatmap[y0:y1, x0:x1])


def frame_targets(cfg: DetectorConfig, frame: DemoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(heatmap [classes, H, W], box [8, H, W], mask [H, W])`` of one frame.

    Only boxes with at least one lidar return are drawn: the others are invisible in the input, and
    asking the network to find them would teach it to hallucinate.
    """
    h, w = cfg.bev_shape
    cell_x = cfg.voxel_size[0] * cfg.out_size_factor
    cell_y = cfg.voxel_size[1] * cfg.out_size_factor
    x_min, y_min = cfg.point_cloud_range[0], cfg.point_cloud_range[1]
    heatmap = np.zeros((len(cfg.class_names), h, w), dtype=np.float32)
    box = np.zeros((len(BOX_CODE), h, w), dtype=np.float32)
    mask = np.zeros((h, w), dtype=np.float32)
    for (x, y, z, dx, dy, dz, yaw), label, hits in zip(frame.boxes, frame.labels, frame.num_points, strict=True):
        if hits < 1:
            continue
        cx, cy = (x - x_min) / cell_x, (y - y_min) / cell_y
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        radius = max(MIN_RADIUS, int(gaussian_radius(dy / cell_y, dx / cell_x)))
        draw_gaussian(heatmap[label], ix, iy, radius)
        box[:, iy, ix] = (cx - ix, cy - iy, z, np.log(dx), np.log(dy), np.log(dz), np.sin(2 * yaw), np.cos(2 * yaw))
        mask[iy, ix] = 1.0
    return heatmap, box, mask


def batch_targets(cfg: DetectorConfig, frames: Sequence[DemoFrame]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`frame_targets` of every frame, stacked: ``[B, classes, H, W]``, ``[B, 8, H, W]``, ``[B, H, W]``."""
    parts = [frame_targets(cfg, f) for f in frames]
    return tuple(torch.from_numpy(np.stack([p[i] for p in parts])) for i in range(3))  # type: ignore[return-value]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, num_objects: torch.Tensor) -> torch.Tensor:
    """CenterNet's focal loss (alpha 2, beta 4): negatives near a peak are penalised less."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg_weight = torch.pow(1 - target, 4)
    pos_loss = torch.log(p) * torch.pow(1 - p, 2) * pos
    neg_loss = torch.log(1 - p) * torch.pow(p, 2) * neg_weight * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / num_objects


def detection_loss(
    heatmap_logits: torch.Tensor,
    box: torch.Tensor,
    targets: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts: focal heatmap loss + ``BOX_LOSS_WEIGHT`` × L1 box loss at the centres."""
    hm_target, box_target, mask = targets
    num_objects = mask.sum().clamp_min(1.0)
    hm_loss = focal_loss(heatmap_logits, hm_target, num_objects)
    box_loss = (F.l1_loss(box, box_target, reduction="none") * mask[:, None]).sum() / num_objects
    total = hm_loss + BOX_LOSS_WEIGHT * box_loss
    return total, {"heatmap": float(hm_loss.detach()), "box": float(box_loss.detach())}
