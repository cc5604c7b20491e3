"""Comparing sizes that may be symbolic: while torch.export traces a model, a site count is a symbolic
int, and those created by strided layers are *unbacked* (no example value): asking whether two of them
are equal raises unless their expressions decide it.

The layers compare site counts only to report misuse (a shared ``indice_key`` over other sites, a
feature tensor of the wrong length); an eager run, which the dynamo export does first, reports those
with real sizes. So while tracing, sizes the symbols cannot tell apart count as equal.
"""

from __future__ import annotations

import torch
from torch.fx.experimental.symbolic_shapes import statically_known_true


def sizes_differ(a: int, b: int) -> bool:
    """``a != b`` for ints (and the TorchScript tracer's size tensors); for symbolic ints, True only when
    their expressions prove it."""
    if isinstance(a, torch.SymInt) or isinstance(b, torch.SymInt):
        return statically_known_true(a != b)
    return bool(a != b)
