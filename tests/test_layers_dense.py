"""Layers against dense torch ops: densify, run conv/conv_transpose/max_pool, sample at the active sites."""

from __future__ import annotations

import pytest
import torch
from oracles import (
    active_sites,
    assert_same_sparse,
    border_sites,
    clustered_sites,
    dense_conv,
    dense_conv_transpose,
    dense_max_pool,
    dense_subm,
    random_sites,
    sample,
    to_dense,
)

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn

SHAPES = {1: [23], 2: [11, 13], 3: [7, 8, 9]}
SUBM = {1: snn.SubMConv1d, 2: snn.SubMConv2d, 3: snn.SubMConv3d}
CONV = {1: snn.SparseConv1d, 2: snn.SparseConv2d, 3: snn.SparseConv3d}
CONVT = {1: snn.SparseConvTranspose1d, 2: snn.SparseConvTranspose2d, 3: snn.SparseConvTranspose3d}
INV = {1: snn.SparseInverseConv1d, 2: snn.SparseInverseConv2d, 3: snn.SparseInverseConv3d}
POOL = {1: snn.SparseMaxPool1d, 2: snn.SparseMaxPool2d, 3: snn.SparseMaxPool3d}


def _inputs(gen, ndim, n, c_in, batch_size=2, kind="clustered"):
    shape = SHAPES[ndim]
    if kind == "border":
        idx = border_sites(shape, batch_size)
    elif kind == "empty":
        idx = torch.zeros((0, ndim + 1), dtype=torch.int32)
    else:
        idx = (clustered_sites if kind == "clustered" else random_sites)(gen, n, shape, batch_size)
    feats = torch.randn(idx.shape[0], c_in, generator=gen)
    return SparseTensor(feats, idx, shape, batch_size), shape


def _randomize(layer, gen):
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return layer


def _expected_sites(mask_out: torch.Tensor) -> set:
    return active_sites(mask_out)


KINDS = ["clustered", "uniform", "border", "empty"]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ks,dil", [(3, 1), (2, 1), (5, 1), (3, 2), ("asym", 1)])
def test_subm_vs_dense(gen, ndim, kind, ks, dil):
    ks = (3, 1, 2)[:ndim] if ks == "asym" else ks
    c_in, c_out = (1, 3) if kind == "border" else (3, 4)
    x, shape = _inputs(gen, ndim, 50, c_in, kind=kind)
    layer = _randomize(SUBM[ndim](c_in, c_out, ks, dilation=dil, bias=True), gen)
    with torch.no_grad():
        out = layer(x)
        ref = dense_subm(to_dense(x.features, x.indices, shape, 2), layer.weight, layer.bias, layer.dilation)
    assert torch.equal(out.indices, x.indices)
    torch.testing.assert_close(out.features, sample(ref, x.indices), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "ks,st,pad,dil",
    [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 0, 2), (1, 1, 0, 1), ("asym", "asym", "asym", 1)],
)
def test_sparse_conv_vs_dense(gen, ndim, kind, ks, st, pad, dil):
    if ks == "asym":
        ks, st, pad = (3, 2, 1)[:ndim], (2, 1, 3)[:ndim], (1, 0, 1)[:ndim]
    x, shape = _inputs(gen, ndim, 50, 3, kind=kind)
    layer = _randomize(CONV[ndim](3, 2, ks, st, pad, dil, bias=True), gen)
    with torch.no_grad():
        out = layer(x)
        dense_x = to_dense(x.features, x.indices, shape, 2)
        ref = dense_conv(dense_x, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation)
        ones = torch.ones((1, *layer.kernel_size, 1))
        mask = dense_conv(
            to_dense(torch.ones(x.indices.shape[0], 1), x.indices, shape, 2),
            ones,
            None,
            layer.stride,
            layer.padding,
            layer.dilation,
        )
    assert list(ref.shape[2:]) == out.spatial_shape
    ref_sites = _expected_sites(mask)
    ref_idx = torch.tensor(sorted(ref_sites), dtype=torch.int32).reshape(-1, ndim + 1)
    assert_same_sparse(out.indices, out.features, ref_idx, sample(ref, ref_idx))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "ks,st,pad,dil", [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 0, 2), ("asym", "asym", "asym", 1)]
)
def test_conv_transpose_vs_dense(gen, ndim, kind, ks, st, pad, dil):
    if ks == "asym":
        ks, st, pad = (3, 2, 4)[:ndim], (2, 1, 3)[:ndim], (1, 0, 1)[:ndim]
    x, shape = _inputs(gen, ndim, 30, 3, kind=kind)
    layer = _randomize(CONVT[ndim](3, 2, ks, st, pad, dil, bias=True), gen)
    with torch.no_grad():
        out = layer(x)
        zero_pad = [0] * ndim
        ref = dense_conv_transpose(
            to_dense(x.features, x.indices, shape, 2),
            layer.weight,
            layer.bias,
            layer.stride,
            layer.padding,
            layer.dilation,
            zero_pad,
        )
        ones = torch.ones((1, *layer.kernel_size, 1))
        mask = dense_conv_transpose(
            to_dense(torch.ones(x.indices.shape[0], 1), x.indices, shape, 2),
            ones,
            None,
            layer.stride,
            layer.padding,
            layer.dilation,
            zero_pad,
        )
    assert list(ref.shape[2:]) == out.spatial_shape
    ref_idx = torch.tensor(sorted(_expected_sites(mask)), dtype=torch.int32).reshape(-1, ndim + 1)
    assert_same_sparse(out.indices, out.features, ref_idx, sample(ref, ref_idx))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ks,st,pad,dil", [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (2, 2, 1, 2)])
