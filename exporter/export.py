"""``export(model, args, f, ...)``: a trained sparse model to a valid ONNX file with ``sparsetrt`` ops."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import onnx
import torch
from torch import nn

from .convert import WeightLayout, convert
from .dynamo_export import MIN_DYNAMO_OPSET, export_dynamo
from .graph_passes import optimize
from .onnx_ops import exporting
from .schema.onnx_registration import register_onnx_schemas
from .torchscript_export import export_torchscript

# The default ONNX opset of each path: the dynamo exporter's smallest, and the TorchScript path's as it
# always was (its files stay as they were).
DEFAULT_OPSET = {True: MIN_DYNAMO_OPSET, False: 17}
DEFAULT_DYNAMO = True  # export() uses torch.export unless told dynamo=False
VOXEL_AXIS = "num_voxels"


def _default_dynamic_axes(args: Sequence[Any], input_names: list[str]) -> dict[str, dict[int, str]]:
    """Dim 0 of every 2-D tensor input (features [N, C], indices [N, 1 + D]) is the voxel count."""
    axes = {}
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    for name, arg in zip(input_names, tensors, strict=False):
        if arg.dim() == 2:
            axes[name] = {0: VOXEL_AXIS}
    return axes


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
    - The file passes ``onnx.checker.check_model(full_check=True)`` with our op schemas registered.
    """
    register_onnx_schemas()
    args = args if isinstance(args, tuple) else (args,)
    tensor_count = sum(isinstance(a, torch.Tensor) for a in args)
    input_names = input_names or [f"input_{i}" for i in range(tensor_count)]
    dynamic_axes = _default_dynamic_axes(args, input_names) if dynamic_axes is None else dynamic_axes
    converted = convert(model, weight_layout=weight_layout).eval()

    if max_sites < 0:
        raise ValueError(f"max_sites must be >= 0 (0 = no user bound), got {max_sites}")
    dynamo = DEFAULT_DYNAMO if dynamo is None else bool(dynamo)
    opset_version = DEFAULT_OPSET[dynamo] if opset_version is None else int(opset_version)
    trace = export_dynamo if dynamo else export_torchscript
    with exporting(max_sites), torch.no_grad():
        proto = trace(converted, args, input_names, output_names, dynamic_axes, opset_version)
    proto = optimize(proto, fold_batchnorm=fold_batchnorm, fuse_activations=fuse_activations, fp16=fp16)
    onnx.checker.check_model(proto, full_check=True)
    if isinstance(f, io.BytesIO):
        f.write(proto.SerializeToString())
    else:
        onnx.save(proto, os.fspath(f))
    return proto
