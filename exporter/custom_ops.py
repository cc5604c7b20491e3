"""Our sparse ops as torch.library custom ops (``torch.ops.sparsetrt.*``), one per op of the schema.

Both ONNX exporters see a model's sparse layers through these ops, and each translates every call into
exactly one node of the ``sparsetrt`` domain (``torchscript_export`` and ``dynamo_export``):

- A custom op's tensor arguments are its ONNX node's inputs and its other arguments the node's
  attributes, with the schema's names and in the schema's order (``sparsetrt_ops.json``;
  ``test_schema`` checks the correspondence), so a translation is the same few lines for every op.
- The real implementation runs the reference backend: the TorchScript tracer records the call as one
  node (nothing inside it is traced), and the dynamo path runs the model once for real before tracing
  it, which is where a ``max_out`` overflow on the example input is caught.
- The fake (meta) implementation gives torch.export the output shapes: static ones from the attributes,
  the site count N from the input, and SparseRulebook's output count M as a new unbacked symbolic int.

The functional layer (``ops``) calls these only while a model is being exported; its eager path calls the
backend directly, with cached rulebook pairs and autograd.
"""

from __future__ import annotations

import math

import torch

from .backend import ops as backend_ops
from .backend.geometry import ConvGeometry, ConvKind
from .backend.plan import conv_plan as backend_conv_plan
from .backend.plan import is_plan, plan_to_map
from .backend.rulebook import build_rulebook, invert_map

NAMESPACE = "sparsetrt"

# torch op name -> schema op name. Custom-op names follow torch's convention (snake case); the ONNX op
# keeps the schema's name.
ONNX_OPS = {
    "subm_rulebook": "SubmRulebook",
    "sparse_rulebook": "SparseRulebook",
    "inverse_rulebook": "InverseRulebook",
    "conv_plan": "ConvPlan",
    "sparse_conv": "SparseConv",
    "sparse_max_pool": "SparseMaxPool",
    "densify": "Densify",
    "unique_sites": "UniqueSites",
    "segment_reduce": "SegmentReduce",
    "mask_rows": "MaskRows",
}
ACTIVATION_CODES = {None: 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3}  # SparseConv's `activation`
ACTIVATION_NAMES = {code: name for name, code in ACTIVATION_CODES.items()}


def apply_activation(x: torch.Tensor, activation: str | None, alpha: float) -> torch.Tensor:
    if activation is None:
        return x
    if activation == "relu":
        return torch.relu(x)
    if activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(x, alpha)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"unknown activation {activation!r}")


def _batch_extent(indices: torch.Tensor) -> int:
    # A rulebook only needs the batch extent to size its int64 keys, and the data gives it (the
    # SubmRulebook node carries no batch size: its sites are its input's).
    return int(indices[:, 0].max()) + 1 if indices.shape[0] else 1


def _site_count(ctx: torch._library.fake_impl.FakeImplCtx) -> torch.SymInt:
    """A fresh unbacked size for a data-dependent site count.

    Declared >= 1: tracing assumes the example's layers produce sites, as the TorchScript trace of a
    real example does; without it, code that branches on an empty tensor (BatchNorm's empty-input
    shortcut, SparseSequential skipping feature modules) cannot be traced. The ONNX graph carries no
    such assumption: every op in it handles zero rows.
    """
    return ctx.new_dynamic_size(min=1)


# ------------------------------------------------------------------------------------------- SubmRulebook
@torch.library.custom_op(f"{NAMESPACE}::subm_rulebook", mutates_args=())
def subm_rulebook(
    indices: torch.Tensor, spatial_shape: list[int], kernel_size: list[int], dilation: list[int]
) -> torch.Tensor:
    geometry = ConvGeometry.make(ConvKind.SUBMANIFOLD, len(spatial_shape), kernel_size, 1, 0, dilation)
    return build_rulebook(indices, spatial_shape, _batch_extent(indices), geometry).neighbors


@subm_rulebook.register_fake
def _(indices, spatial_shape, kernel_size, dilation):
    return indices.new_empty((math.prod(kernel_size), indices.shape[0]), dtype=torch.int32)