def test_max_pool_vs_dense(gen, ndim, kind, ks, st, pad, dil):
    x, shape = _inputs(gen, ndim, 50, 3, kind=kind)
    layer = POOL[ndim](ks, st, pad, dil)
    out = layer(x)
    # Inactive sites are absent, not zeros: -inf makes the dense max ignore them.
    ref = dense_max_pool(
        to_dense(x.features, x.indices, shape, 2, fill=float("-inf")),
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
    )
    mask = dense_max_pool(
        to_dense(torch.ones(x.indices.shape[0], 1), x.indices, shape, 2),
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
    )
    ref_idx = torch.tensor(sorted(_expected_sites(mask)), dtype=torch.int32).reshape(-1, ndim + 1)
    assert list(ref.shape[2:]) == out.spatial_shape
    assert_same_sparse(out.indices, out.features, ref_idx, sample(ref, ref_idx))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("ks,st,pad", [(3, 2, 1), (2, 2, 0), (3, 2, 0)])
def test_inverse_conv_vs_dense(gen, ndim, ks, st, pad):
    """An inverse conv is the dense transposed conv back onto the strided conv's input grid, sampled at
    that conv's input sites."""
    x, shape = _inputs(gen, ndim, 60, 3)
    down = _randomize(CONV[ndim](3, 5, ks, st, pad, indice_key="down"), gen)
    up = _randomize(INV[ndim](5, 2, ks, indice_key="down"), gen)
    with torch.no_grad():
        mid = down(x)
        out = up(mid)
        dense_mid = to_dense(mid.features, mid.indices, mid.spatial_shape, 2)
        # The strided conv floors its output size, so conv_transpose's natural output can fall short of
        # the input grid by up to stride-1 rows; output_padding restores them (with their contributions).
        natural = dense_conv_transpose(
            dense_mid, up.weight, up.bias, down.stride, down.padding, down.dilation, [0] * ndim
        )
        extra = [s - r for s, r in zip(shape, natural.shape[2:], strict=True)]
        ref = dense_conv_transpose(dense_mid, up.weight, up.bias, down.stride, down.padding, down.dilation, extra)
    assert torch.equal(out.indices, x.indices) and out.spatial_shape == shape
    torch.testing.assert_close(out.features, sample(ref, x.indices), rtol=1e-5, atol=1e-5)


def test_dense_matches_scatter(gen):
    x, shape = _inputs(gen, 3, 40, 3)
    torch.testing.assert_close(x.dense(), to_dense(x.features, x.indices, shape, 2))
    torch.testing.assert_close(
        x.dense(channels_first=False), to_dense(x.features, x.indices, shape, 2).permute(0, 2, 3, 4, 1)
    )


def test_fp16_accumulates_in_fp32(gen):
    x, shape = _inputs(gen, 3, 80, 16)
    layer = _randomize(snn.SubMConv3d(16, 16, 3), gen)
    half = SparseTensor(x.features.half(), x.indices, shape, 2)
    layer_h = snn.SubMConv3d(16, 16, 3).half()
    layer_h.load_state_dict({k: v.half() for k, v in layer.state_dict().items()})
    with torch.no_grad():
        out = layer_h(half)
        ref = dense_subm(
            to_dense(half.features.float(), x.indices, shape, 2),
            layer_h.weight.float(),
            layer_h.bias.float(),
            (1, 1, 1),
        )
    assert out.features.dtype == torch.float16
    # fp16 output rounding of values |y| ~ 10: half an ulp is ~5e-3; fp32 accumulation keeps us there.
    torch.testing.assert_close(out.features.float(), sample(ref, x.indices), rtol=1e-3, atol=1e-2)
