"""Whole-network GPU benchmark: our kernels against spconv 2.3.8 and dense torch convs, no TensorRT needed.

The network is OpenPCDet's CenterPoint ``VoxelResBackBone8x`` at full width (tests/zoo/centerpoint.py) with the
height compression to BEV, on synthetic lidar frames of nuScenes and Waymo scale (``sparsetrt.data``), in fp32
and fp16. For each frame and dtype it reports medians over ``--repeats`` runs after ``--warmup`` runs:

- ours: the exported file run by ``KernelSession`` on ``libsparsetrt_kernels_cuda.so``. Per op, the device time
  of its kernels (CUDA events around them, ``spt_last_op_ms``): rulebooks (SubmRulebook, SparseRulebook and its
  one read-back, ConvPlan) separate from the convs and the densify; summed per run. The C ABI synchronizes after
  each op, so there is no overlap between ops (a TensorRT engine could overlap them);
- spconv 2.3.8: the same backbone (same weights) as a torch module on the GPU, CUDA events around the forward
  (rulebooks included); its rulebook share from spconv's own kernel timer (``enable_timer``: the "gen_pairs"
  entries), in a separate run;
- dense: the same layers as dense ``Conv3d`` (cuDNN, channels-last, benchmark mode) over the whole grid, where
  they fit in memory (else "does not fit").

Outputs (``--out``): ``bench_gpu.md`` (tables with device, driver, date, versions), ``bench_gpu.json`` and
``bench_gpu.png`` (a bar chart, when matplotlib is importable). It also checks that our output matches spconv's
(fp32: 1e-3 of the output's scale; fp16: 2e-2).

    python benchmarks/bench_gpu.py --library build/gpu_checks/libsparsetrt_kernels_cuda.so --out DIR

benchmarks/run_gpu_bench.sh runs it on a GPU machine as one command (building the library first).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

INPUTS = ["voxel_features", "voxel_coords"]
RULEBOOK_OPS = ("SubmRulebook", "SparseRulebook", "InverseRulebook", "ConvPlan")


def frame(preset: str, seed: int, max_voxels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic frame of the preset; ``max_voxels`` > 0 keeps that many voxels nearest the sensor (a smoke test)."""
    from sparsetrt.data import preset_frame

    _, vox = preset_frame(preset, [seed, 0])
    zyx = vox.coords.astype(np.int64)
    if max_voxels and len(zyx) > max_voxels:
        _, h, w = vox.spatial_shape
        near = np.argsort((zyx[:, 1] - h // 2) ** 2 + (zyx[:, 2] - w // 2) ** 2, kind="stable")[:max_voxels]
        zyx = zyx[np.sort(near)]
    coords = np.concatenate([np.zeros((len(zyx), 1), np.int32), zyx.astype(np.int32)], 1)
    features = np.random.default_rng(seed).normal(0, 0.5, (len(coords), 5)).astype(np.float32)
    return features, coords


def build_model(spatial_shape: tuple[int, ...], features: np.ndarray, coords: np.ndarray):
    from zoo.centerpoint import CenterPointBackbone
    from zoo.layers import seeded_build

    calibration = (torch.from_numpy(features[:20000]), torch.from_numpy(coords[:20000]), 1)  # on the CPU
    return seeded_build(lambda: CenterPointBackbone(spatial_shape=spatial_shape), 1, calibration_inputs=calibration)


def export_model(model, features: np.ndarray, coords: np.ndarray, fp16: bool):
    from sparsetrt.exporter import export

    example = (torch.from_numpy(features[:3000]), torch.from_numpy(coords[:3000]), 1)
    return export(model, example, io.BytesIO(), input_names=INPUTS, fp16=fp16)


def cuda_ms(fn, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return times


def bench_ours(proto, library, features, coords, fp16: bool, warmup: int, repeats: int) -> tuple[dict, np.ndarray]:
    from sparsetrt.runtime import KernelSession

    session = KernelSession(proto, library)
    op_of = {n.name: n.op_type for n in proto.graph.node if n.domain == "sparsetrt"}
    feed = {INPUTS[0]: features.astype(np.float16 if fp16 else np.float32), INPUTS[1]: coords}
    out = None
    for _ in range(warmup):
        out = session.run(None, feed)[0]
    runs = defaultdict(list)
    for _ in range(repeats):
        session.run(None, feed)
        parts = defaultdict(float)
        for node, ms in session.last_device_ms.items():
            kind = op_of.get(node, "?")
            parts["rulebooks" if kind in RULEBOOK_OPS else kind] += ms
        parts["total"] = sum(v for k, v in parts.items())
        for k, v in parts.items():
            runs[k].append(v)
    return {k: statistics.median(v) for k, v in runs.items()}, out


def spconv_forward(model, features, coords, shape, timer: bool = False):
    import spconv.pytorch as spconv

    x = spconv.SparseConvTensor(features, coords, list(shape), 1, enable_timer=timer)
    x = model.conv_out(model.conv4(model.conv3(model.conv2(model.conv1(model.conv_input(x))))))
    bev = x.dense()
    n, c, d, h, w = bev.shape
    return bev.view(n, c * d, h, w), x


def bench_spconv(model, features, coords, shape, fp16: bool, warmup: int, repeats: int) -> tuple[dict, np.ndarray]:
    from spconv.tools import CUDAKernelTimer

    dtype = torch.float16 if fp16 else torch.float32
    m = model.cuda().to(dtype)
    f = torch.from_numpy(features).cuda().to(dtype)
    c = torch.from_numpy(coords).cuda()
    with torch.no_grad():
        times = cuda_ms(lambda: spconv_forward(m, f, c, shape), warmup, repeats)
        out = spconv_forward(m, f, c, shape)[0].float().cpu().numpy()
        shares = []
        for _ in range(max(3, repeats // 4)):
            _, x = spconv_forward(m, f, c, shape, timer=True)
            torch.cuda.synchronize()
            res = x._timer.get_all_pair_time()
            pairs = CUDAKernelTimer.collect_by_name("gen_pairs", res)
            shares.append((sum(pairs.values()), sum(res.values())))
    rulebook = statistics.median(s[0] for s in shares)
    timed = statistics.median(s[1] for s in shares)
    return {"total": statistics.median(times), "rulebooks (spconv timer)": rulebook, "timer total": timed}, out


def dense_backbone(model, dtype):
    """The backbone's layers as dense Conv3d (same weights; BN folded away: a cost comparison)."""
    import spconv.pytorch as spconv

    layers = []
    for module in model.modules():
        if isinstance(module, spconv.conv.SparseConvolution):
            w = module.weight.detach()  # [C_out, *k, C_in]
            conv = torch.nn.Conv3d(
                w.shape[-1], w.shape[0], tuple(module.kernel_size), tuple(module.stride),
                tuple(k // 2 for k in module.kernel_size) if module.subm else tuple(module.padding), bias=False,
            )  # fmt: skip
            conv.weight.data = w.permute(0, 4, 1, 2, 3).contiguous()
            layers += [conv, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers).cuda().to(dtype).to(memory_format=torch.channels_last_3d)


def bench_dense(model, features, coords, shape, fp16: bool, warmup: int, repeats: int) -> dict:
    dtype = torch.float16 if fp16 else torch.float32
    try:
        net = dense_backbone(model, dtype)
        grid = torch.zeros((1, 5, *shape), dtype=dtype, device="cuda")
        c = torch.from_numpy(coords).long().cuda()
        grid[0, :, c[:, 1], c[:, 2], c[:, 3]] = torch.from_numpy(features).cuda().to(dtype).t()
        grid = grid.contiguous(memory_format=torch.channels_last_3d)
        torch.backends.cudnn.benchmark = True
        with torch.no_grad():
            times = cuda_ms(lambda: net(grid), warmup, repeats)
        return {"total": statistics.median(times)}
    except torch.cuda.OutOfMemoryError as e:
        return {"error": f"does not fit: {str(e).splitlines()[0][:120]}"}
    finally:
        torch.cuda.empty_cache()


def device_facts() -> dict:
    facts = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        q = "name,driver_version,memory.total,compute_cap"
        line = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        facts.update(zip(q.split(","), (v.strip() for v in line.split(",")), strict=False))
    except (OSError, subprocess.CalledProcessError, IndexError):
        facts["name"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "?"
    facts["torch"] = torch.__version__
    facts["cuda (torch)"] = str(torch.version.cuda)
    facts["python"] = platform.python_version()
    try:
        import spconv

        facts["spconv"] = getattr(spconv, "__version__", "?")
    except ImportError:
        facts["spconv"] = "not importable"
    return facts


def close(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[bool, float]:
    if a.shape != b.shape:
        return False, float("inf")
    scale = max(float(np.abs(b).max()), 1e-6)
    err = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) / scale
    return err <= tol, err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", required=True, help="libsparsetrt_kernels_cuda.so")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--presets", nargs="+", default=["nuscenes", "waymo"])
    parser.add_argument("--seed", type=int, default=3, help="preset_frame seed [seed, 0] (nuScenes 3: 103k voxels)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--max-voxels", type=int, default=0, help="crop frames (a smoke test on the CPU backend)")
    args = parser.parse_args()
    from sparsetrt.data import PRESETS
    from sparsetrt.runtime import KernelLibrary

    if not torch.cuda.is_available():
        print("torch sees no CUDA device: spconv and dense rows need one (ours still run)", file=sys.stderr)
    library = KernelLibrary(args.library)
    args.out.mkdir(parents=True, exist_ok=True)
    facts = device_facts()
    facts["kernels"] = f"{library.path.name} ({library.backend}: {library.device})"
    rows, failures = [], 0
    for preset in args.presets:
        shape = tuple(int(s) for s in PRESETS[preset].spatial_shape)
        features, coords = frame(preset, args.seed, args.max_voxels)
        model = build_model(shape, features, coords)
        for fp16 in (False, True):
            dtype = "fp16" if fp16 else "fp32"
            proto = export_model(model, features, coords, fp16)
            ours, ours_out = bench_ours(proto, library, features, coords, fp16, args.warmup, args.repeats)
            row = {"preset": preset, "voxels": len(coords), "dtype": dtype, "ours": ours}
            try:
                theirs, spconv_out = bench_spconv(model, features, coords, shape, fp16, args.warmup, args.repeats)
                row["spconv"] = theirs
                ok, err = close(ours_out.astype(np.float32), spconv_out, 2e-2 if fp16 else 1e-3)
                row["ours_vs_spconv"] = {"ok": ok, "max_error_over_scale": err}
                failures += not ok
            except Exception as e:  # spconv missing, or its CUDA kernels not for this GPU: say so, go on
                row["spconv"] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
            model = model.float().cpu()
            if not args.skip_dense and torch.cuda.is_available():
                row["dense"] = bench_dense(model, features, coords, shape, fp16, 2, max(3, args.repeats // 4))
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"device": facts, "rows": rows, "warmup": args.warmup, "repeats": args.repeats}
    (args.out / "bench_gpu.json").write_text(json.dumps(result, indent=1))
    (args.out / "bench_gpu.md").write_text(render(result))
    plot(result, args.out / "bench_gpu.png")
    print(render(result))
    return 1 if failures else 0


def _ms(d: dict, key: str) -> str:
    if not isinstance(d, dict):
        return "-"
    return f"{d[key]:.2f}" if key in d else d.get("error", "-")


def render(result: dict) -> str:
    f = result["device"]
    lines = [
        f"### CenterPoint VoxelResBackBone8x (full width), {f.get('name', '?')}, "
        f"driver {f.get('driver_version', '?')}, {f.get('date')}",
        "",
        f"torch {f.get('torch')} (CUDA {f.get('cuda (torch)')}), spconv {f.get('spconv')}, Python {f.get('python')}; "
        f"ours: {f.get('kernels')}. Medians of {result['repeats']} runs after {result['warmup']} warm-up runs, ms.",
        "",
        "| frame | voxels | dtype | ours total | ours rulebooks | ours convs | ours densify | spconv total | spconv "
        "rulebooks (its timer) | dense torch | ours vs spconv |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        o, s, d = r["ours"], r.get("spconv", {}), r.get("dense", {})
        check = r.get("ours_vs_spconv")
        verdict = f"{'ok' if check['ok'] else 'DIFFERS'} ({check['max_error_over_scale']:.1e})" if check else "-"
        lines.append(
            f"| {r['preset']} | {r['voxels']} | {r['dtype']} | {_ms(o, 'total')} | {_ms(o, 'rulebooks')} "
            f"| {_ms(o, 'SparseConv')} | {_ms(o, 'Densify')} | {_ms(s, 'total')} "
            f"| {_ms(s, 'rulebooks (spconv timer)')} | {_ms(d, 'total')} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not importable: no plot (the table and JSON have the figures)", file=sys.stderr)
        return
    rows = result["rows"]
    labels = [f"{r['preset']}\n{r['dtype']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(rows)), 4))
    ours_rb = [r["ours"].get("rulebooks", 0) for r in rows]
    ours_rest = [r["ours"]["total"] - r["ours"].get("rulebooks", 0) for r in rows]
    ax.bar(x - 0.2, ours_rb, 0.38, label="ours: rulebooks", color="#1f77b4")
    ax.bar(x - 0.2, ours_rest, 0.38, bottom=ours_rb, label="ours: convs, densify", color="#aec7e8")
    sp = [r.get("spconv", {}) for r in rows]
    sp_rb = [s.get("rulebooks (spconv timer)", 0) for s in sp]
    sp_rest = [max(s.get("total", 0) - rb, 0) for s, rb in zip(sp, sp_rb, strict=True)]
    ax.bar(x + 0.2, sp_rb, 0.38, label="spconv 2.3.8: rulebooks", color="#d62728")
    ax.bar(x + 0.2, sp_rest, 0.38, bottom=sp_rb, label="spconv 2.3.8: rest", color="#ff9896")
    ax.set_xticks(x, labels)
    ax.set_ylabel("ms (median)")
    ax.set_title(f"CenterPoint backbone on {result['device'].get('name', '?')}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
