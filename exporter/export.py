"""``export(model, args, f, ...)``: a trained sparse model to a valid ONNX file with ``sparsetrt`` ops."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import onnx
import torch
from torch import nn

from .convert import WeightLayout, convert
from .graph_passes import optimize
from .idioms import ModuleStack, SparseIdioms, spconv_functions_replaced
from .onnx_ops import export_options
from .schema import DOMAIN, load
from .schema.onnx_registration import register_onnx_schemas
from .verify import check_graph, compare_with_reference, flatten_outputs

DEFAULT_OPSET = 17
VOXEL_AXIS = "num_voxels"


def _detached(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


@contextlib.contextmanager
def _reset_options() -> Iterator[None]:
    try:
        yield
    finally:
        export_options["max_sites"] = 0


def _default_dynamic_axes(args: Sequence[Any], input_names: list[str]) -> dict[str, dict[int, str]]:
    """Dim 0 of every 2-D tensor input (features [N, C], indices [N, 1 + D]) is the voxel count."""
    axes = {}
    for name, arg in zip(input_names, args, strict=False):
        if isinstance(arg, torch.Tensor) and arg.dim() == 2:
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
    run_example: bool = False,
) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """(what, feed, PyTorch's outputs) for the tracing example and, where inputs have a dynamic dim 0, for a
    subset of its rows (every fourth dropped): a value the trace baked in (a count computed in Python) shows
    there. PyTorch runs first, on copies (a forward may modify its inputs in place); a subset the model itself
    refuses is not used. The tracing example's outputs are left empty unless ``run_example``: the trace computes
    them (our ops run the reference backend while they are recorded), and export takes them from there."""
    frames = []
    names = [n for n, a in zip(input_names, (a for a in args if isinstance(a, torch.Tensor)), strict=False)]
    rows = {n for n in names if 0 in dynamic_axes.get(n, {})}
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    sizes = {int(t.shape[0]) for n, t in zip(names, tensors, strict=False) if n in rows}
    variants: list[tuple[str, Any]] = [("the tracing example", None)]
    if len(sizes) == 1 and (n := sizes.pop()) >= 4:
        variants.append(("a subset of the tracing example's rows", torch.arange(n) % 4 != 3))
    for what, keep in variants:
        if keep is None and not run_example:
            frames.append((what, _feed(args, names), []))  # PyTorch's outputs come from the trace itself
            continue
        copies, feed, name_iter = [], {}, iter(names)
        for a in args:
            if isinstance(a, torch.Tensor):
                name = next(name_iter, None)
                a = a.clone() if keep is None or name not in rows else a[keep].clone()
                if name is not None:
                    feed[name] = a.detach().cpu().numpy()
            copies.append(a)
        try:
            with torch.no_grad():
                expected = flatten_outputs(model(*copies))
        except Exception:
            if keep is None:
                raise
            continue
        frames.append((what, feed, expected))
    return frames


def export(
    model: nn.Module,
    args: tuple[Any, ...] | torch.Tensor,
    f: str | os.PathLike | io.BytesIO,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    *,
    opset_version: int = DEFAULT_OPSET,
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
    - Before anything is written, the file is checked (``onnx.checker`` full check and strict shape inference,
      with our op schemas registered) and, with ``verify=True`` (the default), run on ``ReferenceSession`` with
      the tracing example and compared with PyTorch's outputs (``sparsetrt.exporter.verify``); a mismatch raises
      ``ExportVerificationError`` and writes nothing. ``verify=False`` skips the run (huge models).
    - Torch idioms over sparse sites (``torch.unique`` of indices + ``index_add_``, spconv's ``sparse_add``)
      become our ops; constructs with no exportable form raise ``ExportError`` naming the module and the line
      of the forward (``sparsetrt.exporter.idioms``).
    """
    register_onnx_schemas()
    args = args if isinstance(args, tuple) else (args,)
    tensor_count = sum(isinstance(a, torch.Tensor) for a in args)
    input_names = input_names or [f"input_{i}" for i in range(tensor_count)]
    dynamic_axes = _default_dynamic_axes(args, input_names) if dynamic_axes is None else dynamic_axes
    converted = convert(model, weight_layout=weight_layout).eval()

    if max_sites < 0:
        raise ValueError(f"max_sites must be >= 0 (0 = no user bound), got {max_sites}")
    with spconv_functions_replaced():  # spconv's sparse_add cannot take our tensors, eagerly or traced
        frames = _verification_frames(converted, args, input_names, dynamic_axes) if verify else []
    buffer = io.BytesIO()
    export_options["max_sites"] = max_sites
    with contextlib.ExitStack() as tracing:
        tracing.enter_context(_reset_options())
        tracing.enter_context(torch.no_grad())
        recorded = tracing.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("default")
        where = tracing.enter_context(ModuleStack(converted))
        tracing.enter_context(SparseIdioms(where))
        tracing.enter_context(spconv_functions_replaced())
        traced: list[Any] = []
        hook = converted.register_forward_hook(
            lambda module, inputs, output: traced.append([_detached(t) for t in flatten_outputs(output)])
        )
        tracing.callback(hook.remove)
        # The legacy (TorchScript) exporter is the one that records autograd Functions as custom nodes.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        # Our layers and spconv's tensor constructor read shapes as Python values by design (a sparse op's
        # real shapes are the node's outputs); tracer warnings from the user's own code still show.
        for module in (r"sparsetrt\..*", r"spconv\..*"):
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=module)
        torch.onnx.export(
            converted,
            args,
            buffer,
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset_version,
            custom_opsets={DOMAIN: load().version},
            do_constant_folding=True,
            autograd_inlining=False,  # keep each sparse op one node; its forward is the reference backend
        )
    hints = []
    for w in recorded:  # hand the user's warnings on; tracer warnings about their code explain a mismatch
        if issubclass(w.category, torch.jit.TracerWarning):
            hints.append(f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0]}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    proto = onnx.load_from_string(buffer.getvalue())
    proto = optimize(proto, fold_batchnorm=fold_batchnorm, fuse_activations=fuse_activations, fp16=fp16)
    check_graph(proto)
    if frames:
        from sparsetrt.runtime import ReferenceSession  # the runtime imports the exporter: import here

        session = ReferenceSession(proto)
        for what, feed, expected in frames:
            compare_with_reference(session, feed, expected or traced[-1], fp16, hints, what)
    if isinstance(f, io.BytesIO):
        f.write(proto.SerializeToString())
    else:
        onnx.save(proto, os.fspath(f))
    return proto
