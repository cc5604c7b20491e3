"""The work counter: what CenterPoint's sparse backbone costs our kernels, counted without a GPU.

Exports OpenPCDet's CenterPoint ``VoxelResBackBone8x`` at full width (tests/zoo/centerpoint.py: 5 input
channels, 16/32/64/128, conv_out 128) for the nuScenes and Waymo grids, builds every rulebook of the exported
graph on synthetic lidar frames of that dataset (``sparsetrt.data``, preset frames), and counts per layer and in
total, for the kernels before issue 16 and now (``sparsetrt.runtime.kernel_work``):

- useful multiply-adds (one per map entry, input and output channel) and tensor-core multiply-adds executed under
  the kernels' tiling and skipping (fp16; counted by the model that tests/test_kernel_work.py checks against the
  mma instructions the CPU execution backend executes);
- bytes of the map (or ConvPlan) the convs read, of feature rows gathered, weights, outputs written and residuals
  read (a separate Add before), split partial sums;
- the rulebook builds' work: hash probes and other random accesses (32 bytes each), streamed bytes (clears,
  sorts, writes), sorted keys, host round trips; ConvPlans count as rulebook work.

    python benchmarks/bench_work.py [--seeds 0 1 2 3] [--presets nuscenes waymo] [--sms 132] [--json FILE]

Needs spconv (the backbone is built from spconv layers, as in OpenPCDet) and about a minute per frame.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

INPUTS = ["voxel_features", "voxel_coords"]


def export_backbone(spatial_shape: tuple[int, int, int]) -> onnx.ModelProto:
    """The full-width backbone, exported with the exporter's default passes (residuals fused, ConvPlans)."""
    from zoo.centerpoint import CenterPointBackbone
    from zoo.layers import seeded_build

    from sparsetrt.exporter import export

    def example(n: int):
        rng = np.random.default_rng(n)
        z, y, x = (rng.integers(0, s, n * 2) for s in spatial_shape)
        flat = np.unique(np.stack([z, y, x], 1), axis=0)[:n]
        coords = np.concatenate([np.zeros((len(flat), 1), np.int64), flat], 1)
        return torch.from_numpy(rng.normal(size=(len(flat), 5)).astype(np.float32)), torch.from_numpy(coords).int()

    model = seeded_build(lambda: CenterPointBackbone(spatial_shape=spatial_shape), seed=1)
    return export(model, (*example(3000), 1), io.BytesIO(), input_names=INPUTS)


def frame_coords(preset: str, seed: int) -> np.ndarray:
    from sparsetrt.data import preset_frame

    _, vox = preset_frame(preset, [seed, 0])
    coords = vox.coords.astype(np.int32)
    return np.concatenate([np.zeros((len(coords), 1), np.int32), coords], 1)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _layer_name(conv: onnx.NodeProto) -> str:
    # "/conv2/conv2.1/conv1/SparseConv" -> "conv2.1.conv1"; "/conv_input/conv_input.0/SparseConv" -> "conv_input"
    parts = [p for p in conv.name.split("/") if p and p != "SparseConv"]
    return ".".join(parts[1:]) if len(parts) > 1 and not parts[-1].endswith(".0") else parts[0]


