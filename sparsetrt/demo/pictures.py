"""The demo's pictures: a BEV scene with ground truth and the exported file's detections, and the seed
paper's Figure 1 made from our layers.

    python -m sparsetrt.demo.pictures --out docs/images                  # the shipped checkpoint
    python -m sparsetrt.demo.pictures --out pics --checkpoint ckpt.pt --onnx model.onnx

* ``bev_detections.png``: a held-out frame (seed ``[EVAL_SEED, 0]`` unless ``--seed`` says otherwise) from
  above, lidar returns shaded by height, ground-truth cars in green and the boxes decoded from the
  **exported ONNX file's outputs** (run by ``ReferenceSession``) in red. The file is exported from the
  checkpoint into a temporary folder unless ``--onnx`` names one; the command prints whether PyTorch's
  detections are the same.
* ``submanifold_dilation.png``: Figure 1 of Graham & van der Maaten, "Submanifold Sparse Convolutional
  Networks" (2017): the active sites of a curve, after one and after two regular 3 × 3 sparse
  convolutions (``SparseConv2d``), which dilate the set every time, and after two submanifold ones
  (``SubMConv2d``), which keep it. Weights 1/9, as in the paper; shades are the values.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sparsetrt.exporter import SparseTensor, export
from sparsetrt.exporter import nn as snn
from sparsetrt.runtime import ReferenceSession

from .decode import Detections, decode
from .evaluate import add_threads_argument, apply_threads, box_corners
from .model import INPUT_NAMES, OUTPUT_NAMES, SHIPPED_CHECKPOINT, CenterPointDetector, load_checkpoint
from .scenes import EVAL_SEED, MIN_POINTS, DemoFrame, collate, make_frame

PICTURE_SCORE = 0.3
"""Detections drawn in the BEV picture (AP counts every detection down to ``decode.SCORE_THRESHOLD``)."""


def _pyplot():  # matplotlib is an optional dependency (the `viz` extra): imported only when drawing
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("pictures need matplotlib: pip install 'sparsetrt[viz]'") from e
    return plt


# ------------------------------------------------------------------------------------ Figure 1


def curve_sites(size: int = 32) -> np.ndarray:
    """int32 [N, 2] ``(y, x)``: an 8-connected, one-pixel-thick curve across a ``size`` × ``size`` grid."""
    t = np.linspace(0.0, 1.0, 20 * size)
    x = 2 + t * (size - 5)
    y = size / 2 + (size / 3.2) * np.sin(2.2 * np.pi * t + 0.4) * (1 - 0.4 * t)
    cells = np.unique(np.stack([np.round(y), np.round(x)], axis=1).astype(np.int32), axis=0)
    return cells


def dilation_experiment(size: int = 32) -> dict[str, SparseTensor]:
    """The curve as a sparse tensor (features 1) and what two regular and two submanifold convs make of it."""
    sites = curve_sites(size)
    indices = torch.from_numpy(np.pad(sites, ((0, 0), (1, 0))).astype(np.int32))
    x = SparseTensor(torch.ones(len(sites), 1), indices, [size, size], 1)
    regular = snn.SparseConv2d(1, 1, 3, padding=1, bias=False)
    subm = snn.SubMConv2d(1, 1, 3, bias=False)
    for conv in (regular, subm):
        torch.nn.init.constant_(conv.weight, 1.0 / 9.0)
    with torch.no_grad():
        once = regular(x)
        twice = regular(once)
        subm_twice = subm(subm(x))
    return {"curve": x, "regular1": once, "regular2": twice, "subm2": subm_twice}


def figure1(out: Path) -> dict[str, int]:
    """Write ``submanifold_dilation.png``; return the active-site counts."""
    plt = _pyplot()
    tensors = dilation_experiment()
    counts = {k: int(t.indices.shape[0]) for k, t in tensors.items()}
    titles = {
        "curve": "input: a curve",
        "regular1": "1 regular 3×3 conv",
        "regular2": "2 regular 3×3 convs",
        "subm2": "2 submanifold 3×3 convs",
    }
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (key, t) in zip(axes, tensors.items(), strict=True):
        dense = t.dense()[0, 0].numpy()
        active = np.zeros(dense.shape, dtype=bool)
        idx = t.indices.numpy()
        active[idx[:, 1], idx[:, 2]] = True
        # Each panel shaded relative to its own largest value, from a light grey up, so that an active
        # site with a tiny value still shows as active (inactive sites stay blank).
        shown = np.where(active, 0.2 + 0.8 * dense / max(float(dense.max()), 1e-12), np.nan)
        ax.imshow(shown, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_facecolor("#fbfbf6")
        ax.set_title(f"{titles[key]}\n{counts[key]} active sites", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Submanifold dilation (Graham & van der Maaten 2017, Fig. 1), with sparsetrt.exporter.nn layers")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(out / "submanifold_dilation.png", dpi=80)
    plt.close(fig)
    return counts


# ------------------------------------------------------------------------------- BEV detections


def export_detector(model: CenterPointDetector, example: DemoFrame, path: str | os.PathLike) -> None:
    """Export ``model`` (batch size 1) traced on ``example``."""
    feats, coords = collate([example])
    model.batch_size = 1
    export(
        model.eval(),
        (torch.from_numpy(feats), torch.from_numpy(coords)),
        path,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
    )


def run_file(session: ReferenceSession, model: CenterPointDetector, frame: DemoFrame) -> Detections:
    """Detections decoded from the exported file's outputs on ``frame``."""
    feats, coords = collate([frame])
    heatmap, box = session.run(list(OUTPUT_NAMES), {"voxel_features": feats, "voxel_coords": coords})
    return decode(model.cfg, heatmap, box)[0]


