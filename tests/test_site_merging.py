"""Merging sparse tensors over different site sets, and export's checks of what it writes.

- ``UniqueSites`` / ``SegmentReduce`` reference kernels against brute force (random rows with duplicates, empty
  input, segments outside [0, M), fp16 accumulating in fp32);
- the torch idioms real models use (VoxelNeXt's ``torch.unique`` + ``index_add_`` after concatenating strided
  stages with ``.indices`` assigned after ``replace_feature``, spconv's ``Fsp.sparse_add``, ours with
  max/mean, boolean-mask selection of sites) export as those ops (``MaskRows`` for the mask) and match spconv
  through the file on frames the trace never saw;
- what cannot be exported fails naming the module and the line; a file that passes the ONNX checker but
  computes something else (a corrupt constant, a count the trace baked in) is refused, nothing written.
"""

from __future__ import annotations

import importlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import spconv.pytorch as spconv
import spconv.pytorch.functional as Fsp
import torch
from oracles import assert_outputs_close
from spconv.pytorch import tables
from torch import nn
from zoo.inputs import lidar_voxels
from zoo.run import spconv_forward

from sparsetrt.exporter import convert, export
from sparsetrt.exporter import graph_passes as passes
from sparsetrt.exporter.backend.ops import segment_reduce, unique_rows
from sparsetrt.exporter.dynamo_export import DynamoExportError
from sparsetrt.exporter.functional import merge_duplicate_sites, sparse_add
from sparsetrt.exporter.idioms import ExportError
from sparsetrt.exporter.sparse_tensor import SparseTensor
from sparsetrt.exporter.verify import ExportVerificationError
from sparsetrt.runtime import ReferenceSession

SHAPE = (9, 20, 20)
INPUTS = ["voxel_features", "voxel_coords"]


# ------------------------------------------------------------------------------------ reference kernels
def test_unique_rows_against_brute_force(gen):
    for n, k in ((0, 3), (1, 4), (200, 3), (500, 1)):
        rows = torch.randint(-3, 4, (n, k), generator=gen, dtype=torch.int32)
        unique, inverse, counts = unique_rows(rows)
        distinct = sorted({tuple(r) for r in rows.tolist()})  # tuples sort lexicographically, column 0 first
        assert unique.tolist() == [list(r) for r in distinct]
        assert unique.dtype == inverse.dtype == counts.dtype == torch.int32
        assert torch.equal(unique[inverse.long()], rows) if n else inverse.numel() == 0
        assert counts.tolist() == [sum(tuple(r) == d for r in rows.tolist()) for d in distinct]


