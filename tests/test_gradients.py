"""The layers train: gradients of conv and max pool against finite differences (float64)."""

from __future__ import annotations

import torch
from oracles import clustered_sites

from sparsetrt.exporter.backend import ConvGeometry, ConvKind, build_rulebook, sparse_conv, sparse_max_pool


def test_conv_gradients(gen):
    idx = clustered_sites(gen, 25, [5, 6, 7], 1)
    for kind, st in ((ConvKind.SUBMANIFOLD, 1), (ConvKind.REGULAR, 2), (ConvKind.TRANSPOSED, 2)):
        rb = build_rulebook(idx, [5, 6, 7], 1, ConvGeometry.make(kind, 3, 3, st, 1 if st > 1 else 0, 1))
        x = torch.randn(idx.shape[0], 2, generator=gen, dtype=torch.float64, requires_grad=True)
        w = torch.randn(3, 3, 3, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
        b = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, w, b, rb=rb: sparse_conv(x, w, b, rb), (x, w, b))


def test_max_pool_gradients(gen):
    idx = clustered_sites(gen, 25, [5, 6, 7], 1)
    rb = build_rulebook(idx, [5, 6, 7], 1, ConvGeometry.make(ConvKind.REGULAR, 3, 2, 2, 0, 1))
    x = torch.randn(idx.shape[0], 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sparse_max_pool(x, rb), (x,))
