"""Independent oracles for the sparse layers: brute force, dense torch ops, and spconv 2.3.8.

Nothing here uses sparsetrt's backend: every answer is computed another way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from zoo.run import spconv_forward  # the one spconv runner, with its CPU quirks handled

__all__ = ["spconv_forward"]  # re-exported for the layer tests; the rest is used by name

Site = tuple[int, ...]


# ---------------------------------------------------------------------------------------------- inputs
def random_sites(gen: torch.Generator, n: int, spatial_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    """``n`` distinct sites (int32 [n, 1 + D]) drawn uniformly from ``batch_size x spatial_shape``."""
    total = batch_size * math.prod(spatial_shape)
    n = min(n, total)
    flat = torch.randperm(total, generator=gen)[:n]
    cols = []
    for s in reversed(spatial_shape):
        cols.append(flat % s)
        flat = flat // s
    cols.append(flat)
    return torch.stack(cols[::-1], dim=1).to(torch.int32)


def clustered_sites(gen: torch.Generator, n: int, spatial_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    """Sites in dense blobs, so that most have active neighbours (uniform sites rarely do)."""
    ndim = len(spatial_shape)
    shape = torch.tensor(spatial_shape)
    n = min(n, batch_size * math.prod(spatial_shape) // 2)  # a random walk covers half a grid quickly
    sites: set[Site] = set()
    while len(sites) < n:
        b = int(torch.randint(batch_size, (1,), generator=gen))
        centre = (torch.rand(ndim, generator=gen) * shape).long()
        for _ in range(int(torch.randint(4, 30, (1,), generator=gen))):
            step = torch.randint(-2, 3, (ndim,), generator=gen)
            pos = torch.minimum(torch.clamp(centre + step, min=0), shape - 1)
            sites.add((b, *pos.tolist()))
            centre = pos
    rows = sorted(sites)[:n]
    perm = torch.randperm(len(rows), generator=gen)
    return torch.tensor(rows, dtype=torch.int32).reshape(-1, ndim + 1)[perm]


def border_sites(spatial_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    """Every corner of the grid plus the middle of every face, in every batch sample."""
    ndim = len(spatial_shape)
    values = [sorted({0, s // 2, s - 1}) for s in spatial_shape]
    rows = [
        (b, *c)
        for b in range(batch_size)
        for c in itertools.product(*values)
        if sum(v in (0, s - 1) for v, s in zip(c, spatial_shape, strict=True)) >= ndim - 1
    ]
    return torch.tensor(rows, dtype=torch.int32).reshape(-1, ndim + 1)


# ------------------------------------------------------------------------------------- brute force
def brute_force_pairs(
    indices: torch.Tensor,
    spatial_shape: Sequence[int],
    kind: str,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    output_padding: Sequence[int] | None = None,
) -> tuple[set[tuple[int, Site, Site]], set[Site], tuple[int, ...]]:
    """Loop over every (output site, kernel offset): the set of (k, input site, output site) triples,
    the set of output sites, and the output grid -- straight from the definitions in DESIGN.md."""
    ndim = len(spatial_shape)
    output_padding = output_padding or [0] * ndim
    active = {tuple(r) for r in indices.tolist()}
    batches = sorted({s[0] for s in active})
    offsets = list(itertools.product(*[range(k) for k in kernel_size]))  # row-major = flat index order
    if kind == "subm":
        out_shape = tuple(spatial_shape)
        pad = [(k // 2) * d for k, d in zip(kernel_size, dilation, strict=True)]
        outputs = set(active)
        stride = [1] * ndim
    elif kind == "conv":
        out_shape = tuple(
            (s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, k, st, p, d in zip(spatial_shape, kernel_size, stride, padding, dilation, strict=True)
        )
        pad = list(padding)
        outputs = None
    else:  # transposed
        out_shape = tuple(
            (s - 1) * st - 2 * p + d * (k - 1) + op + 1
            for s, k, st, p, d, op in zip(
                spatial_shape, kernel_size, stride, padding, dilation, output_padding, strict=True
            )
        )
        pad = list(padding)
        outputs = None
    triples: set[tuple[int, Site, Site]] = set()
    if kind in ("subm", "conv"):
        candidates = (
            outputs
            if outputs is not None
            else [(b, *o) for b in batches for o in itertools.product(*[range(s) for s in out_shape])]
        )
        for out in candidates:
            for k, off in enumerate(offsets):
                src = tuple(
                    o * st - p + t * d for o, st, p, t, d in zip(out[1:], stride, pad, off, dilation, strict=True)
                )
                site = (out[0], *src)
                if site in active:
                    triples.add((k, site, out))
    else:
        for site in active:
            for k, off in enumerate(offsets):
                dst = tuple(
                    i * st - p + t * d for i, st, p, t, d in zip(site[1:], stride, pad, off, dilation, strict=True)
                )
                if all(0 <= v < s for v, s in zip(dst, out_shape, strict=True)):
                    triples.add((k, site, (site[0], *dst)))
    out_sites = outputs if outputs is not None else {t[2] for t in triples}
    return triples, out_sites, out_shape


# ------------------------------------------------------------------------------------------- dense
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def to_dense(
    features: torch.Tensor,
    indices: torch.Tensor,
    spatial_shape: Sequence[int],
    batch_size: int,
    fill: float = 0.0,
) -> torch.Tensor:
    """[B, C, *spatial] with ``fill`` at inactive sites (independent of SparseTensor.dense)."""
    out = torch.full((batch_size, features.shape[1], *spatial_shape), fill, dtype=features.dtype)
    idx = indices.long()
    out[(idx[:, 0], slice(None), *idx[:, 1:].t())] = features
    return out


def sample(dense: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Rows [N, C] of a dense [B, C, *spatial] tensor at sites ``indices``."""
    idx = indices.long()
    return dense[(idx[:, 0], slice(None), *idx[:, 1:].t())]


