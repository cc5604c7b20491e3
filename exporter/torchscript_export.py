"""The TorchScript path: ``torch.onnx.export(dynamo=False)``, torch's tracing exporter (deprecated since
PyTorch 2.9, kept as ``export(..., dynamo=False)`` while torch ships it).

The tracer runs the model on the example for real; each custom op call is recorded as one node, and our
symbolic functions (``onnx_translation``) turn it into its ``sparsetrt`` node.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import onnx
import torch
from torch import nn

from .onnx_translation import register_torchscript_symbolics
from .schema import DOMAIN, load


def export_torchscript(
    model: nn.Module,
    args: tuple[Any, ...],
    input_names: list[str],
    output_names: Sequence[str] | None,
    dynamic_axes: dict[str, dict[int, str]],
    opset_version: int,
) -> onnx.ModelProto:
    """The raw ModelProto of the traced model (before our graph passes)."""
    register_torchscript_symbolics()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        # Our layers and spconv's tensor constructor read shapes as Python values by design (a sparse op's
        # real shapes are the node's outputs); tracer warnings from the user's own code still show.
        for module in (r"sparsetrt\..*", r"spconv\..*"):
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=module)
        torch.onnx.export(
            model,
            args,
            buffer,
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset_version,
            custom_opsets={DOMAIN: load().version},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())
