"""The layers' export-time entry points: while a model is being exported, each sparse op is a call of
one of our custom ops (``custom_ops``), which either exporter turns into one ``sparsetrt`` node.

``is_exporting()`` is the one place that decides whether the layers take this path; it is the same for
both exporters (and for a user's own ``torch.export`` of a converted model). Outside an export the
layers call the backend directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .backend.geometry import ConvGeometry, ConvKind
from .backend.ops import SEGMENT_REDUCTIONS
from .backend.rulebook import Rulebook
from .custom_ops import ACTIVATION_CODES, apply_activation

ACTIVATIONS = ACTIVATION_CODES  # SparseConv's `activation` attribute codes, by our activation names
__all__ = ["ACTIVATIONS", "apply_activation", "exporting", "is_exporting"]

# Options of the export in progress (set by export(), read while tracing).
export_options = {"max_sites": 0}
_state = {"exporting": False}


@contextlib.contextmanager
def exporting(max_sites: int = 0) -> Iterator[None]:
    """The layers emit custom ops inside this block, also on real tensors (the dynamo path's real run)."""
    previous = dict(_state), dict(export_options)
    _state["exporting"] = True
    export_options["max_sites"] = max_sites
    try:
        yield
    finally:
        _state.update(previous[0])
        export_options.update(previous[1])


def is_exporting() -> bool:
    """Whether the layers should record custom ops: inside ``exporting()``, a TorchScript ONNX export or
    a ``torch.export`` trace."""
    return _state["exporting"] or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


# ------------------------------------------------------------------------------------ entry points
def traced_rulebook(
    indices: torch.Tensor, spatial_shape: list[int], batch_size: int, geometry: ConvGeometry
) -> Rulebook:
    """A Rulebook whose tensors are outputs of one rulebook op."""
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
            int(export_options["max_sites"]),
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


def traced_inverse(rb: Rulebook) -> Rulebook:
    return rb.inverse_with(torch.ops.sparsetrt.inverse_rulebook(rb.neighbors, rb.in_indices))


def traced_conv(
    features: torch.Tensor,
    neighbors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str | None = None,
    alpha: float = 0.0,
) -> torch.Tensor:
    weight_kc = weight.reshape(weight.shape[0], -1, weight.shape[-1])
    return torch.ops.sparsetrt.sparse_conv(
        features, neighbors, weight_kc, bias, None, ACTIVATION_CODES[activation], float(alpha)
    )


def traced_max_pool(features: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    return torch.ops.sparsetrt.sparse_max_pool(features, neighbors)


def traced_densify(features: torch.Tensor, indices: torch.Tensor, spatial_shape: list[int], batch_size: int):
    return torch.ops.sparsetrt.densify(features, indices, [int(s) for s in spatial_shape], int(batch_size))


def traced_unique_sites(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(unique [M, K], inverse [N], counts [M])``, int32, from one recorded UniqueSites node."""
    unique, inverse, counts, _ = torch.ops.sparsetrt.unique_sites(indices.to(torch.int32))
    return unique, inverse, counts


def traced_segment_reduce(
    features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    code = SEGMENT_REDUCTIONS.index(reduction)
    return torch.ops.sparsetrt.segment_reduce(features, segments.to(torch.int32), init.to(features.dtype), code)


def traced_mask_rows(mask: torch.Tensor) -> torch.Tensor:
    """int32 rows where ``mask`` is nonzero (ascending), from one recorded MaskRows node."""
    rows, _ = torch.ops.sparsetrt.mask_rows(mask.to(torch.int32))
    return rows
