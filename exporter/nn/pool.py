"""Sparse max pooling with spconv 2.x's names, signatures and defaults (``stride=None`` = kernel size)."""

from __future__ import annotations

from typing import Any

import torch

from .. import ops
from ..backend.geometry import ConvGeometry, ConvKind, IntOrSeq, expand_nd
from ..sparse_tensor import SparseTensor, as_sparse_tensor
from .conv import MAX_VOXELS_BUFFER
from .modules import SparseModule
from .rulebooks import find_or_build


class SparseMaxPool(SparseModule):
    """Max over the *active* sites in each window (inactive sites are absent, not zeros)."""

    def __init__(
        self,
        ndim: int,
        kernel_size: IntOrSeq = 3,
        stride: IntOrSeq | None = 1,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        indice_key: str | None = None,
        subm: bool = False,
        algo: Any = None,
        record_voxel_count: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.ndim = ndim
        self.kernel_size = expand_nd(ndim, kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else expand_nd(ndim, stride, "stride")
        self.padding = expand_nd(ndim, padding, "padding")
        self.dilation = expand_nd(ndim, dilation, "dilation")
        self.indice_key = indice_key
        self.subm = subm
        self.algo = algo
        kind = ConvKind.SUBMANIFOLD if subm else ConvKind.REGULAR
        stride_arg = 1 if subm else self.stride
        self.geometry = ConvGeometry.make(kind, ndim, self.kernel_size, stride_arg, self.padding, self.dilation)
        if record_voxel_count and not subm:
            self.register_buffer(MAX_VOXELS_BUFFER, torch.zeros(1, dtype=torch.int32))
        self.record_voxel_count = record_voxel_count

    def forward(self, input: Any) -> SparseTensor:
        input = as_sparse_tensor(input, type(self).__name__)
        rulebook, cache = find_or_build(input, self.geometry, self.indice_key, type(self).__name__)
        if self.record_voxel_count and hasattr(self, MAX_VOXELS_BUFFER):
            ops.record_max_sites(getattr(self, MAX_VOXELS_BUFFER), rulebook.num_out)
        features = ops.sparse_max_pool(input.features, rulebook)
        return SparseTensor(
            features,
            rulebook.out_indices,
            list(rulebook.out_spatial_shape),
            input.batch_size,
            cache,
            validate=False,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _SparseMaxPoolNd(SparseMaxPool):
    NDIM = 0

    def __init__(
        self,
        kernel_size: IntOrSeq,
        stride: IntOrSeq | None = None,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        indice_key: str | None = None,
        algo: Any = None,
        record_voxel_count: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(
            self.NDIM,
            kernel_size,
            stride,
            padding,
            dilation,
            indice_key,
            algo=algo,
            record_voxel_count=record_voxel_count,
            name=name,
        )


class SparseMaxPool1d(_SparseMaxPoolNd):
    NDIM = 1


class SparseMaxPool2d(_SparseMaxPoolNd):
    NDIM = 2


class SparseMaxPool3d(_SparseMaxPoolNd):
    NDIM = 3


class SparseMaxPool4d(_SparseMaxPoolNd):
    NDIM = 4