def count_frame(proto: onnx.ModelProto, coords: np.ndarray, sms: int) -> tuple[dict, dict]:
    """Per layer {before, after} conv work and per rulebook node {before, after} rulebook work, for one frame."""
    from sparsetrt.exporter.backend.geometry import ConvGeometry, ConvKind
    from sparsetrt.exporter.backend.rulebook import submanifold_map
    from sparsetrt.exporter.schema import DOMAIN
    from sparsetrt.runtime import kernel_work as kw
    from sparsetrt.runtime.ops import conv_plan, sparse_rulebook

    values: dict[str, np.ndarray] = {INPUTS[1]: coords}
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    n_in_of: dict[str, int] = {}  # map tensor -> rows of its input features
    source_of: dict[str, str] = {}  # plan tensor -> its map
    convs, rulebooks = {}, {}
    for node in proto.graph.node:
        if node.domain != DOMAIN:
            continue
        a = _attrs(node)
        t = {name: torch.from_numpy(values[name]) for name in node.input if name in values}
        if node.op_type == "SubmRulebook":
            idx = values[node.input[0]]
            nb = submanifold_map(t[node.input[0]], a["spatial_shape"], a["kernel_size"], a["dilation"])
            values[node.output[0]] = nb.numpy()
            n_in_of[node.output[0]] = len(idx)
            shape = tuple(a["spatial_shape"])
            rulebooks[node.name] = {
                d: kw.subm_rulebook_work(idx, shape, tuple(a["kernel_size"]), d) for d in ("before", "after")
            }
        elif node.op_type == "SparseRulebook":
            idx = values[node.input[0]]
            out_idx, nb, _ = sparse_rulebook.build(t[node.input[0]], a)
            values[node.output[0]], values[node.output[1]] = out_idx.numpy(), nb.numpy()
            n_in_of[node.output[1]] = len(idx)
            geo = ConvGeometry.make(
                ConvKind.REGULAR, 3, a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["output_padding"]
            )
            out_shape = geo.output_shape(tuple(a["spatial_shape"]))
            reach = 1
            for k, s in zip(a["kernel_size"], a["stride"], strict=True):
                reach *= -(-k // s)
            bound = min(len(idx) * reach, a["batch_size"] * int(np.prod(out_shape)))
            rulebooks[node.name] = {
                d: kw.sparse_rulebook_work(
                    idx, out_idx.numpy(), nb.numpy(), tuple(out_shape), reach, bound, a["batch_size"], d
                )
                for d in ("before", "after")
            }
        elif node.op_type == "ConvPlan":
            plan = conv_plan.build(t[node.input[0]])
            values[node.output[0]] = plan.numpy()
            source_of[node.output[0]] = node.input[0]
            rulebooks[node.name] = {"before": kw.RulebookWork(), "after": kw.conv_plan_work(values[node.input[0]])}
        elif node.op_type == "SparseConv":
            w = weights[node.input[2]]
            c_out, k, c_in = w.shape
            map_name = source_of.get(node.input[1], node.input[1])
            nb = values[map_name]
            plan = values[node.input[1]] if node.input[1] in source_of else None
            residual = len(node.input) > 4 and bool(node.input[4])
            n_in = n_in_of[map_name]
            convs[_layer_name(node)] = {
                "shape": {"K": int(k), "M": int(nb.shape[1]), "N": int(n_in), "C_in": int(c_in), "C_out": int(c_out)},
                "residual": residual,
                "before": kw.conv_work(nb, n_in, c_in, c_out, design="before", residual=residual),
                "after": kw.conv_work(nb, n_in, c_in, c_out, plan=plan, multiprocessors=sms, residual=residual),
            }
        elif node.op_type == "Densify":
            pass
        else:
            raise ValueError(f"the counter does not know {node.op_type}")
    return convs, rulebooks


CONV_FIELDS = ("useful_macs", "executed_macs", "map_bytes", "map_floor_bytes", "gather_bytes", "weight_bytes",
               "scatter_bytes", "partial_bytes")  # fmt: skip


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def run(presets: list[str], seeds: list[int], sms: int) -> dict:
    from sparsetrt.data import PRESETS

    result: dict = {"sms": sms, "presets": {}}
    grand = {d: defaultdict(int) for d in ("before", "after")}
    for preset in presets:
        p = PRESETS[preset]
        proto = export_backbone(tuple(int(s) for s in p.spatial_shape))
        layers: dict[str, dict] = {}
        books = {d: defaultdict(int) for d in ("before", "after")}
        voxels = []
        for seed in seeds:
            t0 = time.perf_counter()
            coords = frame_coords(preset, seed)
            voxels.append(len(coords))
            convs, rulebooks = count_frame(proto, coords, sms)
            for name, c in convs.items():
                layer = layers.setdefault(name, {"shape": c["shape"], "residual": c["residual"], "frames": 0})
                layer["frames"] += 1
                for d in ("before", "after"):
                    acc = layer.setdefault(d, defaultdict(int))
                    for f in CONV_FIELDS:
                        acc[f] += getattr(c[d], f)
                    acc["mma"] += c[d].mma
                    acc["blocks"] += c[d].blocks
                    acc["splits"] = max(acc["splits"], c[d].splits)
            for r in rulebooks.values():
                for d in ("before", "after"):
                    for f, v in r[d].to_dict().items():
                        books[d][f] += v
            print(f"{preset} frame {seed}: {len(coords)} voxels, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        frames = len(seeds)
        totals = {}
        for d in ("before", "after"):
            total = defaultdict(int)
            for layer in layers.values():
                for f in CONV_FIELDS:
                    total[f] += layer[d][f]
            total.update({f"rulebook_{k}": v for k, v in books[d].items()})
            totals[d] = {k: v / frames for k, v in total.items()}  # per frame
            for k, v in total.items():
                grand[d][k] += v
        for layer in layers.values():
            for d in ("before", "after"):
                layer[d] = {k: (v / frames if k != "splits" else v) for k, v in layer[d].items()}
        result["presets"][preset] = {
            "frames": frames,
            "voxels_per_frame": float(np.mean(voxels)),
            "spatial_shape": list(p.spatial_shape),
            "layers": layers,
            "total": totals,
        }
    n = len(presets) * len(seeds)
    result["total"] = {
        "per_frame_over": f"{n} frames: {', '.join(presets)}",
        "before": {k: v / n for k, v in grand["before"].items()},
        "after": {k: v / n for k, v in grand["after"].items()},
    }
    result["total"]["useful_macs"] = result["total"]["after"]["useful_macs"]
    result["total"]["executed_macs"] = result["total"]["after"]["executed_macs"]
    return result


def _g(x: float) -> str:
    return f"{x / 1e9:7.2f}"


def _m(x: float) -> str:
    return f"{x / 1e6:7.1f}"


def print_tables(result: dict) -> None:
    for preset, r in result["presets"].items():
        print(f"\n### {preset}: {r['frames']} frames, {r['voxels_per_frame']:.0f} voxels per frame, grid "
              f"{r['spatial_shape']}, fp16 tensor cores, {result['sms']} SMs (figures per frame)\n")  # fmt: skip
        print(
            "| layer | K | M | C_in->C_out | useful GMAC | executed GMAC before -> after | useful/executed before -> "
            "after | map MB before -> after | gather MB | out+residual(+partials) MB before -> after | splits |"
        )
        print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, layer in r["layers"].items():
            s, b, a = layer["shape"], layer["before"], layer["after"]
            print(
                f"| {name}{' (+res)' if layer['residual'] else ''} | {s['K']} | {s['M']} | {s['C_in']}->{s['C_out']} "
                f"| {_g(b['useful_macs'])} | {_g(b['executed_macs'])} -> {_g(a['executed_macs'])} "
                f"| {_ratio(b['useful_macs'], b['executed_macs']):.2f} -> "
                f"{_ratio(a['useful_macs'], a['executed_macs']):.2f} "
                f"| {_m(b['map_bytes'])} -> {_m(a['map_bytes'])} | {_m(a['gather_bytes'])} "
                f"| {_m(b['scatter_bytes'])} -> {_m(a['scatter_bytes'] + a['partial_bytes'])} | {a['splits']} |"
            )
        _print_total(r["total"])
    print(f"\n### all presets ({result['total']['per_frame_over']}; per frame)\n")
    _print_total(result["total"])


def _print_total(total: dict) -> None:
    b, a = total["before"], total["after"]
    rows = [
        ("useful GMAC", _g(b["useful_macs"]), _g(a["useful_macs"])),
        ("executed tensor-core GMAC", _g(b["executed_macs"]), _g(a["executed_macs"])),
        (
            "useful / executed",
            f"{_ratio(b['useful_macs'], b['executed_macs']):.3f}",
            f"{_ratio(a['useful_macs'], a['executed_macs']):.3f}",
        ),
        ("map MB (read by the convs)", _m(b["map_bytes"]), _m(a["map_bytes"])),
        ("  any map format's least (pairs x 4 + 8 per row)", _m(b["map_floor_bytes"]), _m(a["map_floor_bytes"])),
        ("gather MB (feature rows)", _m(b["gather_bytes"]), _m(a["gather_bytes"])),
        ("weights MB (per block, L2)", _m(b["weight_bytes"]), _m(a["weight_bytes"])),
        ("outputs + residual MB", _m(b["scatter_bytes"]), _m(a["scatter_bytes"])),
        ("split partial sums MB", _m(b["partial_bytes"]), _m(a["partial_bytes"])),
        ("rulebook work MB (random x 32 B + streamed)", _m(b["rulebook_bytes"]), _m(a["rulebook_bytes"])),
        ("  random accesses (M)", _m(b["rulebook_random_accesses"]), _m(a["rulebook_random_accesses"])),
        ("  streamed MB", _m(b["rulebook_streamed_bytes"]), _m(a["rulebook_streamed_bytes"])),
        ("  hash lookups (M)", _m(b["rulebook_lookups"]), _m(a["rulebook_lookups"])),
        ("  sorted keys (M)", _m(b["rulebook_sorted_keys"]), _m(a["rulebook_sorted_keys"])),
        ("  cleared MB", _m(b["rulebook_cleared_bytes"]), _m(a["rulebook_cleared_bytes"])),
        ("  host round trips", f"{b['rulebook_round_trips']:.0f}", f"{a['rulebook_round_trips']:.0f}"),
    ]
    print("\n| per frame | before | after | after / before |\n|---|---:|---:|---:|")
    for label, x, y in rows:
        try:
            change = f"{float(y) / float(x):.2f}" if float(x) else ""
        except ValueError:
            change = ""
        print(f"| {label} | {x.strip()} | {y.strip()} | {change} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nuscenes", "waymo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="preset_frame seeds [seed, 0]")
    parser.add_argument("--sms", type=int, default=132, help="multiprocessors (the split rule; H100 SXM: 132)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = run(args.presets, args.seeds, args.sms)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=asdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
