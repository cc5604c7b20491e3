"""The op schema: one machine-readable description (``sparsetrt_ops.json``) of our custom ONNX ops.

The exporter emits nodes from it, the reference runtime checks nodes against it, ONNX learns the ops
(and their shape inference) from it, the plugin creators are checked against it, and the op docs are
generated from it. Change an op here first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

DOMAIN = "sparsetrt"


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int32" or "T"
    shape: tuple[str, ...]
    optional: bool = False
    doc: str = ""
    since_version: int = 1  # the op version that added it (optional inputs only ever come later)


@dataclass(frozen=True)
class Attr:
    name: str
    type: str  # "int", "ints" or "float"
    doc: str = ""


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
    )


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
            attributes=tuple(Attr(a["name"], a["type"], a.get("doc", "")) for a in o["attributes"]),
            previous_versions=tuple(int(v) for v in o.get("previous_versions", ())),
        )
        for o in raw["ops"]
    }
    if raw["domain"] != DOMAIN:
        raise ValueError(f"schema domain {raw['domain']!r} != {DOMAIN!r}")
    lookup = tuple(LookupAttr(a["name"], a["type"], a["value"], a.get("doc", "")) for a in raw["lookup_attributes"])
    return Schema(raw["domain"], int(raw["version"]), raw["doc"], ops, lookup)


def op(name: str) -> OpDef:
    try:
        return load().ops[name]
    except KeyError:
        raise KeyError(f"no op {name!r} in the sparsetrt schema; known: {sorted(load().ops)}") from None


def lookup_attributes(op_name: str) -> dict[str, str]:
    """The lookup attributes of an op's nodes with their values: ``{"plugin_namespace": "sparsetrt",
    "plugin_version": "1"}``. The exporter writes them on every node (TensorRT 10.3-10.9 need them)."""
    definition = op(op_name)
    sources = {"domain": load().domain, "since_version": str(definition.since_version)}
    return {a.name: sources[a.value] for a in load().lookup_attributes}


def check_lookup_attributes(op_name: str, attrs: dict[str, Any]) -> None:
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
            raise ValueError(
                f"{op_name}.{name} is {value!r}, but TensorRT finds this op's plugin only under "
                f"{' or '.join(repr(a) for a in accepted)}: set it to {expected!r} (or re-export the model)"
            )


def node_version(op_name: str, attrs: dict[str, Any]) -> int:
    """The op version a node declares through its ``plugin_version`` lookup attribute (the current one if absent)."""
    definition = op(op_name)
    value = attrs.get("plugin_version")
    value = value.decode() if isinstance(value, bytes) else value
    return int(value) if isinstance(value, str) and value.isdigit() else definition.since_version


def check_attributes(op_name: str, attrs: dict[str, Any]) -> None:
    """Raise if ``attrs`` (name -> python value) are not exactly the op's declared attributes (plus, optionally,
    the lookup attributes with their schema values).

    TensorRT's ONNX parser silently drops attributes a plugin creator does not declare, so an attribute
    missing from the schema would be lost without a word: we refuse it at export instead.
    """
    definition = op(op_name)
    check_lookup_attributes(op_name, attrs)
    lookup = {a.name for a in load().lookup_attributes}
    attrs = {k: v for k, v in attrs.items() if k not in lookup}
    declared = {a.name for a in definition.attributes}
    if set(attrs) != declared:
        raise ValueError(
            f"{op_name}: attributes {sorted(attrs)} do not match the schema's {sorted(declared)} "
            "(missing or undeclared attributes)"
        )
    for name, value in attrs.items():
        kind = definition.attribute(name).type
        ok = (
            (kind == "int" and isinstance(value, int))
            or (kind == "float" and isinstance(value, float))
            or (kind == "ints" and isinstance(value, list | tuple) and all(isinstance(v, int) for v in value))
        )
        if not ok:
            raise ValueError(f"{op_name}.{name} must be {kind}, got {value!r}")


def kernel_volume(kernel_size: list[int]) -> int:
    return math.prod(kernel_size)
