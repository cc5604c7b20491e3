"""Choose an engine's voxel profile and the export's ``max_sites`` from real frames (``sparsetrt bounds``).

TensorRT allocates every tensor for the largest size it may take: the inputs at the profile's MAX voxel count,
and the outputs of each strided or transposed layer (each ``SparseRulebook``) at their declared upper bound,
``min(N x reach, batch x output grid)``, tightened to ``max_sites`` when the file was exported with one. The
derived bound is sound but loose (8 N for a 3x3x3 stride-2 conv, while real lidar frames create 1-2 N), so at
nuScenes scale the sparse tensors are sized for millions of sites: gigabytes on a 32 GB Orin. The rule:

- voxel profile ``MIN:OPT:MAX``: MIN 1, OPT the median voxel count of your frames (TensorRT tunes for it), MAX
  the largest count you must serve times a margin (1.2 by default), rounded up to a thousand. A frame above MAX
  is refused before any GPU work, never truncated.
- ``max_sites`` (export): the most sites any strided or transposed layer created on those frames, times the same
  margin, rounded up. A run that exceeds it fails with an error naming the layer, never truncates.

Measure on frames that cover your worst cases (dense urban scenes, many sweeps). ``measure_bounds`` runs only
the file's rulebook nodes (the CPU reference), so thousands of frames take minutes, not hours.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper

from sparsetrt.errors import InputError
from sparsetrt.exporter.schema import DOMAIN, kernel_volume

from .ops import sparse_rulebook
from .spec import ModelSpec
from .tensor_file import load_tensors

DEFAULT_MARGIN = 1.2
_PASSTHROUGH = ("Cast", "Identity")


class BoundsError(InputError):
    """The frames or the file cannot be measured; the message says why (the CLI's bad-input exit status)."""


@dataclass
class LayerBounds:
    """One SparseRulebook node: the most input and output sites seen."""

    node: str
    kernel_volume: int
    ndim: int
    max_in: int = 0
    max_out: int = 0

    @property
    def map_bytes_per_site(self) -> int:
        """int32 neighbour map column plus one output site row."""
        return 4 * (self.kernel_volume + 1 + self.ndim)


@dataclass
class BoundsReport:
    voxels: list[int] = field(default_factory=list)  # voxel count (rows of the coordinates input) per frame
    layers: list[LayerBounds] = field(default_factory=list)
    margin: float = DEFAULT_MARGIN

    def profile(self) -> tuple[int, int, int]:
        """The recommended ``--voxels MIN:OPT:MAX``."""
        high = _round_up(max(self.voxels) * self.margin)
        return 1, max(1, int(statistics.median(self.voxels))), high

    def max_sites(self) -> int:
        """The recommended ``--max-sites`` (0: the file has no strided or transposed layer)."""
        most = max((layer.max_out for layer in self.layers), default=0)
        return _round_up(most * self.margin) if most else 0

    def format(self) -> str:
        low, opt, high = self.profile()
        v = sorted(self.voxels)
        lines = [
            f"{len(v)} frame(s): voxels min {v[0]}, median {int(statistics.median(v))}, max {v[-1]}",
        ]
        if self.layers:
            lines.append("strided / transposed layers (SparseRulebook): most sites in -> out over the frames")
            width = max(len(layer.node) for layer in self.layers)
            for layer in self.layers:
                ratio = layer.max_out / layer.max_in if layer.max_in else 0.0
                lines.append(f"  {layer.node:<{width}}  {layer.max_in:>9} -> {layer.max_out:>9}  ({ratio:.2f} x)")
        lines.append(f"recommended, with a margin of {self.margin:g}:")
        lines.append(f"  sparsetrt build ... --voxels {low}:{opt}:{high}")
        sites = self.max_sites()
        if sites:
            lines.append(f"  sparsetrt export ... --max-sites {sites}   (export(..., max_sites={sites}))")
            maps = sum(layer.map_bytes_per_site for layer in self.layers) * sites
            lines.append(
                f"  the rulebook outputs are then sized for at most {sites} sites each: {maps / 2**20:.0f} MiB in all "
                "(plus the features of the layers that read them)"
            )
        return "\n".join(lines)


def _round_up(value: float, step: int = 1000) -> int:
    return int(math.ceil(value / step) * step)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def measure_bounds(
    model: str | os.PathLike | onnx.ModelProto, frames: Iterable[Mapping[str, Any]], margin: float = DEFAULT_MARGIN
) -> BoundsReport:
    """Voxel counts and the sites every SparseRulebook creates, over ``frames`` (each a feed: input name ->
    array; only the coordinates input is read, so features may be absent)."""
    if not margin >= 1.0:
        raise BoundsError(f"the margin must be >= 1 (a factor over the largest count seen), got {margin}")
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
    spec = ModelSpec.from_onnx(proto)
    coords = [t for t in spec.inputs if t.role == "coords"]
    if not coords:
        raise BoundsError("the file has no voxel-coordinates input (an int input that feeds a rulebook or Densify)")
    rulebooks = [n for n in proto.graph.node if n.domain == DOMAIN and n.op_type == "SparseRulebook"]
    report = BoundsReport(margin=margin)
    for node in rulebooks:
        attrs = _attrs(node)
        report.layers.append(
            LayerBounds(node.name or node.output[0], kernel_volume(attrs["kernel_size"]), len(attrs["spatial_shape"]))
        )
    count = 0
    for feed in frames:
        count += 1
        sites: dict[str, torch.Tensor] = {}
        for t in coords:
            if t.name not in feed:
                raise BoundsError(f"frame {count} has no {t.name!r} (the coordinates input); it has {sorted(feed)}")
            sites[t.name] = torch.from_numpy(np.ascontiguousarray(np.asarray(feed[t.name]), dtype=np.int32))
        report.voxels.append(int(sites[coords[0].name].shape[0]))
        k = 0
        for node in proto.graph.node:
            if node.op_type in _PASSTHROUGH and node.input and node.input[0] in sites:
                sites[node.output[0]] = sites[node.input[0]]
            elif node.domain == DOMAIN and node.op_type == "SparseRulebook":
                if node.input[0] not in sites:
                    raise BoundsError(
                        f"cannot follow the sites that feed {node.name!r}: they do not come from the coordinates "
                        "input through rulebooks, Casts and Identities"
                    )
                indices = sites[node.input[0]]
                # Measure the true count, even where the file's own max_out would refuse it.
                out_indices = sparse_rulebook.build(indices, {**_attrs(node), "max_out": 0})[0]
                sites[node.output[0]] = out_indices
                layer = report.layers[k]
                layer.max_in = max(layer.max_in, int(indices.shape[0]))
                layer.max_out = max(layer.max_out, int(out_indices.shape[0]))
                k += 1
    if not count:
        raise BoundsError("no frames to measure")
    return report


def frame_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Tensor files (docs/tensor_files.md): the given files, and every ``*.bin`` in given folders (sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.bin"))
            if not found:
                raise BoundsError(f"folder {path} holds no .bin tensor files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise BoundsError(f"{path} does not exist")
    return files


def load_frames(files: Iterable[Path]) -> Iterable[dict[str, np.ndarray]]:
    for path in files:
        yield load_tensors(path)
