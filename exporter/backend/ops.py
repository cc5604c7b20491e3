"""Sparse compute over a rulebook: gather -> GEMM -> scatter, in plain torch (CPU or CUDA tensors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..schema import enum_values
from .rulebook import Rulebook

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Accumulate low-precision inputs in fp32, as the GPU kernels do (fp16 in, fp32 accumulate, fp16 out).
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def sparse_conv(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, rulebook: Rulebook
) -> torch.Tensor:
    """``out[m] = bias + sum_k W_k @ features[neighbors[k, m]]``, weight ``[C_out, *kernel, C_in]``.

    Deterministic: offsets are accumulated in ascending order, and within an offset no output repeats.
    Differentiable with respect to features, weight and bias.
    """
    c_out, c_in = int(weight.shape[0]), int(weight.shape[-1])
    expected = (c_out, *rulebook.geometry.kernel_size, c_in)
    if tuple(weight.shape) != expected:
        raise ValueError(f"weight has shape {list(weight.shape)}, expected [C_out, *kernel, C_in] = {list(expected)}")
    if features.shape[0] != rulebook.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the rulebook's input has {rulebook.num_in} sites")
    weight_kc = weight.reshape(c_out, rulebook.kernel_volume, c_in)
    return conv_over_map(features, weight_kc, bias, rulebook.num_out, rulebook.pairs, rulebook.identity_offset)


def conv_over_map(
    features: torch.Tensor,
    weight_kc: torch.Tensor,
    bias: torch.Tensor | None,
    num_out: int,
    pairs: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    identity_offset: int | None = None,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """The gather -> GEMM -> scatter loop, with ``weight_kc`` as ``[C_out, K, C_in]`` and ``pairs(k)``
    giving offset k's ``(in_rows, out_rows)``; ``residual`` ``[num_out, C_out]`` is added with the bias, before
    the one rounding to the features' dtype (as the kernels' fused epilogue does)."""
    c_out, kvol, c_in = (int(v) for v in weight_kc.shape)
    if features.dim() != 2 or features.shape[1] != c_in:
        raise ValueError(f"features must be [N, {c_in}] for this weight, got {list(features.shape)}")
    dtype = _compute_dtype(features.dtype)
    x = features.to(dtype)
    w = weight_kc.to(dtype).permute(1, 2, 0)  # [K, C_in, C_out]
    # In-place accumulation into a fresh buffer: autograd-safe (the buffer is no leaf that needs grad)
    # and no [M, C_out] temporary per offset.
    out = x.new_zeros((num_out, c_out))
    for k in range(kvol):
        if k == identity_offset:
            out.addmm_(x, w[k])
            continue
        in_rows, out_rows = pairs(k)
        if in_rows.numel():
            out.index_add_(0, out_rows, x.index_select(0, in_rows) @ w[k])
    if bias is not None:
        out = out + bias.to(dtype)
    if residual is not None:
        if tuple(residual.shape) != (num_out, c_out):
            raise ValueError(f"residual must be [{num_out}, {c_out}] (the conv's output), got {list(residual.shape)}")
        out = out + residual.to(dtype)
    return out.to(features.dtype)


def map_pairs(neighbors: torch.Tensor) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``pairs(k)`` for a bare neighbour map ``[K, M]`` (no Rulebook object to cache them on)."""

    def pairs(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        out_rows = (neighbors[k] >= 0).nonzero().squeeze(1)
        return neighbors[k].index_select(0, out_rows).to(torch.int64), out_rows

    return pairs


def sparse_max_pool(features: torch.Tensor, rulebook: Rulebook) -> torch.Tensor:
    """``out[m] = max_k features[neighbors[k, m]]`` over the *active* inputs only (no implicit zeros)."""
    if features.shape[0] != rulebook.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the rulebook's input has {rulebook.num_in} sites")
    return max_pool_over_map(features, rulebook.kernel_volume, rulebook.num_out, rulebook.pairs)


def max_pool_over_map(
    features: torch.Tensor, kvol: int, num_out: int, pairs: Callable[[int], tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    channels = features.shape[1]
    if num_out == 0:
        return features.new_zeros((0, channels))
    in_rows = torch.cat([pairs(k)[0] for k in range(kvol)])
    out_rows = torch.cat([pairs(k)[1] for k in range(kvol)])
    out = features.new_zeros((num_out, channels))
    # Every output site has at least one active input, so include_self=False leaves no placeholder behind.
    return out.scatter_reduce(
        0, out_rows.unsqueeze(1).expand(-1, channels), features.index_select(0, in_rows), "amax", include_self=False
    )


def densify(
    features: torch.Tensor,
    indices: torch.Tensor,
    spatial_shape: Sequence[int],
    batch_size: int,
    channels_first: bool = True,
) -> torch.Tensor:
    """Scatter ``features [N, C]`` to a dense ``[B, C, *spatial]`` (or ``[B, *spatial, C]``) tensor."""
    channels = features.shape[1]
    dense = features.new_zeros((batch_size, *spatial_shape, channels))
    idx = indices.to(device=features.device, dtype=torch.int64)
    dense = dense.index_put(tuple(idx.t()), features)
    if not channels_first:
        return dense
    ndim = len(spatial_shape)
    return dense.permute(0, ndim + 1, *range(1, ndim + 1)).contiguous()


def unique_rows(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct rows of int ``indices [N, K]`` sorted lexicographically, the row of each input row among them,
    and how many input rows each stands for (int32): ``torch.unique(dim=0, return_inverse, return_counts)``."""
    if indices.dim() != 2:
        raise ValueError(f"indices must be [N, K], got {list(indices.shape)}")
    if indices.shape[0] == 0:
        empty = indices.new_zeros((0,), dtype=torch.int32)
        return indices.new_zeros((0, indices.shape[1])), empty, empty
    unique, inverse, counts = torch.unique(indices, dim=0, sorted=True, return_inverse=True, return_counts=True)
    return unique, inverse.to(torch.int32), counts.to(torch.int32)


_REDUCTION_CODES = enum_values("SegmentReduce", "reduction")
SEGMENT_REDUCTIONS = tuple(sorted(_REDUCTION_CODES, key=_REDUCTION_CODES.__getitem__))  # by code: ("sum", "max")


def segment_reduce(features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: str) -> torch.Tensor:
    """``out[m] = init[m]`` combined with every ``features[n]`` whose ``segments[n] == m`` (sum: ``index_add_``;
    max: ``scatter_reduce(..., "amax", include_self=True)``); segments outside ``[0, M)`` are ignored.
    Accumulates low-precision inputs in float32 and adds rows in ascending order, as the kernel does."""
    if reduction not in SEGMENT_REDUCTIONS:
        raise ValueError(f"reduction must be one of {SEGMENT_REDUCTIONS}, got {reduction!r}")
    if features.dim() != 2 or init.dim() != 2 or features.shape[1] != init.shape[1]:
        raise ValueError(
            f"features [N, C] and init [M, C] must share C, got {list(features.shape)}, {list(init.shape)}"
        )
    if segments.shape != (features.shape[0],):
        raise ValueError(f"segments must be [N] = [{features.shape[0]}], got {list(segments.shape)}")
    dtype = _compute_dtype(features.dtype)
    seg = segments.to(torch.int64)
    valid = (seg >= 0) & (seg < init.shape[0])
    seg, rows = seg[valid], features[valid].to(dtype)
    out = init.to(dtype).clone()
    if reduction == "sum":
        out.index_add_(0, seg, rows)
    else:
        out.scatter_reduce_(0, seg.unsqueeze(1).expand(-1, out.shape[1]), rows, "amax", include_self=True)
    return out.to(init.dtype)


def mask_rows(mask: torch.Tensor) -> torch.Tensor:
    """int32 row numbers of the nonzero entries of ``mask [N]``, ascending."""
    if mask.dim() != 1:
        raise ValueError(f"mask must be [N], got {list(mask.shape)}")
    return (mask != 0).nonzero().squeeze(1).to(torch.int32)
