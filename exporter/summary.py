"""A printed summary of an exported file: its sparsetrt nodes, their attributes, and which layers share
which rulebook."""

from __future__ import annotations

import os
from collections import defaultdict

import onnx
from onnx import helper

from .schema import DOMAIN

_RULEBOOK_OPS = ("SubmRulebook", "SparseRulebook", "InverseRulebook")


def _attrs(node: onnx.NodeProto) -> str:
    parts = []
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        parts.append(f"{a.name}={list(value) if isinstance(value, list | tuple) else value}")
    return ", ".join(parts)


def summary(model: str | os.PathLike | onnx.ModelProto) -> str:
    """Text describing the custom nodes of ``model`` and how their rulebooks are shared."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
    graph = proto.graph
    custom = [n for n in graph.node if n.domain == DOMAIN]
    standard: dict[str, int] = defaultdict(int)
    for n in graph.node:
        if n.domain != DOMAIN:
            standard[n.op_type] += 1
    producer = {o: n for n in custom for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in custom:
        for i in n.input:
            consumers[i].append(n)

    def label(n: onnx.NodeProto) -> str:
        return n.name or f"{n.op_type}({n.output[0]})"

    lines = [f"graph {graph.name!r}: {len(graph.node)} nodes, {len(custom)} in domain '{DOMAIN}'"]
    for value in graph.input:
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        lines.append(
            f"  input  {value.name}: {helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)} {dims}"
        )
    for value in graph.output:
        dims = [d.dim_param or d.dim_value or "?" for d in value.type.tensor_type.shape.dim]
        lines.append(
            f"  output {value.name}: {helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)} {dims}"
        )
    counts: dict[str, int] = defaultdict(int)
    for n in custom:
        counts[n.op_type] += 1
    lines.append("custom ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    lines.append("standard ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(standard.items())))
    lines.append("rulebooks (and the layers that use them):")
    for n in custom:
        if n.op_type not in _RULEBOOK_OPS:
            continue
        source = producer.get(n.input[0])
        origin = f" over the sites of {label(source)}" if source is not None else f" over input {n.input[0]}"
        lines.append(f"  {label(n)}{origin} [{_attrs(n)}]")
        users = [u for o in n.output for u in consumers.get(o, []) if u.op_type not in _RULEBOOK_OPS]
        inverse = [u for o in n.output for u in consumers.get(o, []) if u.op_type == "InverseRulebook"]
        for u in users:
            lines.append(f"      used by {u.op_type} {label(u)} [{_attrs(u)}]")
        for u in inverse:
            lines.append(f"      inverted by {label(u)}")
        lines.append(f"      -> shared by {len(users)} layer(s)")
    for n in custom:
        if n.op_type == "Densify":
            lines.append(f"densify {label(n)} [{_attrs(n)}]")
    return "\n".join(lines)
