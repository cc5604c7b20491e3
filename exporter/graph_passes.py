"""Graph passes over an exported model, written with onnx-graphsurgeon.

``optimize`` runs, in order:

1. ``remove_passthrough_nodes``: Identity nodes and Casts to the type their input already has go away.
   The tracer records ``.int()`` / ``.float()`` on tensors that already have that type as Casts (spconv's
   tensor constructor does it to every index tensor), and they hide that two rulebook nodes read the
   same sites.
2. ``fold_batchnorms``: a BatchNormalization reading a ``sparsetrt`` SparseConv is folded into the
   conv's weight and bias.
3. ``fuse_sparse_conv_activations``: a Relu / LeakyRelu / Sigmoid reading a SparseConv becomes its
   ``activation``.
   ``fuse_residual_adds``: an Add of a SparseConv's output and a tensor on the same sites (a residual block's
   identity), and the activation after it, become the conv's ``residual`` input and ``activation``.
   ``attach_conv_plans``: each SparseConv reads a ConvPlan of its map instead of the map (one ConvPlan per
   map once step 4 merges them), so the tensor-core kernels skip the offsets a tile's rows do not use.
4. ``deduplicate_nodes``: identical nodes (same op, inputs and attributes) are merged, to a fixpoint;
   this is what merges duplicate rulebook nodes.
5. ``fold_static_subgraphs``: everything computable at export time (Shape/Gather/Concat chains on the
   static Densify output, ...) becomes a constant; ``sparsetrt`` nodes are never evaluated, and graph
   outputs stay computed by a node.
6. ``name_sparse_conv_parameters``: a SparseConv's weight and bias get readable names.
7. ``convert_to_fp16`` (only with ``fp16=True``): float32 constants, inputs and outputs become float16,
   after checking that every value fits float16's range.
8. Dead nodes are removed, the graph sorted, and shapes inferred afresh (strict, with our schemas).

Graph input and output names never change: when a removed node produced a graph output, the node
before it takes over that output tensor instead.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper, shape_inference
from onnx_graphsurgeon.logger import G_LOGGER

from .schema import DOMAIN, enum_values, lookup_attributes
from .schema.onnx_registration import register_onnx_schemas

# The standard ONNX activations a SparseConv fuses -> its `activation` code (the schema's enum).
_FUSED = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid"}
ACTIVATION_CODES = {onnx_op: enum_values("SparseConv", "activation")[name] for onnx_op, name in _FUSED.items()}
LEAKY_RELU_DEFAULT_ALPHA = 0.01  # ONNX's default when a LeakyRelu node has no alpha attribute
FP16_MAX = float(np.finfo(np.float16).max)  # 65504
# Folding a constant subgraph whose result is bigger than this (a ConstantOfShape/Expand/Tile blowing a
# small constant up) would bloat the file for no gain: TensorRT computes such tensors at build time anyway.
FOLD_SIZE_LIMIT_BYTES = 16 << 20
# Ops whose output is random: two of them with the same inputs are not the same value.
_NONDETERMINISTIC_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
_STANDARD_DOMAINS = {None, "", "ai.onnx"}


# ------------------------------------------------------------------------------------------ entry point
def optimize(
    proto: onnx.ModelProto,
    fold_batchnorm: bool = True,
    fuse_activations: bool = True,
    fp16: bool = False,
    fuse_residuals: bool = True,
    conv_plans: bool = True,
) -> onnx.ModelProto:
    """Optimize a model fresh from ``torch.onnx.export`` for TensorRT; see the module docstring.

    Returns a new ModelProto (``proto`` is not modified) with value_info inferred afresh in strict mode,
    ready for ``onnx.checker.check_model(full_check=True)``. Raises ValueError when ``fp16`` is set and
    a constant does not fit float16.
    """
    register_onnx_schemas()
    graph = _import(proto)
    remove_passthrough_nodes(graph)
    if fold_batchnorm:
        fold_batchnorms(graph)
    if fuse_activations:
        fuse_sparse_conv_activations(graph)
    if fuse_residuals:
        fuse_residual_adds(graph, fuse_activations=fuse_activations)
    if conv_plans:
        attach_conv_plans(graph)
    deduplicate_nodes(graph)
    fold_static_subgraphs(graph)
    # Folding turns shape computations into constants, which can make more nodes identical.
    deduplicate_nodes(graph)
    name_sparse_conv_parameters(graph)
    if fp16:
        convert_to_fp16(graph)
        # Tensor types changed; Casts that now cast float16 to float16 are found with fresh types.
        graph = _import(_export(graph, proto))
        remove_passthrough_nodes(graph)
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return _export(graph, proto)


# ------------------------------------------------------------------------------------------ import/export
def _import(proto: onnx.ModelProto) -> gs.Graph:
    """A graphsurgeon graph of ``proto`` with every tensor's type and shape inferred (the passes need the
    dtypes to spot no-op Casts and the static shapes to fold Shape nodes)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.graph.value_info[:]  # stale entries would override what inference finds
    model = shape_inference.infer_shapes(model, strict_mode=True)
    return gs.import_onnx(model)


