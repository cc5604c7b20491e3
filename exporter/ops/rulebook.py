"""SubmRulebook, SparseRulebook and InverseRulebook: the rulebook a layer runs on.

Eagerly the backend builds it, and the Rulebook object caches its (in, out) row pairs for every conv that shares
it. While exporting it is the output of one recorded rulebook node, so the exported file builds it at run time;
the Rulebook around that output carries the geometry and sites the layers need to check their inputs.
"""

from __future__ import annotations

import math

import torch

from ..backend.geometry import ConvGeometry, ConvKind
from ..backend.rulebook import Rulebook, build_rulebook, invert_map, submanifold_map
from ..custom_ops import NAMESPACE, site_count
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


# ------------------------------------------------------------------------------------------- custom ops
# What an export records: one torch.ops.sparsetrt op per schema op (its tensor arguments are the node's inputs, the
# others its attributes, in schema order). The real implementation runs the backend on bare tensors (the export's
# real run, the TorchScript trace); the fake one gives torch.export the output shapes (custom_ops.py says more).


@torch.library.custom_op(f"{NAMESPACE}::subm_rulebook", mutates_args=())
def _subm_rulebook_op(
    indices: torch.Tensor, spatial_shape: list[int], kernel_size: list[int], dilation: list[int]
) -> torch.Tensor:
    return submanifold_map(indices, spatial_shape, kernel_size, dilation)


@_subm_rulebook_op.register_fake
def _(indices, spatial_shape, kernel_size, dilation):
    return indices.new_empty((math.prod(kernel_size), indices.shape[0]), dtype=torch.int32)


@torch.library.custom_op(f"{NAMESPACE}::sparse_rulebook", mutates_args=())
def _sparse_rulebook_op(
    indices: torch.Tensor,
    spatial_shape: list[int],
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    output_padding: list[int],
    transposed: int,
    max_out: int,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    kind = ConvKind.TRANSPOSED if transposed else ConvKind.REGULAR
    geometry = ConvGeometry.make(kind, len(spatial_shape), kernel_size, stride, padding, dilation, output_padding)
    rb = build_rulebook(indices, spatial_shape, batch_size, geometry)
    if max_out and rb.num_out > max_out:
        raise ValueError(f"sparse conv creates {rb.num_out} sites, more than its bound max_out={max_out}")
    # A pointwise layer's output sites are its input tensor; a custom op's outputs must not alias inputs.
    out_indices = rb.out_indices.clone() if rb.out_indices.data_ptr() == indices.data_ptr() else rb.out_indices
    return out_indices, rb.neighbors, torch.tensor(rb.num_out, dtype=torch.int32)


@_sparse_rulebook_op.register_fake
def _(indices, spatial_shape, kernel_size, stride, padding, dilation, output_padding, transposed, max_out, batch_size):
    m = site_count(torch.library.get_ctx())
    return (
        indices.new_empty((m, len(spatial_shape) + 1), dtype=torch.int32),
        indices.new_empty((math.prod(kernel_size), m), dtype=torch.int32),
        indices.new_empty((), dtype=torch.int32),
    )


@torch.library.custom_op(f"{NAMESPACE}::inverse_rulebook", mutates_args=())
def _inverse_rulebook_op(neighbors: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return invert_map(neighbors, indices.shape[0])


@_inverse_rulebook_op.register_fake
def _(neighbors, indices):
    return neighbors.new_empty((neighbors.shape[0], indices.shape[0]), dtype=torch.int32)
