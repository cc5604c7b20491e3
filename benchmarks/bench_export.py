"""Benchmark (not a test): export time and file size of every zoo model through both export paths.

``export(..., dynamo=True)`` (torch.export + torch.onnx's dynamo exporter, the default) against
``dynamo=False`` (torch's TorchScript exporter), on the same model and example input. Times are the median
of ``--repeats`` exports after one warm-up export per path in the process (the first export of a process
also pays for imports and torch's one-time set-up, reported separately as "first"). Times include our
graph passes and the checker; sizes are of the saved file.

    python benchmarks/bench_export.py [--repeats 3] [--voxels 1500] [--batch 2] [--threads 1]

The models are the test zoo's (tests/zoo), re-creations of published detectors and segmenters at reduced
width with seeded random weights.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the zoo lives with the tests

from zoo import ZOO

from sparsetrt.exporter import export

INPUTS = ["voxel_features", "voxel_coords"]
PATHS = {"dynamo": True, "torchscript": False}


def _export(model: torch.nn.Module, args: tuple, dynamo: bool) -> tuple[float, onnx.ModelProto, int]:
    buf = io.BytesIO()
    started = time.perf_counter()
    proto = export(model, args, buf, input_names=INPUTS, dynamo=dynamo)
    return time.perf_counter() - started, proto, len(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voxels", type=int, default=1500, help="voxels per sample of the example input")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--models", nargs="*", default=list(ZOO), choices=list(ZOO))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    first: dict[str, float] = {}
    for name in args.models:
        entry = ZOO[name]
        model = entry.build()
        example = entry.make_inputs(0, args.batch, args.voxels)
        for path, dynamo in PATHS.items():
            seconds, proto, size = _export(model, example, dynamo)  # warm-up
            first.setdefault(path, seconds)
            times = [_export(model, example, dynamo)[0] for _ in range(args.repeats)]
            sparse = sum(n.domain == "sparsetrt" for n in proto.graph.node)
            rows.append((name, path, statistics.median(times), size, len(proto.graph.node), sparse))
            print(f"{name:12s} {path:11s} {statistics.median(times):6.2f} s  {size / 1e6:6.3f} MB", file=sys.stderr)

    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} torch thread(s), batch {args.batch} x about "
        f"{args.voxels} voxels, median of {args.repeats} exports\n"
    )
    print("| model | path | export time | file size | nodes (sparsetrt) |")
    print("|---|---|---|---|---|")
    for name, path, seconds, size, nodes, sparse in rows:
        print(f"| {name} | {path} | {seconds:.2f} s | {size / 1e6:.3f} MB | {nodes} ({sparse}) |")
    print(
        f"\nfirst export of the process (the first model, {args.models[0]}): "
        + ", ".join(f"{path} {seconds:.2f} s" for path, seconds in first.items())
    )


if __name__ == "__main__":
    main()
