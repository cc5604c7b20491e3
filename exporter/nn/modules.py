"""Containers: SparseModule, SparseSequential and ToDense, with spconv 2.x's behaviour."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..sparse_tensor import as_sparse_tensor, is_sparse_tensor


class SparseModule(nn.Module):
    """Marks a module that takes and returns a SparseTensor (SparseSequential passes it whole)."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name


def is_sparse_module(module: nn.Module) -> bool:
    """Ours, or a user's subclass of spconv's SparseModule (a residual block, say), which takes the
    whole sparse tensor rather than its features."""
    return isinstance(module, SparseModule) or any(
        cls.__name__ == "SparseModule" and cls.__module__.startswith("spconv") for cls in type(module).__mro__
    )


class SparseSequential(SparseModule):
    """Like ``nn.Sequential``; feature-wise modules (BatchNorm1d, ReLU, ...) are applied to ``.features``.

    As in spconv, a feature-wise module is skipped for a tensor with no active sites (BatchNorm1d
    cannot normalize zero rows in training).
    """

    def __init__(self, *args: nn.Module, **kwargs: nn.Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)
        for key, module in kwargs.items():
            if key in self._modules:
                raise ValueError(f"SparseSequential got the module name {key!r} twice")
            self.add_module(key, module)

    def __getitem__(self, idx: int) -> nn.Module:
        modules = list(self._modules.values())
        if not -len(modules) <= idx < len(modules):
            raise IndexError(f"index {idx} is out of range for a SparseSequential of {len(modules)} modules")
        return modules[idx]

    def __len__(self) -> int:
        return len(self._modules)

    def add(self, module: nn.Module, name: str | None = None) -> None:
        name = str(len(self._modules)) if name is None else name
        if name in self._modules:
            raise KeyError(f"SparseSequential already has a module named {name!r}")
        self.add_module(name, module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            if is_sparse_module(module):
                input = module(input)
            elif is_sparse_tensor(input):
                if input.indices.shape[0] != 0:
                    input = input.replace_feature(module(input.features))
            else:
                input = module(input)
        return input


class ToDense(SparseModule):
    """SparseTensor -> dense ``[B, C, *spatial_shape]``."""

    def forward(self, x: Any) -> torch.Tensor:
        return as_sparse_tensor(x, "ToDense").dense()
