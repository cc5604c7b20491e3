"""What the ops' runtime modules share: the call each kernel receives, and the data checks several ops make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import onnx
import torch

from sparsetrt.errors import InputError, ModelError
from sparsetrt.exporter.backend import ops as backend_ops
from sparsetrt.exporter.backend.coords import outside_grid

if TYPE_CHECKING:
    from ..kernel_library import DeviceArray, KernelLibrary

Pairs = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ReferenceCall:
    """One node's run on the reference backend: its inputs as torch tensors (None: an absent optional input)."""

    node: onnx.NodeProto
    where: str  # "sparsetrt::<Op> node '<name>'", how every message names the node
    attrs: dict[str, Any]
    inputs: list[torch.Tensor | None]
    pairs_cache: dict[str, Pairs] = field(default_factory=dict)  # the run's, shared by its nodes

    def input(self, i: int) -> torch.Tensor | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def pairs(self, i: int, neighbors: torch.Tensor) -> Pairs:
        """The per-offset (input row, output row) lists of ``neighbors``, the map read from input ``i``: layers that
        share a rulebook (or its plan) share them, computed once per offset and run."""
        name = self.node.input[i]
        if name not in self.pairs_cache:
            self.pairs_cache[name] = _memoized(backend_ops.map_pairs(neighbors))
        return self.pairs_cache[name]


@dataclass
class KernelCall:
    """One node's run on the kernel library: ``dev(name)`` gives a tensor in device memory (uploaded on first use)."""

    lib: KernelLibrary
    node: onnx.NodeProto
    attrs: dict[str, Any]
    dev: Callable[[str], DeviceArray]

    def input(self, i: int) -> DeviceArray | None:
        present = i < len(self.node.input) and self.node.input[i]
        return self.dev(self.node.input[i]) if present else None


def check_map(where: str, neighbors: torch.Tensor, rows: int, source: str) -> None:
    """A neighbour map may only hold -1 or rows of its source; anything else would be read out of bounds."""
    if neighbors.numel() == 0:
        return
    low, high = int(neighbors.min()), int(neighbors.max())
    if low < -1 or high >= rows:
        raise ModelError(
            f"{where}: input 'neighbors' holds rows from {low} to {high}, but input '{source}' has {rows} rows: the "
            "rulebook was built on other sites than the ones given here (features and coordinates with different "
            "row counts, or a graph wired by hand)"
        )


def check_sites(where: str, indices: torch.Tensor, batch_size: int, spatial_shape: list[int]) -> None:
    """Densify writes each site into the dense grid: a site outside it would land elsewhere (negative indices
    wrap around), so refuse it."""
    if indices.numel() == 0:
        return
    bad = outside_grid(indices, batch_size, spatial_shape)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise InputError(
            f"{where}: input 'indices' row {row} = {tuple(int(v) for v in indices[row])} lies outside batch_size "
            f"{batch_size} x spatial_shape {list(spatial_shape)}: coordinates must satisfy 0 <= batch < batch_size "
            "and 0 <= coord[d] < spatial_shape[d]"
        )


def _memoized(pairs: Pairs) -> Pairs:
    memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if k not in memo:
            memo[k] = pairs(k)
        return memo[k]

    return get
