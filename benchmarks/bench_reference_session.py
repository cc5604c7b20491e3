"""Benchmark (not a test): how fast the ReferenceSession checks a CenterPoint-size model.

Full-width CenterPoint VoxelResBackBone8x + HeightCompression (OpenPCDet's nuScenes 0.075 m config) on
the [41, 1440, 1440] grid, fed the nearest N voxels of a synthetic nuScenes-like frame. Prints the export
time, the ReferenceSession's run time (one thread and all of torch's threads), spconv's CPU time on the
same input (one thread: its CPU scatter races with more), all medians of ``--repeats`` runs after a
warm-up, and the largest difference between the two outputs.

    python benchmarks/bench_reference_session.py [--voxels 20000] [--repeats 3]

The model definition is the test zoo's (tests/zoo/centerpoint.py), a spconv re-creation from the
paper and config, with the zoo's seeded random weights and randomised batch-norm statistics; spconv
2.3.8 is needed (pip install -e ".[test]").
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the zoo lives with the tests
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reference import lidar_sites
from zoo.centerpoint import CenterPointBackbone
from zoo.layers import seeded_build
from zoo.run import spconv_forward

from sparsetrt.exporter import export
from sparsetrt.runtime import ReferenceSession

GRID = (41, 1440, 1440)


def median_s(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (the ReferenceSession builds its onnxruntime sessions on first use)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxels", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    all_threads = torch.get_num_threads()
    rng = np.random.default_rng(0)

    def frame(seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        coords = lidar_sites(args.voxels, seed)
        return torch.from_numpy(rng.normal(0, 0.5, (coords.shape[0], 5)).astype(np.float32)), coords, 1

    # The zoo's construction at full width: seeded weights, BN statistics calibrated on another frame (so
    # activations have unit scale, as in a trained model).
    model = seeded_build(lambda: CenterPointBackbone(spatial_shape=GRID), seed=1, calibration_inputs=frame(1))
    inputs = frame(0)
    features, coords, _ = inputs

    t0 = time.perf_counter()
    buf = io.BytesIO()
    export(model, inputs, buf, input_names=["voxel_features", "voxel_coords"])
    t_export = time.perf_counter() - t0
    session = ReferenceSession(onnx.load_from_string(buf.getvalue()))
    feed = {"voxel_features": features.numpy(), "voxel_coords": coords.numpy()}
    run: list[np.ndarray] = []
    t_run = {}
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        t_run[threads] = median_s(lambda: run.append(session.run(None, feed)[0]), args.repeats)
    torch.set_num_threads(all_threads)
    ref = spconv_forward(model, *inputs)  # warm-up; spconv_forward runs single-threaded
    t_spconv = median_s(lambda: spconv_forward(model, *inputs), args.repeats)
    out = run[-1]
    err = float(np.abs(out - ref.numpy()).max())
    scale = float(ref.abs().max())
    print(
        f"CenterPoint VoxelResBackBone8x (full width), {coords.shape[0]} voxels, grid {list(GRID)}; "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; medians of {args.repeats}"
    )
    print(f"  export (traces the model once):  {t_export:6.2f} s  ({all_threads} torch threads)")
    for threads, seconds in t_run.items():
        print(f"  ReferenceSession.run:            {seconds:6.2f} s  ({threads} torch thread{'s' * (threads > 1)})")
    print(f"  spconv CPU forward:              {t_spconv:6.2f} s  (1 thread)")
    print(f"  output {list(out.shape)}, max |difference| {err:.2e} (max |output| {scale:.3f}, ratio {err / scale:.1e})")


if __name__ == "__main__":
    main()
