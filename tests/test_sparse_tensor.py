"""SparseTensor construction, validation errors and conversions."""

from __future__ import annotations

import pytest
import torch
from oracles import clustered_sites, to_dense

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn

SHAPE = [6, 7, 8]


def _tensor(gen, n=30, batch_size=2):
    idx = clustered_sites(gen, n, SHAPE, batch_size)
    return SparseTensor(torch.randn(idx.shape[0], 3, generator=gen), idx, SHAPE, batch_size)


def test_attributes_and_dense(gen):
    x = _tensor(gen)
    assert x.spatial_shape == SHAPE and x.batch_size == 2 and x.indices.dtype == torch.int32
    assert x.dense().shape == (2, 3, *SHAPE)
    torch.testing.assert_close(x.dense(), to_dense(x.features, x.indices, SHAPE, 2))


def test_replace_feature_keeps_sites_and_cache(gen):
    x = _tensor(gen)
    y = snn.SubMConv3d(3, 3, 3, indice_key="k")(x)
    z = y.replace_feature(y.features * 2)
    assert z.indices is y.indices and z.indice_dict is y.indice_dict and z.spatial_shape == y.spatial_shape
    with pytest.raises(AttributeError, match="replace_feature"):
        y.features = y.features


def test_row_count_may_change_until_the_tensor_is_used(gen):
    """As in spconv (VoxelNeXt's bev_out): replace_feature takes any row count and `.indices` may be assigned
    afterwards; a layer or dense() meeting features and sites of different counts refuses, saying what to do."""
    x = _tensor(gen)
    conv = snn.SubMConv3d(3, 3, 3)
    doubled = x.replace_feature(torch.cat([x.features, x.features]))
    for use in (lambda: conv(doubled), doubled.dense):
        with pytest.raises(ValueError, match=r"feature rows but .* sites: .*assign `.indices`"):
            use()
    shrunk = x.replace_feature(x.features[:-1])
    shrunk.indices = x.indices[:-1]  # consistent again
    want = conv(SparseTensor(x.features[:-1], x.indices[:-1], x.spatial_shape, x.batch_size))
    torch.testing.assert_close(conv(shrunk).features, want.features)
    torch.testing.assert_close(shrunk.dense(), want.replace_feature(x.features[:-1]).dense())


def test_add(gen):
    x = _tensor(gen)
    torch.testing.assert_close((x + x).features, 2 * x.features)
    torch.testing.assert_close((x + x.features).features, 2 * x.features)


def test_from_dense_round_trip(gen):
    x = _tensor(gen)
    y = SparseTensor.from_dense(x.dense(channels_first=False))
    torch.testing.assert_close(y.dense(), x.dense())


def test_duplicate_sites_are_rejected(gen):
    idx = clustered_sites(gen, 20, SHAPE, 1)
    idx = torch.cat([idx, idx[3:4]])
    with pytest.raises(ValueError, match=r"rows 3 and 20 are the same site .*merge duplicate"):
        SparseTensor(torch.zeros(idx.shape[0], 2), idx, SHAPE, 1)


@pytest.mark.parametrize("col,value,what", [(1, 6, "outside"), (3, -1, "outside"), (0, 2, "outside")])
def test_sites_outside_the_grid_are_rejected(gen, col, value, what):
    idx = clustered_sites(gen, 20, SHAPE, 2)
    idx[5, col] = value
    with pytest.raises(ValueError, match=rf"row 5 .* lies {what} batch_size 2 x spatial_shape \[6, 7, 8\]"):
        SparseTensor(torch.zeros(idx.shape[0], 2), idx, SHAPE, 2)


def test_malformed_inputs_are_rejected(gen):
    idx = clustered_sites(gen, 10, SHAPE, 1)
    feats = torch.zeros(idx.shape[0], 2)
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        SparseTensor(feats, idx[:, :3], SHAPE, 1)
    with pytest.raises(ValueError, match="integer"):
        SparseTensor(feats, idx.float(), SHAPE, 1)
    with pytest.raises(ValueError, match="rows but indices have"):
        SparseTensor(feats[:-1], idx, SHAPE, 1)
    with pytest.raises(ValueError, match="floating point"):
        SparseTensor(feats.long(), idx, SHAPE, 1)
    with pytest.raises(ValueError, match="2-D"):
        SparseTensor(feats[:, 0], idx, SHAPE, 1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SparseTensor(feats, idx, SHAPE, 0)


def test_validation_can_be_switched_off(gen):
    idx = clustered_sites(gen, 10, SHAPE, 1)
    idx = torch.cat([idx, idx[:1]])
    x = SparseTensor(torch.zeros(idx.shape[0], 2), idx, SHAPE, 1, validate=False)  # the caller's promise
    assert x.indices.shape[0] == 11


def test_int64_indices_are_accepted_and_converted(gen):
    idx = clustered_sites(gen, 10, SHAPE, 1).long()
    x = SparseTensor(torch.zeros(idx.shape[0], 2), idx, SHAPE, 1)
    assert x.indices.dtype == torch.int32


def test_empty_tensor_runs_through_every_layer():
    x = SparseTensor(torch.zeros(0, 3), torch.zeros(0, 4, dtype=torch.int32), SHAPE, 2)
    net = snn.SparseSequential(
        snn.SubMConv3d(3, 4, 3),
        torch.nn.BatchNorm1d(4),
        torch.nn.ReLU(),
        snn.SparseConv3d(4, 4, 3, 2, 1, indice_key="d"),
        snn.SparseMaxPool3d(2, 1),
        snn.SparseConvTranspose3d(4, 4, 2, 2),
        snn.SparseConv3d(4, 4, 1, 1),
    )
    net.train()
    y = net(x)
    assert y.features.shape == (0, 4)
    assert snn.ToDense()(y).abs().sum() == 0
