"""The op schema: one machine-readable description (``sparsetrt_ops.json``) of our custom ONNX ops.

The exporter emits nodes from it, the reference runtime checks nodes against it, ONNX learns the ops
(and their shape inference) from it, the plugin creators are checked against it, and the op docs are
generated from it. Change an op here first.

It also states every attribute's valid values, once: per attribute ``length`` (``[lo, hi]`` or ``"D"``, the
length of ``spatial_shape``), ``min``, ``max``, ``values`` (with ``value_names``) and ``finite``; per op a list
of ``rules`` across attributes and derived quantities (``product``, ``reach``, ``zero_unless``,
``output_grid``; see ``rules.py``); and, through the symbolic input shapes (``[C_out, K, C_in]``), how the
inputs' dims relate. ``rules.py`` applies them in Python (exporter, reference runtime), and the plugin
creators apply the same table, generated into C++ (``plugins/common/include/sparsetrt/op_rules.h``, with the
field table ``op_fields.h`` and each op's attribute code ``plugins/ops/<op>/<op>_attributes.h``, by
``python -m sparsetrt.exporter.schema.cpp``), with the same messages.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sparsetrt.errors import ModelError

DOMAIN = "sparsetrt"


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int32" or "T"
    shape: tuple[str, ...]
    optional: bool = False
    doc: str = ""
    since_version: int = 1  # the op version that added it (optional inputs only ever come later)
    max_dims: tuple[int | None, ...] | None = None  # an upper bound per dim, where the kernels have one
    requires: str | None = None  # another (optional) input that must be given whenever this one is


@dataclass(frozen=True)
class Attr:
    name: str
    type: str  # "int", "ints" or "float"
    doc: str = ""
    length: tuple[int, int] | str | None = None  # ints: (lo, hi) entries, or "D" (as many as spatial_shape)
    min: int | None = None  # int, ints: every value >= min
    max: int | None = None  # int, ints: every value <= max
    values: tuple[Any, ...] | None = None  # the allowed values, in order
    value_names: tuple[str, ...] | None = None  # what each of ``values`` means
    finite: bool = False  # float: neither NaN nor infinite


@dataclass(frozen=True)
class Rule:
    """A rule across attributes (see ``rules.py`` for each kind); ``field`` is the attribute messages name."""

    kind: str
    field: str
    doc: str
    params: dict[str, Any]


@dataclass(frozen=True)
class LookupAttr:
    """A string attribute every node carries so that TensorRT's ONNX parser finds the plugin creator; not a plugin
    field (creators do not declare it). ``value`` says where its value comes from: ``"domain"`` (the schema's
    domain) or ``"since_version"`` (the op's, as a string)."""

    name: str
    type: str  # "string"
    value: str
    doc: str = ""


@dataclass(frozen=True)
class OpDef:
    name: str
    since_version: int
    doc: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    attributes: tuple[Attr, ...]
    rules: tuple[Rule, ...] = ()
    # Earlier versions still accepted: a node of such a version is a node of this one without what came later
    # (inputs with a larger since_version). Plugin creators exist for them too, for older files and engines.
    previous_versions: tuple[int, ...] = ()

    @property
    def versions(self) -> tuple[int, ...]:
        return (*self.previous_versions, self.since_version)

    def inputs_of(self, version: int) -> tuple[Param, ...]:
        """The inputs a node of op version ``version`` may have."""
        return tuple(p for p in self.inputs if p.since_version <= version)

    def attribute(self, name: str) -> Attr:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(f"{self.name} has no attribute {name!r}")


@dataclass(frozen=True)
class Schema:
    domain: str
    version: int
    doc: str
    ops: dict[str, OpDef]
    lookup_attributes: tuple[LookupAttr, ...] = ()


def _param(d: dict[str, Any]) -> Param:
    return Param(
        d["name"],
        d["type"],
        tuple(d["shape"]),
        bool(d.get("optional", False)),
        d.get("doc", ""),
        int(d.get("since_version", 1)),
        tuple(d["max_dims"]) if "max_dims" in d else None,
        d.get("requires"),
    )


def _attr(d: dict[str, Any]) -> Attr:
    length = d.get("length")
    values = d.get("values")
    names = d.get("value_names")
    return Attr(
        name=d["name"],
        type=d["type"],
        doc=d.get("doc", ""),
        length=tuple(length) if isinstance(length, list) else length,  # type: ignore[arg-type]
        min=d.get("min"),
        max=d.get("max"),
        values=tuple(values) if values is not None else None,
        value_names=tuple(names) if names is not None else None,
        finite=bool(d.get("finite", False)),
    )


def _rule(d: dict[str, Any]) -> Rule:
    params = {k: v for k, v in d.items() if k not in ("rule", "field", "doc")}
    return Rule(d["rule"], d["field"], d.get("doc", ""), params)


@cache
def load() -> Schema:
    """The schema, parsed once."""
    raw = json.loads(resources.files(__package__).joinpath("sparsetrt_ops.json").read_text())
    ops = {
        o["name"]: OpDef(
            name=o["name"],
            since_version=int(o["since_version"]),
            doc=o["doc"],
            inputs=tuple(_param(p) for p in o["inputs"]),
            outputs=tuple(_param(p) for p in o["outputs"]),
            attributes=tuple(_attr(a) for a in o["attributes"]),
            rules=tuple(_rule(r) for r in o.get("rules", [])),
            previous_versions=tuple(int(v) for v in o.get("previous_versions", ())),
        )
        for o in raw["ops"]
    }
    if raw["domain"] != DOMAIN:
        raise ValueError(f"schema domain {raw['domain']!r} != {DOMAIN!r}")
    lookup = tuple(LookupAttr(a["name"], a["type"], a["value"], a.get("doc", "")) for a in raw["lookup_attributes"])
    return Schema(raw["domain"], int(raw["version"]), raw["doc"], ops, lookup)


def op(name: str) -> OpDef:
    """The op's definition; a ``ModelError`` naming the known ops if the schema has no such op."""
    try:
        return load().ops[name]
    except KeyError:
        raise ModelError(
            f"no op {name!r} in the sparsetrt schema (known: {', '.join(sorted(load().ops))}); the file was written "
            "by another tool or a newer sparsetrt, or edited by hand"
        ) from None


def lookup_attributes(op_name: str) -> dict[str, str]:
    """The lookup attributes of an op's nodes with their values: ``{"plugin_namespace": "sparsetrt",
    "plugin_version": "1"}``. The exporter writes them on every node (TensorRT 10.3-10.9 need them)."""
    definition = op(op_name)
    sources = {"domain": load().domain, "since_version": str(definition.since_version)}
    return {a.name: sources[a.value] for a in load().lookup_attributes}


def check_lookup_attributes(op_name: str, attrs: dict[str, Any], node: str | None = None) -> None:
    """Raise if a lookup attribute in ``attrs`` has another value than the schema's (TensorRT would then look for a
    plugin that does not exist). Absent ones are accepted: files exported before they existed run everywhere but on
    TensorRT 10.3-10.9, and ``sparsetrt build`` adds them. The plugin version may also be one of the op's previous
    versions (files exported before the op changed; the plugin library keeps creators for them)."""
    definition = op(op_name)
    for name, expected in lookup_attributes(op_name).items():
        if name not in attrs:
            continue
        value = attrs[name]
        value = value.decode() if isinstance(value, bytes) else value
        accepted = [str(v) for v in definition.versions] if expected == str(definition.since_version) else [expected]
        if value not in accepted:
            raise ModelError(
                f"sparsetrt::{op_name}{'' if node is None else f' node {node!r}'}, attribute {name!r}: is {value!r}, "
                f"but TensorRT finds this op's plugin only under {' or '.join(repr(a) for a in accepted)}: set it to "
                f"{expected!r} (or re-export the model)"
            )


def node_version(op_name: str, attrs: dict[str, Any]) -> int:
    """The op version a node declares through its ``plugin_version`` lookup attribute (the current one if absent)."""
    definition = op(op_name)
    value = attrs.get("plugin_version")
    value = value.decode() if isinstance(value, bytes) else value
    return int(value) if isinstance(value, str) and value.isdigit() else definition.since_version


def snake_name(op_name: str) -> str:
    """An op's name in snake case (``SparseMaxPool`` -> ``sparse_max_pool``): its plugin folder
    (``plugins/ops/sparse_max_pool/``), its custom op (``torch.ops.sparsetrt.sparse_max_pool``) and its runtime
    module (``runtime/ops/sparse_max_pool.py``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op_name).lower()


def enum_values(op_name: str, attribute: str) -> dict[str, int]:
    """An enumerated attribute's values by name, from the schema (``enum_values("SegmentReduce", "reduction")`` ->
    ``{"sum": 0, "max": 1}``): the one table the exporter, the runtime and the generated C++ enums share."""
    attr = next(a for a in op(op_name).attributes if a.name == attribute)
    if attr.values is None or attr.value_names is None:
        raise ValueError(f"{op_name}.{attribute} is not an enumerated attribute")
    return dict(zip(attr.value_names, attr.values, strict=True))


def kernel_volume(kernel_size: list[int]) -> int:
    return math.prod(kernel_size)


from .rules import check_attributes, check_input_shapes, output_grid  # noqa: E402  (they use the above)

__all__ = [
    "DOMAIN",
    "Attr",
    "OpDef",
    "Param",
    "Rule",
    "Schema",
    "check_attributes",
    "check_input_shapes",
    "check_lookup_attributes",
    "kernel_volume",
    "load",
    "lookup_attributes",
    "node_version",
    "op",
    "output_grid",
]
