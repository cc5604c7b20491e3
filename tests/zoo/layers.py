"""Layers shared by the zoo models, and seeded construction with randomised normalisation layers.

Conventions follow OpenPCDet's sparse backbones: BatchNorm1d(eps=1e-3, momentum=0.01) on voxel features,
convs followed by BN have no bias except inside residual blocks (where OpenPCDet keeps `bias=True`, which
is worth keeping here because it exercises folding a conv bias into BN).

No sparse conv in the zoo has kernel volume 1: spconv 2.3.8 routes those through a dense `torch.mm` with
`weight.view(in, out)`, but the weight is stored `[out, *kernel, in]`, so the result is wrong unless
in == out and the weight is symmetric.  Per-voxel linear maps use `nn.Linear` on the features instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import spconv.pytorch as spconv
import torch
from spconv.pytorch.conv import SparseConvolution
from torch import nn

from .run import single_thread

__all__ = ["SparseBasicBlock", "norm1d", "post_act", "seeded_build"]

ModelT = TypeVar("ModelT", bound=nn.Module)


def norm1d(channels: int) -> nn.BatchNorm1d:
    """BatchNorm over voxel features, with OpenPCDet's hyper-parameters."""
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


def post_act(conv: SparseConvolution) -> spconv.SparseSequential:
    """`conv -> BN -> ReLU`, the post-activation block used throughout OpenPCDet's sparse backbones."""
    return spconv.SparseSequential(conv, norm1d(conv.out_channels), nn.ReLU())


class SparseBasicBlock(spconv.SparseModule):
    """Residual block of two 3x3(x3) submanifold convs (ResNet basic block on a fixed site set).

    `out = relu(bn2(subm2(relu(bn1(subm1(x))))) + shortcut(x))`, where the shortcut is the identity when
    the channel counts match and otherwise a per-voxel `Linear + BN` projection (the 1x1x1 conv of
    MinkowskiEngine / torchsparse ResNets, written with `nn.Linear` because of the kernel-1 spconv bug).
    Both convs share `indice_key`: their input and output sites are identical, so the rulebook is reused
    (mmdetection3d's block has none: each conv then builds its own). The attribute names (conv1, bn1, conv2, bn2)
    are OpenPCDet's and mmdetection3d's, so the blocks load their checkpoints' keys; `ndim=2` is the pillar variant.
    """

    def __init__(
        self, in_channels: int, out_channels: int, indice_key: str | None, bias: bool = True, ndim: int = 3
    ) -> None:
        super().__init__()
        subm = getattr(spconv, f"SubMConv{ndim}d")
        self.conv1 = subm(in_channels, out_channels, 3, padding=1, bias=bias, indice_key=indice_key)
        self.bn1 = norm1d(out_channels)
        self.conv2 = subm(out_channels, out_channels, 3, padding=1, bias=bias, indice_key=indice_key)
        self.bn2 = norm1d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Linear(in_channels, out_channels, bias=False), norm1d(out_channels))

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        identity = self.shortcut(x.features)
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        out = out.replace_feature(self.bn2(out.features))
        return out.replace_feature(self.relu(out.features + identity))


def _norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def randomize_norm_(model: nn.Module, generator: torch.Generator, calibration_inputs: tuple | None = None) -> None:
    """Give every BatchNorm random affine parameters and random running statistics, in place.

    Freshly constructed BN layers are the identity in eval mode (mean 0, var 1, weight 1, bias 0), which
    would let an exporter that forgets to fold BN, or folds it wrongly, pass every parity test.

    Purely random statistics are not enough either: conv outputs on sparse data are small (most kernel taps
    hit inactive sites), so a random mean of typical size swamps the signal and the network output ends up
    nearly independent of its input.  So, when `calibration_inputs` are given, the running statistics are
    first measured on them (one training-mode pass with a cumulative average, i.e. the batch statistics),
    which puts every activation at unit scale, and then randomly perturbed: the mean shifted by up to a few
    tenths of a standard deviation and the variance scaled by 0.6-1.6.
    """
    norms = _norm_layers(model)

    def uniform(low: float, high: float, n: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    def normal(std: float, n: int) -> torch.Tensor:
        return std * torch.randn(n, generator=generator)

    with torch.no_grad():
        for norm in norms:
            norm.weight.copy_(uniform(0.6, 1.4, norm.num_features))
            norm.bias.copy_(normal(0.2, norm.num_features))
            norm.running_mean.copy_(normal(0.2, norm.num_features))
            norm.running_var.copy_(uniform(0.5, 2.0, norm.num_features))
    if calibration_inputs is None:
        return

    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average: after one batch it equals that batch's statistics
    model.train()  # also makes spconv add conv biases itself, which its CPU path requires
    try:
        with torch.no_grad(), single_thread():
            model(*calibration_inputs)
    finally:
        model.eval()
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
    with torch.no_grad():
        for norm in norms:
            n = norm.num_features
            # A channel that was constant on the calibration batch would otherwise be amplified by
            # 1/sqrt(eps) ~ 30x in eval mode; keep its variance at a sane floor.
            std = norm.running_var.clamp_min(1e-2).sqrt()
            norm.running_mean.add_(normal(0.2, n) * std)
            norm.running_var.copy_(std.square() * uniform(0.6, 1.6, n))


def seeded_build(factory: Callable[[], ModelT], seed: int, calibration_inputs: tuple | None = None) -> ModelT:
    """Construct `factory()` with reproducible random weights and randomised BN, returned in eval mode.

    Module constructors draw their initial weights from torch's global RNG; forking it keeps the build
    reproducible without disturbing the caller's random state.  See `randomize_norm_` for the BN statistics
    and `calibration_inputs`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory()
    randomize_norm_(model, torch.Generator().manual_seed(seed + 1), calibration_inputs)
    return model.eval()