def run_torch(model: CenterPointDetector, frame: DemoFrame) -> Detections:
    feats, coords = collate([frame])
    model.batch_size = 1
    with torch.no_grad():
        heatmap, box = model.eval()(torch.from_numpy(feats), torch.from_numpy(coords))
    return decode(model.cfg, heatmap, box)[0]


def same_detections(a: Detections, b: Detections, atol: float = 1e-4) -> bool:
    """The same peaks, in the same order, with boxes and scores equal to ``atol``."""
    return (
        len(a) == len(b)
        and np.array_equal(a.cells, b.cells)
        and np.allclose(a.boxes, b.boxes, atol=atol)
        and np.allclose(a.scores, b.scores, atol=atol)
    )


def bev_picture(out: Path, frame: DemoFrame, detections: Detections, model: CenterPointDetector, title: str) -> None:
    """Write ``bev_detections.png``."""
    plt = _pyplot()
    cfg = model.cfg
    x0, y0, z0, x1, y1, _ = cfg.point_cloud_range
    fig, ax = plt.subplots(figsize=(7.2, 7.2))
    ax.set_facecolor("black")
    pts = frame.points
    # Height shading from just below the ground (about z0 + 1.2 for the 32-beam lidar) to above a car's roof.
    ax.scatter(pts[:, 0], pts[:, 1], s=1.0, c=pts[:, 2], cmap="viridis", vmin=z0 + 0.6, vmax=z0 + 3.6, linewidths=0)

    def draw(boxes: np.ndarray, color: str, style: str, width: float) -> None:
        # No heading arrows: the model predicts the long axis only (see model.BOX_CODE).
        for corners in box_corners(boxes):
            ring = np.vstack([corners, corners[:1]])
            ax.plot(ring[:, 0], ring[:, 1], style, color=color, linewidth=width)

    care = frame.num_points >= MIN_POINTS
    draw(frame.boxes[(frame.labels == 0) & care], "#33dd55", "-", 2.2)
    draw(frame.boxes[(frame.labels == 0) & ~care], "#33dd55", ":", 1.2)
    shown = detections.scores >= PICTURE_SCORE
    draw(detections.boxes[shown], "#ff4040", "-", 1.2)
    for box, score in zip(detections.boxes[shown], detections.scores[shown], strict=True):
        ax.text(box[0] + 1.2, box[1] + 1.2, f"{score:.2f}", color="#ff8080", fontsize=7)
    ax.plot([0], [0], marker=">", color="white", markersize=8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=9)
    handles = [
        plt.Line2D([], [], color="#33dd55", linewidth=2.2, label=f"ground truth (≥ {MIN_POINTS} returns)"),
        plt.Line2D([], [], color="#33dd55", linestyle=":", label="ground truth, don't care"),
        plt.Line2D([], [], color="#ff4040", label="detections from the ONNX file"),
    ]
    ax.legend(handles=handles, loc="lower left", fontsize=7, facecolor="#222222", labelcolor="white")
    fig.tight_layout()
    fig.savefig(out / "bev_detections.png", dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sparsetrt.demo.pictures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the PNGs (created)")
    parser.add_argument("--checkpoint", default=None, help="default: the checkpoint shipped with sparsetrt.demo")
    parser.add_argument("--onnx", default=None, help="an exported file of that checkpoint (default: export one)")
    parser.add_argument("--seed", type=int, default=0, help="held-out frame [EVAL_SEED, seed]")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    apply_threads(parser, args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    counts = figure1(out)
    print(
        f"Figure 1: the curve has {counts['curve']} active sites; after one regular 3x3 sparse conv "
        f"{counts['regular1']}, after two {counts['regular2']}; after two submanifold convs {counts['subm2']}"
    )
    print(f"wrote {out / 'submanifold_dilation.png'}")

    checkpoint = Path(args.checkpoint) if args.checkpoint else SHIPPED_CHECKPOINT
    model, _ = load_checkpoint(checkpoint)
    frame = make_frame(model.cfg, [EVAL_SEED, args.seed])
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = args.onnx or os.path.join(tmp, "model.onnx")
        if not args.onnx:
            export_detector(model, make_frame(model.cfg, [2**20, 0]), onnx_path)
        from_file = run_file(ReferenceSession(onnx_path), model, frame)
    from_torch = run_torch(model, frame)
    same = same_detections(from_file, from_torch)
    print(
        f"frame [{EVAL_SEED}, {args.seed}]: {len(frame.coords):,} voxels, {int((frame.labels == 0).sum())} cars; "
        f"{len(from_file)} detections from the ONNX file, {len(from_torch)} from PyTorch: "
        f"{'the same' if same else 'DIFFERENT'}"
    )
    title = (
        f"held-out frame [{EVAL_SEED}, {args.seed}]: {len(frame.coords):,} voxels, "
        f"{int(np.sum(from_file.scores >= PICTURE_SCORE))} detections with score ≥ {PICTURE_SCORE} "
        "from the exported file"
    )
    bev_picture(out, frame, from_file, model, title)
    print(f"wrote {out / 'bev_detections.png'}")
    if not same:
        raise SystemExit("the exported file's detections differ from PyTorch's")


if __name__ == "__main__":
    main()