@pytest.mark.parametrize("reduction", ["sum", "max"])
def test_segment_reduce_against_a_loop(gen, reduction):
    n, m, c = 300, 40, 5
    features = torch.randn(n, c, generator=gen)
    segments = torch.randint(-5, m + 5, (n,), generator=gen, dtype=torch.int32)  # some outside [0, M): ignored
    init = torch.randn(m, c, generator=gen)

    def loop(features: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        want = init.clone()
        for i, s in enumerate(segments.tolist()):
            if 0 <= s < m:
                want[s] = want[s] + features[i] if reduction == "sum" else torch.maximum(want[s], features[i])
        return want

    torch.testing.assert_close(
        segment_reduce(features, segments, init, reduction), loop(features, init), rtol=0, atol=1e-5
    )
    half = segment_reduce(features.half(), segments, init.half(), reduction)
    assert half.dtype == torch.float16  # accumulated in fp32 from the fp16 inputs, rounded once
    torch.testing.assert_close(half, loop(features.half().float(), init.half().float()).half(), rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------- idioms, exported
def _block(cin: int, cout: int, **kw) -> spconv.SparseSequential:
    return spconv.SparseSequential(spconv.SparseConv3d(cin, cout, 3, bias=False, **kw), nn.BatchNorm1d(cout), nn.ReLU())


class BevMerge(nn.Module):
    """VoxelNeXt's sparse BEV, written as OpenPCDet writes it: strided stages scaled back onto the stride-2 grid
    in place, features concatenated by replace_feature (row count changes) before `.indices` is assigned, z
    dropped, duplicate (b, y, x) sites summed with torch.unique + new_zeros + index_add_, then 2D convs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = spconv.SubMConv3d(3, 8, 3, padding=1, bias=False, indice_key="subm1")
        self.down2 = _block(8, 8, stride=2, padding=1, indice_key="sp2")
        self.down3 = _block(8, 8, stride=2, padding=1, indice_key="sp3")
        self.head = spconv.SubMConv2d(8, 4, 3, padding=1, bias=True)

    def bev_out(self, x_conv):
        features_cat = x_conv.features
        indices_cat = x_conv.indices[:, [0, 2, 3]]
        indices_unique, _inv = torch.unique(indices_cat, dim=0, return_inverse=True)
        features_unique = features_cat.new_zeros((indices_unique.shape[0], features_cat.shape[1]))
        features_unique.index_add_(0, _inv, features_cat)
        return spconv.SparseConvTensor(features_unique, indices_unique, x_conv.spatial_shape[1:], x_conv.batch_size)

    def forward(self, features, coords, batch_size):
        x = spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size)
        x2 = self.down2(self.stem(x))
        x3 = self.down3(x2)
        x3.indices[:, 1:] *= 2
        x2 = x2.replace_feature(torch.cat([x2.features, x3.features]))
        x2.indices = torch.cat([x2.indices, x3.indices])
        out = self.head(self.bev_out(x2))
        return out.features, out.indices


class SparseAdd(nn.Module):
    """spconv's Fsp.sparse_add of a SubM branch and a strided-then-inverted branch over different sites, then
    ours with max and mean."""

    def __init__(self) -> None:
        super().__init__()
        self.a = spconv.SubMConv3d(3, 6, 3, padding=1, bias=False, indice_key="a")
        self.down = spconv.SparseConv3d(3, 6, 3, stride=2, padding=1, bias=False, indice_key="d")
        self.up = spconv.SparseConvTranspose3d(6, 6, 3, stride=2, padding=1, bias=False)
        self.after = spconv.SubMConv3d(6, 5, 3, padding=1, bias=False)

    def forward(self, features, coords, batch_size):
        x = spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size)
        a, b = self.a(x), self.up(self.down(x))
        b = spconv.SparseConvTensor(b.features, b.indices, list(SHAPE), batch_size)  # the transposed grid is 17^3
        summed = self.after(Fsp.sparse_add(a, b))
        both = (torch.cat([a.features, b.features]), torch.cat([a.indices, b.indices]))
        merged = SparseTensor(*both, SHAPE, batch_size, validate=False)  # duplicate sites, merged below
        return summed.features, summed.indices, merge_duplicate_sites(merged, "max").features, sparse_mean(merged)


class MaskSelect(nn.Module):
    """Keeps the sites a SubM conv scores as important (Focals Conv's selection): `features[mask]` and
    `indices[mask]` with a data-dependent bool mask, then a SubM conv on the subset."""

    def __init__(self) -> None:
        super().__init__()
        self.importance = spconv.SubMConv3d(3, 1, 3, padding=1, bias=False, indice_key="subm")
        self.conv = spconv.SubMConv3d(3, 4, 3, padding=1, bias=False, indice_key="subm")
        self.after = spconv.SubMConv3d(4, 4, 3, padding=1, bias=False)

    def forward(self, features, coords, batch_size):
        x = spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size)
        keep = self.importance(x).features[:, 0].sigmoid() > 0.5
        y = self.conv(x)
        kept = spconv.SparseConvTensor(y.features[keep], y.indices[keep], y.spatial_shape, batch_size)
        out = self.after(kept)
        return out.features, out.indices


MODELS = {"BevMerge": BevMerge, "SparseAdd": SparseAdd, "MaskSelect": MaskSelect}
EXPECTED_OPS = {"BevMerge": {"UniqueSites", "SegmentReduce"}, "SparseAdd": {"UniqueSites", "SegmentReduce"}}
EXPECTED_OPS["MaskSelect"] = {"MaskRows"}


def sparse_mean(x: SparseTensor) -> torch.Tensor:
    return merge_duplicate_sites(x, "mean").features


@pytest.mark.parametrize("name", list(MODELS))
def test_idioms_export_and_match_spconv(gen, name):
    model_class = MODELS[name]
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    model = model_class().eval()
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    blob = io.BytesIO()
    export(model, (*lidar_voxels(seed, 2, 300, SHAPE, 3), 2), blob, input_names=INPUTS)
    proto = onnx.load_from_string(blob.getvalue())
    ops = Counter(n.op_type for n in proto.graph.node)
    assert all(ops[op] >= 1 for op in EXPECTED_OPS[name]), ops
    assert not ops["Unique"] and not ops["NonZero"], ops  # neither runs in TensorRT-RTX
    session = ReferenceSession(proto)
    for k, n in enumerate((150, 500)):  # voxel counts the trace never saw
        features, coords = lidar_voxels(seed + 1 + k, 2, n, SHAPE, 3)
        want = spconv_forward(model, features, coords, 2)
        got = session.run(None, {INPUTS[0]: features.numpy(), INPUTS[1]: coords.numpy()})
        if model_class is SparseAdd:
            # spconv's sparse_add sorts the union's sites (torch.sparse coalesce), as UniqueSites does; max/mean
            # are ours, checked against the eager (reference backend) model.
            np.testing.assert_array_equal(got[1], want[1].numpy())
            np.testing.assert_allclose(got[0], want[0].numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(got[2], want[2].numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got[3], want[3].numpy(), rtol=1e-5, atol=1e-6)
        else:
            assert_outputs_close(list(want), got, 1e-4, 1e-4)


def test_sparse_add_and_merge_against_brute_force(gen):
    a_sites = torch.unique(torch.randint(0, 4, (40, 4), generator=gen, dtype=torch.int32), dim=0)
    b_sites = torch.unique(torch.randint(0, 4, (40, 4), generator=gen, dtype=torch.int32), dim=0)
    a_sites[:, 0] %= 2
    b_sites[:, 0] %= 2
    a_sites, b_sites = torch.unique(a_sites, dim=0), torch.unique(b_sites, dim=0)
    a = SparseTensor(torch.randn(len(a_sites), 3, generator=gen), a_sites, [4, 4, 4], 2)
    b = SparseTensor(torch.randn(len(b_sites), 3, generator=gen), b_sites, [4, 4, 4], 2)
    dense = a.dense() + b.dense()
    out = sparse_add(a, b)
    torch.testing.assert_close(out.dense(), dense)
    assert out.indices.shape[0] == len({tuple(r) for r in torch.cat([a_sites, b_sites]).tolist()})
    both = SparseTensor(
        torch.cat([a.features, b.features]), torch.cat([a_sites, b_sites]), [4, 4, 4], 2, validate=False
    )
    biggest = torch.maximum(
        a.dense().masked_fill(a.dense() == 0, -torch.inf), b.dense().masked_fill(b.dense() == 0, -torch.inf)
    )
    torch.testing.assert_close(merge_duplicate_sites(both, "max").dense(), biggest.nan_to_num(neginf=0.0))
    with pytest.raises(ValueError, match="channels"):
        sparse_add(a, SparseTensor(torch.randn(len(b_sites), 4), b_sites, [4, 4, 4], 2))


# ------------------------------------------------------------------------------------ refused, with where
class Consecutive(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = spconv.SubMConv3d(3, 4, 3, padding=1, bias=False)

    def forward(self, features, coords, batch_size):
        x = self.conv(spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size))
        keys = x.indices[:, 1] * 400 + x.indices[:, 2] * 20 + x.indices[:, 3]
        _, inverse = torch.unique_consecutive(keys, return_inverse=True)  # refused line
        return x.features, inverse


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Consecutive()

    def forward(self, features, coords, batch_size):
        return self.backbone(features, coords, batch_size)


def test_unsupported_construct_names_module_line_and_fix(tmp_path):
    features, coords = lidar_voxels(0, 1, 200, SHAPE, 3)
    path = tmp_path / "never.onnx"
    with pytest.raises(ExportError) as info:
        export(Wrapper(), (features, coords, 1), path, input_names=INPUTS)
    message = str(info.value)
    line = next(i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "# refused line" in text)
    assert message.startswith("backbone (Consecutive), ")
    assert f"test_site_merging.py:{line} `_, inverse = torch.unique_consecutive" in message
    assert "unique_consecutive" in message and "torch.unique(indices, dim=0" in message
    assert not path.exists()


# ------------------------------------------------------------------------------------ export checks itself
class BakedCount(nn.Module):
    """Keeps the first half of the rows, counted in Python: the trace bakes the tracing example's count."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = spconv.SubMConv3d(3, 4, 3, padding=1, bias=False)

    def forward(self, features, coords, batch_size):
        x = self.conv(spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size))
        keep = int(x.features.shape[0] * 0.5)
        return x.features[:keep]


def test_export_refuses_a_file_that_computes_something_else(tmp_path, monkeypatch):
    features, coords = lidar_voxels(0, 1, 200, SHAPE, 3)
    path = tmp_path / "baked.onnx"
    # torch.export refuses the Python count outright; torch's TorchScript tracer bakes it in, and the check sees it.
    with pytest.raises(DynamoExportError, match=r"torch.export could not trace the model"):
        export(BakedCount(), (features, coords, 1), path, input_names=INPUTS)
    assert not path.exists()
    with pytest.raises(ExportVerificationError, match=r"subset of the tracing example's rows"):
        export(BakedCount(), (features, coords, 1), path, input_names=INPUTS, dynamo=False)
    assert not path.exists()
    export(BakedCount(), (features, coords, 1), path, input_names=INPUTS, dynamo=False, verify=False)  # the user's call
    assert path.exists()

    # A corrupt constant that the ONNX checker accepts (a weight scaled after optimization): caught by the run.
    optimize = passes.optimize

    def corrupting(*args, **kwargs):
        proto = optimize(*args, **kwargs)
        weight = next(t for t in proto.graph.initializer if t.name.endswith(".weight"))
        values = onnx.numpy_helper.to_array(weight) * 1.5
        weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
        return proto

    monkeypatch.setattr(importlib.import_module("sparsetrt.exporter.export"), "optimize", corrupting)
    with pytest.raises(ExportVerificationError, match=r"differs from PyTorch by up to .* on the tracing example"):
        export(BevMerge().eval(), (*lidar_voxels(1, 1, 200, SHAPE, 3), 1), tmp_path / "x.onnx", input_names=INPUTS)
    assert not (tmp_path / "x.onnx").exists()


# ------------------------------------------------------------------------------------------ spconv's tables
class Tables(nn.Module):
    """spconv's AddTable, JoinTable and ConcatTable over two SubM branches."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = tables.ConcatTable()
        self.branches.add(spconv.SubMConv3d(3, 4, 3, padding=1, bias=False, indice_key="s"))
        self.branches.add(spconv.SubMConv3d(3, 4, 3, padding=1, bias=False, indice_key="s"))
        self.add, self.join = tables.AddTable(), tables.JoinTable()

    def forward(self, features, coords, batch_size):
        a, b = self.branches(spconv.SparseConvTensor(features, coords, list(SHAPE), batch_size))
        return self.add([a, b]).features, self.join([a, b]).features


def test_spconv_tables_convert_export_and_match(gen):
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    model = Tables().eval()
    blob = io.BytesIO()
    export(model, (*lidar_voxels(0, 2, 300, SHAPE, 3), 2), blob, input_names=INPUTS)
    features, coords = lidar_voxels(1, 2, 400, SHAPE, 3)
    want = spconv_forward(model, features, coords, 2)
    feed = {INPUTS[0]: features.numpy(), INPUTS[1]: coords.numpy()}
    got = ReferenceSession(onnx.load_from_string(blob.getvalue())).run(None, feed)
    assert_outputs_close(list(want), got, 1e-4, 1e-4)
    # AddTableMisaligned (spconv's runs only on CUDA: its hash table) becomes ours: sparse_add over the union.
    converted = convert(nn.Sequential(tables.AddTableMisaligned()))[0]
    a = SparseTensor(torch.randn(3, 2), torch.tensor([[0, 1, 1, 1], [0, 2, 2, 2], [1, 0, 0, 0]]), [4, 4, 4], 2)
    b = SparseTensor(torch.randn(2, 2), torch.tensor([[0, 2, 2, 2], [1, 3, 3, 3]]), [4, 4, 4], 2)
    torch.testing.assert_close(converted([a, b]).dense(), a.dense() + b.dense())
