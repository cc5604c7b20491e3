"""From a call of one of our custom ops to its ``sparsetrt`` ONNX node, for both exporters.

``node_spec`` decides, once for both paths, what a call becomes: the schema op, its inputs (the call's
tensor arguments) and its attributes (the other arguments, checked against the schema). The
TorchScript exporter reaches it through symbolic functions (``register_torchscript_symbolics``), the
dynamo exporter through a custom translation table of onnxscript functions (``dynamo_translation_table``).
So the two files carry the same nodes with the same attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .custom_ops import overloads
from .schema import DOMAIN, check_attributes, load, lookup_attributes, op

# Shape symbols of the schema that stand for site counts, the dims a file must leave dynamic.
SITE_COUNTS = ("N", "M")
# The opset the TorchScript symbolics are registered from (they apply to every later opset too).
_TORCHSCRIPT_MIN_OPSET = 9


@dataclass(frozen=True)
class NodeSpec:
    op_type: str
    inputs: list[Any]  # the exporter's values; optional inputs left out are dropped from the end
    attributes: dict[str, Any]
    # plugin_namespace and plugin_version (strings): TensorRT 10.3-10.9's ONNX parser finds our plugins only
    # through them. Written after the schema's attributes, by both exporters.
    lookup: dict[str, str]


def _is_tensor_argument(argument: torch._C.Argument) -> bool:
    kind = argument.type
    if isinstance(kind, torch._C.OptionalType):
        kind = kind.getElementType()
    return isinstance(kind, torch._C.TensorType)


def _attribute_value(value: Any) -> Any:
    """A Python value as the schema types it: int, list of ints or float."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    return value


def node_spec(overload: torch._ops.OpOverload, args: Sequence[Any], kwargs: dict[str, Any]) -> NodeSpec:
    """The node a call ``overload(*args, **kwargs)`` becomes; tensors may be any exporter's values."""
    op_type = overloads()[overload]
    inputs: list[Any] = []
    attributes: dict[str, Any] = {}
    for i, argument in enumerate(overload._schema.arguments):
        value = args[i] if i < len(args) else kwargs.get(argument.name, argument.default_value)
        if _is_tensor_argument(argument):
            inputs.append(value)
        else:
            attributes[argument.name] = _attribute_value(value)
    while inputs and inputs[-1] is None:
        inputs.pop()
    check_attributes(op_type, attributes)
    return NodeSpec(op_type, inputs, attributes, lookup_attributes(op_type))


# ------------------------------------------------------------------------------------------ TorchScript
def _parse_code(argument: torch._C.Argument) -> str:
    """``symbolic_helper.parse_args`` code of one argument: tensors stay graph values."""
    if _is_tensor_argument(argument):
        return "v"
    kind = argument.type
    if isinstance(kind, torch._C.ListType):
        return "is"
    return "f" if isinstance(kind, torch._C.FloatType) else "i"


def _dynamic_sizes(op_type: str, output: int, sizes: list[int | None]) -> list[int | None]:
    """The traced sizes of an output with its site-count dims made dynamic (the trace saw one example)."""
    shape = op(op_type).outputs[output].shape
    if len(shape) != len(sizes):  # Densify's "*spatial_shape": every dim is static
        return sizes
    return [None if symbol in SITE_COUNTS else size for symbol, size in zip(shape, sizes, strict=True)]


def _torchscript_symbolic(overload: torch._ops.OpOverload) -> Callable:
    from torch.onnx import symbolic_helper

    codes = [_parse_code(a) for a in overload._schema.arguments]

    def symbolic(g, *values):
        # Non-tensor arguments arrive as graph constants: read their Python values.
        args = [
            (None if symbolic_helper._is_none(v) else v) if c == "v" else symbolic_helper._parse_arg(v, c)
            for v, c in zip(values, codes, strict=True)
        ]
        spec = node_spec(overload, args, {})
        # Attribute suffixes follow the value types: _f floats, _i ints and int lists, _s strings.
        kwargs = {f"{k}_f" if isinstance(v, float) else f"{k}_i": v for k, v in spec.attributes.items()}
        kwargs.update({f"{k}_s": v for k, v in spec.lookup.items()})
        traced = list(g.original_node.outputs())
        outputs = g.op(f"{DOMAIN}::{spec.op_type}", *spec.inputs, outputs=len(traced), **kwargs)
        outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
        for i, (value, original) in enumerate(zip(outputs, traced, strict=True)):
            kind = original.type()
            value.setType(kind.with_sizes(_dynamic_sizes(spec.op_type, i, list(kind.sizes()))))
        return outputs if len(outputs) > 1 else outputs[0]

    return symbolic


_torchscript_registered = False


def register_torchscript_symbolics() -> None:
    """Teach the TorchScript exporter our custom ops (idempotent)."""
    global _torchscript_registered
    if _torchscript_registered:
        return
    for overload in overloads():
        name = overload._schema.name  # "sparsetrt::sparse_conv"
        torch.onnx.register_custom_op_symbolic(name, _torchscript_symbolic(overload), _TORCHSCRIPT_MIN_OPSET)
    _torchscript_registered = True


# ------------------------------------------------------------------------------------------ dynamo
def _dynamo_translation(overload: torch._ops.OpOverload) -> Callable:
    import onnxscript

    opset = onnxscript.values.Opset(DOMAIN, load().version)

    def translate(*args, **kwargs):
        spec = node_spec(overload, args, kwargs)
        return getattr(opset, spec.op_type)(*spec.inputs, **spec.attributes, **spec.lookup)

    translate.__name__ = f"sparsetrt_{overload._schema.name.split('::')[1]}"
    return translate


def dynamo_translation_table() -> dict[torch._ops.OpOverload, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``: custom op -> onnxscript
    function emitting its node. Needs our ONNX schemas registered (onnxscript looks the op up there)."""
    return {overload: _dynamo_translation(overload) for overload in overloads()}
