"""Rulebook construction against a brute-force loop over every output site and kernel offset."""

from __future__ import annotations

import pytest
import torch
from oracles import border_sites, brute_force_pairs, clustered_sites, random_sites

from sparsetrt.exporter.backend import ConvGeometry, ConvKind, build_rulebook


def _triples(rb) -> set:
    ins, outs = rb.in_indices.tolist(), rb.out_indices.tolist()
    k_idx, m_idx = (rb.neighbors >= 0).nonzero(as_tuple=True)
    rows = rb.neighbors[k_idx, m_idx].tolist()
    return {(k, tuple(ins[i]), tuple(outs[m])) for k, m, i in zip(k_idx.tolist(), m_idx.tolist(), rows, strict=True)}


def _check(indices, shape, batch_size, kind, ks, st, pad, dil, opad=None):
    ndim = len(shape)
    geo = ConvGeometry.make(
        ConvKind(kind), ndim, ks, 1 if kind == "subm" else st, 0 if kind == "subm" else pad, dil, opad or 0
    )
    rb = build_rulebook(indices, shape, batch_size, geo)
    expected, out_sites, out_shape = brute_force_pairs(
        indices, shape, kind, geo.kernel_size, geo.stride, geo.padding, geo.dilation, geo.output_padding
    )
    assert rb.out_spatial_shape == out_shape
    assert {tuple(r) for r in rb.out_indices.tolist()} == out_sites
    assert rb.num_out == len(out_sites), "an output site appears twice"
    assert _triples(rb) == expected
    if kind == "subm":
        assert torch.equal(rb.out_indices, indices.to(torch.int32)), "submanifold outputs keep the input order"
    return rb


CASES = [
    # kind, shape, kernel, stride, padding, dilation
    ("subm", [7, 8, 9], 3, 1, 0, 1),
    ("subm", [7, 8, 9], (1, 3, 5), 1, 0, 1),
    ("subm", [7, 8, 9], 2, 1, 0, 1),
    ("subm", [7, 8, 9], (2, 3, 4), 1, 0, (1, 2, 1)),
    ("subm", [9, 10], 3, 1, 0, 2),
    ("subm", [20], 5, 1, 0, 1),
    ("subm", [4, 5, 4, 5], 3, 1, 0, 1),
    ("conv", [7, 8, 9], 3, 2, 1, 1),
    ("conv", [7, 8, 9], 3, 1, 0, 1),
    ("conv", [7, 8, 9], 2, 2, 0, 1),
    ("conv", [7, 8, 9], (3, 1, 1), (2, 1, 1), 0, 1),
    ("conv", [7, 8, 9], (2, 3, 2), (2, 1, 3), (0, 1, 1), (1, 2, 1)),
    ("conv", [7, 8, 9], 1, 2, 0, 1),
    ("conv", [11, 12], 3, 2, 1, 2),
    ("conv", [30], 4, 3, 2, 1),
    ("conv", [5, 5, 4, 5], 3, 2, 1, 1),
    ("transposed", [5, 6, 7], 3, 2, 1, 1),
    ("transposed", [5, 6, 7], 2, 2, 0, 1),
    ("transposed", [5, 6, 7], (2, 3, 2), (2, 1, 3), (0, 1, 0), (1, 2, 1)),
    ("transposed", [8, 9], 3, 1, 1, 1),
    ("transposed", [10], 4, 3, 1, 1),
]


@pytest.mark.parametrize("kind,shape,ks,st,pad,dil", CASES)
def test_rulebook_matches_brute_force(gen, kind, shape, ks, st, pad, dil):
    for sites in (random_sites, clustered_sites):
        indices = sites(gen, 40, shape, 2)
        _check(indices, shape, 2, kind, ks, st, pad, dil)


@pytest.mark.parametrize("kind,shape,ks,st,pad,dil", CASES)
def test_rulebook_edge_cases(gen, kind, shape, ks, st, pad, dil):
    ndim = len(shape)
    _check(torch.zeros((0, ndim + 1), dtype=torch.int32), shape, 1, kind, ks, st, pad, dil)  # N = 0
    _check(random_sites(gen, 1, shape, 1), shape, 1, kind, ks, st, pad, dil)  # one voxel
    _check(border_sites(shape, 2), shape, 2, kind, ks, st, pad, dil)  # every border of the grid
    # batch of 3 whose middle sample is empty
    idx = random_sites(gen, 30, shape, 3)
    idx = idx[idx[:, 0] != 1]
    rb = _check(idx, shape, 3, kind, ks, st, pad, dil)
    assert not (rb.out_indices[:, 0] == 1).any()


def test_transposed_output_padding(gen):
    idx = random_sites(gen, 30, [5, 6, 7], 2)
    rb = _check(idx, [5, 6, 7], 2, "transposed", 3, 2, 1, 1, opad=(1, 0, 1))
    assert rb.out_spatial_shape == (10, 11, 14)


def test_inverse_map_is_the_transpose(gen):
    idx = clustered_sites(gen, 60, [9, 10, 11], 2)
    geo = ConvGeometry.make(ConvKind.REGULAR, 3, 3, 2, 1, 1)
    rb = build_rulebook(idx, [9, 10, 11], 2, geo)
    inv = rb.inverted()
    assert inv is rb.inverted(), "the inverse is computed once"
    assert torch.equal(inv.out_indices, idx) and inv.out_spatial_shape == (9, 10, 11)
    # The inverse reads the strided conv's output site a and writes its input site b through offset k.
    assert {(k, b, a) for k, a, b in _triples(inv)} == _triples(rb)


def test_large_kernel_is_built_in_chunks(gen, monkeypatch):
    from sparsetrt.exporter.backend import rulebook as rulebook_module

    idx = clustered_sites(gen, 200, [12, 13, 14], 1)
    geo = ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 5, 1, 0, 1)
    whole = build_rulebook(idx, [12, 13, 14], 1, geo)
    monkeypatch.setattr(rulebook_module, "_CHUNK_ELEMENTS", 125 * 7)  # 7 sites per chunk
    chunked = build_rulebook(idx, [12, 13, 14], 1, geo)
    assert torch.equal(whole.neighbors, chunked.neighbors)
    for kind, st in ((ConvKind.REGULAR, 2), (ConvKind.TRANSPOSED, 2)):
        geo = ConvGeometry.make(kind, 3, 3, st, 1, 1)
        monkeypatch.setattr(rulebook_module, "_CHUNK_ELEMENTS", 1 << 22)
        a = build_rulebook(idx, [12, 13, 14], 1, geo)
        monkeypatch.setattr(rulebook_module, "_CHUNK_ELEMENTS", 27 * 5)
        b = build_rulebook(idx, [12, 13, 14], 1, geo)
        assert torch.equal(a.neighbors, b.neighbors) and torch.equal(a.out_indices, b.out_indices)


def test_geometry_errors():
    with pytest.raises(ValueError, match="too small"):
        ConvGeometry.make(ConvKind.REGULAR, 3, 5, 1, 0, 1).output_shape([3, 8, 8])
    with pytest.raises(ValueError, match="stride must be 1"):
        ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 3, 2, 0, 1)
    with pytest.raises(ValueError, match="3 entries"):
        ConvGeometry.make(ConvKind.REGULAR, 3, (3, 3), 1, 0, 1)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        ConvGeometry.make(ConvKind.REGULAR, 2, 0, 1, 0, 1)
