"""Sparse convolution layers with spconv 2.x's names, signatures, defaults and weight layout.

A layer's weight is ``[C_out, *kernel_size, C_in]`` and its bias ``[C_out]``, so ``load_state_dict`` of
a spconv 2.x model works unchanged. spconv's kernel-selection arguments (``algo``, ``fp32_accum``,
``large_kernel_fast_algo``) are accepted and have no effect here: they choose spconv's CUDA kernels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .. import ops
from ..backend.geometry import ConvGeometry, ConvKind, IntOrSeq, expand_nd
from ..sparse_tensor import SparseTensor, as_sparse_tensor
from .modules import SparseModule
from .rulebooks import find_inverse, find_or_build

# spconv registers this buffer when record_voxel_count=True; we do too, so state dicts match key for key.
MAX_VOXELS_BUFFER = "max_num_voxels_during_training"

_ACTIVATIONS = {"none_": None, "none": None, "relu": "relu", "sigmoid": "sigmoid", "leakyrelu": "leaky_relu"}


def _activation_name(act_type: Any) -> str | None:
    """spconv's fused inference activation (a ``tv.gemm.Activation`` or its name) -> our name."""
    if act_type is None:
        return None
    name = str(getattr(act_type, "name", act_type)).split(".")[-1].lower()
    if name not in _ACTIVATIONS:
        raise ValueError(f"unsupported act_type {act_type!r}; use one of None, ReLU, Sigmoid, LeakyReLU")
    return _ACTIVATIONS[name]


class SparseConvolution(SparseModule):
    """The one sparse convolution layer behind every ``SubMConv``/``SparseConv``/... class."""

    def __init__(
        self,
        ndim: int,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq = 3,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        bias: bool = True,
        subm: bool = False,
        output_padding: IntOrSeq = 0,
        transposed: bool = False,
        inverse: bool = False,
        indice_key: str | None = None,
        algo: Any = None,
        fp32_accum: bool | None = None,
        record_voxel_count: bool = False,
        act_type: Any = None,
        act_alpha: float = 0.0,
        act_beta: float = 0.0,
        large_kernel_fast_algo: bool = False,
        name: str | None = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(name=name)
        if groups != 1:
            raise ValueError(f"groups={groups} is not supported (spconv 2.x supports only groups=1)")
        if sum((subm, transposed, inverse)) > 1:
            raise ValueError("a layer is at most one of submanifold, transposed and inverse")
        if inverse and indice_key is None:
            raise ValueError("an inverse conv needs the indice_key of the strided conv it inverts")
        self.ndim = ndim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = expand_nd(ndim, kernel_size, "kernel_size")
        self.stride = expand_nd(ndim, stride, "stride")
        self.padding = expand_nd(ndim, padding, "padding")
        self.dilation = expand_nd(ndim, dilation, "dilation")
        self.output_padding = expand_nd(ndim, output_padding, "output_padding")
        self.groups = groups
        self.subm = subm
        self.transposed = transposed
        self.inverse = inverse
        self.indice_key = indice_key
        self.algo = algo
        self.fp32_accum = fp32_accum
        self.act_type = act_type
        self.act_alpha = act_alpha
        self.act_beta = act_beta
        self._activation = _activation_name(act_type)
        if subm:
            kind = ConvKind.SUBMANIFOLD
            # The kernel is centred and the sites kept, so padding has no meaning (ignored, as in spconv);
            # a stride could not take effect either, and we refuse it rather than ignore it silently.
            if any(s != 1 for s in self.stride):
                raise ValueError(
                    f"SubMConv with stride {self.stride}: a submanifold conv keeps its input sites; use "
                    "SparseConv for a strided conv"
                )
            self.geometry = ConvGeometry.make(kind, ndim, self.kernel_size, 1, 0, self.dilation)
        elif inverse:
            self.geometry = None  # borrowed from the partner layer at run time
        else:
            kind = ConvKind.TRANSPOSED if transposed else ConvKind.REGULAR
            self.geometry = ConvGeometry.make(
                kind, ndim, self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding
            )
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, *self.kernel_size, in_channels, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        if record_voxel_count and not subm and not inverse:
            self.register_buffer(MAX_VOXELS_BUFFER, torch.zeros(1, dtype=torch.int32, device=device))
        self.record_voxel_count = record_voxel_count
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's and spconv's default: kaiming_uniform(a=sqrt(5)) over fan_in = C_in * kernel volume.
        fan_in = self.in_channels * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _layer_name(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def forward(self, input: Any, add_input: Any = None) -> SparseTensor:
        input = as_sparse_tensor(input, self._layer_name())
        if input.features.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._layer_name()}: input has {input.features.shape[1]} channels, expected {self.in_channels}"
            )
        if self.inverse:
            rulebook = find_inverse(input, self.kernel_size, self.indice_key, self._layer_name())
            cache = dict(input.indice_dict)
        else:
            rulebook, cache = find_or_build(input, self.geometry, self.indice_key, self._layer_name())
        if self.record_voxel_count and hasattr(self, MAX_VOXELS_BUFFER):
            ops.record_max_sites(getattr(self, MAX_VOXELS_BUFFER), rulebook.num_out)
        # With a residual add_input the activation comes after the add, so it cannot be fused.
        fused = self._activation if add_input is None else None
        features = ops.sparse_conv(input.features, rulebook, self.weight, self.bias, fused, self.act_alpha)
        if add_input is not None:
            features = ops.apply_activation(
                features + as_sparse_tensor(add_input).features, self._activation, self.act_alpha
            )
        return SparseTensor(
            features, rulebook.out_indices, list(rulebook.out_spatial_shape), input.batch_size, cache, validate=False
        )

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"]
        if not self.subm and not self.inverse:
            parts.append(f"stride={self.stride}")
            if any(self.padding):
                parts.append(f"padding={self.padding}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={self.dilation}")
        if self.bias is None:
            parts.append("bias=False")
        if self.indice_key is not None:
            parts.append(f"indice_key={self.indice_key!r}")
        return ", ".join(parts)


