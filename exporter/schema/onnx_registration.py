"""Teach ONNX our ops: register their schemas (from ``sparsetrt_ops.json``) with shape inference, so
``onnx.checker.check_model(full_check=True)`` validates exported files and every tensor gets the shape
that can be known statically."""

from __future__ import annotations

import math
from collections.abc import Callable

import onnx
from onnx import TensorProto, helper
from onnx.defs import OpSchema

from . import DOMAIN, OpDef, load, lookup_attributes
from .rules import dim_value

_ATTR_TYPES = {
    "int": OpSchema.AttrType.INT,
    "ints": OpSchema.AttrType.INTS,
    "float": OpSchema.AttrType.FLOAT,
    "string": OpSchema.AttrType.STRING,
}
_FLOATS = ["tensor(float)", "tensor(float16)"]

Dim = int | str | None


def _attr(ctx, name: str):
    proto = ctx.get_attribute(name)
    return None if proto is None else helper.get_attribute_value(proto)


def _input_dims(ctx, i: int) -> list[Dim] | None:
    tp = ctx.get_input_type(i)
    if tp is None or not tp.tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for d in tp.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return dims


def _input_elem(ctx, i: int) -> int:
    tp = ctx.get_input_type(i)
    return tp.tensor_type.elem_type if tp is not None else TensorProto.UNDEFINED


def _set(ctx, i: int, elem: int, dims: list[Dim] | None) -> None:
    ctx.set_output_type(i, helper.make_tensor_type_proto(elem, dims))


def _dim(dims: list[Dim] | None, i: int) -> Dim:
    return None if dims is None or len(dims) <= i else dims[i]


def _known(expression: str, bound: dict[str, Dim]) -> Dim:
    """A dim expression of the schema (``M``, ``1+D``, ``K+1+ceil(K/32)``) from the bound symbols: a bare symbol
    as bound (a number or an input's symbolic dim), an expression only when all its symbols are numbers."""
    if expression in bound:
        return bound[expression]
    return dim_value(expression, {s: v for s, v in bound.items() if isinstance(v, int)})


def shape_function(definition: OpDef) -> Callable:
    """ONNX shape inference for one op, read off the schema's symbolic shapes: every output dim whose symbol an
    input's dim, an attribute (``batch_size``, ``*spatial_shape``) or the geometry (``K`` = prod(kernel_size),
    ``D`` = len(spatial_shape)) gives; the data-dependent ones (an output count ``M`` no input has) unknown."""

    def infer(ctx) -> None:
        bound: dict[str, Dim] = {}
        elem = TensorProto.UNDEFINED  # of the "T" inputs
        for i, param in enumerate(definition.inputs):
            if i >= ctx.get_num_inputs() or ctx.get_input_type(i) is None:
                continue  # an absent optional input
            if param.type == "T" and elem == TensorProto.UNDEFINED:
                elem = _input_elem(ctx, i)
            dims = _input_dims(ctx, i)
            for j, symbol in enumerate(param.shape):
                value = _dim(dims, j)
                if value is not None and symbol.isidentifier() and bound.get(symbol) is None:
                    bound[symbol] = value
        kernel_size, spatial_shape = _attr(ctx, "kernel_size"), _attr(ctx, "spatial_shape")
        if kernel_size is not None:
            bound.setdefault("K", math.prod(kernel_size))
        if spatial_shape is not None:
            bound.setdefault("D", len(spatial_shape))
        for i, param in enumerate(definition.outputs):
            dims: list[Dim] = []
            for symbol in param.shape:
                if symbol.startswith("*"):  # an attribute's values, one dim each
                    dims.extend(_attr(ctx, symbol[1:]) or [])
                elif any(a.name == symbol for a in definition.attributes):
                    dims.append(_attr(ctx, symbol))
                else:
                    dims.append(_known(symbol, bound))
            _set(ctx, i, elem if param.type == "T" else TensorProto.INT32, dims)

    return infer


def _formal(p, is_input: bool) -> OpSchema.FormalParameter:
    type_str = "T" if p.type == "T" else f"tensor({p.type})"
    option = OpSchema.FormalParameterOption.Optional if p.optional else OpSchema.FormalParameterOption.Single
    return OpSchema.FormalParameter(p.name, type_str, p.doc, param_option=option)


def _onnx_schema(definition: OpDef, version: int) -> OpSchema:
    """The op as ONNX knows it at ``version`` (the current one, or one of its previous versions)."""
    uses_t = any(p.type == "T" for p in (*definition.inputs, *definition.outputs))
    schema = OpSchema(
        definition.name,
        DOMAIN,
        version,
        definition.doc,
        inputs=[_formal(p, True) for p in definition.inputs_of(version)],
        outputs=[_formal(p, False) for p in definition.outputs],
        type_constraints=[("T", _FLOATS, "float32 or float16 features")] if uses_t else [],
        attributes=[
            OpSchema.Attribute(a.name, _ATTR_TYPES[a.type], a.doc, required=True) for a in definition.attributes
        ]
        # Optional for ONNX, so files exported before they existed still check; the exporter always writes them.
        + [OpSchema.Attribute(a.name, _ATTR_TYPES[a.type], a.doc, required=False) for a in load().lookup_attributes],
    )
    schema.set_type_and_shape_inference_function(shape_function(definition))
    return schema


def add_lookup_attributes(model: onnx.ModelProto) -> int:
    """Give every sparsetrt node of ``model`` (in place) the lookup attributes it lacks, with the schema's values:
    files exported before they existed then build on TensorRT 10.3-10.9 too. Returns how many were added."""
    added = 0
    for node in model.graph.node:
        if node.domain != DOMAIN or node.op_type not in load().ops:
            continue
        present = {a.name for a in node.attribute}
        for name, value in lookup_attributes(node.op_type).items():
            if name not in present:
                node.attribute.append(helper.make_attribute(name, value))
                added += 1
    return added


_registered = False


def register_onnx_schemas() -> None:
    """Register every op of the schema with ONNX, at its current and previous versions (idempotent): files of
    an older domain version (SparseConv 1) still check."""
    global _registered
    if _registered:
        return
    for definition in load().ops.values():
        for version in definition.versions:
            try:
                registered = onnx.defs.get_schema(definition.name, version, DOMAIN)
                if registered.since_version == version:
                    continue
            except onnx.defs.SchemaError:
                pass
            onnx.defs.register_schema(_onnx_schema(definition, version))
    _registered = True
