"""convert(), export() and ReferenceSession: options, errors, and the example script."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from oracles import clustered_sites, spconv_forward

from sparsetrt.errors import InputError, ModelError
from sparsetrt.exporter import SparseTensor, convert, export, summary
from sparsetrt.exporter import nn as snn
from sparsetrt.runtime import ReferenceSession

spconv = pytest.importorskip("spconv.pytorch", reason="spconv 2.3.8 is a test dependency: pip install -e '.[test]'")

SHAPE = [9, 12, 13]
PATHS = pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])  # export()'s two paths


class SpconvNet(torch.nn.Module):
    """A forward that builds spconv's tensor from plain tensors, as OpenPCDet backbones do."""

    def __init__(self) -> None:
        super().__init__()
        self.a = spconv.SubMConv3d(3, 8, 3, indice_key="s1")
        self.b = spconv.SparseConv3d(8, 8, 3, 2, 1, indice_key="d1")
        self.pool = spconv.SparseMaxPool3d(2, 1)
        self.up = spconv.SparseInverseConv3d(8, 4, 3, indice_key="d1")

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = spconv.SparseConvTensor(features, coords, SHAPE, batch_size)
        x = self.a(x)
        x = x.replace_feature(torch.relu(x.features))
        y = self.b(x)
        y = y.replace_feature(torch.relu(y.features))
        z = self.up(y)
        return z.features, z.indices, self.pool(y).dense()


def _inputs(gen, n=120, batch_size=2):
    idx = clustered_sites(gen, n, SHAPE, batch_size)
    return torch.randn(idx.shape[0], 3, generator=gen), idx, batch_size


def test_convert_keeps_forward_and_outputs(gen):
    model = SpconvNet().eval()
    converted = convert(model)
    assert not any(type(m).__module__.startswith("spconv") for m in converted.modules())
    assert any(type(m).__module__.startswith("spconv") for m in model.modules()), "convert copies by default"
    args = _inputs(gen)
    ref = spconv_forward(model, *args)
    with torch.no_grad():
        got = converted(*args)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(got[1], ref[1])
    torch.testing.assert_close(got[2], ref[2], rtol=1e-5, atol=1e-5)


def test_convert_reads_spconv1_weights(gen):
    model = SpconvNet().eval()
    v1 = SpconvNet().eval()
    v1.load_state_dict(model.state_dict())
    with torch.no_grad():  # what a spconv 1.x checkpoint holds: [*kernel, C_in, C_out]
        for m in v1.modules():
            if isinstance(m, spconv.SparseConv3d | spconv.SubMConv3d | spconv.SparseInverseConv3d):
                m.weight = torch.nn.Parameter(m.weight.permute(1, 2, 3, 4, 0).contiguous())
    a, b = convert(model), convert(v1, weight_layout="spconv1")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    with pytest.raises(ValueError, match=r"spconv 1\.x weight must be"):
        convert(model, weight_layout="spconv1")


def test_unsupported_modules_are_named():
    model = torch.nn.Sequential(spconv.SparseSequential(spconv.SparseAvgPool3d(2)))
    with pytest.raises(NotImplementedError, match=r"0\.0 \(spconv\.pytorch\.pool\.SparseAvgPool3d\)"):
        convert(model)


@PATHS
def test_export_spconv_forward_and_run(gen, dynamo):
    model = SpconvNet().eval()
    buf = io.BytesIO()
    names = {"input_names": ["features", "coords"], "output_names": ["f", "i", "bev"]}
    export(model, _inputs(gen), buf, dynamo=dynamo, **names)
    proto = onnx.load_from_string(buf.getvalue())
    text = summary(proto)
    assert "InverseRulebook" in text and "SparseMaxPool x1" in text and "Densify" in text
    session = ReferenceSession(proto)
    for n in (60, 200):
        features, coords, bs = _inputs(gen, n)
        ref = spconv_forward(model, features, coords, bs)
        f, i, bev = session.run(None, {"features": features.numpy(), "coords": coords.numpy()})
        assert np.array_equal(i, ref[1].numpy())  # the inverse conv restores the input sites, in order
        np.testing.assert_allclose(f, ref[0].numpy(), rtol=1e-4, atol=1e-4)
        # spconv's CPU max pool clamps at 0; after a ReLU both are the true max.
        np.testing.assert_allclose(bev, ref[2].numpy(), rtol=1e-4, atol=1e-4)


