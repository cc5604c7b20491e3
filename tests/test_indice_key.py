"""Rulebook sharing: spconv's indice_key rules, automatic submanifold sharing, and their errors."""

from __future__ import annotations

import pytest
import torch
from oracles import clustered_sites

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn

SHAPE = [9, 10, 11]


@pytest.fixture
def x(gen):
    idx = clustered_sites(gen, 80, SHAPE, 2)
    return SparseTensor(torch.randn(idx.shape[0], 4, generator=gen), idx, SHAPE, 2)


def _rulebooks(t):
    return {id(v) for v in t.indice_dict.values()}


def test_same_key_shares_one_rulebook(x):
    a = snn.SubMConv3d(4, 4, 3, indice_key="s")(x)
    b = snn.SubMConv3d(4, 4, 3, indice_key="s")(a)
    assert b.indice_dict["s"] is a.indice_dict["s"]


def test_submanifold_layers_share_without_a_key(x):
    a = snn.SubMConv3d(4, 4, 3)(x)
    b = snn.SubMConv3d(4, 4, 3)(a.replace_feature(a.features.relu()))
    assert _rulebooks(a) == _rulebooks(b) and len(_rulebooks(b)) == 1
    c = snn.SubMConv3d(4, 4, 5)(b)  # another kernel: another rulebook
    assert len(_rulebooks(c)) == 2


def test_branches_do_not_leak_keys(x):
    a = snn.SubMConv3d(4, 4, 3, indice_key="branch_a")(x)
    assert "branch_a" not in x.indice_dict and "branch_a" in a.indice_dict


def test_inverse_uses_its_partner(x):
    down = snn.SparseConv3d(4, 8, 3, 2, 1, indice_key="d")(x)
    up = snn.SparseInverseConv3d(8, 4, 3, indice_key="d")(down)
    assert torch.equal(up.indices, x.indices) and up.spatial_shape == SHAPE


def test_key_errors(x):
    a = snn.SubMConv3d(4, 4, 3, indice_key="s")(x)
    with pytest.raises(ValueError, match="kernel"):
        snn.SubMConv3d(4, 4, 5, indice_key="s")(a)
    down = snn.SparseConv3d(4, 4, 3, 2, 1, indice_key="d")(a)
    with pytest.raises(ValueError, match="same sites"):
        snn.SubMConv3d(4, 4, 3, indice_key="s")(down)
    with pytest.raises(ValueError, match="already used"):
        snn.SparseConv3d(4, 4, 3, 2, 1, indice_key="d")(down)
    with pytest.raises(ValueError, match="only share a key with other submanifold"):
        snn.SubMConv3d(4, 4, 3, indice_key="d")(down)
    with pytest.raises(ValueError, match="no rulebook under indice_key 'missing'"):
        snn.SparseInverseConv3d(4, 4, 3, indice_key="missing")(down)
    with pytest.raises(ValueError, match="partner's kernel size"):
        snn.SparseInverseConv3d(4, 4, 2, indice_key="d")(down)
    with pytest.raises(ValueError, match="only undo a regular"):
        snn.SparseInverseConv3d(4, 4, 3, indice_key="s")(down)
    further = snn.SparseConv3d(4, 4, 3, 2, 1)(down)  # carries key "d", but on other sites
    with pytest.raises(ValueError, match="partner's output sites"):
        snn.SparseInverseConv3d(4, 4, 3, indice_key="d")(further)
    with pytest.raises(ValueError, match="channels"):
        snn.SubMConv3d(5, 4, 3)(x)


def test_constructor_errors():
    with pytest.raises(ValueError, match="groups"):
        snn.SubMConv3d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="stride"):
        snn.SubMConv3d(4, 4, 3, stride=2)
    with pytest.raises(ValueError, match="act_type"):
        snn.SparseConvolution(3, 4, 4, 3, act_type="gelu")
