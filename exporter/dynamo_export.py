"""The dynamo path: ``torch.export`` traces the model, ``torch.onnx.export(dynamo=True)`` translates the
ExportedProgram, our custom translation table (``onnx_translation``) emitting the ``sparsetrt`` nodes.

1. The model runs once, for real, on the example (its sparse layers calling our custom ops): errors
   that need real sizes, such as a strided layer creating more sites than ``max_sites``, surface here as
   they do in the TorchScript path's trace.
2. ``torch.export.export(strict=False)`` traces it with fake tensors: the voxel count is a symbolic
   dimension (one ``Dim`` per axis name of ``dynamic_axes``), the count each strided layer creates an
   unbacked symbolic int from the custom op's fake implementation, Python ints (a batch size) constants.
3. The ExportedProgram becomes ONNX; dynamic axes get the names of ``dynamic_axes`` and nodes the
   module-path names the TorchScript exporter gives them (``/conv2/conv2.0/conv2.0.0/SparseRulebook``),
   so both paths' files read alike and our graph passes name weights after them (``tidy_nodes``).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import onnx
import torch
from torch import nn

from .graph_passes import FOLD_SIZE_LIMIT_BYTES
from .onnx_translation import dynamo_translation_table
from .schema import DOMAIN, op
from .schema.onnx_registration import register_onnx_schemas

# The smallest opset torch's dynamo exporter translates to directly; lower ones go through ONNX's
# version converter, which does not know our domain.
MIN_DYNAMO_OPSET = 18
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
# torch's exporter logs these at WARNING level on every export; they concern ops we never use.
_QUIET_LOGGERS = ("torch.onnx._internal.exporter._registration",)


class DynamoExportError(RuntimeError):
    """torch.export failed on the model; the cause is torch's error."""


TRACE_HINT = (
    "torch.export traces the forward with a symbolic voxel count (and symbolic site counts after each strided "
    "layer): Python code that needs their values (int(x.shape[0]), a branch on an empty tensor, ...) cannot be "
    "traced. Change that code as torch's message (the cause, above) suggests, or export with dynamo=False "
    "(sparsetrt export --no-dynamo): torch's deprecated TorchScript exporter records such values as constants, "
    "the example's, so check that the file computes what you want on other inputs."
)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _axes(value: Mapping[int, str] | Sequence[int], input_name: str) -> dict[int, str]:
    """``dynamic_axes``' value for one input as {axis: name} (a list of axes gets generated names)."""
    if isinstance(value, Mapping):
        return {int(axis): str(name) for axis, name in value.items()}
    return {int(axis): f"{input_name}_dim_{axis}" for axis in value}


def dynamic_shapes(args: tuple[Any, ...], input_names: list[str], dynamic_axes: Mapping[str, Any]) -> tuple[Any, ...]:
    """``torch.export``'s ``dynamic_shapes`` for ``args`` from ``dynamic_axes`` (axes of one name share one
    Dim). Entries for outputs are ignored: output shapes follow from the inputs'."""
    dims: dict[str, Any] = {}
    shapes: list[Any] = []
    names = iter(input_names)
    for arg in args:
        if not isinstance(arg, torch.Tensor):
            shapes.append(None)
            continue
        name = next(names, None)
        axes = _axes(dynamic_axes[name], name) if name in dynamic_axes else {}
        spec = {}
        for axis, axis_name in axes.items():
            if axis_name not in dims:
                identifier = re.sub(r"\W", "_", axis_name)
                identifier = f"dim_{identifier}" if not identifier.isidentifier() else identifier
                # min=1: no voxel count of 0 while tracing (the example has voxels); the file takes any.
                dims[axis_name] = torch.export.Dim(identifier, min=1)
            spec[axis] = dims[axis_name]
        shapes.append(spec or None)
    return tuple(shapes)


def fit_signature(model: nn.Module, shapes: tuple[Any, ...]) -> tuple[Any, ...]:
    """``shapes`` (one entry per positional argument) as torch.export binds them to ``model.forward``: the
    arguments a ``*args`` parameter collects share one entry, a tuple (the OpenPCDet adapter's
    ``forward(*tensors)``)."""
    parameters = list(inspect.signature(model.forward).parameters.values())
    for i, parameter in enumerate(parameters):
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return (*shapes[:i], tuple(shapes[i:]))
    return shapes


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # torch's own pytree code, run by torch.export and the exporter, not the user's.
            warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _scoped_name(scopes: list[str], op_type: str) -> str:
    """TorchScript's node name for a node created in module ``a.b``: ``/a/a.b/OpType``. The exporter's
    name scopes are the root module (""), the path of each module down to it, and the FX node."""
    return "/" + "/".join([*(s for s in scopes[1:-1] if s), op_type])


