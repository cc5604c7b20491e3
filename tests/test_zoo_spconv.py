"""Every zoo model runs under spconv on the CPU with sane output shapes and values.

Also checks the oracle itself: `spconv_forward`'s bias workaround against dense convolutions, `.dense()`
against a plain scatter, and the invariants the zoo promises (deterministic builds and inputs, no kernel-1
sparse convs, per-sample independence within a batch).
"""

from __future__ import annotations

from functools import cache

import pytest
import spconv.pytorch as spconv
import torch
import torch.nn.functional as F
from spconv.pytorch.conv import SparseConvolution
from torch import nn
from zoo import ZOO, ZooEntry
from zoo.run import single_thread, spconv_forward

# spconv's `.dense()` indexes with a list of tensors, which torch deprecates; `test_dense_matches_scatter`
# guards the result, so the warning carries no information here.
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence for multidimensional indexing")

BATCH_SIZES = (1, 2)
NUM_VOXELS = (1500, 4000)

# name -> per-sample output description.  Dense outputs: `shape(batch_size)`; sparse outputs:
# `(channels, on_input_sites)` where on_input_sites means the output rows are exactly the input sites.
DENSE_SHAPES = {
    "second": lambda b: (b, 16, 20, 20),
    "centerpoint": lambda b: (b, 128, 16, 16),
    "sparse_cnn2d": lambda b: (b, 10),
}
SPARSE_OUTPUTS = {"parta2": (8, True), "minkunet": (19, True), "voxelnext": (11, False)}


@cache
def _model(name: str) -> nn.Module:
    """One model per name for the whole session (building runs a BN calibration pass)."""
    return ZOO[name].build()


def _site_keys(indices: torch.Tensor) -> torch.Tensor:
    """One int64 per `(batch, *spatial)` row, ordered like the rows (every zoo grid side is < 4096)."""
    keys = torch.zeros(indices.shape[0], dtype=torch.int64)
    for col in range(indices.shape[1]):
        keys = keys * 4096 + indices[:, col].long()
    return keys


def _check_inputs(entry: ZooEntry, feats: torch.Tensor, coords: torch.Tensor, batch_size: int) -> None:
    ndim = len(entry.spatial_shape)
    assert feats.dtype == torch.float32 and feats.shape == (coords.shape[0], entry.in_channels)
    assert coords.dtype == torch.int32 and coords.shape[1] == 1 + ndim
    assert coords[:, 0].min() >= 0 and coords[:, 0].max() == batch_size - 1
    assert (coords[:, 1:] >= 0).all() and (coords[:, 1:] < torch.tensor(entry.spatial_shape)).all()
    assert _site_keys(coords).unique().numel() == coords.shape[0], "duplicate sites"


