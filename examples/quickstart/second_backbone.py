"""A model factory for the `sparsetrt` command: a SECOND-style spconv 2.x backbone and one lidar frame.

    sparsetrt export examples/quickstart/second_backbone.py:export_recipe --checkpoint second.pth -o second.onnx

A model factory is any function with no arguments returning ``sparsetrt.exporter.ExportRecipe``: the model
(its weights come from ``--checkpoint``) and one example input to trace it on. This one is SECOND's
``VoxelBackBone8x`` at a quarter of the width plus OpenPCDet's ``HeightCompression``, written with spconv
exactly as OpenPCDet writes it (its forward builds ``spconv.SparseConvTensor`` from plain tensors), on a
6.4 m x 6.4 m window of a synthetic KITTI-like frame (about 3k voxels) so that every step runs in seconds
on a CPU.

    python examples/quickstart/second_backbone.py --checkpoint second.pth

writes a stand-in for a trained checkpoint (random weights, batch-norm statistics that are not the
identity), in the format a training script saves: ``{"state_dict": ..., "epoch": ...}``.
"""

from __future__ import annotations

import argparse

import numpy as np
import spconv.pytorch as spconv
import torch
from torch import nn

from sparsetrt.data import preset_frame
from sparsetrt.exporter import ExportRecipe

GRID = [41, 128, 128]  # (z, y, x) cells of 0.1 x 0.05 x 0.05 m
WINDOW = (720, 128)  # the window's first (y, x) cell in KITTI's full grid


def _block(c_in: int, c_out: int, key: str, stride: int = 1) -> spconv.SparseSequential:
    conv = (
        spconv.SubMConv3d(c_in, c_out, 3, padding=1, bias=False, indice_key=key)
        if stride == 1
        else spconv.SparseConv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False, indice_key=key)
    )
    return spconv.SparseSequential(conv, nn.BatchNorm1d(c_out), nn.ReLU())


class SecondBackbone(nn.Module):
    """voxel_features [N, 4], voxel_coords [N, 4] int32 (batch, z, y, x) -> BEV features [B, 64, 16, 16]."""

    def __init__(self, batch_size: int = 1) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.net = spconv.SparseSequential(
            _block(4, 16, "subm1"),
            _block(16, 32, "spconv2", stride=2),
            _block(32, 32, "subm2"),
            _block(32, 64, "spconv3", stride=2),
            _block(64, 64, "subm3"),
            _block(64, 64, "spconv4", stride=2),
            _block(64, 64, "subm4"),
            spconv.SparseConv3d(64, 32, (3, 1, 1), stride=(2, 1, 1), bias=False),
        )

    def forward(self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor) -> torch.Tensor:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, GRID, self.batch_size)
        dense = self.net(x).dense()
        n, c, d, h, w = dense.shape
        return dense.view(n, c * d, h, w)


def lidar_frame(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxels of one synthetic frame inside the window: features (x, y, z, intensity), coords (0, z, y, x)."""
    _, vox = preset_frame("kitti", seed)
    y0, x0 = WINDOW
    keep = (vox.coords[:, 1] >= y0) & (vox.coords[:, 1] < y0 + GRID[1])
    keep &= (vox.coords[:, 2] >= x0) & (vox.coords[:, 2] < x0 + GRID[2])
    coords = vox.coords[keep] - np.array([0, y0, x0], dtype=vox.coords.dtype)
    coords = np.concatenate([np.zeros((len(coords), 1), np.int32), coords.astype(np.int32)], axis=1)
    return torch.from_numpy(vox.features[keep].astype(np.float32)), torch.from_numpy(coords)


def export_recipe() -> ExportRecipe:
    """The factory `sparsetrt export` calls: the model and one frame to trace it on."""
    features, coords = lidar_frame(0)
    with torch.random.fork_rng():  # the same initial weights on every call, without touching the caller's RNG
        torch.manual_seed(0)
        model = SecondBackbone().eval()
    return ExportRecipe(model, (features, coords), ["voxel_features", "voxel_coords"], ["bev"])


def stand_in_checkpoint(seed: int = 0) -> dict:
    """Weights as training would leave them: random convolutions, batch norms that are not the identity."""
    torch.manual_seed(seed)
    model = SecondBackbone()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return {"state_dict": model.state_dict(), "epoch": 80}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="where to write the stand-in checkpoint")
    args = parser.parse_args()
    torch.save(stand_in_checkpoint(), args.checkpoint)
    print(f"{args.checkpoint}: stand-in weights for {SecondBackbone.__name__}")
