"""Layers, rulebooks and state dicts against spconv 2.3.8 itself (CPU build)."""

from __future__ import annotations

import pytest
import torch
from oracles import (
    assert_same_sparse,
    border_sites,
    clustered_sites,
    load_into_spconv,
    random_sites,
    spconv_forward,
)

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn
from sparsetrt.exporter.backend import ConvGeometry, ConvKind, build_rulebook

spconv = pytest.importorskip("spconv.pytorch", reason="spconv 2.3.8 is a test dependency: pip install -e '.[test]'")
from spconv.core import ConvAlgo  # noqa: E402
from spconv.pytorch import ops as spconv_ops  # noqa: E402

SHAPES = {1: [29], 2: [12, 13], 3: [9, 10, 11], 4: [5, 6, 5, 6]}


def _name(ndim: int, base: str) -> str:
    return f"{base}{ndim}d"


def _pair(ndim, base, *args, **kwargs):
    """The same layer built from our nn and from spconv's, with identical random parameters."""
    ours = getattr(snn, _name(ndim, base))(*args, **kwargs)
    theirs = getattr(spconv, _name(ndim, base))(*args, **kwargs)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.5)
    load_into_spconv(theirs, ours.state_dict())
    return ours, theirs


def _run_both(ours, theirs, feats, idx, shape, batch_size):
    with torch.no_grad():
        a = ours(SparseTensor(feats, idx, shape, batch_size))
    b = spconv_forward(theirs, spconv.SparseConvTensor(feats, idx, shape, batch_size))
    return a, b


LAYERS = [
    # base, args (after channels), kwargs
    ("SubMConv", (3,), {}),
    ("SubMConv", (5,), {"dilation": 2}),
    ("SubMConv", (1,), {}),
    ("SparseConv", (3,), {"stride": 2, "padding": 1}),
    ("SparseConv", (2,), {"stride": 2}),
    ("SparseConv", (3,), {"stride": 1, "padding": 1}),
    ("SparseConv", (1,), {}),
    ("SparseConv", (3,), {"stride": 2, "dilation": 2}),
    ("SparseConvTranspose", (3,), {"stride": 2, "padding": 1}),
    ("SparseConvTranspose", (2,), {"stride": 2}),
]


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("base,args,kwargs", LAYERS)
@pytest.mark.parametrize("sites", ["clustered", "uniform", "border"])
def test_layer_matches_spconv(gen, ndim, base, args, kwargs, sites):
    shape = SHAPES[ndim]
    if sites == "border":
        idx = border_sites(shape, 2)
    else:
        idx = (clustered_sites if sites == "clustered" else random_sites)(gen, 60, shape, 2)
    c_in, c_out = (1, 3) if sites == "border" else (3, 4)
    ours, theirs = _pair(ndim, base, c_in, c_out, *args, **kwargs)
    feats = torch.randn(idx.shape[0], c_in, generator=gen)
    a, b = _run_both(ours, theirs, feats, idx, shape, 2)
    assert a.spatial_shape == list(b.spatial_shape)
    assert_same_sparse(a.indices, a.features, b.indices, b.features)
    if base == "SubMConv":
        assert torch.equal(a.indices, b.indices), "submanifold outputs keep the input order, as spconv's do"


def test_asymmetric_kernels_match_spconv(gen):
    shape = SHAPES[3]
    idx = clustered_sites(gen, 80, shape, 2)
    feats = torch.randn(idx.shape[0], 3, generator=gen)
    for base, kwargs in [
        ("SubMConv", {"kernel_size": (1, 3, 5)}),
        ("SparseConv", {"kernel_size": (3, 1, 1), "stride": (2, 1, 1)}),
        (
            "SparseConv",
            {"kernel_size": (2, 3, 2), "stride": (2, 1, 3), "padding": (0, 1, 1), "dilation": (1, 2, 1)},
        ),
        ("SparseConvTranspose", {"kernel_size": (2, 3, 2), "stride": (2, 1, 3), "padding": (0, 1, 0)}),
    ]:
        ours, theirs = _pair(3, base, 3, 5, **kwargs)
        a, b = _run_both(ours, theirs, feats, idx, shape, 2)
        assert a.spatial_shape == list(b.spatial_shape)
        assert_same_sparse(a.indices, a.features, b.indices, b.features)


