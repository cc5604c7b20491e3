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


def _subm(ctx) -> None:
    k = math.prod(_attr(ctx, "kernel_size"))
    _set(ctx, 0, TensorProto.INT32, [k, _dim(_input_dims(ctx, 0), 0)])


def _sparse(ctx) -> None:
    k = math.prod(_attr(ctx, "kernel_size"))
    d = len(_attr(ctx, "spatial_shape"))
    _set(ctx, 0, TensorProto.INT32, [None, d + 1])
    _set(ctx, 1, TensorProto.INT32, [k, None])
    _set(ctx, 2, TensorProto.INT32, [])


def _inverse(ctx) -> None:
    _set(ctx, 0, TensorProto.INT32, [_dim(_input_dims(ctx, 0), 0), _dim(_input_dims(ctx, 1), 0)])


def _conv(ctx) -> None:
    w = _input_dims(ctx, 2)
    _set(ctx, 0, _input_elem(ctx, 0), [_dim(_input_dims(ctx, 1), 1), _dim(w, 0)])


def _plan(ctx) -> None:
    k = _dim(_input_dims(ctx, 0), 0)
    rows = k + 1 + (k + 31) // 32 if isinstance(k, int) else None
    _set(ctx, 0, TensorProto.INT32, [rows, _dim(_input_dims(ctx, 0), 1)])


def _pool(ctx) -> None:
    _set(ctx, 0, _input_elem(ctx, 0), [_dim(_input_dims(ctx, 1), 1), _dim(_input_dims(ctx, 0), 1)])


def _densify(ctx) -> None:
    dims = [_attr(ctx, "batch_size"), _dim(_input_dims(ctx, 0), 1), *_attr(ctx, "spatial_shape")]
    _set(ctx, 0, _input_elem(ctx, 0), dims)


def _unique(ctx) -> None:
    dims = _input_dims(ctx, 0)
    _set(ctx, 0, TensorProto.INT32, [None, _dim(dims, 1)])
    _set(ctx, 1, TensorProto.INT32, [_dim(dims, 0)])
    _set(ctx, 2, TensorProto.INT32, [None])
    _set(ctx, 3, TensorProto.INT32, [])


def _segment_reduce(ctx) -> None:
    _set(ctx, 0, _input_elem(ctx, 0), [_dim(_input_dims(ctx, 2), 0), _dim(_input_dims(ctx, 0), 1)])


def _mask_rows(ctx) -> None:
    _set(ctx, 0, TensorProto.INT32, [None])
    _set(ctx, 1, TensorProto.INT32, [])


SHAPE_FUNCTIONS: dict[str, Callable] = {
    "SubmRulebook": _subm,
    "SparseRulebook": _sparse,
    "InverseRulebook": _inverse,
    "ConvPlan": _plan,
    "SparseConv": _conv,
    "SparseMaxPool": _pool,
    "Densify": _densify,
    "UniqueSites": _unique,
    "SegmentReduce": _segment_reduce,
    "MaskRows": _mask_rows,
}


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
    schema.set_type_and_shape_inference_function(SHAPE_FUNCTIONS[definition.name])
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