# ------------------------------------------------------------------------------------------- SparseRulebook
@torch.library.custom_op(f"{NAMESPACE}::sparse_rulebook", mutates_args=())
def sparse_rulebook(
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


@sparse_rulebook.register_fake
def _(indices, spatial_shape, kernel_size, stride, padding, dilation, output_padding, transposed, max_out, batch_size):
    m = _site_count(torch.library.get_ctx())
    return (
        indices.new_empty((m, len(spatial_shape) + 1), dtype=torch.int32),
        indices.new_empty((math.prod(kernel_size), m), dtype=torch.int32),
        indices.new_empty((), dtype=torch.int32),
    )


# ------------------------------------------------------------------------------------------- InverseRulebook
@torch.library.custom_op(f"{NAMESPACE}::inverse_rulebook", mutates_args=())
def inverse_rulebook(neighbors: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return invert_map(neighbors, indices.shape[0])


@inverse_rulebook.register_fake
def _(neighbors, indices):
    return neighbors.new_empty((neighbors.shape[0], indices.shape[0]), dtype=torch.int32)


# ------------------------------------------------------------------------------------------- ConvPlan
# Made by a graph pass after export (exporter/graph_passes.py: attach_conv_plans), not by the layers; an op here
# too, so every schema op has one and a model may call it.
@torch.library.custom_op(f"{NAMESPACE}::conv_plan", mutates_args=())
def conv_plan(neighbors: torch.Tensor) -> torch.Tensor:
    return backend_conv_plan(neighbors.to(torch.int32))


@conv_plan.register_fake
def _(neighbors):
    k = neighbors.shape[0]
    return neighbors.new_empty((k + 1 + (k + 31) // 32, neighbors.shape[1]), dtype=torch.int32)


# ------------------------------------------------------------------------------------------- SparseConv
@torch.library.custom_op(f"{NAMESPACE}::sparse_conv", mutates_args=())
def sparse_conv(
    features: torch.Tensor,
    neighbors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    residual: torch.Tensor | None,
    activation: int,
    alpha: float,
) -> torch.Tensor:
    """``residual`` (added before the activation) is made by a graph pass after export (fuse_residual_adds); the
    map may be a ConvPlan."""
    kernel_volume = int(weight.shape[1])
    if is_plan(neighbors, kernel_volume):
        neighbors = plan_to_map(neighbors, kernel_volume)
    pairs = backend_ops.map_pairs(neighbors)
    out = backend_ops.conv_over_map(features, weight, bias, neighbors.shape[1], pairs, residual=residual)
    return apply_activation(out, ACTIVATION_NAMES[activation], alpha)


@sparse_conv.register_fake
def _(features, neighbors, weight, bias, residual, activation, alpha):
    return features.new_empty((neighbors.shape[1], weight.shape[0]))


# ------------------------------------------------------------------------------------------- SparseMaxPool
@torch.library.custom_op(f"{NAMESPACE}::sparse_max_pool", mutates_args=())
def sparse_max_pool(features: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    pairs = backend_ops.map_pairs(neighbors)
    return backend_ops.max_pool_over_map(features, neighbors.shape[0], neighbors.shape[1], pairs)


@sparse_max_pool.register_fake
def _(features, neighbors):
    return features.new_empty((neighbors.shape[1], features.shape[1]))


# ------------------------------------------------------------------------------------------- Densify
@torch.library.custom_op(f"{NAMESPACE}::densify", mutates_args=())
def densify(features: torch.Tensor, indices: torch.Tensor, spatial_shape: list[int], batch_size: int) -> torch.Tensor:
    return backend_ops.densify(features, indices, spatial_shape, batch_size)


@densify.register_fake
def _(features, indices, spatial_shape, batch_size):
    return features.new_empty((batch_size, features.shape[1], *spatial_shape))


# ------------------------------------------------------------------------------------------- UniqueSites
# Recorded for torch.unique of sites (exporter/idioms.py) and by exporter/functional.py's merges.
@torch.library.custom_op(f"{NAMESPACE}::unique_sites", mutates_args=())
def unique_sites(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    unique, inverse, counts = backend_ops.unique_rows(indices.to(torch.int32))
    return unique, inverse, counts, torch.tensor(unique.shape[0], dtype=torch.int32)


@unique_sites.register_fake
def _(indices):
    m = _site_count(torch.library.get_ctx())
    return (
        indices.new_empty((m, indices.shape[1]), dtype=torch.int32),
        indices.new_empty((indices.shape[0],), dtype=torch.int32),
        indices.new_empty((m,), dtype=torch.int32),
        indices.new_empty((), dtype=torch.int32),
    )


# ------------------------------------------------------------------------------------------- SegmentReduce
@torch.library.custom_op(f"{NAMESPACE}::segment_reduce", mutates_args=())
def segment_reduce(features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: int) -> torch.Tensor:
    return backend_ops.segment_reduce(features, segments, init, backend_ops.SEGMENT_REDUCTIONS[reduction])


@segment_reduce.register_fake
def _(features, segments, init, reduction):
    return init.new_empty(init.shape)


# ------------------------------------------------------------------------------------------- MaskRows
@torch.library.custom_op(f"{NAMESPACE}::mask_rows", mutates_args=())
def mask_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = backend_ops.mask_rows(mask)
    return rows, torch.tensor(rows.shape[0], dtype=torch.int32)


@mask_rows.register_fake
def _(mask):
    m = _site_count(torch.library.get_ctx())
    return mask.new_empty((m,), dtype=torch.int32), mask.new_empty((), dtype=torch.int32)


def overloads() -> dict[torch._ops.OpOverload, str]:
    """Each custom op's default overload -> the schema op it becomes."""
    namespace = getattr(torch.ops, NAMESPACE)
    return {getattr(namespace, name).default: onnx_op for name, onnx_op in ONNX_OPS.items()}