class _SubMConv(SparseConvolution):
    NDIM = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        bias: bool = True,
        indice_key: str | None = None,
        algo: Any = None,
        fp32_accum: bool | None = None,
        large_kernel_fast_algo: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(
            self.NDIM,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            subm=True,
            indice_key=indice_key,
            algo=algo,
            fp32_accum=fp32_accum,
            large_kernel_fast_algo=large_kernel_fast_algo,
            name=name,
        )


class _SparseConv(SparseConvolution):
    NDIM = 0
    TRANSPOSED = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        bias: bool = True,
        indice_key: str | None = None,
        algo: Any = None,
        fp32_accum: bool | None = None,
        record_voxel_count: bool = False,
        large_kernel_fast_algo: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(
            self.NDIM,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            transposed=self.TRANSPOSED,
            indice_key=indice_key,
            algo=algo,
            fp32_accum=fp32_accum,
            record_voxel_count=record_voxel_count,
            large_kernel_fast_algo=large_kernel_fast_algo,
            name=name,
        )


class _SparseConvTranspose(_SparseConv):
    TRANSPOSED = True


class _SparseInverseConv(SparseConvolution):
    NDIM = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq,
        indice_key: str,
        bias: bool = True,
        algo: Any = None,
        fp32_accum: bool | None = None,
        large_kernel_fast_algo: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(
            self.NDIM,
            in_channels,
            out_channels,
            kernel_size,
            bias=bias,
            inverse=True,
            indice_key=indice_key,
            algo=algo,
            fp32_accum=fp32_accum,
            large_kernel_fast_algo=large_kernel_fast_algo,
            name=name,
        )


class SubMConv1d(_SubMConv):
    NDIM = 1


class SubMConv2d(_SubMConv):
    NDIM = 2


class SubMConv3d(_SubMConv):
    NDIM = 3


class SubMConv4d(_SubMConv):
    NDIM = 4


class SparseConv1d(_SparseConv):
    NDIM = 1


class SparseConv2d(_SparseConv):
    NDIM = 2


class SparseConv3d(_SparseConv):
    NDIM = 3


class SparseConv4d(_SparseConv):
    NDIM = 4


class SparseConvTranspose1d(_SparseConvTranspose):
    NDIM = 1


class SparseConvTranspose2d(_SparseConvTranspose):
    NDIM = 2


class SparseConvTranspose3d(_SparseConvTranspose):
    NDIM = 3


class SparseConvTranspose4d(_SparseConvTranspose):
    NDIM = 4


class SparseInverseConv1d(_SparseInverseConv):
    NDIM = 1


class SparseInverseConv2d(_SparseInverseConv):
    NDIM = 2


class SparseInverseConv3d(_SparseInverseConv):
    NDIM = 3


class SparseInverseConv4d(_SparseInverseConv):
    NDIM = 4
