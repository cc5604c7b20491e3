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
from .onnx_ops import export_options
from .schema import DOMAIN, load
from .schema.onnx_registration import register_onnx_schemas

DEFAULT_OPSET = 17
VOXEL_AXIS = "num_voxels"


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
    buffer = io.BytesIO()
    export_options["max_sites"] = max_sites
    with _reset_options(), torch.no_grad(), warnings.catch_warnings():
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
    proto = onnx.load_from_string(buffer.getvalue())
    proto = optimize(proto, fold_batchnorm=fold_batchnorm, fuse_activations=fuse_activations, fp16=fp16)
    onnx.checker.check_model(proto, full_check=True)
    if isinstance(f, io.BytesIO):
        f.write(proto.SerializeToString())
    else:
        onnx.save(proto, os.fspath(f))
    return proto
