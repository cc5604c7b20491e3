"""What a real model's forward does to sparse tensors besides calling layers, as the exporter records it.

OpenPCDet's and mmdetection3d's backbones merge sparse tensors with plain torch calls: VoxelNeXt's sparse BEV is
``torch.unique(indices, dim=0, return_inverse=True)`` followed by ``features.new_zeros(...).index_add_(0, inv,
features)``, spconv's ``sparse_add`` goes through ``torch.sparse_coo_tensor(...).coalesce()``. Traced as they
are, these become ONNX ``Unique`` / ``ScatterND`` (which TensorRT cannot run) or fail. While ``export`` traces a
model, ``SparseIdioms`` (a ``TorchFunctionMode``) records them as our ops instead:

- ``torch.unique`` / ``Tensor.unique`` of integer rows (``dim=0``) or of a 1-D integer tensor -> ``UniqueSites``
  (sorted, with the inverse and counts torch would return, as int64 like torch's);
- ``Tensor.index_add_`` / ``index_add`` / ``torch.index_add`` along dim 0 of float rows -> ``SegmentReduce``
  (sum), in place as torch does it;
- ``x[mask]`` with a 1-D bool mask over x's rows (keeping a data-dependent subset of sites) -> ``MaskRows`` and a
  Gather (ONNX's NonZero, which TensorRT-RTX cannot run, never appears);
- ``spconv.pytorch.functional.sparse_add`` / ``sparse_add_hash_based`` -> ``sparsetrt.exporter.functional.
  sparse_add`` (``UniqueSites`` + ``SegmentReduce``).

Constructs that have no exportable form fail at once with an ``ExportError`` naming the module (its path in the
model and class), the line of the user's forward, and what to do: ``torch.unique_consecutive``, sparse COO
tensors, ``torch.unique`` of float values.

Outside an export the mode is not active; inside our own ops' implementations torch suspends it.
"""

from __future__ import annotations

import contextlib
import linecache
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import ops


class ExportError(ValueError):
    """A construct of the model that the exported file cannot express; the message says where and what to do."""


_FX_LOG = logging.getLogger("torch.fx._symbolic_trace")

# Frames inside these folders are library code; the first frame outside them is the user's line.
_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep for path in (torch.__file__, contextlib.__file__, __file__)
)


def _library_dirs() -> tuple[str, ...]:
    extra = []
    spconv = sys.modules.get("spconv")
    if spconv is not None and getattr(spconv, "__file__", None):
        extra.append(os.path.dirname(os.path.abspath(spconv.__file__)) + os.sep)
    return (*_LIBRARY_DIRS, *extra)


def user_line() -> str:
    """``file:line `code``` of the innermost frame of the caller's stack outside torch, spconv and sparsetrt's
    exporter: the line of the user's forward that made the call being handled."""
    libraries = _library_dirs()
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if path.startswith(libraries) or frame.filename.startswith("<"):
            continue
        code = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
        return f"{frame.filename}:{frame.lineno} `{code}`"
    return "(no frame of the model's own code found)"


