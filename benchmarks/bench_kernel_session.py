"""Whole networks through our kernels (KernelSession) against the reference runtime, with per-layer times.

Two steps, because a GPU machine often has neither spconv nor TensorRT:

    # 1. where spconv is installed (pip install -e ".[test]"): export the zoo and a full-width CenterPoint
    python benchmarks/bench_kernel_session.py export DIR [--voxels 20000 100000]
    # 2. anywhere with the kernel library (libsparsetrt_kernels_cuda.so on a GPU, or _cpu.so on the CPU backend)
    python benchmarks/bench_kernel_session.py run DIR --library build/plugins/libsparsetrt_kernels_cuda.so

``run`` executes every exported file on each of its saved frames with KernelSession and ReferenceSession,
prints the largest error against each output's scale (pass: 1e-4 for fp32, 1e-2 for fp16, as the tests) and
the KernelSession's time per run (median after a warm-up) and per sparsetrt op type. Per-op times are wall
times of the kernel library's C ABI, which allocates each op's workspace and synchronizes after it: an upper
bound on the kernels' own device time (bench_kernels.cu measures that with CUDA events).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

INPUTS = ["voxel_features", "voxel_coords"]
GRID = (41, 1440, 1440)


def export_all(out: Path, voxels: list[int]) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_reference import lidar_sites
    from zoo import ZOO
    from zoo.centerpoint import CenterPointBackbone
    from zoo.layers import seeded_build

    from sparsetrt.exporter import export

    out.mkdir(parents=True, exist_ok=True)
    manifest = []

    def save(name: str, model, example, frames, fp16: bool) -> None:
        buf = io.BytesIO()
        export(model, example, buf, input_names=INPUTS, fp16=fp16)
        (out / f"{name}.onnx").write_bytes(buf.getvalue())
        files = []
        for i, (features, coords) in enumerate(frames):
            path = out / f"{name}.frame{i}.npz"
            np.savez(path, voxel_features=features.numpy().astype(np.float16 if fp16 else np.float32),
                     voxel_coords=coords.numpy())  # fmt: skip
            files.append(path.name)
        manifest.append({"name": name, "onnx": f"{name}.onnx", "frames": files, "fp16": fp16})

    for key, entry in ZOO.items():
        for fp16 in (False, True):
            example = entry.make_inputs(0, 2, 400)
            frames = [entry.make_inputs(s, 2, n)[:2] for s, n in ((1, 1), (2, 400), (3, 3000))]
            save(f"{key}_b2_{'fp16' if fp16 else 'fp32'}", entry.build(), example, frames, fp16)

    rng = np.random.default_rng(0)

    def frame(n: int, seed: int):
        coords = lidar_sites(n, seed)
        return torch.from_numpy(rng.normal(0, 0.5, (coords.shape[0], 5)).astype(np.float32)), coords

    model = seeded_build(
        lambda: CenterPointBackbone(spatial_shape=GRID), seed=1, calibration_inputs=(*frame(20000, 1), 1)
    )
    frames = [frame(n, 10 + n) for n in voxels]
    for fp16 in (False, True):
        save(f"centerpoint_full_{'fp16' if fp16 else 'fp32'}", model, (*frames[0], 1), frames, fp16)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(manifest)} files in {out}")


def run_all(folder: Path, library: str, repeats: int, only: str | None) -> int:
    from sparsetrt.runtime import KernelLibrary, KernelSession, ReferenceSession

    lib = KernelLibrary(library)
    print(f"kernel library: {lib.path.name} ({lib.backend}: {lib.device})")
    manifest = json.loads((folder / "manifest.json").read_text())
    failures = 0
    print("| file | voxels | max error / scale | bound | ok | kernels ms (median) | by op (ms) |")
    print("|---|---:|---:|---:|---|---:|---|")
    for item in manifest:
        if only and only not in item["name"]:
            continue
        proto = onnx.load(str(folder / item["onnx"]))
        reference, kernels = ReferenceSession(proto), KernelSession(proto, lib)
        op_of = {n.name: n.op_type for n in proto.graph.node if n.domain == "sparsetrt"}
        bound = 1e-2 if item["fp16"] else 1e-4
        for frame in item["frames"]:
            data = np.load(folder / frame)
            feed = {k: data[k] for k in INPUTS}
            ref = reference.run(None, feed)
            got = kernels.run(None, feed)  # also the warm-up
            worst = 0.0
            for r, g in zip(ref, got, strict=True):
                if r.dtype.kind != "f" or r.size == 0:
                    continue
                if r.shape != g.shape:
                    worst = float("inf")
                    continue
                scale = max(float(np.abs(r.astype(np.float64)).max()), 1.0 if not item["fp16"] else 1e-30)
                worst = max(worst, float(np.abs(r.astype(np.float64) - g.astype(np.float64)).max()) / scale)
            times, per_op = [], defaultdict(list)
            for _ in range(repeats):
                t0 = time.perf_counter()
                kernels.run(None, feed)
                times.append((time.perf_counter() - t0) * 1e3)
                totals: dict[str, float] = defaultdict(float)
                for node, ms in kernels.last_times_ms.items():
                    totals[op_of.get(node, "?")] += ms
                for op, ms in totals.items():
                    per_op[op].append(ms)
            ok = worst <= bound
            failures += not ok
            ops = ", ".join(f"{op} {statistics.median(v):.2f}" for op, v in sorted(per_op.items()))
            n = feed[INPUTS[0]].shape[0]
            print(f"| {item['name']} | {n} | {worst:.2e} | {bound:.0e} | {'yes' if ok else 'NO'} | "
                  f"{statistics.median(times):.2f} | {ops} |", flush=True)  # fmt: skip
    print(f"{failures} comparison(s) outside the bound")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export", help="export the zoo and a full-width CenterPoint with saved frames (needs spconv)")
    p.add_argument("folder", type=Path)
    p.add_argument("--voxels", type=int, nargs="+", default=[20000, 100000])
    p = sub.add_parser("run", help="run every exported file through KernelSession and ReferenceSession")
    p.add_argument("folder", type=Path)
    p.add_argument("--library", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", help="only files whose name contains this")
    args = parser.parse_args()
    if args.cmd == "export":
        export_all(args.folder, args.voxels)
        return 0
    return run_all(args.folder, args.library, args.repeats, args.only)


if __name__ == "__main__":
    sys.exit(main())
