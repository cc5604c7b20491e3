"""A printed summary of an exported file: its sparsetrt nodes, their attributes, and which layers share
which rulebook.

Roles of tensors come from the op schema: a rulebook's ``neighbors`` output is the map its layers read,
a ``SparseRulebook``'s ``out_indices`` are the sites it creates (read by later rulebooks, ``Densify`` and
``InverseRulebook``), and an ``InverseRulebook`` transposes the map of the rulebook feeding its
``neighbors`` input back onto the sites given to its ``indices`` input. A ``ConvPlan`` is the same map arranged
for the convs: the convs reading it are listed as users of the rulebook it comes from.
"""

from __future__ import annotations

import os
from collections import defaultdict

import onnx
from onnx import helper

from .custom_ops import ACTIVATION_CODES
from .schema import DOMAIN, load

_RULEBOOK_OPS = ("SubmRulebook", "SparseRulebook", "InverseRulebook")
_MAP_ROLES = ("neighbors", "neighbors_inverse")  # outputs that are neighbour maps (the rest: sites, counts)
_ACTIVATION_NAMES = {code: name or "none" for name, code in ACTIVATION_CODES.items()}


def _attrs(node: onnx.NodeProto) -> str:
    parts = []
    lookup = {a.name for a in load().lookup_attributes} if node.domain == DOMAIN else set()
    for a in node.attribute:
        if a.name in lookup:  # the same on every node: plugin lookup, not configuration
            continue
        value = helper.get_attribute_value(a)
        if isinstance(value, float):
            value = float(f"{value:.7g}")  # float32 attributes, without float64 noise (0.1, not 0.10000000149)
        text = f"{a.name}={list(value) if isinstance(value, list | tuple) else value}"
        if node.domain == DOMAIN and a.name == "activation" and value in _ACTIVATION_NAMES:
            text += f" ({_ACTIVATION_NAMES[value]})"
        parts.append(text)
    return ", ".join(parts)


