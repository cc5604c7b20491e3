"""Train the demo detector on synthetic lidar frames, on a CPU, and save a checkpoint.

    python -m sparsetrt.demo.train --out centerpoint_demo.pt          # the shipped model: ~5-10 min
    python -m sparsetrt.demo.train --tiny --steps 30 --out tiny.pt    # seconds: the config the tests use

A pool of training frames (seeds ``[TRAIN_SEED, i]``) is generated once and each step draws a batch
from it, every frame under a random one of the eight flips and quarter-turns of the square grid. Those
map voxels to voxels exactly (the grid is symmetric about the sensor), so no frame needs re-voxelizing,
and the network sees eight times as many distinct frames. After training the checkpoint is scored on
held-out frames (seeds ``[EVAL_SEED, i]``), next to the same network with random weights.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

import numpy as np
import torch

from .evaluate import add_threads_argument, apply_threads, evaluate, random_init_model
from .model import TINY, CenterPointDetector, DetectorConfig, save_checkpoint
from .scenes import EVAL_SEED, TRAIN_SEED, DemoFrame, collate, make_frame
from .targets import batch_targets, detection_loss


def _check_square(cfg: DetectorConfig) -> None:
    x0, y0, _, x1, y1, _ = cfg.point_cloud_range
    if not (math.isclose(x0, -x1) and math.isclose(y0, -y1) and math.isclose(x1, y1)):
        raise ValueError(f"augmentation needs a square grid centred on the sensor, got range {cfg.point_cloud_range}")
    if cfg.voxel_size[0] != cfg.voxel_size[1]:
        raise ValueError(f"augmentation needs square voxels, got {cfg.voxel_size}")


def augment(cfg: DetectorConfig, frame: DemoFrame, flip_x: bool, flip_y: bool, swap_xy: bool) -> DemoFrame:
    """The frame mirrored in x and/or y and/or reflected across x = y: one of the grid's 8 symmetries.

    With the grid ``[-r, r)²`` split into W cells of size v, a point in cell i lands in cell W − 1 − i
    under x -> −x, so voxels map to voxels (and their mean features transform with them).
    """
    _check_square(cfg)
    _, h, w = cfg.spatial_shape
    coords = frame.coords.copy()
    feats, points, boxes = frame.features.copy(), frame.points.copy(), frame.boxes.copy()
    if flip_x:
        coords[:, 2] = w - 1 - coords[:, 2]
        for a in (feats, points, boxes):
            a[:, 0] = -a[:, 0]
        boxes[:, 6] = np.pi - boxes[:, 6]
    if flip_y:
        coords[:, 1] = h - 1 - coords[:, 1]
        for a in (feats, points, boxes):
            a[:, 1] = -a[:, 1]
        boxes[:, 6] = -boxes[:, 6]
    if swap_xy:
        coords[:, [1, 2]] = coords[:, [2, 1]]
        for a in (feats, points, boxes):
            a[:, [0, 1]] = a[:, [1, 0]]
        boxes[:, 6] = np.pi / 2 - boxes[:, 6]
    boxes[:, 6] = np.arctan2(np.sin(boxes[:, 6]), np.cos(boxes[:, 6]))
    # Keep the (z, y, x) order voxelization produces, so an augmented frame looks like a generated one.
    order = np.lexsort((coords[:, 2], coords[:, 1], coords[:, 0]))
    return replace(frame, coords=coords[order], features=feats[order], points=points, boxes=boxes)


class Progress:
    """A one-line progress bar (``\\r``-updated on a terminal, a line every ``every`` steps elsewhere)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = max(1, total // 20)
        self.start = time.perf_counter()

    @staticmethod
    def _clock(seconds: float) -> str:
        m, s = divmod(int(seconds), 60)
        return f"{m}:{s:02d}"

    def update(self, done: int, note: str = "") -> None:
        if not self.tty and done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        bar = "#" * (self.width * done // self.total)
        line = (
            f"{self.label} {done:>{len(str(self.total))}}/{self.total} [{bar:<{self.width}}] "
            f"{self._clock(elapsed)} elapsed, {self._clock(eta)} left {note}"
        )
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        if self.tty and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def generate_pool(cfg: DetectorConfig, count: int, seed: int = TRAIN_SEED, show: bool = True) -> list[DemoFrame]:
    """Training frames ``[seed, 0 .. count - 1]``."""
    progress = Progress(count, "frames") if show else None
    frames = []
    for i in range(count):
        frames.append(make_frame(cfg, [seed, i]))
        if progress:
            progress.update(i + 1)
    return frames


def initial_model(cfg: DetectorConfig, seed: int = 0, batch_size: int = 1) -> CenterPointDetector:
    """The untrained network :func:`train` starts from with this ``seed`` (PyTorch's default init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CenterPointDetector(cfg, batch_size=batch_size)


@dataclass
class TrainResult:
    model: CenterPointDetector
    losses: list[float]
    seconds: float
    cpu_seconds: float


def train(
    cfg: DetectorConfig,
    pool: Sequence[DemoFrame],
    steps: int,
    batch_size: int = 2,
    lr: float = 3e-3,
    seed: int = 0,
    show: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """AdamW with a one-cycle learning rate over ``steps`` batches drawn (with augmentation) from ``pool``."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    if not pool:
        raise ValueError("the training pool is empty")
    rng = np.random.default_rng(seed)
    model = initial_model(cfg, seed, batch_size).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.3)
    progress = Progress(steps, "train") if show else None
    losses: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        picks = rng.choice(len(pool), size=batch_size, replace=len(pool) < batch_size)
        frames = [augment(cfg, pool[i], *(bool(b) for b in rng.integers(0, 2, 3))) for i in picks]
        feats, coords = collate(frames)
        heatmap, box = model(torch.from_numpy(feats), torch.from_numpy(coords))
        loss, parts = detection_loss(heatmap, box, batch_targets(cfg, frames))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
        if progress:
            recent = float(np.mean(losses[-20:]))
            progress.update(step + 1, f"loss {recent:.3f} (heatmap {parts['heatmap']:.3f}, box {parts['box']:.3f})")
    model.eval()
    return TrainResult(model, losses, time.perf_counter() - t0, time.process_time() - c0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sparsetrt.demo.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="checkpoint to write (a .pt file)")
    parser.add_argument("--tiny", action="store_true", help="the tiny test config (a 25.6 m grid of 0.4 m voxels)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 500, tiny 40)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--pool", type=int, default=None, help="training frames generated (default 300, tiny 16)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    parser.add_argument("--eval-frames", type=int, default=None, help="held-out frames to score (default 100, tiny 8)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    cfg = TINY if args.tiny else DetectorConfig()
    steps = args.steps if args.steps is not None else (40 if args.tiny else 500)
    pool_size = args.pool if args.pool is not None else (16 if args.tiny else 300)
    eval_frames = args.eval_frames if args.eval_frames is not None else (8 if args.tiny else 100)
    for name, value in (("--steps", steps), ("--batch-size", args.batch_size), ("--pool", pool_size)):
        if value < 1:
            parser.error(f"{name} must be >= 1, got {value}")
    if eval_frames < 0:
        parser.error("--eval-frames must be >= 0")
    apply_threads(parser, args.threads)

    t0 = time.perf_counter()
    print(
        f"grid: range {list(cfg.point_cloud_range)}, voxels {list(cfg.voxel_size)} m, spatial_shape "
        f"{list(cfg.spatial_shape)}, head {cfg.bev_shape[0]}x{cfg.bev_shape[1]} cells; lidar {cfg.beams} beams, "
        f"{cfg.sweeps} sweep(s); torch threads {torch.get_num_threads()}"
    )
    pool = generate_pool(cfg, pool_size)
    t_pool = time.perf_counter() - t0
    voxels = np.mean([len(f.coords) for f in pool])
    print(f"{pool_size} training frames in {t_pool:.0f} s, {voxels:,.0f} voxels per frame on average")
    result = train(cfg, pool, steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    model = result.model
    model.batch_size = 1
    meta: dict = {
        "steps": steps,
        "batch_size": args.batch_size,
        "pool": pool_size,
        "lr": args.lr,
        "seed": args.seed,
        "train_seconds": round(result.seconds, 1),
        "train_cpu_seconds": round(result.cpu_seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "final_loss": float(np.mean(result.losses[-20:])),
        "torch_threads": torch.get_num_threads(),
    }
    print(
        f"trained {steps} steps in {result.seconds:.0f} s ({result.cpu_seconds:.0f} s CPU time); "
        f"loss {result.losses[0]:.3f} -> {meta['final_loss']:.3f}"
    )
    if eval_frames:
        from .scenes import make_frames

        frames = make_frames(cfg, EVAL_SEED, eval_frames)
        for name, m in (("trained", model), ("random init", random_init_model(cfg))):
            ev = evaluate(m, frames)
            print(f"{name:>12} on {eval_frames} held-out frames: BEV IoU>=0.5 {ev.iou}; centre<=2m {ev.distance}")
            meta[f"{name.replace(' ', '_')}_ap_iou50"] = round(ev.iou.ap, 4)
            meta[f"{name.replace(' ', '_')}_ap_dist2m"] = round(ev.distance.ap, 4)
        meta["eval_frames"] = eval_frames
        model.batch_size = 1
    save_checkpoint(args.out, model, meta)
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
