"""``export(model, args, f, ...)``: a trained sparse model to a valid ONNX file with ``sparsetrt`` ops."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from typing import Any

import onnx
import torch
from torch import nn

from .convert import WeightLayout, convert
from .dynamo_export import MIN_DYNAMO_OPSET, export_dynamo
from .graph_passes import optimize
from .idioms import ModuleStack, SparseIdioms, spconv_functions_replaced
from .ops import ExportOptions, exporting
from .schema.onnx_registration import register_onnx_schemas
from .torchscript_export import export_torchscript
from .verify import check_graph, compare_with_reference, flatten_outputs

# The default ONNX opset of each path: the dynamo exporter's smallest, and the TorchScript path's as it
# always was (its files stay as they were).
DEFAULT_OPSET = {True: MIN_DYNAMO_OPSET, False: 17}
DEFAULT_DYNAMO = True  # export() uses torch.export unless told dynamo=False
VOXEL_AXIS = "num_voxels"


def _real_copy(value: Any) -> Any:
    """A detached copy of a real output tensor; None for torch.export's (fake, functional: subclasses)."""
    if not isinstance(value, torch.Tensor):
        return value
    if type(value) is not torch.Tensor:
        return None
    return value.detach().clone()


def _default_dynamic_axes(args: Sequence[Any], input_names: list[str]) -> dict[str, dict[int, str]]:
    """Dim 0 of every 2-D tensor input (features [N, C], indices [N, 1 + D]) is the voxel count."""
    axes = {}
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    for name, arg in zip(input_names, tensors, strict=False):
        if arg.dim() == 2:
            axes[name] = {0: VOXEL_AXIS}
    return axes


def _feed(args: tuple[Any, ...], names: list[str]) -> dict[str, Any]:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    return {n: t.detach().cpu().clone().numpy() for n, t in zip(names, tensors, strict=False)}