def _role(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else f"#{index}"


def summary(model: str | os.PathLike | onnx.ModelProto) -> str:
    """Text describing the custom nodes of ``model`` (with their attributes, and a conv's weight shape) and
    how their rulebooks are shared: one block per rulebook node, listing the layers that read its map, the
    ``InverseRulebook`` nodes that transpose it, and where its sites come from."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
    graph = proto.graph
    schema = load().ops
    custom = [n for n in graph.node if n.domain == DOMAIN]
    standard: dict[str, int] = defaultdict(int)
    for n in graph.node:
        if n.domain != DOMAIN:
            standard[n.op_type] += 1

    def input_roles(n: onnx.NodeProto) -> list[str]:
        return [p.name for p in schema[n.op_type].inputs] if n.op_type in schema else []

    def output_roles(n: onnx.NodeProto) -> list[str]:
        return [p.name for p in schema[n.op_type].outputs] if n.op_type in schema else []

    # tensor name -> (producing custom node, that output's role); tensor name -> [(consumer, input role)]
    producer: dict[str, tuple[onnx.NodeProto, str]] = {}
    consumers: dict[str, list[tuple[onnx.NodeProto, str]]] = defaultdict(list)
    for n in custom:
        outs, ins = output_roles(n), input_roles(n)
        for i, o in enumerate(n.output):
            if o:
                producer[o] = (n, _role(outs, i))
        for i, name in enumerate(n.input):
            if name:
                consumers[name].append((n, _role(ins, i)))
    graph_inputs = {v.name for v in graph.input}
    standard_producer = {o: n for n in graph.node if n.domain != DOMAIN for o in n.output}
    shapes = {t.name: (list(t.dims), helper.tensor_dtype_to_np_dtype(t.data_type)) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR:
            t = n.attribute[0].t
            shapes[n.output[0]] = (list(t.dims), helper.tensor_dtype_to_np_dtype(t.data_type))

    def label(n: onnx.NodeProto) -> str:
        if not n.name:
            return f"{n.op_type}({n.output[0]})"
        return n.name if n.name.rsplit("/", 1)[-1].startswith(n.op_type) else f"{n.op_type} {n.name}"

    def sites(name: str, depth: int = 0) -> str:
        """Where an indices tensor comes from (through a few standard ops such as Cast)."""
        if name in graph_inputs:
            return f"input {name}"
        source = producer.get(name)
        if source is not None:
            return f"the sites of {label(source[0])}"
        step = standard_producer.get(name)
        if step is not None and step.input and depth < 4:
            return f"{step.op_type}({sites(step.input[0], depth + 1)})"
        return f"tensor {name}"

    def layer(n: onnx.NodeProto) -> str:
        attrs = _attrs(n)
        text = f"{n.op_type} {label(n)}" + (f" [{attrs}]" if attrs else "")
        if n.op_type == "SparseConv" and len(n.input) > 2:
            weight = shapes.get(n.input[2])
            text += f" weight {weight[0]} {weight[1]}" if weight else f" weight {n.input[2]}"
            text += " + bias" if len(n.input) > 3 and n.input[3] else ", no bias"
            if len(n.input) > 4 and n.input[4]:
                text += " + residual"
            plan = producer.get(n.input[1])
            if plan is not None and plan[0].op_type == "ConvPlan":
                text += f", map through {label(plan[0])}"
        return text

    lines = [f"graph {graph.name!r}: {len(graph.node)} nodes, {len(custom)} in domain '{DOMAIN}'"]
    lookup = [a.name for a in load().lookup_attributes]
    unnamed = [n for n in custom if not set(lookup) <= {a.name for a in n.attribute}]
    if unnamed:
        lines.append(
            f"  warning: {len(unnamed)} sparsetrt node(s) lack {' / '.join(lookup)}; TensorRT 10.3-10.9 (JetPack 6) "
            "find their plugins only through them: re-export, or build with `sparsetrt build` (which adds them)"
        )
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
    shown: set[int] = set()
    for n in custom:
        if n.op_type not in _RULEBOOK_OPS:
            continue
        shown.add(id(n))
        if n.op_type == "InverseRulebook" and len(n.input) == 2:
            source = producer.get(n.input[0])
            inverted = label(source[0]) if source is not None else n.input[0]
            origin = f" inverts {inverted}, back onto {sites(n.input[1])}"
        else:
            origin = f" over {sites(n.input[0])}" if n.input else ""
        attrs = _attrs(n)
        lines.append(f"  {label(n)}{origin}" + (f" [{attrs}]" if attrs else ""))
        users, inverses = [], []
        for i, o in enumerate(n.output):
            if not o or _role(output_roles(n), i) not in _MAP_ROLES:
                continue
            for u, role in consumers.get(o, []):
                if u.op_type == "InverseRulebook":
                    if role == "neighbors":
                        inverses.append(u)
                elif u.op_type == "ConvPlan":  # the same map, arranged for the convs that read it
                    shown.add(id(u))
                    users.extend(c for c, _ in consumers.get(u.output[0], []))
                elif u.op_type not in _RULEBOOK_OPS:
                    users.append(u)
        for u in users:
            shown.add(id(u))
            lines.append(f"      used by {layer(u)}")
        for u in inverses:
            lines.append(f"      inverted by {label(u)}")
        lines.append(f"      -> shared by {len(users)} layer(s)")
    for n in custom:
        if n.op_type == "Densify":
            shown.add(id(n))
            over = f" over {sites(n.input[1])}" if len(n.input) > 1 else ""
            lines.append(f"densify {label(n)}{over} [{_attrs(n)}]")
    others = [n for n in custom if id(n) not in shown]
    if others:
        lines.append("other sparsetrt nodes:")
        lines.extend(f"  {layer(n)}" for n in others)
    return "\n".join(lines)
