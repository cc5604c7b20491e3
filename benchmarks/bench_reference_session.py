"""Benchmark (not a test): how fast the ReferenceSession checks a CenterPoint-size model.

Full-width CenterPoint VoxelResBackBone8x + HeightCompression (OpenPCDet's nuScenes 0.075 m config) on
the [41, 1440, 1440] grid, fed the nearest N voxels of a synthetic nuScenes-like frame. Prints export
time, the ReferenceSession's run time, spconv's CPU time on the same input, and the largest difference.

    python benchmarks/bench_reference_session.py [--voxels 20000]

The model definition is the test zoo's (tests/zoo/centerpoint.py), a spconv re-creation from the
paper and config; spconv 2.3.8 is needed (pip install -e ".[test]").
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the zoo lives with the tests
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reference import lidar_sites
from zoo.centerpoint import CenterPointBackbone
from zoo.run import spconv_forward

from sparsetrt.exporter import export
from sparsetrt.runtime import ReferenceSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxels", type=int, default=20_000)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = CenterPointBackbone(spatial_shape=(41, 1440, 1440)).eval()
    coords = lidar_sites(args.voxels)
    features = torch.randn(coords.shape[0], 5)
    inputs = (features, coords, 1)

    t0 = time.perf_counter()
    buf = io.BytesIO()
    export(model, inputs, buf, input_names=["voxel_features", "voxel_coords"])
    t_export = time.perf_counter() - t0
    session = ReferenceSession(onnx.load_from_string(buf.getvalue()))
    feed = {"voxel_features": features.numpy(), "voxel_coords": coords.numpy()}
    session.run(None, feed)  # builds the onnxruntime sessions
    t0 = time.perf_counter()
    (out,) = session.run(None, feed)
    t_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = spconv_forward(model, *inputs)
    t_spconv = time.perf_counter() - t0
    err = float(np.abs(out - ref.numpy()).max())
    print(f"CenterPoint VoxelResBackBone8x (full width), {coords.shape[0]} voxels, grid [41, 1440, 1440]")
    print(f"  export:                {t_export:6.2f} s")
    print(f"  ReferenceSession.run:  {t_run:6.2f} s  ({torch.get_num_threads()} torch threads)")
    print(f"  spconv CPU forward:    {t_spconv:6.2f} s  (1 thread)")
    print(f"  output {list(out.shape)}, max |difference| {err:.2e} (max |output| {float(ref.abs().max()):.3f})")


if __name__ == "__main__":
    main()