def _export(graph: gs.Graph, original: onnx.ModelProto) -> onnx.ModelProto:
    """``graph`` as a ModelProto carrying ``original``'s metadata (IR version, opset imports including
    the sparsetrt domain, producer), value_info cleared and re-inferred in strict mode."""
    exported = gs.export_onnx(graph)
    model = onnx.ModelProto()
    model.CopyFrom(original)
    model.graph.CopyFrom(exported.graph)
    del model.functions[:]
    model.functions.extend(exported.functions)
    del model.graph.value_info[:]
    return shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


# ------------------------------------------------------------------------------------------ helpers
def _is_standard(node: gs.Node) -> bool:
    return node.domain in _STANDARD_DOMAINS


def _is_sparse(node: gs.Node, op: str | None = None) -> bool:
    """Whether ``node`` is one of our custom ops (``op`` of them, if given)."""
    return node.domain == DOMAIN and (op is None or node.op == op)


def _producer(tensor: gs.Tensor) -> gs.Node | None:
    return tensor.inputs[0] if len(tensor.inputs) == 1 else None


def _is_graph_output(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    return any(t is tensor for t in graph.outputs)


def _is_graph_input(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    return any(t is tensor for t in graph.inputs)


def _replace_uses(old: gs.Tensor, new: gs.Tensor) -> None:
    """Every node reading ``old`` reads ``new`` instead (graph outputs are the caller's business)."""
    for consumer in list(old.outputs):
        for i, tensor in enumerate(consumer.inputs):
            if tensor is old:
                consumer.inputs[i] = new


def _sole_consumer(graph: gs.Graph, tensor: gs.Tensor) -> gs.Node | None:
    """The one node reading ``tensor``, if exactly one does and the tensor is no graph output: only then
    may that node be folded into the tensor's producer without changing what anyone else sees."""
    if len(tensor.outputs) != 1 or _is_graph_output(graph, tensor):
        return None
    return tensor.outputs[0]


def _absorb_consumer(producer: gs.Node, consumer: gs.Node) -> None:
    """Remove ``consumer`` (whose only input from the graph is ``producer.outputs[0]``) and let
    ``producer`` write the consumer's output tensor, so downstream names (graph outputs included) stay."""
    out = consumer.outputs[0]
    consumer.inputs.clear()
    consumer.outputs.clear()
    producer.outputs[0] = out


def _unique_name(taken: set[str], wanted: str) -> str:
    name, i = wanted, 1
    while name in taken:
        name, i = f"{wanted}_{i}", i + 1
    taken.add(name)
    return name


def _onnx_dtype(tensor: gs.Tensor) -> int | None:
    """The TensorProto element type of ``tensor``, or None when unknown."""
    if tensor.dtype is None:
        return None
    if isinstance(tensor.dtype, int):  # graphsurgeon keeps types numpy lacks (bfloat16, ...) as ints
        return tensor.dtype
    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype))
    except (TypeError, KeyError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ pass 1
def _is_passthrough(node: gs.Node) -> bool:
    """Identity, or a Cast to the element type its input already has."""
    if not _is_standard(node) or len(node.inputs) != 1 or len(node.outputs) != 1:
        return False
    if node.op == "Identity":
        return True
    if node.op == "Cast":
        source = _onnx_dtype(node.inputs[0])
        return source is not None and source == int(node.attrs.get("to", -1))
    return False


def remove_passthrough_nodes(graph: gs.Graph) -> int:
    """Remove Identity nodes and no-op Casts; returns how many went.

    Consumers are rewired to the node's input. If the node writes a graph output, its input's producer
    takes over that output tensor instead, so the output keeps its name; a pass-through between a graph
    input (or a constant) and a graph output has no producer to do so and stays.
    """
    removed = 0
    for node in [n for n in graph.nodes if _is_passthrough(n)]:
        src, dst = node.inputs[0], node.outputs[0]
        if not _is_graph_output(graph, dst):
            _replace_uses(dst, src)
            node.inputs.clear()
            node.outputs.clear()
            removed += 1
            continue
        producer = _producer(src)
        if producer is None or _is_graph_output(graph, src) or _is_graph_input(graph, src):
            continue
        node.inputs.clear()
        node.outputs.clear()
        _replace_uses(src, dst)
        producer.outputs[producer.outputs.index(src)] = dst
        removed += 1
    graph.cleanup(remove_unused_graph_inputs=False)
    return removed


# ------------------------------------------------------------------------------------------ pass 2
def _constant_values(tensor: gs.Tensor) -> np.ndarray | None:
    return np.asarray(tensor.values) if isinstance(tensor, gs.Constant) else None


def _optional_input(node: gs.Node, i: int) -> gs.Tensor | None:
    """Input ``i`` of ``node``, or None when it is absent or left empty."""
    if len(node.inputs) <= i or node.inputs[i].is_empty():
        return None
    return node.inputs[i]


def fold_batchnorms(graph: gs.Graph) -> int:
    """Fold each inference-mode BatchNormalization into the SparseConv it reads; returns how many.

    With s = gamma / sqrt(var + eps): W'[o] = W[o] * s[o] and b' = (b - mean) * s + beta (b = 0 for a
    conv without bias), computed in float64 and stored in the weight's dtype; the conv gains or updates
    its bias input. Only when the BN is the conv output's sole reader (nothing else may see the
    un-normalized features), the conv has no fused activation yet (BN then comes after a nonlinearity),
    and weight, bias and every BN parameter are constants. New constants are created rather than
    updated in place, because torch may share one weight constant between convs.
    """
    taken = set(graph.tensors())
    folded = 0
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization" and _is_standard(n)]:
        x = bn.inputs[0]
        conv = _producer(x)
        if conv is None or not _is_sparse(conv, "SparseConv") or _sole_consumer(graph, x) is not bn:
            continue
        if int(conv.attrs.get("activation", 0)) != 0 or int(bn.attrs.get("training_mode", 0)) != 0:
            continue
        # Opsets before 14 list the running statistics as (unused) extra outputs; any reader blocks folding.
        if any(o.outputs or _is_graph_output(graph, o) for o in bn.outputs[1:]):
            continue
        params = [_constant_values(t) for t in bn.inputs[1:5]]
        weight = _constant_values(conv.inputs[2])
        bias_tensor = _optional_input(conv, 3)
        bias = None if bias_tensor is None else _constant_values(bias_tensor)
        if weight is None or any(p is None for p in params) or (bias_tensor is not None and bias is None):
            continue
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        if weight.ndim != 3 or any(p.size != weight.shape[0] for p in (gamma, beta, mean, var)):
            continue  # not the [C_out, K, C_in] weight and per-channel statistics the formula needs
        c_out = weight.shape[0]
        scale = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        b = np.zeros(c_out) if bias is None else bias.astype(np.float64).reshape(-1)
        new_weight = (weight.astype(np.float64) * scale[:, None, None]).astype(weight.dtype)
        new_bias = ((b - mean) * scale + beta).astype(weight.dtype)
        base = conv.name or bn.name or "SparseConv"
        conv.inputs[2] = gs.Constant(_unique_name(taken, f"{base}.weight"), new_weight)
        bias_const = gs.Constant(_unique_name(taken, f"{base}.bias"), new_bias)
        if len(conv.inputs) > 3:
            conv.inputs[3] = bias_const
        else:
            conv.inputs.append(bias_const)
        _absorb_consumer(conv, bn)
        folded += 1
    graph.cleanup(remove_unused_graph_inputs=False)
    return folded


# ------------------------------------------------------------------------------------------ pass 3
def fuse_sparse_conv_activations(graph: gs.Graph) -> int:
    """Fuse a Relu (activation 1), LeakyRelu (2, its alpha) or Sigmoid (3) into the SparseConv it reads;
    returns how many. Only when the activation is the conv output's sole reader and the conv has no
    activation yet; other activations (Tanh, Clip, ...) have no plugin counterpart and stay."""
    fused = 0
    for act in [n for n in graph.nodes if n.op in ACTIVATION_CODES and _is_standard(n)]:
        x = act.inputs[0]
        conv = _producer(x)
        if conv is None or not _is_sparse(conv, "SparseConv") or _sole_consumer(graph, x) is not act:
            continue
        if int(conv.attrs.get("activation", 0)) != 0:
            continue
        conv.attrs["activation"] = ACTIVATION_CODES[act.op]
        if act.op == "LeakyRelu":
            conv.attrs["alpha"] = float(act.attrs.get("alpha", LEAKY_RELU_DEFAULT_ALPHA))
        _absorb_consumer(conv, act)
        fused += 1
    graph.cleanup(remove_unused_graph_inputs=False)
    return fused


# ------------------------------------------------------------------------------------------ pass 3b
# Standard ops whose output rows are their first (non-constant) input's rows: a residual block's identity path.
_ROW_PRESERVING = {
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Identity",
    "Cast",
    "BatchNormalization",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Concat",
}


def _sites_of(tensor: gs.Tensor, depth: int = 0) -> str | None:
    """A name for the set of sites ``tensor``'s rows (or an index tensor's rows) are, or None when it cannot be told:
    the graph input or SparseRulebook ``out_indices`` the rows trace back to."""
    if depth > 64 or isinstance(tensor, gs.Constant):
        return None
    node = _producer(tensor)
    if node is None:
        return tensor.name  # a graph input: its own rows
    if _is_sparse(node):
        if node.op in ("SparseConv", "SparseMaxPool"):
            return _map_rows(node.inputs[1], depth + 1)
        if node.op == "SparseRulebook" and tensor is node.outputs[0]:
            return tensor.name
        return None
    if _is_standard(node) and node.op in _ROW_PRESERVING:
        first = next((t for t in node.inputs if not isinstance(t, gs.Constant)), None)
        return None if first is None else _sites_of(first, depth + 1)
    return None


def _map_rows(neighbors: gs.Tensor, depth: int) -> str | None:
    """The sites of the output rows of a layer reading the map (or ConvPlan) ``neighbors``."""
    node = _producer(neighbors)
    if node is None or not _is_sparse(node):
        return None
    if node.op == "ConvPlan":
        return _map_rows(node.inputs[0], depth + 1)
    if node.op == "SubmRulebook":
        return _sites_of(node.inputs[0], depth + 1)
    if node.op == "SparseRulebook":
        return node.outputs[0].name
    if node.op == "InverseRulebook":
        return _sites_of(node.inputs[1], depth + 1)
    return None


def _static_dim(tensor: gs.Tensor, axis: int) -> int | None:
    shape = tensor.shape
    if shape is None or len(shape) <= axis or not isinstance(shape[axis], int | np.integer):
        return None
    return int(shape[axis])


def fuse_residual_adds(graph: gs.Graph, fuse_activations: bool = True) -> int:
    """Fold ``act(SparseConv(x) + identity)`` into the conv: ``identity`` becomes its ``residual`` input and the
    activation its ``activation`` (only with ``fuse_activations``); returns how many Adds were fused.

    Only when the conv's output is read by the Add alone, the conv has no activation or residual yet (the Add
    comes after them otherwise), and ``identity`` is a per-site tensor on the conv's output sites (traced through
    rulebooks and row-preserving ops to the same site tensor) with C_out channels: an Add that would broadcast is
    never fused. The activation goes along when it is the Add's sole reader. A conv without bias gets a zero bias
    (the plugin tells its inputs apart by count). The kernels add bias and residual in float32 and round once.
    """
    taken = set(graph.tensors())
    fused = 0
    for add in [n for n in graph.nodes if n.op == "Add" and _is_standard(n) and len(n.inputs) == 2]:
        for i in (0, 1):
            x, identity = add.inputs[i], add.inputs[1 - i]
            conv = _producer(x)
            if conv is None or not _is_sparse(conv, "SparseConv") or _sole_consumer(graph, x) is not add:
                continue
            if int(conv.attrs.get("activation", 0)) != 0 or len(conv.inputs) > 4 or identity is x:
                continue
            if isinstance(identity, gs.Constant) or identity.shape is None or len(identity.shape) != 2:
                continue
            weight = conv.inputs[2]
            c_out = _static_dim(weight, 0)
            if c_out is None or _static_dim(identity, 1) != c_out or _static_dim(identity, 0) == 1:
                continue
            sites = _sites_of(x)
            if sites is None or _sites_of(identity) != sites:
                continue
            bias = _optional_input(conv, 3)
            if bias is None:
                if not isinstance(weight, gs.Constant):
                    continue
                zeros = np.zeros(c_out, dtype=np.asarray(weight.values).dtype)
                bias = gs.Constant(_unique_name(taken, f"{conv.name or 'SparseConv'}.bias"), zeros)
                if len(conv.inputs) > 3:
                    conv.inputs[3] = bias
                else:
                    conv.inputs.append(bias)
            conv.inputs.append(identity)
            _absorb_consumer(conv, add)
            act = _sole_consumer(graph, conv.outputs[0])
            if fuse_activations and act is not None and act.op in ACTIVATION_CODES and _is_standard(act):
                conv.attrs["activation"] = ACTIVATION_CODES[act.op]
                if act.op == "LeakyRelu":
                    conv.attrs["alpha"] = float(act.attrs.get("alpha", LEAKY_RELU_DEFAULT_ALPHA))
                _absorb_consumer(conv, act)
            fused += 1
            break
    graph.cleanup(remove_unused_graph_inputs=False)
    return fused


# ------------------------------------------------------------------------------------------ pass 3c
def attach_conv_plans(graph: gs.Graph) -> int:
    """Give each SparseConv a ConvPlan of its map (input 1) instead of the map; returns how many convs now read
    a plan. Skipped: kernel volume 1 (nothing to skip) or above the plan's limit, and unknown kernel volumes.
    Convs sharing a map get identical ConvPlan nodes, which ``deduplicate_nodes`` merges into one."""
    limit = 1024  # ConvPlan's kernel-volume limit (schema; plugins: kConvPlanMaxOffsets)
    taken = set(graph.tensors())
    attached = 0
    for conv in [n for n in graph.nodes if _is_sparse(n, "SparseConv")]:
        neighbors = conv.inputs[1]
        kernel_volume = _static_dim(conv.inputs[2], 1)
        if kernel_volume is None or not 2 <= kernel_volume <= limit:
            continue
        producer = _producer(neighbors)
        if producer is not None and _is_sparse(producer, "ConvPlan"):
            continue
        if neighbors.shape is not None and len(neighbors.shape) == 2 and _static_dim(neighbors, 0) != kernel_volume:
            continue  # not a plain map of this kernel (already something else): leave it
        rows = kernel_volume + 1 + (kernel_volume + 31) // 32
        m = neighbors.shape[1] if neighbors.shape is not None and len(neighbors.shape) == 2 else None
        plan = gs.Variable(_unique_name(taken, f"{neighbors.name}_plan"), np.int32, [rows, m])
        name = _unique_name(taken, f"{neighbors.name}_ConvPlan")
        graph.nodes.append(
            gs.Node("ConvPlan", name, dict(lookup_attributes("ConvPlan")), [neighbors], [plan], domain=DOMAIN)
        )
        conv.inputs[1] = plan
        attached += 1
    graph.toposort()
    return attached


# ------------------------------------------------------------------------------------------ pass 4
def _tensor_key(tensor: gs.Tensor) -> tuple:
    """Identity of a node input: variables by name, constants by value (two initializers holding the
    same numbers are the same input)."""
    # Constants first: the value of a Constant node's attribute is a nameless gs.Constant, which
    # is_empty() would take for an omitted optional input.
    if isinstance(tensor, gs.Constant):
        # dtype and shape are part of a constant's identity: a 0-D `2` and a 1-element `[2]` hold the same bytes
        # but are different inputs (ReduceSum's axes must be a vector). Shape from the array itself:
        # np.ascontiguousarray would turn a 0-D array into a 1-D one.
        values = np.asarray(tensor.values)
        digest = hashlib.sha1(np.ascontiguousarray(values).tobytes()).hexdigest()
        return ("constant", values.dtype.str, tuple(values.shape), digest)
    if tensor.is_empty():
        return ("empty",)
    return ("variable", tensor.name)


def _attribute_key(value: Any) -> Any:
    if isinstance(value, gs.Tensor):
        return _tensor_key(value)
    if isinstance(value, list | tuple):
        return tuple(_attribute_key(v) for v in value)
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return (type(value).__name__, value)


def _node_key(node: gs.Node) -> tuple | None:
    """What makes two nodes compute the same outputs, or None for nodes never merged (random ops, nodes
    with subgraphs, nodes with no outputs)."""
    if node.op in _NONDETERMINISTIC_OPS or not node.outputs:
        return None
    if any(isinstance(v, gs.Graph) for v in node.attrs.values()):
        return None
    return (
        node.domain or "",
        node.op,
        tuple(_tensor_key(t) for t in node.inputs),
        tuple(sorted((k, _attribute_key(v)) for k, v in node.attrs.items())),
        len(node.outputs),
    )


def deduplicate_nodes(graph: gs.Graph) -> int:
    """Merge identical nodes (same domain, op, inputs and attributes), to a fixpoint; returns how many
    were removed.

    Nodes are visited in topological order and consumers rewired at once, so nodes made identical by an
    earlier merge (two InverseRulebooks over two merged SparseRulebooks, ...) merge in the same sweep;
    the loop only repeats to be sure. The node kept is the first, unless a later one writes graph
    outputs: that one is kept so output names stay. Two nodes that both write graph outputs stay apart.
    """
    total = 0
    while True:
        graph.toposort()
        seen: dict[tuple, gs.Node] = {}
        merged = 0
        for node in list(graph.nodes):
            key = _node_key(node)
            if key is None:
                continue
            kept = seen.get(key)
            if kept is None:
                seen[key] = node
                continue
            if any(_is_graph_output(graph, t) for t in node.outputs):
                if any(_is_graph_output(graph, t) for t in kept.outputs):
                    continue
                kept, node = node, kept
                seen[key] = kept
            for old, new in zip(node.outputs, kept.outputs, strict=True):
                _replace_uses(old, new)
            node.inputs.clear()
            node.outputs.clear()
            merged += 1
        graph.cleanup(remove_unused_graph_inputs=False)
        total += merged
        if not merged:
            return total


# ------------------------------------------------------------------------------------------ pass 5
def fold_static_subgraphs(graph: gs.Graph) -> None:
    """Constant-fold what is static: Constant nodes, Shape of statically shaped tensors (the Densify
    output's shape is known from its attributes) and everything computed from constants only.

    graphsurgeon evaluates foldable subgraphs with onnxruntime, which cannot run our ops: every
    ``sparsetrt`` node is excluded (and with it whatever reads it). ``error_ok`` with recursive
    partitioning keeps one subgraph onnxruntime cannot evaluate from stopping the rest being folded
    ("basic" partitioning retries a failed partition unchanged in graphsurgeon 0.6 and recurses until
    RecursionError). Such failures cost only a missed fold, so graphsurgeon's warnings about them are
    silenced. Graph outputs stay written by a node: one that is an initializer passes the ONNX checker,
    but TensorRT's parser takes initializers for weights, which it cannot mark as network outputs. So
    nodes writing graph outputs are not evaluated, and a graph output that shape folding (which
    graphsurgeon does without consulting ``should_exclude_node``) turned into a constant gets a
    Constant node.
    """
    outputs = {id(t) for t in graph.outputs}

    def keep(node: gs.Node) -> bool:
        return node.domain == DOMAIN or any(id(t) in outputs for t in node.outputs)

    graph.toposort()
    with G_LOGGER.suppress(G_LOGGER.ERROR):
        graph.fold_constants(
            fold_shapes=True,
            partitioning="recursive",
            error_ok=True,
            size_threshold=FOLD_SIZE_LIMIT_BYTES,
            should_exclude_node=keep,
        )
    for i, tensor in enumerate(graph.outputs):
        if isinstance(tensor, gs.Constant):
            name = tensor.name
            tensor.name = _unique_name(set(graph.tensors()), f"{name}_folded")  # other readers keep it
            output = gs.Variable(name, tensor.dtype, tensor.shape)
            graph.nodes.append(gs.Node("Constant", f"{name}_Constant", {"value": tensor}, [], [output]))
            graph.outputs[i] = output
    graph.cleanup(remove_unused_graph_inputs=False)


# ------------------------------------------------------------------------------------------ pass 6
def name_sparse_conv_parameters(graph: gs.Graph) -> int:
    """Name each SparseConv's weight and bias constants ``f"{conv.name}.weight"`` / ``".bias"`` (torch
    calls them ``sparsetrt::SparseConv_350``); returns how many were renamed. A constant read by other
    nodes too keeps its name, and so does one whose wanted name is taken."""
    taken = set(graph.tensors())
    renamed = 0
    for conv in [n for n in graph.nodes if _is_sparse(n, "SparseConv") and n.name]:
        for slot, suffix in ((2, "weight"), (3, "bias")):
            tensor = _optional_input(conv, slot)
            wanted = f"{conv.name}.{suffix}"
            if not isinstance(tensor, gs.Constant) or tensor.name == wanted or wanted in taken:
                continue
            if len(tensor.outputs) != 1 or _is_graph_output(graph, tensor):
                continue
            taken.discard(tensor.name)
            tensor.name = wanted
            taken.add(wanted)
            renamed += 1
    return renamed


# ------------------------------------------------------------------------------------------ pass 7
def _float32_constants(graph: gs.Graph) -> list[gs.Constant]:
    """Every float32 constant: initializers, and the values of Constant nodes folding left behind and of
    ConstantOfShape nodes (whose output type is their value's)."""
    found: dict[int, gs.Constant] = {}
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Constant) and _onnx_dtype(tensor) == TensorProto.FLOAT:
            found[id(tensor)] = tensor
    for node in graph.nodes:
        value = node.attrs.get("value") if node.op in ("Constant", "ConstantOfShape") else None
        if isinstance(value, gs.Constant) and _onnx_dtype(value) == TensorProto.FLOAT:
            found[id(value)] = value
    return list(found.values())


