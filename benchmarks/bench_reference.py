"""Benchmark (not a test): the CPU reference backend against spconv 2.3.8's CPU path.

Measures, on the same inputs, rulebook construction and convolution for a submanifold 3x3x3 conv and a
strided 3x3x3 / stride 2 conv, at about 10k and 100k voxels on a [41, 1440, 1440] grid, with 16->16 and
64->64 channels. spconv's CPU scatter races with several threads, so both run single-threaded; our
backend is also timed with all of torch's threads.

    python benchmarks/bench_reference.py [--sites lidar|uniform] [--repeats 5]

"lidar" sites (default) come from the synthetic nuScenes-like scenes of ``sparsetrt.data`` (ray-cast
32-beam sensor, 10 sweeps, 0.075 m voxels), so most voxels have active neighbours as in real data;
"uniform" sites are spread over the whole grid and have almost none.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from sparsetrt.exporter.backend import ConvGeometry, ConvKind, build_rulebook, sparse_conv

GRID = (41, 1440, 1440)


def lidar_sites(n: int, seed: int = 0) -> torch.Tensor:
    """The ``n`` voxels nearest the sensor of a synthetic nuScenes-like frame (32 beams, 10 sweeps).

    Cropping by distance keeps the neighbour structure of real lidar voxels (a random subsample would
    not). Frames vary in size, so seeds are tried until one has at least ``n`` voxels.
    """
    from sparsetrt.data import preset_frame

    for attempt in range(50):
        _, vox = preset_frame("nuscenes", [seed, attempt])
        if len(vox) >= n:
            coords = torch.from_numpy(vox.coords).to(torch.int64)
            _, h, w = vox.spatial_shape
            r2 = (coords[:, 1] - h // 2) ** 2 + (coords[:, 2] - w // 2) ** 2
            keep = torch.sort(torch.argsort(r2, stable=True)[:n]).values
            coords = coords[keep]
            return torch.cat([torch.zeros((n, 1), dtype=torch.int64), coords], 1).to(torch.int32)
    raise RuntimeError(f"no synthetic frame reached {n} voxels; ask for fewer")


def uniform_sites(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d, h, w = GRID
    flat = torch.unique(torch.randint(0, d * h * w, (int(n * 1.01),), generator=g))[:n]
    z, rest = flat // (h * w), flat % (h * w)
    return torch.stack([torch.zeros_like(z), z, rest // w, rest % w], 1).to(torch.int32)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def mean_neighbours(indices: torch.Tensor) -> float:
    rb = build_rulebook(indices, GRID, 1, ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 3))
    return float(rb.pair_counts().sum()) / max(1, indices.shape[0]) - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", choices=["lidar", "uniform"], default="lidar")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()

    try:
        from spconv.core import ConvAlgo
        from spconv.pytorch import ops as spconv_ops
    except ImportError:
        spconv_ops = None
        print("spconv is not installed: timing our backend only (pip install spconv==2.3.8 to compare)")

    all_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {all_threads} threads available; grid {list(GRID)}; {args.sites} sites")
    header = f"{'voxels':>8} {'nbrs':>5} {'op':<22} {'C':>4} {'ours 1t ms':>11} {'ours Nt ms':>11} "
    header += f"{'spconv 1t ms':>13} {'spconv/ours 1t':>15} {'ours 1t':>14}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        idx = (lidar_sites if args.sites == "lidar" else uniform_sites)(n)
        nbrs = mean_neighbours(idx)
        for name, geo in [
            ("subm k3", ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 3)),
            ("conv k3 s2 p1", ConvGeometry.make(ConvKind.REGULAR, 3, 3, 2, 1)),
        ]:
            subm = geo.kind is ConvKind.SUBMANIFOLD

            def ours_build(geo=geo, idx=idx):
                return build_rulebook(idx, GRID, 1, geo)

            def spconv_build(geo=geo, subm=subm, idx=idx):
                pad = [1, 1, 1]
                return spconv_ops.get_indice_pairs(
                    idx, 1, list(GRID), ConvAlgo.Native, [3] * 3, list(geo.stride), pad, [1] * 3, [0] * 3, subm, False
                )

            timings = {}
            for threads in (1, all_threads):
                torch.set_num_threads(threads)
                timings[("ours", threads)] = median_ms(ours_build, args.repeats)
            torch.set_num_threads(1)
            theirs = median_ms(spconv_build, args.repeats) if spconv_ops else float("nan")
            rate = n / timings[("ours", 1)] / 1e3
            print(
                f"{n:>8} {nbrs:>5.1f} {name + ' rulebook':<22} {'':>4} {timings[('ours', 1)]:>11.1f} "
                f"{timings[('ours', all_threads)]:>11.1f} {theirs:>13.1f} {theirs / timings[('ours', 1)]:>15.2f} "
                f"{rate:>9.2f} Mvox/s"
            )

            rb = ours_build()
            pairs = int(rb.pair_counts().sum())
            sp_out, sp_pairs, sp_counts = spconv_build() if spconv_ops else (None, None, None)
            for c in args.channels:
                g = torch.Generator().manual_seed(c)
                feats = torch.randn(n, c, generator=g)
                weight = torch.randn(c, 3, 3, 3, c, generator=g) * 0.1
                flops = 2.0 * pairs * c * c

                def ours_conv(feats=feats, weight=weight, rb=rb):
                    with torch.no_grad():
                        rb._pairs = None  # time the whole conv, including the per-offset pair lists
                        return sparse_conv(feats, weight, None, rb)

                def spconv_conv(feats=feats, weight=weight, subm=subm, sp=(sp_out, sp_pairs, sp_counts)):
                    with torch.no_grad():
                        return spconv_ops.indice_conv(feats, weight, sp[1], sp[2], sp[0].shape[0], False, subm)

                for threads in (1, all_threads):
                    torch.set_num_threads(threads)
                    timings[("conv", threads)] = median_ms(ours_conv, args.repeats)
                torch.set_num_threads(1)
                theirs = median_ms(spconv_conv, args.repeats) if spconv_ops else float("nan")
                gflops = flops / timings[("conv", 1)] / 1e6
                print(
                    f"{n:>8} {nbrs:>5.1f} {name + ' conv':<22} {c:>4} {timings[('conv', 1)]:>11.1f} "
                    f"{timings[('conv', all_threads)]:>11.1f} {theirs:>13.1f} "
                    f"{theirs / timings[('conv', 1)]:>15.2f} {gflops:>8.2f} GFLOP/s"
                )
    torch.set_num_threads(all_threads)


if __name__ == "__main__":
    main()
