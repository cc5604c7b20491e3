"""ReferenceSession: execute an exported ONNX file on a CPU, like an onnxruntime InferenceSession.

Standard ops run in onnxruntime: every maximal run of them (in topological order) becomes one
subgraph with its own session, built on first use. ``sparsetrt`` ops run on the CPU reference backend
(``reference_ops``). Data-dependent counts are just the sizes of the arrays that flow; fp16 files run
as they are (our ops accumulate in fp32, as the plugins do).
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

from sparsetrt.exporter.schema import DOMAIN, check_attributes, op
from sparsetrt.exporter.schema.onnx_registration import register_onnx_schemas

from . import reference_ops as kernels


@dataclass
class _Segment:
    """A maximal run of standard nodes, executed by one onnxruntime session."""

    nodes: list[onnx.NodeProto]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sessions: dict[tuple, ort.InferenceSession] = field(default_factory=dict)


class ReferenceSession:
    """``ReferenceSession(path_or_model).run(output_names, input_feed)`` -> list of numpy arrays."""

    def __init__(self, model: str | os.PathLike | onnx.ModelProto) -> None:
        register_onnx_schemas()
        self.model = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
        graph = self.model.graph
        self._initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self._inputs = {i.name: i for i in graph.input if i.name not in self._initializers}
        self._outputs = [o.name for o in graph.output]
        self._opsets = [o for o in self.model.opset_import if o.domain not in (DOMAIN,)]
        self._steps: list[_Segment | onnx.NodeProto] = []
        self._plan(graph)

    # ------------------------------------------------------------------------------------ planning
    def _plan(self, graph: onnx.GraphProto) -> None:
        run: list[onnx.NodeProto] = []
        for node in graph.node:
            if node.domain == DOMAIN:
                self._check_custom(node)
                if run:
                    self._steps.append(_Segment(run))
                    run = []
                self._steps.append(node)
            elif node.domain in ("", "ai.onnx"):
                run.append(node)
            else:
                raise ValueError(
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
        definition = op(node.op_type)  # raises for an op the schema does not have
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: list(v) if isinstance(v, list | tuple) else v for k, v in attrs.items()}
        check_attributes(node.op_type, attrs)
        required = sum(not p.optional for p in definition.inputs)
        if not required <= len(node.input) <= len(definition.inputs):
            raise ValueError(
                f"{node.op_type} node {node.name!r} has {len(node.input)} inputs, the schema "
                f"{required}..{len(definition.inputs)}"
            )

    # ----------------------------------------------------------------------------------- execution
    def get_inputs(self) -> list[onnx.ValueInfoProto]:
        return list(self._inputs.values())

    def get_outputs(self) -> list[onnx.ValueInfoProto]:
        return list(self.model.graph.output)

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[np.ndarray]:
        values: dict[str, np.ndarray] = dict(self._initializers)
        values.update(self._check_feed(input_feed))
        state = self._new_run_state()
        for step in self._steps:
            if isinstance(step, _Segment):
                self._run_segment(step, values)
            else:
                self._run_custom(step, values, state)
        self._finish_run(state)
        names = self._outputs if output_names is None else output_names
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"unknown output names {missing}; the model's outputs are {self._outputs}")
        return [values[n] for n in names]

    def _check_feed(self, feed: dict[str, Any]) -> dict[str, np.ndarray]:
        unknown = set(feed) - set(self._inputs)
        missing = set(self._inputs) - set(feed)
        if unknown or missing:
            raise ValueError(
                f"input_feed has unknown names {sorted(unknown)} and lacks {sorted(missing)}; "
                f"the model's inputs are {sorted(self._inputs)}"
            )
        arrays = {}
        for name, value in feed.items():
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            info = self._inputs[name].type.tensor_type
            expected = helper.tensor_dtype_to_np_dtype(info.elem_type)
            if array.dtype != expected:
                raise ValueError(f"input {name!r} is {array.dtype}, the model expects {expected}")
            dims = [d.dim_value if d.HasField("dim_value") else None for d in info.shape.dim]
            if array.ndim != len(dims) or any(
                d is not None and d != s for d, s in zip(dims, array.shape, strict=False)
            ):
                raise ValueError(
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
            session = self._session(seg, feed)
            seg.sessions[key] = session
        for name, value in zip(seg.outputs, session.run(seg.outputs, feed), strict=True):
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

    def _run_custom(
        self, node: onnx.NodeProto, values: dict[str, np.ndarray], pairs_cache: dict[str, kernels.Pairs]
    ) -> None:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ins = [_as_torch(values[n]) if n else None for n in node.input]
        kind = node.op_type
        if kind in ("SparseConv", "SparseMaxPool"):
            # Layers sharing a rulebook share its per-offset pair lists too.
            pairs = pairs_cache.get(node.input[1])
            if pairs is None:
                pairs = _cached(kernels.backend_ops.map_pairs(ins[1]))
                pairs_cache[node.input[1]] = pairs
        with torch.no_grad():
            if kind == "SubmRulebook":
                outs = kernels.subm_rulebook(ins[0], attrs)
            elif kind == "SparseRulebook":
                outs = kernels.sparse_rulebook(ins[0], attrs)
            elif kind == "InverseRulebook":
                outs = kernels.inverse_rulebook(ins[0], ins[1])
            elif kind == "SparseConv":
                bias = ins[3] if len(ins) > 3 else None
                outs = kernels.sparse_conv(ins[0], ins[1], ins[2], bias, attrs, pairs)
            elif kind == "SparseMaxPool":
                outs = kernels.sparse_max_pool(ins[0], ins[1], pairs)
            elif kind == "Densify":
                outs = kernels.densify(ins[0], ins[1], attrs)
            elif kind == "UniqueSites":
                outs = kernels.unique_sites(ins[0])
            elif kind == "SegmentReduce":
                outs = kernels.segment_reduce(ins[0], ins[1], ins[2], attrs)
            elif kind == "MaskRows":
                outs = kernels.mask_rows(ins[0])
            else:  # pragma: no cover - _check_custom refused it already
                raise ValueError(f"no reference kernel for {kind}")
        for name, value in zip(node.output, outs, strict=True):
            if name:
                values[name] = value.numpy()


def _as_torch(array: np.ndarray) -> torch.Tensor:
    array = np.ascontiguousarray(array)
    # torch shares the buffer; read-only arrays (initializers) are copied rather than shared writable.
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _cached(pairs: kernels.Pairs) -> kernels.Pairs:
    memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if k not in memo:
            memo[k] = pairs(k)
        return memo[k]

    return get
