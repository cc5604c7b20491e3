"""SubmRulebook, SparseRulebook and InverseRulebook: the rulebook a layer runs on.

Eagerly the backend builds it, and the Rulebook object caches its (in, out) row pairs for every conv that shares
it. While exporting it is the output of one recorded rulebook node, so the exported file builds it at run time;
the Rulebook around that output carries the geometry and sites the layers need to check their inputs.
"""

from __future__ import annotations

import torch

from ..backend.geometry import ConvGeometry, ConvKind
from ..backend.rulebook import Rulebook, build_rulebook
from .context import export_options, is_exporting


def rulebook(indices: torch.Tensor, spatial_shape: list[int], batch_size: int, geometry: ConvGeometry) -> Rulebook:
    """The rulebook of a layer of ``geometry`` over the sites ``indices`` [N, 1 + D]."""
    if not is_exporting():
        return build_rulebook(indices, spatial_shape, batch_size, geometry)
    shape = [int(s) for s in spatial_shape]
    if geometry.kind is ConvKind.SUBMANIFOLD:
        neighbors = torch.ops.sparsetrt.subm_rulebook(
            indices, shape, list(geometry.kernel_size), list(geometry.dilation)
        )
        out_indices = indices
    else:
        out_indices, neighbors, _ = torch.ops.sparsetrt.sparse_rulebook(
            indices,
            shape,
            list(geometry.kernel_size),
            list(geometry.stride),
            list(geometry.padding),
            list(geometry.dilation),
            list(geometry.output_padding),
            int(geometry.kind is ConvKind.TRANSPOSED),
            int(export_options().max_sites),
            # Static, like Densify's: it caps M by the output grid, so bounds do not compound across stages.
            int(batch_size),
        )
    return Rulebook(
        geometry=geometry,
        neighbors=neighbors,
        in_indices=indices,
        out_indices=out_indices,
        in_spatial_shape=tuple(shape),
        out_spatial_shape=geometry.output_shape(shape),
        batch_size=batch_size,
    )


def inverse_rulebook(regular: Rulebook) -> Rulebook:
    """The rulebook of a ``SparseInverseConv``: ``regular`` (a strided conv's or max pool's) run backwards.
    Eagerly computed once per rulebook and cached on it; while exporting, one InverseRulebook node."""
    if not is_exporting():
        return regular.inverted()
    return regular.inverse_with(torch.ops.sparsetrt.inverse_rulebook(regular.neighbors, regular.in_indices))
