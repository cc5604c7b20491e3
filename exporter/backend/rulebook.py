"""Rulebooks: which input row feeds which output row through which kernel offset.

We store a rulebook *output-stationary*, as a neighbour map ``neighbors[k, m]`` (int32, ``[K, M]``): the
input row that reaches output row ``m`` through flat kernel offset ``k``, or -1. For every kind of layer
here a pair ``(k, m)`` has at most one input, so the map is exact, needs no atomics to apply, and has a
shape known from ``M`` alone -- which is why it is also the tensor the GPU plugins compute and the ONNX
rulebook nodes output. Flat offsets are row-major over the kernel: ``k = kz*kH*kW + ky*kW + kx``.

Construction is vectorized: sites become int64 keys (``coords.encode``), each kernel offset's candidate
keys are formed per dimension and broadcast together, and lookups are a sort plus ``searchsorted`` --
no Python loop over sites, and the same torch ops run on CPU or CUDA tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .coords import decode, encode, grid_strides
from .geometry import ConvGeometry, ConvKind

# Candidate (offset, site) pairs formed per chunk: bounds the peak memory of a build to ~100 MB.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(eq=False)
class Rulebook:
    """An output-stationary rulebook; see the module docstring."""

    geometry: ConvGeometry
    neighbors: torch.Tensor  # int32 [K, M]
    in_indices: torch.Tensor  # int32 [N, 1 + D]: the sites the map's input rows refer to
    out_indices: torch.Tensor  # int32 [M, 1 + D]
    in_spatial_shape: tuple[int, ...]
    out_spatial_shape: tuple[int, ...]
    batch_size: int
    inverse: bool = False  # True when this map runs a regular conv's map backwards (SparseInverseConv)
    _pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False)
    _inverse: Rulebook | None = field(default=None, repr=False)

    @property
    def kernel_volume(self) -> int:
        return int(self.neighbors.shape[0])

    # Sizes as the tensors report them: ints, or symbolic ints while torch.export traces a model.
    @property
    def num_in(self) -> int:
        return self.in_indices.shape[0]

    @property
    def num_out(self) -> int:
        return self.out_indices.shape[0]

    @property
    def identity_offset(self) -> int | None:
        """The flat offset whose map is the identity (a submanifold kernel's centre), else None."""
        geo = self.geometry
        if self.inverse:
            return None
        if geo.is_pointwise:
            return 0
        if geo.kind is not ConvKind.SUBMANIFOLD or any(k % 2 == 0 for k in geo.kernel_size):
            return None
        centre = 0
        for k in geo.kernel_size:
            centre = centre * k + k // 2
        return centre

    def pairs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(in_rows, out_rows)`` (int64) of offset ``k``; computed once per rulebook and cached."""
        if self._pairs is None:
            pairs = []
            for col in self.neighbors:
                out_rows = (col >= 0).nonzero().squeeze(1)
                pairs.append((col.index_select(0, out_rows).to(torch.int64), out_rows))
            self._pairs = pairs
        return self._pairs[k]

    def pair_counts(self) -> torch.Tensor:
        """Number of (input, output) pairs per kernel offset, int64 [K]."""
        return (self.neighbors >= 0).sum(dim=1)

    def inverted(self) -> Rulebook:
        """The map of ``SparseInverseConv``: outputs are this rulebook's input sites, inputs its outputs.

        For a regular conv an input site and an offset determine the output site, so the transposed
        map is again single-valued and output-stationary. Computed once and cached.
        """
        self.check_invertible()
        if self._inverse is None:
            self._inverse = self.inverse_with(invert_map(self.neighbors, self.num_in))
        return self._inverse

    def check_invertible(self) -> None:
        if self.geometry.kind is not ConvKind.REGULAR or self.inverse:
            raise ValueError(
                "only the rulebook of a regular (non-submanifold, non-transposed) sparse conv or max pool "
                "can be inverted; SparseInverseConv needs the indice_key of such a layer"
            )

    def inverse_with(self, neighbors: torch.Tensor) -> Rulebook:
        """The inverse rulebook around a given inverse map (while exporting, a traced node's output)."""
        self.check_invertible()
        return Rulebook(
            geometry=self.geometry,
            neighbors=neighbors,
            in_indices=self.out_indices,
            out_indices=self.in_indices,
            in_spatial_shape=self.out_spatial_shape,
            out_spatial_shape=self.in_spatial_shape,
            batch_size=self.batch_size,
            inverse=True,
        )


def submanifold_map(
    indices: torch.Tensor, spatial_shape: Sequence[int], kernel_size: Sequence[int], dilation: Sequence[int]
) -> torch.Tensor:
    """SubmRulebook on bare tensors (the export's custom op, the reference runtime): the map ``[K, N]`` of the sites
    ``indices``. Its keys only need the batch extent, and the data gives it: the node carries no batch size."""
    geometry = ConvGeometry.make(ConvKind.SUBMANIFOLD, len(spatial_shape), kernel_size, 1, 0, dilation)
    batch_extent = int(indices[:, 0].max()) + 1 if indices.shape[0] else 1
    return build_rulebook(indices, spatial_shape, batch_extent, geometry).neighbors


def invert_map(neighbors: torch.Tensor, num_in: int) -> torch.Tensor:
    """``inv[k, n] = m`` where ``neighbors[k, m] = n``: a regular conv's map run backwards, ``[K, num_in]``.

    For a regular conv an input site and an offset determine the output site, so no two pairs collide.
    """
    inv = torch.full((neighbors.shape[0], num_in), -1, dtype=torch.int32, device=neighbors.device)
    k_idx, m_idx = (neighbors >= 0).nonzero(as_tuple=True)
    inv[k_idx, neighbors[k_idx, m_idx].to(torch.int64)] = m_idx.to(torch.int32)
    return inv


def _per_dim_terms(
    coords: torch.Tensor, geo: ConvGeometry, in_shape: Sequence[int], out_shape: Sequence[int], dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one spatial dim: validity [k_d, n] and target coordinate [k_d, n] of each kernel tap.

    SUBMANIFOLD: the target is the *input* site read by output ``c`` (kernel centred).
    REGULAR: the target is the *output* site that input ``c`` reaches (must land on the stride grid).
    TRANSPOSED: the target is the *output* site that input ``c`` scatters to.
    """
    c = coords[:, dim + 1].to(torch.int64).unsqueeze(0)  # [1, n]
    k = geo.kernel_size[dim]
    taps = torch.arange(k, dtype=torch.int64, device=coords.device).unsqueeze(1) * geo.dilation[dim]
    if geo.kind is ConvKind.SUBMANIFOLD:
        target = c + taps - geo.subm_padding()[dim]
        valid = (target >= 0) & (target < in_shape[dim])
    elif geo.kind is ConvKind.REGULAR:
        scaled = c + geo.padding[dim] - taps
        stride = geo.stride[dim]
        target = torch.div(scaled, stride, rounding_mode="floor")
        valid = (scaled >= 0) & (torch.remainder(scaled, stride) == 0) & (target < out_shape[dim])
    else:
        target = c * geo.stride[dim] - geo.padding[dim] + taps
        valid = (target >= 0) & (target < out_shape[dim])
    return valid, target


def _offset_keys(
    coords: torch.Tensor,
    geo: ConvGeometry,
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target keys [K, n] and validity [K, n] for every (flat kernel offset, site) pair."""
    target_shape = in_shape if geo.kind is ConvKind.SUBMANIFOLD else out_shape
    strides = grid_strides(batch_size, target_shape)
    n = coords.shape[0]
    key = coords[:, 0].to(torch.int64) * strides[0]  # [n]
    valid = torch.ones(n, dtype=torch.bool, device=coords.device)
    # Broadcast per-dim terms into [k_0, ..., k_{D-1}, n], row-major, so flat offsets come out right.
    for dim in range(geo.ndim):
        v, t = _per_dim_terms(coords, geo, in_shape, out_shape, dim)  # [k_dim, n]
        key = key.unsqueeze(-2) + t * strides[dim + 1]
        valid = valid.unsqueeze(-2) & v
    kvol = geo.kernel_volume
    return key.reshape(kvol, n), valid.reshape(kvol, n)


def _chunks(n: int, kernel_volume: int) -> range:
    step = max(1, _CHUNK_ELEMENTS // max(1, kernel_volume))
    return range(0, n, step) if n else range(0)


def _lookup(
    sorted_keys: torch.Tensor, order: torch.Tensor, query: torch.Tensor, valid: torch.Tensor, geo: ConvGeometry
) -> torch.Tensor:
    """Rows of the active sites with keys ``query`` [R * k_x, m] (-1 where absent or ``valid`` is False).

    Along the last axis (dilation 1) consecutive taps have consecutive keys, so one binary search per
    kernel row is enough: since keys are unique integers, the position of ``key + 1`` is the position of
    ``key`` plus one if ``key`` is present. That cuts the searches, which dominate, by the kernel width.
    """
    n = sorted_keys.shape[0]
    kx = geo.kernel_size[-1]
    if kx == 1 or geo.dilation[-1] != 1:
        pos = torch.searchsorted(sorted_keys, query).clamp_(max=n - 1)
        found = valid & (sorted_keys[pos] == query)
        return torch.where(found, order[pos], -1)
    taps = query.view(-1, kx, query.shape[1])
    pos = torch.searchsorted(sorted_keys, taps[:, 0].contiguous())
    out = torch.empty_like(taps)
    for t in range(kx):
        clamped = pos.clamp(max=n - 1)
        hit = (pos < n) & (sorted_keys[clamped] == taps[:, t])
        out[:, t] = torch.where(hit, order[clamped], -1)
        pos.add_(hit.to(pos.dtype))
    return out.view_as(query).masked_fill_(~valid, -1)


def _build_submanifold(
    indices: torch.Tensor, geo: ConvGeometry, spatial_shape: tuple[int, ...], batch_size: int
) -> torch.Tensor:
    n = indices.shape[0]
    kvol = geo.kernel_volume
    neighbors = torch.full((kvol, n), -1, dtype=torch.int32, device=indices.device)
    if n == 0:
        return neighbors
    sorted_keys, order = torch.sort(encode(indices, batch_size, spatial_shape))
    # With odd kernel sizes the kernel is symmetric about its centre: if output o reads input i through
    # offset k, output i reads input o through the mirrored offset K-1-k, and the centre is the identity.
    # So only the kernel rows up to the centre's are looked up.
    symmetric = all(k % 2 == 1 for k in geo.kernel_size)
    kx = geo.kernel_size[-1]
    looked_up = (kvol // kx // 2 + 1) * kx if symmetric else kvol
    step = _chunks(n, kvol).step
    for start in range(0, n, step):
        part = indices[start : start + step]
        query, valid = _offset_keys(part, geo, spatial_shape, spatial_shape, batch_size)
        found = _lookup(sorted_keys, order, query[:looked_up], valid[:looked_up], geo)
        neighbors[:looked_up, start : start + part.shape[0]] = found.to(torch.int32)
    if symmetric:
        for k in range(kvol // 2):
            outs = (neighbors[k] >= 0).nonzero().squeeze(1)
            neighbors[kvol - 1 - k, neighbors[k, outs].to(torch.int64)] = outs.to(torch.int32)
    return neighbors


def _build_scattering(
    indices: torch.Tensor,
    geo: ConvGeometry,
    spatial_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """REGULAR and TRANSPOSED: the output sites are created from the inputs' kernel footprints."""
    n = indices.shape[0]
    kvol = geo.kernel_volume
    device = indices.device
    keys, offsets, rows = [], [], []
    step = _chunks(n, kvol).step
    for start in range(0, n, step):
        part = indices[start : start + step]
        target, valid = _offset_keys(part, geo, spatial_shape, out_shape, batch_size)
        k_idx, r_idx = valid.nonzero(as_tuple=True)
        keys.append(target[k_idx, r_idx])
        offsets.append(k_idx)
        rows.append(r_idx + start)
    if not keys:
        empty = torch.zeros((0, len(spatial_shape) + 1), dtype=torch.int32, device=device)
        return torch.full((kvol, 0), -1, dtype=torch.int32, device=device), empty
    cand_keys = torch.cat(keys)
    out_keys, out_rows = torch.unique(cand_keys, sorted=True, return_inverse=True)
    neighbors = torch.full((kvol, out_keys.shape[0]), -1, dtype=torch.int32, device=device)
    # For these kinds (offset, output) determines the input, so this scatter never collides.
    neighbors[torch.cat(offsets), out_rows] = torch.cat(rows).to(torch.int32)
    return neighbors, decode(out_keys, batch_size, out_shape)


def build_rulebook(
    indices: torch.Tensor, spatial_shape: Sequence[int], batch_size: int, geometry: ConvGeometry
) -> Rulebook:
    """Build the rulebook of one layer over the active sites ``indices`` (int [N, 1 + D]).

    Submanifold outputs keep the input rows' order; regular and transposed outputs are sorted by
    (batch, z, y, x). Indices are assumed valid (see ``coords.check_indices``).
    """
    in_shape = tuple(int(s) for s in spatial_shape)
    out_shape = geometry.output_shape(in_shape)
    indices = indices.to(torch.int32)
    if geometry.is_pointwise:
        # 1x1 conv with stride 1 and no padding: every site maps to itself; keep the input order.
        neighbors = torch.arange(indices.shape[0], dtype=torch.int32, device=indices.device).unsqueeze(0)
        out_indices = indices
    elif geometry.kind is ConvKind.SUBMANIFOLD:
        neighbors = _build_submanifold(indices, geometry, in_shape, batch_size)
        out_indices = indices
    else:
        neighbors, out_indices = _build_scattering(indices, geometry, in_shape, out_shape, batch_size)
    return Rulebook(
        geometry=geometry,
        neighbors=neighbors,
        in_indices=indices,
        out_indices=out_indices,
        in_spatial_shape=in_shape,
        out_spatial_shape=out_shape,
        batch_size=int(batch_size),
    )