def _sample_rows(out: tuple[torch.Tensor, torch.Tensor], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a sparse output belonging to one sample, sorted by site (spconv's order is arbitrary)."""
    feats, idx = out
    feats, idx = feats[idx[:, 0] == batch], idx[idx[:, 0] == batch]
    order = torch.argsort(_site_keys(idx))
    return feats[order], idx[order]


def _seed(gen: torch.Generator) -> int:
    """An input seed drawn from conftest's per-test generator: fresh each run, reproducible."""
    return int(torch.randint(2**31, (1,), generator=gen))


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_runs(name: str, gen: torch.Generator) -> None:
    entry = ZOO[name]
    model = _model(name)
    for num_voxels in NUM_VOXELS:
        seed = _seed(gen)
        single = None
        for batch_size in BATCH_SIZES:
            feats, coords, bs = entry.make_inputs(seed, batch_size, num_voxels)
            assert bs == batch_size
            _check_inputs(entry, feats, coords, batch_size)
            out = spconv_forward(model, feats, coords, batch_size)
            if name in DENSE_SHAPES:
                assert out.shape == DENSE_SHAPES[name](batch_size)
                assert torch.isfinite(out).all() and out.abs().max() > 0
            else:
                channels, on_input_sites = SPARSE_OUTPUTS[name]
                out_feats, out_idx = out
                assert out_feats.dtype == torch.float32 and out_idx.dtype == torch.int32
                assert out_feats.shape == (out_idx.shape[0], channels) and out_idx.shape[1] == 4
                assert torch.isfinite(out_feats).all() and out_feats.abs().max() > 0
                assert set(out_idx[:, 0].tolist()) == set(range(batch_size))
                assert _site_keys(out_idx).unique().numel() == out_idx.shape[0], "duplicate sites"
                if on_input_sites:
                    assert torch.equal(out_idx, coords)
            # make_inputs draws samples in order, so sample 0 is the same for every batch size; its
            # outputs must not depend on what else is in the batch.
            if single is None:
                single = out
            elif name in DENSE_SHAPES:
                torch.testing.assert_close(out[:1], single, rtol=1e-4, atol=1e-5)
            else:
                got, want = _sample_rows(out, 0), _sample_rows(single, 0)
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_is_deterministic(name: str, gen: torch.Generator) -> None:
    entry = ZOO[name]
    first, second = entry.build().state_dict(), _model(name).state_dict()
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key
    seed = _seed(gen)
    (feats_a, coords_a, bs_a), (feats_b, coords_b, bs_b) = (entry.make_inputs(seed, 2, 500) for _ in range(2))
    assert torch.equal(feats_a, feats_b) and torch.equal(coords_a, coords_b) and bs_a == bs_b


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_avoids_spconv_pitfalls(name: str) -> None:
    model = _model(name)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms, "the zoo exists to test BN folding"
    for norm in norms:
        assert not torch.equal(norm.running_var, torch.ones_like(norm.running_var)), "BN left at its init"
    for module_name, module in model.named_modules():
        if isinstance(module, SparseConvolution):
            # spconv's kernel-volume-1 path reads the weight with the wrong layout.
            assert torch.Size(module.kernel_size).numel() > 1, module_name


def test_spconv_forward_restores_state() -> None:
    """The bias workaround is temporary, and eval-mode spconv on the CPU really does refuse a bias."""
    model = _model("centerpoint")  # its residual blocks have conv biases, as in OpenPCDet
    feats, coords, batch_size = ZOO["centerpoint"].make_inputs(0, 1, 500)
    threads = torch.get_num_threads()
    model.train()
    spconv_forward(model, feats, coords, batch_size)
    assert all(m.training for m in model.modules())
    assert torch.get_num_threads() == threads
    model.eval()
    with torch.no_grad(), single_thread(), pytest.raises(AssertionError, match="bias"):
        model(feats, coords, batch_size)
    assert not any(m.training for m in model.modules())


def _random_sites(gen: torch.Generator, count: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """Distinct sites `[n <= count, 4]` int32 of batch 0, dense enough that most have neighbours."""
    sites = torch.stack([torch.randint(0, size, (count,), generator=gen) for size in shape], dim=1)
    sites = torch.unique(sites, dim=0)
    return torch.cat([torch.zeros(sites.shape[0], 1, dtype=torch.int64), sites], dim=1).int()


def test_spconv_forward_matches_dense_conv(gen: torch.Generator) -> None:
    """With biases, spconv_forward's SubM and strided convs equal dense conv3d on the active sites."""
    shape = (6, 7, 8)
    coords = _random_sites(gen, 150, shape)
    feats = torch.randn(coords.shape[0], 3, generator=gen)
    subm = spconv.SubMConv3d(3, 5, 3, padding=1, bias=True)
    strided = spconv.SparseConv3d(3, 5, 3, stride=2, padding=1, bias=True)
    dense_in = spconv.SparseConvTensor(feats, coords, list(shape), 1).dense()
    for conv, stride, mask_sites in ((subm, 1, True), (strided, 2, False)):
        with torch.no_grad():
            conv.bias.normal_(generator=gen)  # make the bias matter
            out = spconv_forward(conv, spconv.SparseConvTensor(feats, coords, list(shape), 1))
            # spconv stores weights [out, *kernel, in]; conv3d wants [out, in, *kernel].
            ref = F.conv3d(dense_in, conv.weight.permute(0, 4, 1, 2, 3), conv.bias, stride=stride, padding=1)
        site = out.indices.long()
        got = out.features
        want = ref[site[:, 0], :, site[:, 1], site[:, 2], site[:, 3]]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        if mask_sites:
            assert torch.equal(out.indices, coords)


def test_dense_matches_scatter(gen: torch.Generator) -> None:
    coords = _random_sites(gen, 100, (4, 5, 6))
    coords[: coords.shape[0] // 2, 0] = 1  # two samples
    feats = torch.randn(coords.shape[0], 2, generator=gen)
    want = torch.zeros(2, 2, 4, 5, 6)
    site = coords.long()
    want[site[:, 0], :, site[:, 1], site[:, 2], site[:, 3]] = feats
    torch.testing.assert_close(spconv.SparseConvTensor(feats, coords, [4, 5, 6], 2).dense(), want)
