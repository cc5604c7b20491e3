"""Each ``sparsetrt`` op's runtime kernels: one module per op, named after it (``SparseConv`` ->
``sparse_conv.py``), found through the op schema, so the sessions name no op.

An op's module defines

- ``reference(call: ReferenceCall) -> list[torch.Tensor]``: the op on the CPU reference backend, with the data
  checks only a runtime can make (``ReferenceSession``);
- ``kernels(call: KernelCall) -> list``: the op on the kernel library through its C ABI (``KernelSession``),
  outputs as ``DeviceArray`` (kept in device memory) or numpy arrays (host scalars).

Both return the node's outputs in schema order. The sessions have checked the node's attributes and input shapes
against the schema before either runs (``exporter/schema/rules.py``); ``common`` holds what several ops share.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from sparsetrt.exporter.schema import snake_name

from .common import KernelCall, ReferenceCall

__all__ = ["KernelCall", "ReferenceCall", "op_module"]


@cache
def op_module(op_type: str) -> ModuleType:
    """The runtime module of schema op ``op_type`` (callers have checked that the schema has it)."""
    return importlib.import_module(f"{__name__}.{snake_name(op_type)}")
