"""How layers find their rulebook: spconv's ``indice_key`` rules, plus automatic submanifold sharing.

- A submanifold layer with an ``indice_key`` reuses the rulebook stored under that key (same kernel,
  dilation and sites required) or builds and stores one.
- A submanifold layer without a key reuses a rulebook of the same geometry built over the very same
  index tensor: consecutive SubM layers share one rulebook without the user naming it.
- A regular or transposed layer with a key stores its rulebook there (the key must be new), so that a
  ``SparseInverseConv`` with the same key can run it backwards.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..backend.geometry import ConvGeometry, ConvKind
from ..backend.rulebook import Rulebook
from ..sparse_tensor import SparseTensor
from ..symbolic_sizes import sizes_differ

_AUTO_SUBM = "__sparsetrt_subm__"  # indice_dict entries keyed by ("__sparsetrt_subm__", geometry)


def _same_sites(rb: Rulebook, x: SparseTensor) -> bool:
    return rb.in_spatial_shape == tuple(x.spatial_shape) and not sizes_differ(rb.num_in, x.indices.shape[0])


def find_or_build(
    x: SparseTensor, geometry: ConvGeometry, indice_key: str | None, layer: str
) -> tuple[Rulebook, dict[Any, Any]]:
    """The rulebook for ``layer`` on ``x``, and the indice_dict its output carries."""
    cache = dict(x.indice_dict)  # as in spconv: a branch's new keys never leak into its siblings
    if geometry.kind is ConvKind.SUBMANIFOLD:
        stored = cache.get(indice_key) if indice_key is not None else None
        if stored is not None:
            if stored.geometry.kind is not ConvKind.SUBMANIFOLD or stored.inverse:
                raise ValueError(
                    f"{layer}: indice_key {indice_key!r} belongs to a {stored.geometry.kind.value} layer; "
                    "a submanifold layer can only share a key with other submanifold layers"
                )
            if (stored.geometry.kernel_size, stored.geometry.dilation) != (
                geometry.kernel_size,
                geometry.dilation,
            ):
                raise ValueError(
                    f"{layer}: indice_key {indice_key!r} was built with kernel {stored.geometry.kernel_size} "
                    f"dilation {stored.geometry.dilation}, this layer has kernel {geometry.kernel_size} "
                    f"dilation {geometry.dilation}; use a different indice_key"
                )
            if not _same_sites(stored, x):
                raise ValueError(
                    f"{layer}: indice_key {indice_key!r} was built over {stored.num_in} sites of grid "
                    f"{list(stored.in_spatial_shape)}, this input has {x.indices.shape[0]} sites of grid "
                    f"{x.spatial_shape}; layers sharing a key must see the same sites"
                )
            return stored, cache
        auto_key = (_AUTO_SUBM, geometry)
        auto = cache.get(auto_key)
        if auto is not None and auto.in_indices is x.indices and _same_sites(auto, x):
            rb = auto
        else:
            rb = ops.rulebook(x.indices, x.spatial_shape, x.batch_size, geometry)
            cache[auto_key] = rb
        if indice_key is not None:
            cache[indice_key] = rb
        return rb, cache

    if indice_key is not None and indice_key in cache:
        raise ValueError(
            f"{layer}: indice_key {indice_key!r} is already used by an earlier layer; a strided, regular or "
            "transposed layer creates new sites and needs a key of its own"
        )
    rb = ops.rulebook(x.indices, x.spatial_shape, x.batch_size, geometry)
    if indice_key is not None:
        cache[indice_key] = rb
    return rb, cache


def find_inverse(x: SparseTensor, kernel_size: tuple[int, ...], indice_key: str, layer: str) -> Rulebook:
    """The rulebook of the regular conv/pool stored under ``indice_key``, inverted."""
    stored = x.indice_dict.get(indice_key)
    if stored is None:
        known = sorted(k for k in x.indice_dict if isinstance(k, str))
        raise ValueError(
            f"{layer}: no rulebook under indice_key {indice_key!r} (keys on this tensor: {known}); an inverse "
            "conv needs the strided SparseConv/SparseMaxPool with the same indice_key to run earlier on "
            "the path that produced its input"
        )
    if stored.geometry.kind is not ConvKind.REGULAR or stored.inverse:
        raise ValueError(
            f"{layer}: indice_key {indice_key!r} belongs to a {stored.geometry.kind.value} layer; an inverse "
            "conv can only undo a regular (strided) sparse conv or max pool"
        )
    if stored.geometry.kernel_size != kernel_size:
        raise ValueError(
            f"{layer}: kernel_size {kernel_size} differs from the kernel {stored.geometry.kernel_size} of the "
            f"layer with indice_key {indice_key!r}; an inverse conv must use its partner's kernel size"
        )
    if stored.out_spatial_shape != tuple(x.spatial_shape) or sizes_differ(stored.num_out, x.indices.shape[0]):
        raise ValueError(
            f"{layer}: input has {x.indices.shape[0]} sites on grid {x.spatial_shape}, but the layer with "
            f"indice_key {indice_key!r} produced {stored.num_out} sites on grid "
            f"{list(stored.out_spatial_shape)}; an inverse conv must receive its partner's output sites"
        )
    return ops.inverse_rulebook(stored)
