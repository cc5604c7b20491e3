"""Whether a model is being exported, and the options of that export: the one definition of ``is_exporting()``.

``export()`` enters ``exporting(ExportOptions(...))`` around its trace; the ops in this package read the options
through ``export_options()``. The options live in a context variable set only here, so no other module writes
them and an export's options end with its ``with`` block, also when it raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ExportOptions:
    """What ``export()`` tells the ops it records (its other arguments act on the file after tracing).

    ``max_sites``: the bound on the sites a strided or transposed layer may create, recorded as each
    SparseRulebook's ``max_out``; 0 lets the runtime derive one.
    """

    max_sites: int = 0

    def __post_init__(self) -> None:
        if self.max_sites < 0:
            raise ValueError(f"max_sites must be >= 0 (0 = no user bound), got {self.max_sites}")


_ACTIVE: ContextVar[ExportOptions | None] = ContextVar("sparsetrt_export_options", default=None)


@contextlib.contextmanager
def exporting(options: ExportOptions) -> Iterator[ExportOptions]:
    """The ops record custom ops inside this block, also on real tensors (the dynamo path's real run)."""
    token = _ACTIVE.set(options)
    try:
        yield options
    finally:
        _ACTIVE.reset(token)


def is_exporting() -> bool:
    """Whether the ops should record custom ops: inside ``exporting()``, a TorchScript ONNX export or a
    ``torch.export`` trace (a user's own export of a converted model counts too)."""
    return _ACTIVE.get() is not None or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def export_options() -> ExportOptions:
    """The options of the export in progress; the defaults where ``export()`` did not start it (a user's own
    ``torch.export`` or ``torch.onnx.export`` of a converted model)."""
    return _ACTIVE.get() or ExportOptions()