def check_fp16_range(constants: Iterable[gs.Constant]) -> None:
    """Raise ValueError if a finite value of any constant exceeds float16's range (it would become
    inf); warn about constants with nonzero values that float16 rounds to 0."""
    overflow, underflow = [], []
    for const in constants:
        values = np.asarray(const.values, dtype=np.float32)
        finite = np.abs(values[np.isfinite(values)])
        if finite.size and float(finite.max()) > FP16_MAX:
            overflow.append(f"'{const.name}' (max |value| {float(finite.max()):.6g})")
        with np.errstate(over="ignore"):  # overflow is reported above, by name
            lost = int(np.count_nonzero((values != 0) & (values.astype(np.float16) == 0)))
        if lost:
            underflow.append(f"'{const.name}' ({lost} of {values.size})")
    if overflow:
        raise ValueError(
            f"fp16 export: {', '.join(overflow)} exceed float16's largest finite value {FP16_MAX:g} and "
            "would become inf; export with fp16=False, or rescale the weights"
        )
    if underflow:
        warnings.warn(
            f"fp16 export: nonzero values round to 0 in float16 in {', '.join(underflow)}",
            UserWarning,
            stacklevel=3,
        )


def _float32_only_inputs(graph: gs.Graph) -> list[tuple[gs.Node, int]]:
    """(node, input index) of the standard-op inputs whose schema allows float32 but not float16 (Resize's
    ``scales``, ...): those must stay float32 after the conversion."""
    opset = graph.opset
    slots = []
    for node in graph.nodes:
        if not _is_standard(node):
            continue
        try:
            schema = onnx.defs.get_schema(node.op, opset, "")
        except onnx.defs.SchemaError:
            continue
        constraints = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
        for i in range(len(node.inputs)):
            if not schema.inputs or node.inputs[i].is_empty():
                continue
            formal = schema.inputs[min(i, len(schema.inputs) - 1)]  # a variadic last input repeats
            allowed = constraints.get(formal.type_str, {formal.type_str})
            if "tensor(float)" in allowed and "tensor(float16)" not in allowed:
                slots.append((node, i))
    return slots


