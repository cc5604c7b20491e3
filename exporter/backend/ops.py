"""Sparse compute over a rulebook: gather -> GEMM -> scatter, in plain torch (CPU or CUDA tensors)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
    kvol = rulebook.kernel_volume
    expected = (c_out, *rulebook.geometry.kernel_size, c_in)
    if tuple(weight.shape) != expected:
        raise ValueError(f"weight has shape {list(weight.shape)}, expected [C_out, *kernel, C_in] = {list(expected)}")
    if features.dim() != 2 or features.shape[1] != c_in:
        raise ValueError(f"features must be [N, {c_in}] for this weight, got {list(features.shape)}")
    if features.shape[0] != rulebook.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the rulebook's input has {rulebook.num_in} sites")
    dtype = _compute_dtype(features.dtype)
    x = features.to(dtype)
    w = weight.to(dtype).reshape(c_out, kvol, c_in).permute(1, 2, 0)  # [K, C_in, C_out]
    # In-place accumulation into a fresh buffer: autograd-safe (the buffer is no leaf that needs grad)
    # and no [M, C_out] temporary per offset.
    out = x.new_zeros((rulebook.num_out, c_out))
    identity = rulebook.identity_offset
    for k in range(kvol):
        if k == identity:
            out.addmm_(x, w[k])
            continue
        in_rows, out_rows = rulebook.pairs(k)
        if in_rows.numel():
            out.index_add_(0, out_rows, x.index_select(0, in_rows) @ w[k])
    if bias is not None:
        out = out + bias.to(dtype)
    return out.to(features.dtype)


def sparse_max_pool(features: torch.Tensor, rulebook: Rulebook) -> torch.Tensor:
    """``out[m] = max_k features[neighbors[k, m]]`` over the *active* inputs only (no implicit zeros)."""
    if features.shape[0] != rulebook.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the rulebook's input has {rulebook.num_in} sites")
    channels = features.shape[1]
    if rulebook.num_out == 0:
        return features.new_zeros((0, channels))
    in_rows = torch.cat([rulebook.pairs(k)[0] for k in range(rulebook.kernel_volume)])
    out_rows = torch.cat([rulebook.pairs(k)[1] for k in range(rulebook.kernel_volume)])
    out = features.new_zeros((rulebook.num_out, channels))
    # Every output site has at least one active input, so include_self=False leaves no placeholder behind.
    return out.scatter_reduce(
        0,
        out_rows.unsqueeze(1).expand(-1, channels),
        features.index_select(0, in_rows),
        "amax",
        include_self=False,
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
