"""spconv's tables: modules that combine several sparse tensors (``spconv.pytorch.tables``), with spconv's
behaviour, over our SparseTensor. ``convert`` swaps spconv's for these (theirs read spconv-only attributes).

- ``AddTable``: features summed, the sites (and rulebooks) of the first tensor; all must have the same sites.
- ``AddTableMisaligned``: the sum over the union of the sites (``functional.sparse_add``: UniqueSites +
  SegmentReduce when exported).
- ``JoinTable``: features concatenated along channels, the sites of the first tensor.
- ``ConcatTable``: every child module applied to the input, the results as a list.
"""

from __future__ import annotations

from typing import Any

import torch

from ..functional import sparse_add
from ..sparse_tensor import SparseTensor, as_sparse_tensor
from .modules import SparseModule


def _aligned(inputs: list[Any], table: str) -> list[SparseTensor]:
    xs = [as_sparse_tensor(x, table) for x in inputs]
    first = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        if x.spatial_shape != first.spatial_shape or x.batch_size != first.batch_size:
            raise ValueError(f"{table}: tensor {i} lives on another grid or batch than tensor 0")
        if x.indices.shape[0] != first.indices.shape[0]:
            raise ValueError(
                f"{table}: tensor {i} has {x.indices.shape[0]} sites, tensor 0 {first.indices.shape[0]}; tensors "
                "over different sites are added by AddTableMisaligned (spconv's sparse_add)"
            )
    return xs


class AddTable(SparseModule):
    def forward(self, inputs: list[Any]) -> SparseTensor:
        xs = _aligned(list(inputs), "AddTable")
        features = xs[0].features
        for x in xs[1:]:
            features = features + x.features
        return xs[0].replace_feature(features)


class AddTableMisaligned(SparseModule):
    def forward(self, inputs: list[Any]) -> SparseTensor:
        return sparse_add(*inputs)


class JoinTable(SparseModule):
    def forward(self, inputs: list[Any]) -> SparseTensor:
        xs = _aligned(list(inputs), "JoinTable")
        return xs[0].replace_feature(torch.cat([x.features for x in xs], dim=1))


class ConcatTable(SparseModule):
    def forward(self, input: Any) -> list[Any]:
        return [module(input) for module in self._modules.values()]

    def add(self, module: torch.nn.Module) -> ConcatTable:
        self._modules[str(len(self._modules))] = module
        return self