def convert_to_fp16(graph: gs.Graph) -> None:
    """Store the model in float16: float32 constants (initializers and Constant nodes), float graph
    inputs and outputs, and the float32 targets of Cast / ConstantOfShape become float16; int32 and
    int64 tensors stay. Every float tensor then is float16, so standard ops (Conv, Add, Concat, an
    unfolded BatchNormalization, ...) stay type-consistent. Inputs whose schema only takes float32 keep
    their constant as it is (or get a float32 copy of one also read as float16), or get a Cast to float32.
    Raises ValueError first (see ``check_fp16_range``) if a constant does not fit float16.
    """
    fp32_slots = _float32_only_inputs(graph)
    slot_ids = {(id(node), i) for node, i in fp32_slots}

    def read_as_float32_only(const: gs.Constant) -> bool:
        reads = [(id(n), i) for n in const.outputs for i, t in enumerate(n.inputs) if t is const]
        return bool(reads) and all(r in slot_ids for r in reads)

    constants = [c for c in _float32_constants(graph) if not read_as_float32_only(c)]
    check_fp16_range(constants)
    originals = {id(c): np.asarray(c.values) for c in constants}
    # Variables float32 now are float16 once converted (graph inputs are retyped just below).
    was_float32 = {
        id(t) for t in graph.tensors().values() if isinstance(t, gs.Variable) and _onnx_dtype(t) == TensorProto.FLOAT
    }
    for const in constants:
        const.values = np.asarray(const.values).astype(np.float16)
    for tensor in (*graph.inputs, *graph.outputs):
        if _onnx_dtype(tensor) == TensorProto.FLOAT:
            tensor.dtype = np.float16
    for node in graph.nodes:
        if not _is_standard(node):
            continue
        if node.op == "Cast" and int(node.attrs.get("to", -1)) == TensorProto.FLOAT:
            node.attrs["to"] = TensorProto.FLOAT16
        elif node.op == "ConstantOfShape" and node.attrs.get("value") is None:
            # No value means float32 zeros (ONNX's default): torch.export writes `x.new_zeros(...)` that way.
            node.attrs["value"] = gs.Constant(f"{node.name}_value", np.zeros(1, np.float16))
    taken = set(graph.tensors())
    for node, i in fp32_slots:
        tensor = node.inputs[i]
        if isinstance(tensor, gs.Constant) and id(tensor) in originals:  # also read as float16 elsewhere
            node.inputs[i] = gs.Constant(_unique_name(taken, f"{tensor.name}_fp32"), originals[id(tensor)])
        elif id(tensor) in was_float32:
            cast_out = gs.Variable(_unique_name(taken, f"{tensor.name}_fp32"), np.float32, tensor.shape)
            graph.nodes.append(
                gs.Node("Cast", f"{node.name}/CastToFloat32_{i}", {"to": TensorProto.FLOAT}, [tensor], [cast_out])
            )
            node.inputs[i] = cast_out
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