def test_reference_session_rejects_bad_feeds(gen, tmp_path):
    net = snn.SparseSequential(snn.SubMConv3d(3, 4, 3), snn.ToDense())
    path = tmp_path / "m.onnx"
    features, coords, _ = _inputs(gen)

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, f, c):
            return self.net(SparseTensor(f, c, SHAPE, 2))

    export(Wrap().eval(), (features, coords), path, input_names=["f", "c"])
    session = ReferenceSession(path)
    with pytest.raises(InputError, match=r"inputs missing \['c'\]: the model takes exactly \['f', 'c'\]"):
        session.run(None, {"f": features.numpy()})
    with pytest.raises(InputError, match="lacks"):
        ReferenceSession(path, validate=False).run(None, {"f": features.numpy()})
    with pytest.raises(ValueError, match="input 'f' is float64"):
        session.run(None, {"f": features.double().numpy(), "c": coords.numpy()})
    with pytest.raises(ValueError, match=r"input 'c' has shape \[120, 3\]"):
        session.run(None, {"f": features.numpy(), "c": coords[:, :3].numpy()})
    with pytest.raises(ValueError, match="unknown output names"):
        session.run(["nope"], {"f": features.numpy(), "c": coords.numpy()})


def test_reference_session_rejects_unknown_ops_and_attributes(gen, tmp_path):
    bad = onnx.helper.make_node("SparseConv", ["x", "n", "w"], ["y"], domain="sparsetrt", activation=0)
    graph = onnx.helper.make_graph([bad], "g", [], [])
    with pytest.raises(ModelError, match=r"sparsetrt::SparseConv node '#0 \(unnamed\)', attribute 'alpha': missing"):
        ReferenceSession(onnx.helper.make_model(graph))
    other = onnx.helper.make_node("Foo", [], ["y"], domain="acme")
    with pytest.raises(ValueError, match="domain 'acme'"):
        ReferenceSession(onnx.helper.make_model(onnx.helper.make_graph([other], "g", [], [])))


def test_example_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "export_spconv_model.py"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "computes what the spconv model computes" in result.stdout


def _most_created_sites(model: SpconvNet, args) -> int:
    """The most sites one of the model's site-creating layers (the strided conv, the pool) makes on ``args``."""
    counts: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: counts.append(o.features.shape[0])) for m in (model.b, model.pool)]
    try:
        spconv_forward(model, *args)
    finally:
        for hook in hooks:
            hook.remove()
    return max(counts)


@PATHS
def test_max_sites_bound_is_enforced_not_truncated(gen, dynamo):
    model = SpconvNet().eval()
    args = _inputs(gen, 150)  # a strided conv over 150 sites makes at least 150 / 8 > 5
    with pytest.raises(ValueError, match="more than its bound max_out=5"):
        export(model, args, io.BytesIO(), input_names=["features", "coords"], max_sites=5, dynamo=dynamo)
    small = _inputs(gen, 20)
    bound = _most_created_sites(model, small)  # exactly what the example needs: no truncation at the bound
    buf = io.BytesIO()
    export(model, small, buf, input_names=["features", "coords"], max_sites=bound, dynamo=dynamo)
    proto = onnx.load_from_string(buf.getvalue())
    rulebooks = [n for n in proto.graph.node if n.op_type == "SparseRulebook"]
    assert rulebooks and all(a.i == bound for n in rulebooks for a in n.attribute if a.name == "max_out")
    # One voxel more, where it makes a layer create a site more than the bound allows.
    features, coords, batch_size = small
    taken = {tuple(c) for c in coords.tolist()}
    for site in np.ndindex(batch_size, *SHAPE):
        if site in taken:
            continue
        bigger = (torch.cat([features, features[:1]]), torch.cat([coords, torch.tensor([site], dtype=coords.dtype)]))
        if _most_created_sites(model, (*bigger, batch_size)) > bound:
            break
    with pytest.raises(RuntimeError, match=f"more than its bound max_out={bound}"):
        ReferenceSession(proto).run(None, {"features": bigger[0].numpy(), "coords": bigger[1].numpy()})


