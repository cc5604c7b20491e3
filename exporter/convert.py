"""``convert(model)``: replace spconv 2.x modules by ours, leaving the user's forward code untouched."""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from . import nn as snn

WeightLayout = Literal["spconv2", "spconv1"]


def _from_spconv(module: nn.Module) -> bool:
    return type(module).__module__.startswith("spconv.")


def _class_names(module: nn.Module) -> set[str]:
    return {cls.__name__ for cls in type(module).__mro__}


def _weight_krsc(module: nn.Module, layout: WeightLayout) -> torch.Tensor:
    """The module's weight as [C_out, *kernel, C_in] (spconv 2.x's KRSC)."""
    w = module.weight.detach()
    ndim, c_in, c_out = module.ndim, module.in_channels, module.out_channels
    ks = list(module.kernel_size)
    if layout == "spconv1":  # spconv 1.x: [*kernel, C_in, C_out]
        if list(w.shape) != [*ks, c_in, c_out]:
            raise ValueError(f"spconv 1.x weight must be {[*ks, c_in, c_out]}, got {list(w.shape)}")
        return w.permute(ndim + 1, *range(ndim), ndim).contiguous()
    if list(w.shape) == [c_out, *ks, c_in]:
        return w
    if list(w.shape) == [*ks, c_out, c_in]:  # spconv 2.x native algorithm without KRSC (RSKC)
        return w.permute(ndim, *range(ndim), ndim + 1).contiguous()
    if list(w.shape) == [*ks, c_in, c_out]:  # RSCK
        return w.permute(ndim + 1, *range(ndim), ndim).contiguous()
    raise ValueError(f"unrecognised weight layout {list(w.shape)} for kernel {ks}, {c_in} -> {c_out} channels")


def _convert_conv(module: nn.Module, layout: WeightLayout) -> snn.SparseConvolution:
    ours = snn.SparseConvolution(
        module.ndim,
        module.in_channels,
        module.out_channels,
        list(module.kernel_size),
        list(module.stride),
        list(module.padding),
        list(module.dilation),
        module.groups,
        bias=module.bias is not None,
        subm=module.subm,
        output_padding=list(module.output_padding),
        transposed=module.transposed,
        inverse=module.inverse,
        indice_key=module.indice_key,
        record_voxel_count=hasattr(module, snn.conv.MAX_VOXELS_BUFFER),
        act_type=getattr(module, "act_type", None),
        act_alpha=float(getattr(module, "act_alpha", 0.0)),
        act_beta=float(getattr(module, "act_beta", 0.0)),
        name=getattr(module, "name", None),
        device=module.weight.device,
        dtype=module.weight.dtype,
    )
    with torch.no_grad():
        ours.weight.copy_(_weight_krsc(module, layout))
        if module.bias is not None:
            ours.bias.copy_(module.bias)
        if hasattr(module, snn.conv.MAX_VOXELS_BUFFER):
            getattr(ours, snn.conv.MAX_VOXELS_BUFFER).copy_(getattr(module, snn.conv.MAX_VOXELS_BUFFER))
    ours.train(module.training)
    return ours


def _convert_pool(module: nn.Module) -> snn.SparseMaxPool:
    ours = snn.SparseMaxPool(
        module.ndim,
        list(module.kernel_size),
        list(module.stride),
        list(module.padding),
        list(module.dilation),
        module.indice_key,
        subm=module.subm,
        name=getattr(module, "name", None),
    )
    ours.train(module.training)
    return ours


def _convert_one(module: nn.Module, path: str, layout: WeightLayout) -> nn.Module:
    if not _from_spconv(module):
        return module
    names = _class_names(module)
    if "SparseConvolution" in names:
        return _convert_conv(module, layout)
    if "SparseMaxPool" in names:
        return _convert_pool(module)
    if "SparseSequential" in names:
        seq = snn.SparseSequential()
        for name, child in module.named_children():
            seq.add_module(name, child)
        seq.train(module.training)
        return seq
    if "ToDense" in names:
        return snn.ToDense()
    table = type(module).__name__
    if table in ("AddTable", "AddTableMisaligned", "JoinTable", "ConcatTable"):
        ours = getattr(snn.tables, table)()
        for name, child in module.named_children():  # ConcatTable's branches
            ours.add_module(name, child)
        ours.train(module.training)
        return ours
    if type(module).__name__ in ("SparseReLU", "SparseIdentity", "SparseBatchNorm", "SparseSyncBatchNorm"):
        raise NotImplementedError(
            f"{path} ({type(module).__name__}): spconv's feature-wise wrappers are not supported; use the plain "
            "torch module (nn.ReLU, nn.BatchNorm1d, ...) inside a SparseSequential, which applies it to .features"
        )
    raise NotImplementedError(
        f"{path} ({type(module).__module__}.{type(module).__name__}) is not supported by sparsetrt's exporter: "
        "supported spconv modules are the SubM/Sparse/SparseInverse/SparseConvTranspose convs, SparseMaxPool, "
        "SparseSequential, ToDense and the tables (AddTable, AddTableMisaligned, JoinTable, ConcatTable); please "
        "open an issue with the module and a small model that uses it"
    )


def _convert_tree(module: nn.Module, path: str, layout: WeightLayout) -> nn.Module:
    module = _convert_one(module, path, layout)
    for name, child in list(module.named_children()):
        converted = _convert_tree(child, f"{path}.{name}" if path else name, layout)
        if converted is not child:
            setattr(module, name, converted)
    return module


def convert(model: nn.Module, weight_layout: WeightLayout = "spconv2", inplace: bool = False) -> nn.Module:
    """A copy of ``model`` (or ``model`` itself with ``inplace=True``) whose spconv modules are ours.

    The forward code is untouched: a forward that builds ``spconv.SparseConvTensor(...)`` from plain
    tensors and uses ``.dense()``, ``.replace_feature``, ``.features`` and ``.indices`` keeps working,
    because our layers take spconv's tensor over at their input. Weights are copied as spconv 2.x lays
    them out (``[C_out, *kernel, C_in]``); ``weight_layout="spconv1"`` reads spconv 1.x's
    ``[*kernel, C_in, C_out]`` instead. Unsupported spconv modules raise NotImplementedError naming them.
    """
    if weight_layout not in ("spconv2", "spconv1"):
        raise ValueError(f"weight_layout must be 'spconv2' or 'spconv1', got {weight_layout!r}")
    target = model if inplace else copy.deepcopy(model)
    return _convert_tree(target, "", weight_layout)
