"""The reference backend on CUDA tensors: the same torch ops must give the same rulebooks and sums."""

from __future__ import annotations

import pytest
import torch
from oracles import clustered_sites

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the backend's CUDA path needs one"
)


def test_cuda_matches_cpu(gen):
    shape = [9, 10, 11]
    idx = clustered_sites(gen, 300, shape, 2)
    feats = torch.randn(idx.shape[0], 8, generator=gen)
    net = snn.SparseSequential(
        snn.SubMConv3d(8, 8, 3, indice_key="s"),
        torch.nn.ReLU(),
        snn.SparseConv3d(8, 16, 3, 2, 1, indice_key="d"),
        snn.SparseMaxPool3d(2, 1),
        snn.SparseConvTranspose3d(16, 8, 2, 1),
        snn.SubMConv3d(8, 8, 3),
    ).eval()
    net_down = snn.SparseSequential(
        snn.SparseConv3d(8, 4, 3, 2, 1, indice_key="d2"), snn.SparseInverseConv3d(4, 4, 3, indice_key="d2")
    ).eval()
    with torch.no_grad():
        cpu = net(SparseTensor(feats, idx, shape, 2))
        gpu = net.cuda()(SparseTensor(feats.cuda(), idx.cuda(), shape, 2))
        cpu_inv = net_down(SparseTensor(feats, idx, shape, 2))
        gpu_inv = net_down.cuda()(SparseTensor(feats.cuda(), idx.cuda(), shape, 2))
    assert torch.equal(cpu.indices, gpu.indices.cpu())
    torch.testing.assert_close(cpu.features, gpu.features.cpu(), rtol=1e-4, atol=1e-4)
    assert torch.equal(cpu_inv.indices, gpu_inv.indices.cpu())
    torch.testing.assert_close(cpu_inv.features, gpu_inv.features.cpu(), rtol=1e-4, atol=1e-4)