class UNetSpconv(torch.nn.Module):
    """Two strided levels undone by inverse convs, a shared SubM key, a SubM without key, a max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.a = spconv.SparseSequential(
            spconv.SubMConv3d(3, 8, 3, bias=False, indice_key="s1"), torch.nn.BatchNorm1d(8), torch.nn.ReLU()
        )
        self.a2 = spconv.SubMConv3d(8, 8, 3, indice_key="s1")
        self.b = spconv.SparseConv3d(8, 16, 3, 2, 1, indice_key="d1")
        self.c = spconv.SubMConv3d(16, 16, (1, 3, 3))
        self.b2 = spconv.SparseConv3d(16, 16, 3, 2, 1, indice_key="d2")
        self.up2 = spconv.SparseInverseConv3d(16, 16, 3, indice_key="d2")
        self.up = spconv.SparseInverseConv3d(16, 4, 3, indice_key="d1")
        self.pool = spconv.SparseMaxPool3d(2, 2)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = self.a2(self.a(spconv.SparseConvTensor(features, coords, SHAPE, batch_size)))
        y = self.c(self.b(x))
        y = y.replace_feature(torch.nn.functional.leaky_relu(y.features, 0.1))
        z = self.up(self.up2(self.b2(y)))
        return z.features, z.indices, self.pool(y).dense()


def _summary_blocks(text: str) -> dict[str, list[str]]:
    """The summary's rulebook section as {rulebook line: its indented lines}."""
    blocks: dict[str, list[str]] = {}
    lines = text.splitlines()
    start = lines.index("rulebooks (and the layers that use them):") + 1
    current = None
    for line in lines[start:]:
        if line.startswith("      "):
            blocks[current].append(line.strip())
        elif line.startswith("  "):
            current = line.strip()
            blocks[current] = []
        else:
            break
    return blocks


@PATHS
def test_summary_prints_nodes_attributes_and_rulebook_sharing(gen, dynamo):
    """Every sparsetrt node with its attributes; per rulebook, exactly the layers that read its map (as the
    model's indice_keys and geometries dictate), the inverse convs that transpose it, and where its sites
    come from. Densify and an inverse conv reading a rulebook's *sites* do not count as sharing its map.
    Both paths name nodes after their modules."""
    buf = io.BytesIO()
    export(UNetSpconv().eval(), _inputs(gen), buf, input_names=["features", "coords"], dynamo=dynamo)
    proto = onnx.load_from_string(buf.getvalue())
    text = summary(proto)
    custom = [n for n in proto.graph.node if n.domain == "sparsetrt"]
    lines = text.splitlines()
    for n in custom:
        line = next((s for s in lines if f"{n.name} " in f"{s} "), None)
        assert line is not None, f"node {n.name} missing from the summary"
        for a in n.attribute:
            value = onnx.helper.get_attribute_value(a)
            if a.name in ("plugin_namespace", "plugin_version"):  # on every node alike: not shown
                assert f"{a.name}=" not in line
            elif isinstance(value, float):
                assert f"{a.name}=" in line, (a.name, line)
            else:
                assert f"{a.name}={list(value) if isinstance(value, list) else value}" in line, (a.name, line)

    def rulebook(module: str, op_type: str) -> str:
        return next(n.name for n in custom if n.op_type == op_type and n.name.startswith(f"/{module}/"))

    blocks = _summary_blocks(text)

    def block(module: str, op_type: str) -> tuple[str, list[str]]:
        name = rulebook(module, op_type)
        heads = [h for h in blocks if h.split(" ")[0] == name]
        assert len(heads) == 1, (name, list(blocks))
        return heads[0], blocks[heads[0]]

    def users(body: list[str]) -> list[str]:
        return sorted(s.split(" ")[3].split("/")[1] for s in body if s.startswith("used by"))

    def inverted_by(body: list[str]) -> list[str]:
        return sorted(s.split(" ")[2].split("/")[1] for s in body if s.startswith("inverted by"))

    head, body = block("a", "SubmRulebook")  # indice_key "s1": a and a2 share one rulebook
    assert "over input coords" in head and "kernel_size=[3, 3, 3]" in head
    assert users(body) == ["a", "a2"] and body[-1] == "-> shared by 2 layer(s)"
    assert "activation=1 (relu)" in body[0] and "weight [8, 27, 3]" in body[0]  # BN and ReLU fused into a
    head, body = block("b", "SparseRulebook")
    assert "over input coords" in head and "stride=[2, 2, 2]" in head
    assert users(body) == ["b"] and inverted_by(body) == ["up"] and body[-1] == "-> shared by 1 layer(s)"
    head, body = block("c", "SubmRulebook")  # no key, other kernel: its own rulebook over b's sites
    assert f"over the sites of {rulebook('b', 'SparseRulebook')}" in head and "kernel_size=[1, 3, 3]" in head
    assert users(body) == ["c"] and "activation=2 (leaky_relu), alpha=0.1" in body[0]
    head, body = block("b2", "SparseRulebook")
    assert f"over the sites of {rulebook('b', 'SparseRulebook')}" in head
    assert users(body) == ["b2"] and inverted_by(body) == ["up2"]
    head, body = block("up2", "InverseRulebook")
    b, b2 = rulebook("b", "SparseRulebook"), rulebook("b2", "SparseRulebook")
    assert f"inverts {b2}, back onto the sites of {b}" in head and users(body) == ["up2"]
    head, body = block("up", "InverseRulebook")
    assert f"inverts {b}, back onto" in head and "input coords" in head and users(body) == ["up"]
    head, body = block("pool", "SparseRulebook")
    assert users(body) == ["pool"] and body[-1] == "-> shared by 1 layer(s)"  # Densify reads sites only
    assert f"densify /Densify over the sites of {rulebook('pool', 'SparseRulebook')}" in text
    assert "lack plugin_namespace" not in text
    for n in custom:  # a file from before the lookup attributes: the summary says what TensorRT 10.3 will do
        kept = [a for a in n.attribute if not a.name.startswith("plugin_")]
        del n.attribute[:]
        n.attribute.extend(kept)
    assert f"warning: {len(custom)} sparsetrt node(s) lack plugin_namespace / plugin_version" in summary(proto)


