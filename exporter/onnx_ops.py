"""Trace-time versions of the sparse ops: while ``torch.onnx.export`` traces a model, each op runs the
reference backend for real (so shapes, data-dependent counts and everything downstream are real) and is
recorded as one node of the ``sparsetrt`` domain, with the attributes the schema declares.

Outside an export the layers call the backend directly; these Functions have no backward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.autograd import Function

from .backend import ops as backend_ops
from .backend.geometry import ConvGeometry, ConvKind
from .backend.rulebook import Rulebook, build_rulebook, invert_map
from .schema import DOMAIN, check_attributes, lookup_attributes

ACTIVATIONS = {None: 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3}

# Options of the export in progress (set by export(), read while tracing).
export_options = {"max_sites": 0}


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """Pause the tracer while a Function's forward runs the backend: the exporter emits our node from
    ``symbolic`` and throws away whatever the tracer recorded inside, and recording the backend's many
    small ops dominated export time (VoxelNeXt: 4.1 s of 6.6 s)."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def is_exporting() -> bool:
    return torch.onnx.is_in_onnx_export()


def _node(g, op_name: str, inputs: list, attrs: dict, outputs: int = 1):
    """Emit a schema-checked node with its lookup attributes (plugin_namespace, plugin_version: TensorRT 10.3-10.9
    find our plugins only through them); attribute suffixes follow the value types (_i ints, _f floats, _s strings)."""
    check_attributes(op_name, attrs)
    kwargs = {f"{name}_s": value for name, value in lookup_attributes(op_name).items()}
    for name, value in attrs.items():
        kwargs[f"{name}_f" if isinstance(value, float) else f"{name}_i"] = value
    return g.op(f"{DOMAIN}::{op_name}", *inputs, outputs=outputs, **kwargs)


def _typed(value, dtype: torch.dtype, sizes: list):
    value.setType(value.type().with_dtype(dtype).with_sizes(sizes))
    return value


class _SubmRulebook(Function):
    @staticmethod
    def forward(ctx, indices, spatial_shape, batch_size, geometry):
        with _untraced():
            return build_rulebook(indices, spatial_shape, batch_size, geometry).neighbors

    @staticmethod
    def symbolic(g, indices, spatial_shape, batch_size, geometry):
        attrs = {
            "spatial_shape": list(spatial_shape),
            "kernel_size": list(geometry.kernel_size),
            "dilation": list(geometry.dilation),
        }
        out = _node(g, "SubmRulebook", [indices], attrs)
        return _typed(out, torch.int32, [geometry.kernel_volume, None])


class _SparseRulebook(Function):
    @staticmethod
    def forward(ctx, indices, spatial_shape, batch_size, geometry, max_out):
        with _untraced():
            rb = build_rulebook(indices, spatial_shape, batch_size, geometry)
            if max_out and rb.num_out > max_out:
                raise ValueError(f"sparse conv creates {rb.num_out} sites, more than its bound max_out={max_out}")
            return rb.out_indices, rb.neighbors, torch.tensor(rb.num_out, dtype=torch.int32)

    @staticmethod
    def symbolic(g, indices, spatial_shape, batch_size, geometry, max_out):
        attrs = {
            "spatial_shape": list(spatial_shape),
            "kernel_size": list(geometry.kernel_size),
            "stride": list(geometry.stride),
            "padding": list(geometry.padding),
            "dilation": list(geometry.dilation),
            "output_padding": list(geometry.output_padding),
            "transposed": int(geometry.kind is ConvKind.TRANSPOSED),
            "max_out": int(max_out),
            # Static, like Densify's: it caps M by the output grid, so bounds do not compound across stages.
            "batch_size": int(batch_size),
        }
        out_indices, neighbors, num_out = _node(g, "SparseRulebook", [indices], attrs, outputs=3)
        _typed(out_indices, torch.int32, [None, len(spatial_shape) + 1])
        _typed(neighbors, torch.int32, [geometry.kernel_volume, None])
        _typed(num_out, torch.int32, [])
        return out_indices, neighbors, num_out


class _InverseRulebook(Function):
    @staticmethod
    def forward(ctx, neighbors, indices):
        with _untraced():
            return invert_map(neighbors, indices.shape[0])

    @staticmethod
    def symbolic(g, neighbors, indices):
        return _typed(_node(g, "InverseRulebook", [neighbors, indices], {}), torch.int32, [None, None])


class _SparseConv(Function):
    @staticmethod
    def forward(ctx, features, neighbors, weight, bias, activation, alpha):
        with _untraced():
            pairs = backend_ops.map_pairs(neighbors)
            out = backend_ops.conv_over_map(features, weight, bias, neighbors.shape[1], pairs)
            return apply_activation(out, activation, alpha)

    @staticmethod
    def symbolic(g, features, neighbors, weight, bias, activation, alpha):
        inputs = [features, neighbors, weight] + ([] if bias is None or _is_none(bias) else [bias])
        attrs = {"activation": ACTIVATIONS[activation], "alpha": float(alpha)}
        out = _node(g, "SparseConv", inputs, attrs)
        return _typed(out, _dtype_of(features), [None, None])