@pytest.mark.parametrize("ndim", [2, 3])
def test_max_pool_matches_spconv_on_nonnegative_features(gen, ndim):
    """spconv's CPU max pool starts from 0 (it returns max(0, max over inputs)); ours is the true max over
    the active inputs (checked against dense max pooling elsewhere). On non-negative features, as after a
    ReLU, the two must agree exactly."""
    shape = SHAPES[ndim]
    idx = clustered_sites(gen, 80, shape, 2)
    feats = torch.rand(idx.shape[0], 3, generator=gen)
    for kwargs in [{"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2}]:
        ours = getattr(snn, _name(ndim, "SparseMaxPool"))(**kwargs)
        theirs = getattr(spconv, _name(ndim, "SparseMaxPool"))(**kwargs)
        a, b = _run_both(ours, theirs, feats, idx, shape, 2)
        assert_same_sparse(a.indices, a.features, b.indices, b.features)


def _spconv_triples(idx, shape, batch_size, ks, st, pad, dil, subm, transposed):
    outids, pairs, counts = spconv_ops.get_indice_pairs(
        idx, batch_size, shape, ConvAlgo.Native, ks, st, pad, dil, [0] * len(shape), subm, transposed
    )
    ins, outs = idx.tolist(), outids.tolist()
    triples = set()
    for k, n in enumerate(counts.tolist()):
        for i, o in zip(pairs[0, k, :n].tolist(), pairs[1, k, :n].tolist(), strict=True):
            triples.add((k, tuple(ins[i]), tuple(outs[o])))
    if subm:
        # spconv's native submanifold rulebook stores only the offsets before the kernel centre: the pair
        # (k, i, o) implies (K-1-k, o, i), and the centre is the identity. Complete it before comparing.
        kvol = len(counts)
        triples |= {(kvol - 1 - k, o, i) for k, i, o in triples}
        triples |= {(kvol // 2, tuple(r), tuple(r)) for r in ins}
    return triples


def _our_triples(rb):
    ins, outs = rb.in_indices.tolist(), rb.out_indices.tolist()
    k_idx, m_idx = (rb.neighbors >= 0).nonzero(as_tuple=True)
    rows = rb.neighbors[k_idx, m_idx].tolist()
    return {(k, tuple(ins[i]), tuple(outs[m])) for k, m, i in zip(k_idx.tolist(), m_idx.tolist(), rows, strict=True)}


@pytest.mark.parametrize(
    "kind,ks,st,pad,dil",
    [
        ("subm", 3, 1, 1, 1),
        ("subm", (1, 3, 5), 1, (0, 1, 2), 1),
        ("conv", 3, 2, 1, 1),
        ("conv", (3, 1, 1), (2, 1, 1), 0, 1),
        ("conv", 2, 2, 0, 1),
        ("transposed", 3, 2, 1, 1),
        ("transposed", 2, 2, 0, 1),
    ],
)
def test_rulebook_contents_match_spconv(gen, kind, ks, st, pad, dil):
    shape = SHAPES[3]
    idx = clustered_sites(gen, 120, shape, 2)
    geo = ConvGeometry.make(ConvKind(kind), 3, ks, 1 if kind == "subm" else st, 0 if kind == "subm" else pad, dil)
    rb = build_rulebook(idx, shape, 2, geo)
    ours = _our_triples(rb)
    theirs = _spconv_triples(
        idx,
        shape,
        2,
        list(geo.kernel_size),
        list(geo.stride if kind != "subm" else (1, 1, 1)),
        [k // 2 for k in geo.kernel_size] if kind == "subm" else list(geo.padding),
        list(geo.dilation),
        kind == "subm",
        kind == "transposed",
    )
    assert ours == theirs
    assert len(ours) == int(rb.pair_counts().sum())


def _backbone(ns, c_in: int):
    """One model definition, built from either namespace: spconv's layers or ours."""
    nn = torch.nn
    return ns.SparseSequential(
        ns.SubMConv3d(c_in, 8, 3, padding=1, bias=False, indice_key="subm1"),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        ns.SubMConv3d(8, 8, 3, padding=1, bias=False, indice_key="subm1"),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        ns.SparseConv3d(8, 16, 3, stride=2, padding=1, bias=False, indice_key="down1", record_voxel_count=True),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        ns.SubMConv3d(16, 16, 3, padding=1, indice_key="subm2"),
        nn.ReLU(),
        ns.SparseMaxPool3d(2, indice_key="pool"),
        ns.SubMConv3d(16, 16, 3, padding=1),
        nn.ReLU(),
        ns.SparseInverseConv3d(16, 16, 2, indice_key="pool"),
        ns.SparseInverseConv3d(16, 8, 3, indice_key="down1"),
        nn.BatchNorm1d(8),
        ns.SparseConv3d(8, 4, (3, 1, 1), stride=(2, 1, 1), bias=True),
        ns.ToDense(),
    )


@pytest.mark.parametrize("batch_size", [1, 2])
def test_spconv_state_dict_loads_and_matches(gen, batch_size):
    shape = [17, 20, 22]
    theirs = _backbone(spconv, 4)
    with torch.no_grad():
        for name, t in theirs.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif t.is_floating_point():
                t.normal_(0, 0.4)
    ours = _backbone(snn, 4)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # unchanged: same keys, shapes and layout
    ours.eval()
    idx = clustered_sites(gen, 400, shape, batch_size)
    feats = torch.randn(idx.shape[0], 4, generator=gen)
    with torch.no_grad():
        a = ours(SparseTensor(feats, idx, shape, batch_size))
    b = spconv_forward(theirs, spconv.SparseConvTensor(feats, idx, shape, batch_size))
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_sparse_tensor_round_trips_through_spconv(gen):
    idx = clustered_sites(gen, 50, SHAPES[3], 2)
    feats = torch.randn(idx.shape[0], 3, generator=gen)
    ours = SparseTensor(feats, idx, SHAPES[3], 2)
    theirs = ours.to_spconv()
    assert isinstance(theirs, spconv.SparseConvTensor)
    back = SparseTensor.from_spconv(theirs)
    assert torch.equal(back.features, feats) and torch.equal(back.indices, idx)
    assert back.spatial_shape == SHAPES[3] and back.batch_size == 2
    torch.testing.assert_close(ours.dense(), theirs.dense())