class EveryLayerKind(torch.nn.Module):
    """The layer kinds and tensor methods the zoo does not export: a transposed conv, max pooling, pointwise
    convs (regular and submanifold: their rulebook maps each site to itself), spconv's fused LeakyReLU,
    a 4D conv, and a channels-last dense()."""

    def __init__(self) -> None:
        super().__init__()
        self.pointwise = snn.SparseConv3d(3, 6, 1)
        self.subm_pointwise = snn.SubMConv3d(6, 6, 1)
        self.leaky = snn.SparseConvolution(3, 6, 6, 3, subm=True, act_type="leakyrelu", act_alpha=0.2)
        self.pool = snn.SparseMaxPool3d(2, 2)
        self.up = snn.SparseConvTranspose3d(6, 4, 3, 2, 1)
        self.conv4d = snn.SubMConv4d(6, 2, 3)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = SparseTensor(features, coords, SHAPE, batch_size)
        x = self.leaky(self.subm_pointwise(self.pointwise(x)))
        up = self.up(self.pool(x))
        x4 = SparseTensor(x.features, torch.cat([x.indices, x.indices[:, 1:2] % 3], 1), [*SHAPE, 3], batch_size)
        return up.features, up.indices, self.conv4d(x4).dense(channels_first=False)


@PATHS
def test_every_layer_kind_exports(gen, dynamo):
    """Both paths export each layer kind to a file that computes what the layers compute in PyTorch."""
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
        model = EveryLayerKind().eval()
    buf = io.BytesIO()
    export(model, _inputs(gen, 100), buf, input_names=["features", "coords"], dynamo=dynamo)
    ops = {n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node}
    assert {"SparseRulebook", "SubmRulebook", "SparseMaxPool", "Densify"} <= ops
    session = ReferenceSession(onnx.load_from_string(buf.getvalue()))
    features, coords, bs = _inputs(gen, 160)
    with torch.no_grad():
        ref = model(features, coords, bs)
    got = session.run(None, {"features": features.numpy(), "coords": coords.numpy()})
    assert np.array_equal(got[1], ref[1].numpy())  # transposed outputs are sorted: the same rows
    np.testing.assert_allclose(got[0], ref[0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[2], ref[2].numpy(), rtol=1e-4, atol=1e-4)


class _CountInPython(torch.nn.Module):
    """Reads a strided layer's site count as a Python number: a value torch.export cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.down = snn.SparseConv3d(3, 4, 3, 2, 1)

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        y = self.down(SparseTensor(features, coords, SHAPE, 2))
        return y.features / int(y.features.shape[0])


def test_untraceable_forward_names_the_way_out(gen):
    with pytest.raises(RuntimeError, match=r"torch\.export could not trace the model") as caught:
        export(_CountInPython().eval(), _inputs(gen)[:2], io.BytesIO(), dynamo=True)
    assert "dynamo=False" in str(caught.value) and caught.value.__cause__ is not None
