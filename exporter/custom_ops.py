"""Our sparse ops as torch.library custom ops (``torch.ops.sparsetrt.*``), one per op of the schema: what they
share. Each op's custom op is defined in the functional layer beside the function that calls it (``ops/``).

Both ONNX exporters see a model's sparse layers through these ops, and each translates every call into
exactly one node of the ``sparsetrt`` domain (``torchscript_export`` and ``dynamo_export``):

- A custom op's tensor arguments are its ONNX node's inputs and its other arguments the node's
  attributes, with the schema's names and in the schema's order (``sparsetrt_ops.json``;
  ``test_schema`` checks the correspondence), so a translation is the same few lines for every op.
- The real implementation runs the reference backend: the TorchScript tracer records the call as one
  node (nothing inside it is traced), and the dynamo path runs the model once for real before tracing
  it, which is where a ``max_out`` overflow on the example input is caught.
- The fake (meta) implementation gives torch.export the output shapes: static ones from the attributes,
  the site count N from the input, and SparseRulebook's output count M as a new unbacked symbolic int.

The functional layer (``ops``) calls these only while a model is being exported; its eager path calls the
backend directly, with cached rulebook pairs and autograd.
"""

from __future__ import annotations

import torch

from .schema import enum_values, load, snake_name

NAMESPACE = "sparsetrt"

# SparseConv's `activation` codes, from the schema (None: no activation).
ACTIVATION_CODES = {
    (None if name == "none" else name): code for name, code in enum_values("SparseConv", "activation").items()
}
ACTIVATION_NAMES = {code: name for name, code in ACTIVATION_CODES.items()}


def apply_activation(x: torch.Tensor, activation: str | None, alpha: float) -> torch.Tensor:
    if activation is None:
        return x
    if activation == "relu":
        return torch.relu(x)
    if activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(x, alpha)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"unknown activation {activation!r}")


def site_count(ctx: torch._library.fake_impl.FakeImplCtx) -> torch.SymInt:
    """A fresh unbacked size for a data-dependent site count.

    Declared >= 1: tracing assumes the example's layers produce sites, as the TorchScript trace of a
    real example does; without it, code that branches on an empty tensor (BatchNorm's empty-input
    shortcut, SparseSequential skipping feature modules) cannot be traced. The ONNX graph carries no
    such assumption: every op in it handles zero rows.
    """
    return ctx.new_dynamic_size(min=1)


def overloads() -> dict[torch._ops.OpOverload, str]:
    """Each custom op's default overload -> the schema op it becomes (every op of the schema has one)."""
    from . import ops  # noqa: F401  (its modules define the custom ops, beside the functions that call them)

    namespace = getattr(torch.ops, NAMESPACE)
    return {getattr(namespace, snake_name(name)).default: name for name in load().ops}
