"""Export a spconv 2.x model to ONNX and prove the file computes what the model computes.

    python examples/export_spconv_model.py [--out model.onnx] [--fp16]

The model is a small SECOND-style backbone written with spconv, as in OpenPCDet: its forward builds
``spconv.SparseConvTensor`` from plain tensors and ends in a BEV map. Nothing in it is edited for
export. Needs spconv (``pip install -e ".[test]"`` brings the CPU build).
"""

from __future__ import annotations

import argparse

import numpy as np
import spconv.pytorch as spconv
import torch
from torch import nn

from sparsetrt.data import preset_frame
from sparsetrt.exporter import export, summary
from sparsetrt.runtime import ReferenceSession


def block(c_in: int, c_out: int, key: str, stride: int = 1) -> spconv.SparseSequential:
    conv = (
        spconv.SubMConv3d(c_in, c_out, 3, padding=1, bias=False, indice_key=key)
        if stride == 1
        else spconv.SparseConv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False, indice_key=key)
    )
    return spconv.SparseSequential(conv, nn.BatchNorm1d(c_out), nn.ReLU())


class Backbone(nn.Module):
    """SECOND's VoxelBackBone8x at a quarter of the width, plus OpenPCDet's HeightCompression."""

    def __init__(self, grid: list[int]) -> None:
        super().__init__()
        self.grid = grid
        self.net = spconv.SparseSequential(
            block(4, 16, "subm1"),
            block(16, 32, "spconv2", stride=2),
            block(32, 32, "subm2"),
            block(32, 64, "spconv3", stride=2),
            block(64, 64, "subm3"),
            block(64, 64, "spconv4", stride=2),
            block(64, 64, "subm4"),
            spconv.SparseConv3d(64, 32, (3, 1, 1), stride=(2, 1, 1), bias=False),
        )

    def forward(self, voxel_features: torch.Tensor, voxel_coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = spconv.SparseConvTensor(voxel_features, voxel_coords, self.grid, batch_size)
        dense = self.net(x).dense()
        n, c, d, h, w = dense.shape
        return dense.view(n, c * d, h, w)


def spconv_reference(model: nn.Module, *args) -> torch.Tensor:
    """spconv's own forward on the CPU: one thread (its CPU scatter races otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return model(*args)
    finally:
        torch.set_num_threads(threads)


def lidar_voxels(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One synthetic KITTI-like frame, voxelized: features (x, y, z, intensity), coords (b, z, y, x)."""
    _, vox = preset_frame("kitti", seed)
    coords = np.concatenate([np.zeros((len(vox), 1), np.int32), vox.coords], axis=1)
    return torch.from_numpy(vox.features), torch.from_numpy(coords)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="second_backbone.onnx")
    parser.add_argument("--fp16", action="store_true", help="store weights and I/O as float16")
    args = parser.parse_args()

    torch.manual_seed(0)
    _, vox = preset_frame("kitti", 0)
    grid = list(vox.spatial_shape)
    model = Backbone(grid).eval()
    for m in model.modules():  # stand-in for trained statistics
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)

    features, coords = lidar_voxels(0)
    export(
        model,
        (features, coords, 1),
        args.out,
        input_names=["voxel_features", "voxel_coords"],
        output_names=["bev"],
        fp16=args.fp16,
    )
    print(summary(args.out))

    session = ReferenceSession(args.out)
    dtype = np.float16 if args.fp16 else np.float32
    print(f"\n{'frame':>5} {'voxels':>7} {'max |ref|':>10} {'max |err|':>10} {'rel':>9}")
    for seed in (1, 2):  # frames the export never saw, with other voxel counts
        features, coords = lidar_voxels(seed)
        ref = spconv_reference(model, features, coords, 1)
        (got,) = session.run(None, {"voxel_features": features.numpy().astype(dtype), "voxel_coords": coords.numpy()})
        err = float(np.abs(got.astype(np.float32) - ref.numpy()).max())
        scale = float(ref.abs().max())
        print(f"{seed:>5} {len(features):>7} {scale:>10.4f} {err:>10.2e} {err / scale:>9.1e}")
        tolerance = 2e-2 if args.fp16 else 1e-4
        if err > tolerance * max(scale, 1.0):
            raise SystemExit(f"mismatch: {err:.3e} exceeds {tolerance} x {scale:.3f}")
    print(f"\n{args.out}: the exported file computes what the spconv model computes.")


if __name__ == "__main__":
    main()