def tidy_nodes(proto: onnx.ModelProto) -> None:
    """Make the nodes read as the TorchScript path's do:

    - every node is named after the module that created it, ``/a/a.b/OpType``, with ``_1``, ``_2``, ...
      suffixes where several share a name;
    - a ``sparsetrt`` node lists its attributes in the schema's order (onnxscript sorts them by name);
    - the exporter's per-node debug metadata (stack traces, FX node text) is dropped.
    """
    taken: dict[str, int] = {}
    for node in proto.graph.node:
        if node.domain == DOMAIN:
            order = {a.name: i for i, a in enumerate(op(node.op_type).attributes)}
            attributes = sorted(node.attribute, key=lambda a: order.get(a.name, len(order)))
            del node.attribute[:]
            node.attribute.extend(attributes)
        props = {p.key: p.value for p in node.metadata_props}
        if _NAME_SCOPES in props:
            try:
                scopes = ast.literal_eval(props[_NAME_SCOPES])
            except (ValueError, SyntaxError):
                scopes = None
            if isinstance(scopes, list):
                base = _scoped_name([str(s) for s in scopes], node.op_type)
                count = taken.get(base, 0)
                taken[base] = count + 1
                node.name = base if count == 0 else f"{base}_{count}"
        del node.metadata_props[:]


def _restore_io_names(graph: Any, input_names: list[str], output_names: Sequence[str] | None) -> None:
    """Give graph inputs (and outputs, where named) the names asked for. ONNX IR's output fix, which
    puts an Identity between a graph input that is also an output (a submanifold model returning its
    input coordinates), gives the output the shared name and renames the input ``<name>_orig``."""
    wanted = list(zip(graph.inputs, input_names, strict=False))
    wanted += list(zip(graph.outputs, output_names or [], strict=False))
    values = {v.name: v for v in (*graph.inputs, *graph.outputs)}
    for node in graph:
        values.update({v.name: v for v in node.outputs})
    taken = set(values)
    for value, name in wanted:
        if value.name == name:
            continue
        holder = values.get(name)
        if holder is not None and holder is not value:
            suffix = 1
            while f"{name}_{suffix}" in taken:
                suffix += 1
            holder.name = f"{name}_{suffix}"
            taken.add(holder.name)
            values[holder.name] = holder
        value.name = name
        values[name] = value
        taken.add(name)


def _name_axes(proto: onnx.ModelProto, input_names: list[str], dynamic_axes: Mapping[str, Any]) -> None:
    """Give each dynamic input axis its ``dynamic_axes`` name in place of torch's symbol (``s20``), in the
    graph's inputs and outputs (our graph passes infer every other shape afresh)."""
    renames: dict[str, str] = {}
    for value in proto.graph.input:
        if value.name in dynamic_axes:
            dims = value.type.tensor_type.shape.dim
            for axis, axis_name in _axes(dynamic_axes[value.name], value.name).items():
                if axis < len(dims) and dims[axis].dim_param:
                    renames[dims[axis].dim_param] = axis_name
    for value in (*proto.graph.input, *proto.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]


def export_dynamo(
    model: nn.Module,
    args: tuple[Any, ...],
    input_names: list[str],
    output_names: Sequence[str] | None,
    dynamic_axes: Mapping[str, Any],
    opset_version: int,
) -> onnx.ModelProto:
    """The raw ModelProto of the model (before our graph passes); call inside ``ops.exporting()``."""
    if opset_version < MIN_DYNAMO_OPSET:
        raise ValueError(
            f"opset_version {opset_version}: the dynamo exporter writes opset {MIN_DYNAMO_OPSET} or later; "
            "pass a later opset, or dynamo=False for the TorchScript exporter"
        )
    import onnxscript  # only the dynamo path needs it (imported here: it takes a while)

    register_onnx_schemas()  # onnxscript finds our ops' signatures among ONNX's schemas
    model(*args)  # the real run (see the module docstring)
    shapes = fit_signature(model, dynamic_shapes(args, input_names, dynamic_axes))
    with _quiet():
        try:
            program = torch.export.export(model, args, dynamic_shapes=shapes, strict=False)
        except Exception as e:  # torch's errors are long; say what failed and what to try first
            raise DynamoExportError(f"torch.export could not trace the model: {_first_line(e)}\n{TRACE_HINT}") from e
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            input_names=input_names,
            output_names=list(output_names) if output_names else None,
            opset_version=opset_version,
            custom_translation_table=dynamo_translation_table(),
            optimize=False,  # torch's default limits leave weights over 8192 elements unfolded: see below
            verbose=False,
        )
        # Fold what is constant (each conv weight's reshape to [C_out, K, C_in] above all: batch norm
        # folding needs the weight as a constant), as far as our graph passes fold.
        limit = FOLD_SIZE_LIMIT_BYTES // 4
        onnxscript.optimizer.optimize_ir(onnx_program.model, input_size_limit=limit, output_size_limit=limit)
    _restore_io_names(onnx_program.model.graph, input_names, output_names)
    proto = onnx_program.model_proto
    _name_axes(proto, input_names, dynamic_axes)
    tidy_nodes(proto)
    return proto
