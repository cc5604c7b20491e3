"""Detection quality on held-out synthetic frames: BEV average precision for cars.

The metric, defined here because every benchmark defines it a little differently:

* a detection matches a ground-truth box of its class when their **rotated bird's-eye-view IoU is at
  least 0.5** (primary figure, KITTI's BEV criterion for cars is 0.7) — or, for the second figure, when
  their centres are **at most 2 m apart** in BEV (nuScenes' loosest distance threshold);
* detections are taken best score first; each matches the unmatched ground-truth box it overlaps most;
  a detection matching nothing is a false positive, unless it matches a "don't care" box (fewer than
  ``scenes.MIN_POINTS`` lidar returns), in which case it is ignored; every ground-truth box with enough
  returns counts towards recall;
* AP is the area under the precision–recall curve with precision made monotone and sampled at the 40
  recall points 1/40, 2/40, ..., 1 (KITTI's R40), over all frames pooled.

``python -m sparsetrt.demo.evaluate --checkpoint CKPT`` scores a checkpoint and, for contrast, the same
network with random weights.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .decode import Detections, decode
from .model import CenterPointDetector, DetectorConfig, load_checkpoint
from .scenes import EVAL_SEED, MIN_POINTS, DemoFrame, collate, make_frames

IOU_THRESHOLD = 0.5
DISTANCE_THRESHOLD = 2.0


# ---------------------------------------------------------------------------------------- geometry


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """BEV corners ``[B, 4, 2]`` (counter-clockwise) of boxes ``[B, 7]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    x, y, dx, dy, yaw = boxes[:, 0], boxes[:, 1], boxes[:, 3], boxes[:, 4], boxes[:, 6]
    local = np.array([[0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    pts = local[None] * np.stack([dx, dy], axis=1)[:, None, :]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack(
        [x[:, None] + c * pts[..., 0] - s * pts[..., 1], y[:, None] + s * pts[..., 0] + c * pts[..., 1]], -1
    )


def _clip(subject: list[np.ndarray], a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Sutherland–Hodgman: the part of polygon ``subject`` left of the directed edge a -> b."""

    def side(p: np.ndarray) -> float:
        return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))

    out: list[np.ndarray] = []
    for i, p in enumerate(subject):
        q = subject[(i + 1) % len(subject)]
        sp, sq = side(p), side(q)
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            out.append(p + (q - p) * (sp / (sp - sq)))
    return out


def _area(poly: Sequence[np.ndarray]) -> float:
    if len(poly) < 3:
        return 0.0
    p = np.asarray(poly)
    return 0.5 * abs(float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))))


def bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotated BEV IoU ``[A, B]`` of boxes ``a [A, 7]`` and ``b [B, 7]`` (convex polygon clipping)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 7), np.asarray(b, np.float64).reshape(-1, 7)
    iou = np.zeros((len(a), len(b)))
    if not len(a) or not len(b):
        return iou
    ca, cb = box_corners(a), box_corners(b)
    area_a, area_b = a[:, 3] * a[:, 4], b[:, 3] * b[:, 4]
    # Only pairs whose circumscribed circles meet can overlap; skip the clipping for the rest.
    reach = np.hypot(a[:, 3], a[:, 4])[:, None] / 2 + np.hypot(b[:, 3], b[:, 4])[None, :] / 2
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    for i, j in zip(*np.nonzero(dist < reach), strict=True):
        poly = list(ca[i])
        for k in range(4):
            poly = _clip(poly, cb[j][k], cb[j][(k + 1) % 4])
            if not poly:
                break
        inter = _area(poly)
        iou[i, j] = inter / (area_a[i] + area_b[j] - inter)
    return iou


def centre_closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minus the BEV centre distance ``[A, B]``, so that larger is better as for IoU."""
    a, b = np.asarray(a, np.float64).reshape(-1, 7), np.asarray(b, np.float64).reshape(-1, 7)
    return -np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])


# --------------------------------------------------------------------------------------------- AP


@dataclass
class APResult:
    """Average precision and what it was computed from."""

    ap: float
    num_gt: int
    num_detections: int
    true_positives: int
    false_positives: int

    def __str__(self) -> str:
        return (
            f"AP {100 * self.ap:5.1f} % ({self.num_gt} cars, {self.num_detections} detections, "
            f"{self.true_positives} TP / {self.false_positives} FP)"
        )


def average_precision(
    detections: Sequence[Detections],
    frames: Sequence[DemoFrame],
    label: int = 0,
    criterion: str = "iou",
) -> APResult:
    """AP of class ``label`` over frames (see the module docstring); ``criterion`` "iou" or "distance"."""
    if len(detections) != len(frames):
        raise ValueError(f"{len(detections)} detection sets for {len(frames)} frames")
    if criterion == "iou":
        similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] = bev_iou
        threshold = IOU_THRESHOLD
    elif criterion == "distance":
        similarity, threshold = centre_closeness, -DISTANCE_THRESHOLD
    else:
        raise ValueError(f"criterion must be 'iou' or 'distance', got {criterion!r}")
    scores: list[float] = []
    is_tp: list[bool] = []
    num_gt = 0
    for det, frame in zip(detections, frames, strict=True):
        gt_mask = frame.labels == label
        gt, hits = frame.boxes[gt_mask], frame.num_points[gt_mask]
        care = hits >= MIN_POINTS
        num_gt += int(care.sum())
        keep = det.labels == label
        order = np.argsort(-det.scores[keep], kind="stable")
        boxes, det_scores = det.boxes[keep][order], det.scores[keep][order]
        sim = similarity(boxes, gt)
        taken = np.zeros(len(gt), dtype=bool)
        for d in range(len(boxes)):
            candidates = np.where(care & ~taken & (sim[d] >= threshold))[0]
            if len(candidates):
                taken[candidates[np.argmax(sim[d, candidates])]] = True
                scores.append(float(det_scores[d]))
                is_tp.append(True)
            elif np.any(~care & (sim[d] >= threshold)):
                continue  # a "don't care" box: neither right nor wrong
            else:
                scores.append(float(det_scores[d]))
                is_tp.append(False)
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(is_tp, dtype=bool)[order] if scores else np.zeros(0, dtype=bool)
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    recall = ctp / max(num_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1)
    ap = 0.0
    for r in np.arange(1, 41) / 40:
        reached = precision[recall >= r - 1e-9]
        ap += float(reached.max()) / 40 if len(reached) else 0.0
    return APResult(ap, num_gt, len(tp), int(tp.sum()), int((~tp).sum()))


# ------------------------------------------------------------------------------------- evaluation


def predict(model: CenterPointDetector, frames: Sequence[DemoFrame], batch_size: int = 4) -> list[Detections]:
    """PyTorch detections of ``frames`` (the model in eval mode, batches of up to ``batch_size``)."""
    model.eval()
    out: list[Detections] = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        feats, coords = collate(chunk)
        model.batch_size = len(chunk)
        with torch.no_grad():
            heatmap, box = model(torch.from_numpy(feats), torch.from_numpy(coords))
        out += decode(model.cfg, heatmap, box)
    return out


@dataclass
class Evaluation:
    iou: APResult
    distance: APResult
    frames: int
    seconds: float


def evaluate(model: CenterPointDetector, frames: Sequence[DemoFrame]) -> Evaluation:
    """Both APs of ``model`` on ``frames``."""
    t0 = time.perf_counter()
    detections = predict(model, frames)
    return Evaluation(
        iou=average_precision(detections, frames, criterion="iou"),
        distance=average_precision(detections, frames, criterion="distance"),
        frames=len(frames),
        seconds=time.perf_counter() - t0,
    )


def random_init_model(cfg: DetectorConfig, seed: int = 0) -> CenterPointDetector:
    """The same network with PyTorch's default random initialisation (the baseline a trained model must beat)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CenterPointDetector(cfg).eval()


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads`` for the demo's commands: one torch thread unless asked otherwise."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the sparse layers run many small ops; on a shared 2-core VM two threads "
        "made a training step 4-15x slower); 0 for torch's default",
    )


def apply_threads(parser: argparse.ArgumentParser, threads: int) -> None:
    if threads < 0:
        parser.error(f"--threads must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sparsetrt.demo.evaluate",
        description="BEV AP for cars of a demo checkpoint (and of a random-init model) on held-out frames.",
    )
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of `python -m sparsetrt.demo.train`")
    parser.add_argument("--frames", type=int, default=100, help="held-out frames (seeds [EVAL_SEED, i])")
    parser.add_argument("--no-baseline", action="store_true", help="skip the random-init model")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be >= 1")
    apply_threads(parser, args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    frames = make_frames(model.cfg, EVAL_SEED, args.frames)
    print(
        f"{args.frames} held-out frames (seeds [{EVAL_SEED}, 0..{args.frames - 1}]), cars with >= {MIN_POINTS} returns:"
    )
    rows = [("trained", model)]
    if not args.no_baseline:
        rows.append(("random init", random_init_model(model.cfg)))
    for name, m in rows:
        ev = evaluate(m, frames)
        print(f"{name:>12}: BEV IoU >= {IOU_THRESHOLD}: {ev.iou}")
        print(f"{'':>12}  centre <= {DISTANCE_THRESHOLD:g} m: {ev.distance}")


if __name__ == "__main__":
    main()