def active_sites(dense_mask: torch.Tensor) -> set[Site]:
    """Sites where a [B, 1, *spatial] mask is positive."""
    nz = (dense_mask[:, 0] > 0).nonzero()
    return {tuple(r) for r in nz.tolist()}


def dense_weight(weight: torch.Tensor) -> torch.Tensor:
    """[C_out, *k, C_in] -> torch's conv weight [C_out, C_in, *k]."""
    ndim = weight.dim() - 2
    return weight.permute(0, ndim + 1, *range(1, ndim + 1))


def dense_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation):
    return _CONV[x.dim() - 2](x, dense_weight(weight), bias, stride=stride, padding=padding, dilation=dilation)


def dense_subm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dilation) -> torch.Tensor:
    """Centred ('same') convolution; even kernels put the extra tap after the centre."""
    ks = weight.shape[1:-1]
    pads: list[int] = []
    for k, d in reversed(list(zip(ks, dilation, strict=True))):
        pads += [(k // 2) * d, (k - 1 - k // 2) * d]
    return _CONV[x.dim() - 2](F.pad(x, pads), dense_weight(weight), bias, dilation=dilation)


def dense_conv_transpose(x, weight, bias, stride, padding, dilation, output_padding):
    # conv_transpose weight is [C_in, C_out, *k]; ours [C_out, *k, C_in] uses the same tap for offset k.
    ndim = weight.dim() - 2
    w = weight.permute(ndim + 1, 0, *range(1, ndim + 1))
    return _CONV_T[ndim](x, w, bias, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)


def dense_max_pool(x: torch.Tensor, kernel_size, stride, padding, dilation) -> torch.Tensor:
    return _MAXPOOL[x.dim() - 2](x, kernel_size, stride, padding, dilation)


# ------------------------------------------------------------------------------------------- spconv
def load_into_spconv(spconv_module: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load our state dict into a spconv module, working around spconv's kernel_size=1 bug.

    spconv 2.3.8 computes a 1x1 conv as ``features @ weight.view(C_in, C_out)`` although the weight is
    stored [C_out, 1.., C_in]; we hand it the transposed matrix in that storage so it computes the
    right product. Our own layers read the weight as stored.
    """
    fixed = dict(state_dict)
    for name, module in spconv_module.named_modules():
        if getattr(module, "conv1x1", False):
            key = f"{name}.weight" if name else "weight"
            w = fixed[key]
            c_out, c_in = w.shape[0], w.shape[-1]
            fixed[key] = w.reshape(c_out, c_in).t().contiguous().reshape(w.shape)
    spconv_module.load_state_dict(fixed)


def by_site(indices: torch.Tensor, features: torch.Tensor) -> dict[Site, torch.Tensor]:
    return {tuple(r): f for r, f in zip(indices.tolist(), features, strict=True)}


def assert_same_sparse(ours_idx, ours_feat, ref_idx, ref_feat, rtol=1e-5, atol=1e-5) -> None:
    """Same site sets, and the same features at each site (row order may differ)."""
    a, b = by_site(ours_idx, ours_feat), by_site(ref_idx, ref_feat)
    missing, extra = set(b) - set(a), set(a) - set(b)
    assert not missing and not extra, f"site sets differ: {len(missing)} missing, {len(extra)} extra"
    if not a:
        return
    keys = sorted(a)
    torch.testing.assert_close(
        torch.stack([a[k] for k in keys]), torch.stack([b[k] for k in keys]), rtol=rtol, atol=atol
    )


def assert_outputs_close(
    ref: list[torch.Tensor], got: list[np.ndarray], rtol: float, atol_of_scale: float, min_scale: float = 1.0
) -> None:
    """Each output within ``atol_of_scale x max(max |ref|, min_scale) + rtol x |ref|``, element-wise.

    A floating output followed by an int32 one is a sparse tensor (features, coordinates): compared site by
    site, whatever the row order.
    """
    assert len(ref) == len(got)
    i = 0
    while i < len(ref):
        r = ref[i]
        sparse_pair = i + 1 < len(ref) and not ref[i + 1].is_floating_point()
        scale = max(float(r.float().abs().max()) if r.numel() else 0.0, min_scale)
        atol = atol_of_scale * scale
        if sparse_pair:
            assert got[i + 1].dtype == np.int32, got[i + 1].dtype
            idx = torch.from_numpy(got[i + 1])
            assert_same_sparse(idx, torch.from_numpy(got[i]).float(), ref[i + 1], r.float(), rtol=rtol, atol=atol)
            i += 2
        else:
            assert tuple(got[i].shape) == tuple(r.shape)
            torch.testing.assert_close(torch.from_numpy(got[i]).float(), r.float(), rtol=rtol, atol=atol)
            i += 1