class ModuleStack:
    """The modules whose forward is running, innermost last, with their paths in the exported model."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[nn.Module] = []
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleStack:
        def pre(module: nn.Module, args: Any) -> None:
            self.stack.append(module)

        def post(module: nn.Module, args: Any, output: Any) -> None:
            if self.stack and self.stack[-1] is module:
                self.stack.pop()

        self._handles = [
            nn.modules.module.register_module_forward_pre_hook(pre),
            nn.modules.module.register_module_forward_hook(post),
        ]
        # With global module hooks, torch.export's module calls ask is_fx_tracing(), which logs a warning about
        # its own API each time: not the user's concern.
        self._fx_level = _FX_LOG.level
        _FX_LOG.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self.stack.clear()
        _FX_LOG.setLevel(self._fx_level)

    def describe(self) -> str:
        """``path (Class)`` of the innermost running module of the model."""
        for module in reversed(self.stack):
            if id(module) in self.names:
                name = self.names[id(module)] or "the model"
                return f"{name} ({type(module).__name__})"
        return "the model"


def refuse(where: ModuleStack | None, what: str, fix: str) -> ExportError:
    module = where.describe() if where is not None else "the model"
    return ExportError(f"{module}, {user_line()}: {what}; {fix}")


# ---------------------------------------------------------------------------------------------- handlers
def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def _unique(mode: SparseIdioms, func: Callable, args: tuple, kwargs: dict) -> Any:
    b = _bind(
        args,
        kwargs,
        ("input", "sorted", "return_inverse", "return_counts", "dim"),
        {"sorted": True, "return_inverse": False, "return_counts": False, "dim": None},
    )
    x, dim = b["input"], b["dim"]
    integer = not x.dtype.is_floating_point and not x.is_complex() and x.dtype != torch.bool
    rows = x.dim() == 2 and dim in (0, -2)
    flat = x.dim() == 1 and dim in (None, 0, -1)
    if not integer or not (rows or flat):
        raise refuse(
            mode.where,
            f"torch.unique of a {x.dtype} tensor of shape {list(x.shape)} (dim={dim}) becomes ONNX Unique, which "
            "TensorRT cannot run",
            "sparsetrt exports torch.unique of integer rows (dim=0) or of a 1-D integer tensor (as a UniqueSites "
            "node): unique the sites (indices) rather than features, or move this step out of the exported model",
        )
    unique, inverse, counts = ops.unique_sites(x if rows else x.unsqueeze(1))
    unique = unique.to(x.dtype) if rows else unique.squeeze(1).to(x.dtype)
    out: list[torch.Tensor] = [unique]
    if b["return_inverse"]:
        out.append(inverse.to(torch.int64))
    if b["return_counts"]:
        out.append(counts.to(torch.int64))
    return out[0] if len(out) == 1 else tuple(out)


def _index_add(inplace: bool) -> Callable:
    def handler(mode: SparseIdioms, func: Callable, args: tuple, kwargs: dict) -> Any:
        b = _bind(args, kwargs, ("self", "dim", "index", "source"), {"alpha": 1})
        target, dim, index, source = b["self"], b["dim"], b["index"], b["source"]
        if (
            not target.dtype.is_floating_point
            or target.dim() not in (1, 2)
            or dim not in (0, -target.dim())
            or not isinstance(b["alpha"], int | float)
        ):
            return func(*args, **kwargs)  # torch's own export (ScatterND with add) handles the rest
        source = source * b["alpha"] if b["alpha"] != 1 else source
        column = target.dim() == 1
        init = target.unsqueeze(1) if column else target
        rows = source.unsqueeze(1) if column else source
        out = ops.segment_reduce(rows.to(init.dtype), index, init, "sum")
        out = out.squeeze(1) if column else out
        if inplace:
            return target.copy_(out)
        return out

    return handler


def _boolean_rows(mode: SparseIdioms, func: Callable, args: tuple, kwargs: dict) -> Any:
    """``x[mask]`` with a 1-D bool mask over x's rows: ONNX would say NonZero, which TensorRT-RTX lacks."""
    x, index = args[0], args[1]
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if (
        isinstance(x, torch.Tensor)
        and isinstance(index, torch.Tensor)
        and index.dtype == torch.bool
        and index.dim() == 1
        and x.dim() >= 1
        and x.shape[0] == index.shape[0]
    ):
        return torch.index_select(x, 0, ops.mask_rows(index).to(torch.int64))
    return func(*args, **kwargs)


def _sparse_coo(mode: SparseIdioms, func: Callable, args: tuple, kwargs: dict) -> Any:
    raise refuse(
        mode.where,
        f"{getattr(func, '__name__', func)}: torch's sparse COO tensors have no ONNX form",
        "to add sparse tensors over different sites use spconv.pytorch.functional.sparse_add (called as a module "
        "attribute, e.g. `Fsp.sparse_add(a, b)`, which export replaces) or sparsetrt.exporter.functional.sparse_add",
    )


def _unique_consecutive(mode: SparseIdioms, func: Callable, args: tuple, kwargs: dict) -> Any:
    raise refuse(
        mode.where,
        "torch.unique_consecutive has no ONNX form TensorRT runs, and its result depends on the input's order",
        "merge duplicate sites with torch.unique(indices, dim=0, return_inverse=True) + index_add_ (exported as "
        "UniqueSites + SegmentReduce) or sparsetrt.exporter.functional.merge_duplicate_sites",
    )


_HANDLERS: dict[Any, Callable] = {
    torch.unique: _unique,
    torch.Tensor.unique: _unique,
    torch.functional.unique: _unique,
    torch.unique_consecutive: _unique_consecutive,
    torch.Tensor.unique_consecutive: _unique_consecutive,
    torch.Tensor.index_add_: _index_add(inplace=True),
    torch.Tensor.index_add: _index_add(inplace=False),
    torch.index_add: _index_add(inplace=False),
    torch.Tensor.__getitem__: _boolean_rows,
    torch.sparse_coo_tensor: _sparse_coo,
    torch.Tensor.to_sparse: _sparse_coo,
    torch.Tensor.coalesce: _sparse_coo,
}


class SparseIdioms(TorchFunctionMode):
    """Active while ``export`` traces: records the idioms above as our ops, refuses what cannot be exported.

    ``export`` enters it inside ``ops.exporting()`` and leaves it before, so a handler always runs while exporting
    and the ``ops`` it calls take their export path."""

    def __init__(self, where: ModuleStack | None = None) -> None:
        super().__init__()
        self.where = where

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func)
        # Our ops' own implementations (the reference backend, which uses these torch calls) run inside the mode's
        # handling of the op's call, where torch suspends the mode.
        if handler is None:
            return func(*args, **kwargs)
        return handler(self, func, args, kwargs)


@contextlib.contextmanager
def spconv_functions_replaced() -> Iterator[None]:
    """spconv's ``sparse_add`` and ``sparse_add_hash_based`` (module attributes of ``spconv.pytorch.functional``)
    replaced by ours for the duration of an export; nothing happens where spconv is not imported."""
    module = sys.modules.get("spconv.pytorch.functional")
    if module is None:
        yield
        return
    from .functional import sparse_add

    saved = {name: getattr(module, name) for name in ("sparse_add", "sparse_add_hash_based") if hasattr(module, name)}
    try:
        for name in saved:
            setattr(module, name, sparse_add)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
