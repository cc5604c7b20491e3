"""Head outputs -> boxes: heatmap peaks (3 × 3 max pooling instead of NMS, as in CenterPoint) and the
box regression read at each peak. Works on PyTorch's outputs and on an exported file's (numpy) alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import BOX_CODE, DetectorConfig

SCORE_THRESHOLD = 0.1
MAX_DETECTIONS = 50


@dataclass
class Detections:
    """The detections of one frame, best first.

    Attributes:
        boxes: float32 [K, 7] ``(x, y, z, dx, dy, dz, yaw)`` in the lidar frame, yaw in (−π/2, π/2]: the
            long axis' orientation, not the heading (see ``model.BOX_CODE``).
        scores: float32 [K] heatmap probabilities.
        labels: int64 [K] indices into ``DetectorConfig.class_names``.
        cells: int64 [K, 3] ``(class, row, column)`` of the heatmap peak each came from.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    cells: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x.detach().float().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, np.float32))


def decode(
    cfg: DetectorConfig,
    heatmap_logits: torch.Tensor | np.ndarray,
    box: torch.Tensor | np.ndarray,
    score_threshold: float = SCORE_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> list[Detections]:
    """Detections of every frame of ``heatmap_logits [B, classes, H, W]`` and ``box [B, 8, H, W]``.

    A cell is a peak when its probability is the maximum of its 3 × 3 neighbourhood; the best
    ``max_detections`` peaks above ``score_threshold`` become boxes.
    """
    hm, reg = _as_tensor(heatmap_logits), _as_tensor(box)
    b, c, h, w = hm.shape
    if c != len(cfg.class_names) or tuple(reg.shape) != (b, len(BOX_CODE), h, w) or (h, w) != cfg.bev_shape:
        raise ValueError(
            f"head outputs {list(hm.shape)} and {list(reg.shape)} do not fit the config: expected "
            f"[B, {len(cfg.class_names)}, {cfg.bev_shape[0]}, {cfg.bev_shape[1]}] and [B, {len(BOX_CODE)}, ...]"
        )
    prob = torch.sigmoid(hm)
    peaks = prob * (F.max_pool2d(prob, 3, stride=1, padding=1) == prob)
    cell_x = cfg.voxel_size[0] * cfg.out_size_factor
    cell_y = cfg.voxel_size[1] * cfg.out_size_factor
    x_min, y_min = cfg.point_cloud_range[0], cfg.point_cloud_range[1]
    out = []
    for i in range(b):
        scores, flat = peaks[i].reshape(-1).topk(min(max_detections, c * h * w))
        keep = scores > score_threshold
        scores, flat = scores[keep], flat[keep]
        cls, row, col = flat // (h * w), (flat % (h * w)) // w, flat % w
        r = reg[i][:, row, col].T  # [K, 8]
        boxes = torch.stack(
            [
                (col + r[:, 0]) * cell_x + x_min,
                (row + r[:, 1]) * cell_y + y_min,
                r[:, 2],
                r[:, 3].exp(),
                r[:, 4].exp(),
                r[:, 5].exp(),
                torch.atan2(r[:, 6], r[:, 7]) / 2,  # the orientation axis, in (-π/2, π/2]
            ],
            dim=1,
        )
        out.append(
            Detections(
                boxes=boxes.numpy().astype(np.float32),
                scores=scores.numpy().astype(np.float32),
                labels=cls.numpy(),
                cells=torch.stack([cls, row, col], dim=1).numpy(),
            )
        )
    return out
