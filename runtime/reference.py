"""ReferenceSession: execute an exported ONNX file on a CPU, like an onnxruntime InferenceSession.

Standard ops run in onnxruntime: every maximal run of them (in topological order) becomes one
subgraph with its own session, built on first use. ``sparsetrt`` ops run on the CPU reference backend
(each op's ``reference`` in ``runtime/ops/<op>.py``). Data-dependent counts are just the sizes of the arrays
that flow; fp16 files run as they are (our ops accumulate in fp32, as the plugins do).

It refuses what the plugins refuse, with the same messages: every sparsetrt node's attributes against the
op schema's rules and its input shapes against the schema's symbolic shapes (statically when the session
is made, from shapes inferred afresh, and again on the actual shapes of every run), so a file that runs
here builds into an engine and one the engine build rejects is rejected here. ``validate=True`` (the
default) also checks each feed as the CLI does (``spec.validate_inputs``: types, shapes, row counts,
coordinates inside the grid, no site twice). Every refusal is a ``sparsetrt.errors.SparsetrtError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper

from sparsetrt.errors import InputError, ModelError, OutOfMemoryError, SparsetrtError
from sparsetrt.exporter.schema import DOMAIN, check_attributes, check_input_shapes, node_version, op
from sparsetrt.exporter.schema.onnx_registration import register_onnx_schemas

from .ops import ReferenceCall, op_module
from .ops.common import Pairs
from .spec import ModelSpec, validate_inputs


@dataclass
class _Segment:
    """A maximal run of standard nodes, executed by one onnxruntime session."""

    nodes: list[onnx.NodeProto]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sessions: dict[tuple, ort.InferenceSession] = field(default_factory=dict)


class ReferenceSession:
    """``ReferenceSession(path_or_model).run(output_names, input_feed)`` -> list of numpy arrays.

    ``validate=False`` skips the checks of each feed beyond names, types and ranks (the coordinates' sort
    costs O(N log N)); use it only for feeds known to be valid. The model's own checks always run.
    """

    def __init__(self, model: str | os.PathLike | onnx.ModelProto, *, validate: bool = True) -> None:
        register_onnx_schemas()
        self.model = _load(model)
        self.validate = validate
        graph = self.model.graph
        self._initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self._inputs = {i.name: i for i in graph.input if i.name not in self._initializers}
        self._outputs = [o.name for o in graph.output]
        self._opsets = [o for o in self.model.opset_import if o.domain not in (DOMAIN,)]
        self._check_opsets()
        self._steps: list[_Segment | onnx.NodeProto] = []
        self._names: dict[int, str] = {}  # id(node) -> the name messages use
        self._plan(graph)
        self._check_static_shapes()
        self.spec = ModelSpec.from_onnx(self.model)

    # ------------------------------------------------------------------------------------ planning
    def _check_opsets(self) -> None:
        newest = onnx.defs.onnx_opset_version()
        for o in self._opsets:
            if o.domain in ("", "ai.onnx") and o.version > newest:
                raise ModelError(
                    f"the file imports ONNX opset {o.version}, but this onnx ({onnx.__version__}) knows opsets up to "
                    f"{newest}: re-export with an older opset (`sparsetrt export` writes one this runtime runs) or "
                    "upgrade onnx and onnxruntime"
                )

    def _plan(self, graph: onnx.GraphProto) -> None:
        run: list[onnx.NodeProto] = []
        for index, node in enumerate(graph.node):
            if node.domain == DOMAIN:
                self._names[id(node)] = node.name or f"#{index} (unnamed)"
                self._check_custom(node)
                if run:
                    self._steps.append(_Segment(run))
                    run = []
                self._steps.append(node)
            elif node.domain in ("", "ai.onnx"):
                run.append(node)
            else:
                raise ModelError(
                    f"node {node.name or node.op_type} is in domain {node.domain!r}, which the "
                    "reference runtime does not know (only standard ONNX and 'sparsetrt')"
                )
        if run:
            self._steps.append(_Segment(run))
        # What each segment must take in and hand on: consumed-but-not-produced, and produced-and-needed-later.
        needed_later: set[str] = set(self._outputs)
        for step in reversed(self._steps):
            nodes = step.nodes if isinstance(step, _Segment) else [step]
            produced = {o for n in nodes for o in n.output if o}
            consumed = {i for n in nodes for i in n.input if i}
            if isinstance(step, _Segment):
                step.outputs = sorted(produced & needed_later)
                step.inputs = sorted(i for i in consumed - produced if i not in self._initializers)
            needed_later = (needed_later - produced) | consumed

    def _check_custom(self, node: onnx.NodeProto) -> None:
        name = self._names[id(node)]
        try:
            definition = op(node.op_type)
        except ModelError as e:
            raise ModelError(f"node '{name}': {e}") from None
        pairs = [(a.name, helper.get_attribute_value(a)) for a in node.attribute]
        check_attributes(node.op_type, [(k, list(v) if isinstance(v, list | tuple) else v) for k, v in pairs], name)
        version = node_version(node.op_type, dict(pairs))
        inputs = definition.inputs_of(version)  # an older op version has fewer inputs
        required = sum(not p.optional for p in inputs)
        if not required <= len(node.input) <= len(inputs) or not all(node.input[i] for i in range(required)):
            raise ModelError(
                f"sparsetrt::{node.op_type} node '{name}' (version {version}) has inputs {list(node.input)}; the "
                f"schema's are {[p.name for p in inputs]} ({required} required)"
            )
        if len(node.output) != len(definition.outputs):
            raise ModelError(
                f"sparsetrt::{node.op_type} node '{name}' has {len(node.output)} outputs; the schema's are "
                f"{[p.name for p in definition.outputs]}"
            )

    def _check_static_shapes(self) -> None:
        """The engine build's shape checks, before anything runs: input dims as shape inference knows them
        (-1 where they depend on the data), e.g. a conv weight's K against its rulebook's kernel volume."""
        shapes = _static_shapes(self.model)
        for step in self._steps:
            if isinstance(step, onnx.NodeProto):
                attrs = _attributes(step)
                dims = [shapes.get(i) if i else None for i in step.input]
                check_input_shapes(step.op_type, self._names[id(step)], attrs, dims)

    # ----------------------------------------------------------------------------------- execution
    def get_inputs(self) -> list[onnx.ValueInfoProto]:
        return list(self._inputs.values())

    def get_outputs(self) -> list[onnx.ValueInfoProto]:
        return list(self.model.graph.output)

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[np.ndarray]:
        names = self._outputs if output_names is None else list(output_names)
        missing = [n for n in names if n not in self._outputs]
        if missing:
            raise InputError(f"unknown output names {missing}; the model's outputs are {self._outputs}")
        if not isinstance(input_feed, dict):
            raise InputError(f"input_feed must be a dict of input name -> array, got {type(input_feed).__name__}")
        if self.validate:
            input_feed = validate_inputs(self.spec, input_feed)
        values: dict[str, np.ndarray] = dict(self._initializers)
        values.update(self._check_feed(input_feed))
        state = self._new_run_state()
        for step in self._steps:
            if isinstance(step, _Segment):
                self._run_segment(step, values)
            else:
                self._run_custom(step, values, state)
        self._finish_run(state)
        return [values[n] for n in names]

    def _check_feed(self, feed: dict[str, Any]) -> dict[str, np.ndarray]:
        unknown = set(feed) - set(self._inputs)
        missing = set(self._inputs) - set(feed)
        if unknown or missing:
            raise InputError(
                f"input_feed has unknown names {sorted(unknown)} and lacks {sorted(missing)}; "
                f"the model's inputs are {sorted(self._inputs)}"
            )
        arrays = {}
        for name, value in feed.items():
            try:
                array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            except Exception as e:  # any conversion failure is a problem with the caller's value
                raise InputError(f"input {name!r} is a {type(value).__name__}, not an array: {e}") from e
            info = self._inputs[name].type.tensor_type
            expected = helper.tensor_dtype_to_np_dtype(info.elem_type)
            if array.dtype != expected:
                raise InputError(f"input {name!r} is {array.dtype}, the model expects {expected}: convert it first")
            dims = [d.dim_value if d.HasField("dim_value") else None for d in info.shape.dim]
            if array.ndim != len(dims) or any(
                d is not None and d != s for d, s in zip(dims, array.shape, strict=False)
            ):
                raise InputError(
                    f"input {name!r} has shape {list(array.shape)}, the model expects "
                    f"{[d if d is not None else '?' for d in dims]}"
                )
            arrays[name] = array
        return arrays

    def _run_segment(self, seg: _Segment, values: dict[str, np.ndarray]) -> None:
        feed = {name: values[name] for name in seg.inputs}
        key = tuple((n, a.dtype.str, a.ndim) for n, a in feed.items())
        session = seg.sessions.get(key)
        if session is None:
            try:
                session = self._session(seg, feed)
            except Exception as e:  # onnxruntime's Fail, InvalidGraph, NotImplemented...
                raise ModelError(
                    f"onnxruntime {ort.__version__} cannot load the standard ONNX nodes {_span(seg)} of this file: "
                    f"{_first_line(e)}"
                ) from e
            seg.sessions[key] = session
        try:
            results = session.run(seg.outputs, feed)
        except Exception as e:  # shapes that do not fit a standard op, and the like
            raise ModelError(
                f"onnxruntime failed running the standard ONNX nodes {_span(seg)}: {_first_line(e)}"
            ) from e
        for name, value in zip(seg.outputs, results, strict=True):
            values[name] = value

    def _session(self, seg: _Segment, feed: dict[str, np.ndarray]) -> ort.InferenceSession:
        used = {i for n in seg.nodes for i in n.input}
        inits = [numpy_helper.from_array(v, k) for k, v in self._initializers.items() if k in used]
        inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), [None] * a.ndim)
            for n, a in feed.items()
        ]
        outputs = [helper.make_empty_tensor_value_info(n) for n in seg.outputs]
        graph = helper.make_graph(seg.nodes, "segment", inputs, outputs, inits)
        sub = helper.make_model(graph, opset_imports=self._opsets, ir_version=self.model.ir_version)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # onnxruntime's workers spin after each run by default, starving the torch kernels that run
        # between segments of the CPU: let them sleep.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return ort.InferenceSession(sub.SerializeToString(), options, providers=["CPUExecutionProvider"])

    # What sparsetrt ops keep across one run (here: per-offset pair lists, shared by the layers reading one
    # rulebook); KernelSession keeps device copies instead.
    def _new_run_state(self) -> Any:
        return {}

    def _finish_run(self, state: Any) -> None:
        pass

    def _run_custom(self, node: onnx.NodeProto, values: dict[str, np.ndarray], pairs_cache: dict[str, Pairs]) -> None:
        attrs = _attributes(node)
        kind, name = node.op_type, self._names[id(node)]
        where = f"sparsetrt::{kind} node '{name}'"
        # The engine's checks on the actual shapes, then the op's kernel (runtime/ops/<op>.py), which makes the
        # data checks only this runtime can make.
        check_input_shapes(kind, name, attrs, [values[n].shape if n else None for n in node.input])
        ins = [_as_torch(values[n]) if n else None for n in node.input]
        call = ReferenceCall(node, where, attrs, ins, pairs_cache)
        try:
            with torch.no_grad():
                outs = op_module(kind).reference(call)
        except SparsetrtError:
            raise
        except (MemoryError, RuntimeError) as e:
            if isinstance(e, MemoryError) or "allocate" in str(e):
                raise OutOfMemoryError(f"{where} ran out of memory: {_first_line(e)}") from e
            raise
        for out_name, value in zip(node.output, outs, strict=True):
            if out_name:
                values[out_name] = value.numpy()


def check_model(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    """The checks an engine build makes of a file's sparsetrt nodes (the op schema's rules on attributes and
    input shapes) and the reference runtime's own (opsets, domains), without running anything: a
    ``ModelError`` naming op, node and field, or the loaded model."""
    return ReferenceSession(model, validate=False).model


def _load(model: Any) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if not isinstance(model, str | os.PathLike):
        raise ModelError(
            f"ReferenceSession takes an ONNX file's path or an onnx.ModelProto, got {type(model).__name__}"
        )
    from .build import load_onnx

    return load_onnx(model)


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Every tensor's dims that shape inference can tell (-1 for the data-dependent ones), inferred afresh:
    the file's own value_info may be stale after an edit."""
    fresh = onnx.ModelProto()
    fresh.CopyFrom(model)
    del fresh.graph.value_info[:]
    try:
        fresh = onnx.shape_inference.infer_shapes(fresh, strict_mode=False)
    except Exception:  # best effort: what cannot be inferred is checked on the actual shapes at run time
        fresh = model
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in model.graph.initializer}
    for v in (*fresh.graph.input, *fresh.graph.value_info, *fresh.graph.output):
        tt = v.type.tensor_type
        if v.name not in shapes and tt.HasField("shape"):
            shapes[v.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
    return shapes


def _span(seg: _Segment) -> str:
    first, last = seg.nodes[0], seg.nodes[-1]
    label = lambda n: n.name or n.op_type  # noqa: E731
    return f"{label(first)!r}" if len(seg.nodes) == 1 else f"{label(first)!r} .. {label(last)!r}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _as_torch(array: np.ndarray) -> torch.Tensor:
    array = np.ascontiguousarray(array)
    # torch shares the buffer; read-only arrays (initializers) are copied rather than shared writable.
    return torch.from_numpy(array if array.flags.writeable else array.copy())