def _verification_frames(
    model: nn.Module,
    args: tuple[Any, ...],
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """(what, feed, PyTorch's outputs) for the tracing example and, where inputs have a dynamic dim 0, for a
    subset of its rows (every fourth dropped): a value the trace baked in (a count computed in Python) shows
    there. PyTorch runs first, on copies (a forward may modify its inputs in place); a subset the model itself
    refuses is not used. The tracing example's outputs are left empty: the export's real run computes them
    (our ops run the reference backend while they are recorded), and export takes them from there."""
    frames: list[tuple[str, dict[str, Any], list[Any]]] = []
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    names = [n for n, _ in zip(input_names, tensors, strict=False)]
    rows = {n for n in names if 0 in dynamic_axes.get(n, {})}
    frames.append(("the tracing example", _feed(args, names), []))
    sizes = {int(t.shape[0]) for n, t in zip(names, tensors, strict=False) if n in rows}
    if len(sizes) != 1 or (n := sizes.pop()) < 4:
        return frames
    keep = torch.arange(n) % 4 != 3
    copies, feed, name_iter = [], {}, iter(names)
    for a in args:
        if isinstance(a, torch.Tensor):
            name = next(name_iter, None)
            a = a[keep].clone() if name in rows else a.clone()
            if name is not None:
                feed[name] = a.detach().cpu().numpy()
        copies.append(a)
    try:
        with torch.no_grad():
            expected = flatten_outputs(model(*copies))
    except Exception:
        return frames
    frames.append(("a subset of the tracing example's rows", feed, expected))
    return frames


def export(
    model: nn.Module,
    args: tuple[Any, ...] | torch.Tensor,
    f: str | os.PathLike | io.BytesIO,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    *,
    dynamo: bool | None = None,
    opset_version: int | None = None,
    fp16: bool = False,
    weight_layout: WeightLayout = "spconv2",
    fold_batchnorm: bool = True,
    fuse_activations: bool = True,
    max_sites: int = 0,
    verify: bool = True,
) -> onnx.ModelProto:
    """Export ``model`` (spconv 2.x or sparsetrt layers; converted first) the way ``torch.onnx.export``
    does, tracing it on ``args``. Returns the saved ModelProto.

    - The voxel count is a dynamic axis by default: dim 0 of every 2-D tensor input (``dynamic_axes``
      overrides). Python ints among ``args`` (a batch size) are baked into the graph.
    - Batch norm following a sparse conv is folded into its weights, a following Relu/LeakyRelu/
      Sigmoid into its ``activation`` attribute, identical rulebook nodes merged and dead nodes removed.
    - ``fp16=True`` stores weights and float inputs/outputs as float16; a weight beyond float16's range
      raises instead of overflowing.
    - ``max_sites > 0`` bounds the sites any strided or transposed layer may create (recorded as each
      SparseRulebook's ``max_out``); a run that exceeds it fails with an error, never truncates. 0 lets
      the runtime derive a bound (N x kernel volume).
    - ``dynamo`` picks torch's exporter: True (the default) ``torch.export`` and
      ``torch.onnx.export(dynamo=True)``, False the TorchScript exporter (deprecated by torch, kept while
      torch ships it). Both write the same ``sparsetrt`` nodes; ``opset_version`` defaults to 18 and 17.
    - Before anything is written, the file is checked (``onnx.checker`` full check and strict shape inference,
      with our op schemas registered) and, with ``verify=True`` (the default), run on ``ReferenceSession`` with
      the tracing example and compared with PyTorch's outputs (``sparsetrt.exporter.verify``); a mismatch raises
      ``ExportVerificationError`` and writes nothing. ``verify=False`` skips the run (huge models).
    - Torch idioms over sparse sites (``torch.unique`` of indices + ``index_add_``, ``x[mask]`` over rows,
      spconv's ``sparse_add``) become our ops; constructs with no exportable form raise ``ExportError`` naming
      the module and the line of the forward (``sparsetrt.exporter.idioms``).
    """
    register_onnx_schemas()
    args = args if isinstance(args, tuple) else (args,)
    tensor_count = sum(isinstance(a, torch.Tensor) for a in args)
    input_names = input_names or [f"input_{i}" for i in range(tensor_count)]
    dynamic_axes = _default_dynamic_axes(args, input_names) if dynamic_axes is None else dynamic_axes
    converted = convert(model, weight_layout=weight_layout).eval()

    options = ExportOptions(max_sites=max_sites)  # what the ops read while they are recorded
    dynamo = DEFAULT_DYNAMO if dynamo is None else bool(dynamo)
    opset_version = DEFAULT_OPSET[dynamo] if opset_version is None else int(opset_version)
    trace = export_dynamo if dynamo else export_torchscript
    with contextlib.ExitStack() as tracing:
        # spconv's sparse_add cannot take our tensors, eagerly (the verification frames) or traced.
        tracing.enter_context(spconv_functions_replaced())
        frames = _verification_frames(converted, args, input_names, dynamic_axes) if verify else []
        tracing.enter_context(exporting(options))
        tracing.enter_context(torch.no_grad())
        recorded = tracing.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("default")
        where = tracing.enter_context(ModuleStack(converted))
        tracing.enter_context(SparseIdioms(where))
        # PyTorch's outputs on the tracing example, from the export's own real run (both paths run the
        # model on it once for real; torch.export's fake run is skipped).
        real_outputs: list[list[Any]] = []

        def keep_outputs(module: nn.Module, inputs: Any, output: Any) -> None:
            copies = [_real_copy(t) for t in flatten_outputs(output)]
            if all(c is not None for c in copies):
                real_outputs.append(copies)

        tracing.callback(converted.register_forward_hook(keep_outputs).remove)
        proto = trace(converted, args, input_names, output_names, dynamic_axes, opset_version)
    hints = []
    for w in recorded:  # hand the user's warnings on; tracer warnings about their code explain a mismatch
        if issubclass(w.category, torch.jit.TracerWarning):
            hints.append(f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0]}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    proto = optimize(proto, fold_batchnorm=fold_batchnorm, fuse_activations=fuse_activations, fp16=fp16)
    check_graph(proto)
    if frames:
        from sparsetrt.runtime import ReferenceSession  # the runtime imports the exporter: import here

        session = ReferenceSession(proto)
        for what, feed, expected in frames:
            compare_with_reference(session, feed, expected or real_outputs[0], fp16, hints, what)
    if isinstance(f, io.BytesIO):
        f.write(proto.SerializeToString())
    else:
        onnx.save(proto, os.fspath(f))
    return proto