class _SparseMaxPool(Function):
    @staticmethod
    def forward(ctx, features, neighbors):
        with _untraced():
            pairs = backend_ops.map_pairs(neighbors)
            return backend_ops.max_pool_over_map(features, neighbors.shape[0], neighbors.shape[1], pairs)

    @staticmethod
    def symbolic(g, features, neighbors):
        return _typed(_node(g, "SparseMaxPool", [features, neighbors], {}), _dtype_of(features), [None, None])


class _Densify(Function):
    @staticmethod
    def forward(ctx, features, indices, spatial_shape, batch_size):
        with _untraced():
            return backend_ops.densify(features, indices, spatial_shape, batch_size)

    @staticmethod
    def symbolic(g, features, indices, spatial_shape, batch_size):
        attrs = {"spatial_shape": list(spatial_shape), "batch_size": int(batch_size)}
        out = _node(g, "Densify", [features, indices], attrs)
        return _typed(out, _dtype_of(features), [int(batch_size), None, *spatial_shape])


class _UniqueSites(Function):
    @staticmethod
    def forward(ctx, indices):
        with _untraced():
            unique, inverse, counts = backend_ops.unique_rows(indices.to(torch.int32))
            return unique, inverse, counts, torch.tensor(unique.shape[0], dtype=torch.int32)

    @staticmethod
    def symbolic(g, indices):
        unique, inverse, counts, num_out = _node(g, "UniqueSites", [indices], {}, outputs=4)
        _typed(unique, torch.int32, [None, None])
        _typed(inverse, torch.int32, [None])
        _typed(counts, torch.int32, [None])
        _typed(num_out, torch.int32, [])
        return unique, inverse, counts, num_out


class _SegmentReduce(Function):
    @staticmethod
    def forward(ctx, features, segments, init, reduction):
        with _untraced():
            return backend_ops.segment_reduce(features, segments, init, reduction)

    @staticmethod
    def symbolic(g, features, segments, init, reduction):
        attrs = {"reduction": backend_ops.SEGMENT_REDUCTIONS.index(reduction)}
        out = _node(g, "SegmentReduce", [features, segments, init], attrs)
        return _typed(out, _dtype_of(features), [None, None])


class _MaskRows(Function):
    @staticmethod
    def forward(ctx, mask):
        with _untraced():
            rows = backend_ops.mask_rows(mask)
            return rows, torch.tensor(rows.shape[0], dtype=torch.int32)

    @staticmethod
    def symbolic(g, mask):
        rows, num_out = _node(g, "MaskRows", [mask], {}, outputs=2)
        _typed(rows, torch.int32, [None])
        _typed(num_out, torch.int32, [])
        return rows, num_out


def _is_none(value) -> bool:
    return value.node().mustBeNone() if hasattr(value, "node") else value is None


def _dtype_of(value) -> torch.dtype:
    scalar = value.type().scalarType()
    return torch.float16 if scalar == "Half" else torch.float32


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


# ------------------------------------------------------------------------------------ entry points
def traced_rulebook(
    indices: torch.Tensor, spatial_shape: list[int], batch_size: int, geometry: ConvGeometry
) -> Rulebook:
    """A Rulebook whose tensors are outputs of one recorded rulebook node."""
    max_out = int(export_options["max_sites"])
    shape = tuple(int(s) for s in spatial_shape)
    if geometry.kind is ConvKind.SUBMANIFOLD:
        neighbors = _SubmRulebook.apply(indices, shape, batch_size, geometry)
        out_indices = indices
    else:
        out_indices, neighbors, _ = _SparseRulebook.apply(indices, shape, batch_size, geometry, max_out)
    return Rulebook(
        geometry=geometry,
        neighbors=neighbors,
        in_indices=indices,
        out_indices=out_indices,
        in_spatial_shape=shape,
        out_spatial_shape=geometry.output_shape(shape),
        batch_size=batch_size,
    )


def traced_inverse(rb: Rulebook) -> Rulebook:
    return rb.inverse_with(_InverseRulebook.apply(rb.neighbors, rb.in_indices))


def traced_conv(
    features: torch.Tensor,
    neighbors: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str | None = None,
    alpha: float = 0.0,
) -> torch.Tensor:
    weight_kc = weight.reshape(weight.shape[0], -1, weight.shape[-1])
    return _SparseConv.apply(features, neighbors, weight_kc, bias, activation, alpha)


def traced_max_pool(features: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    return _SparseMaxPool.apply(features, neighbors)


def traced_densify(features: torch.Tensor, indices: torch.Tensor, spatial_shape: list[int], batch_size: int):
    return _Densify.apply(features, indices, [int(s) for s in spatial_shape], int(batch_size))


def traced_unique_sites(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(unique [M, K], inverse [N], counts [M])``, int32, from one recorded UniqueSites node."""
    unique, inverse, counts, _ = _UniqueSites.apply(indices.to(torch.int32))
    return unique, inverse, counts


def traced_segment_reduce(
    features: torch.Tensor, segments: torch.Tensor, init: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    return _SegmentReduce.apply(features, segments.to(torch.int32), init.to(features.dtype), reduction)


def traced_mask_rows(mask: torch.Tensor) -> torch.Tensor:
    """int32 rows where ``mask`` is nonzero (ascending), from one recorded MaskRows node."""
    rows, _ = _MaskRows.apply(mask.to(torch.int32))
    return rows
