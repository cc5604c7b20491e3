"""Graph passes of the exporter (``sparsetrt.exporter.graph_passes``): structure of the optimized graph
(folded batch norms, fused activations, merged rulebooks, removed no-op nodes, folded shape chains,
float16 storage) and numeric equality with PyTorch through ReferenceSession."""

from __future__ import annotations

import importlib
import io
from collections import Counter

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from oracles import clustered_sites

from sparsetrt.exporter import SparseTensor, export
from sparsetrt.exporter import nn as snn
from sparsetrt.exporter.graph_passes import optimize
from sparsetrt.exporter.schema import DOMAIN
from sparsetrt.exporter.schema.onnx_registration import register_onnx_schemas
from sparsetrt.runtime import ReferenceSession

SHAPE = [9, 12, 13]
DOWN_SHAPE = [5, 6, 7]  # SHAPE after kernel 3, stride 2, padding 1
BATCH = 2
C_IN = 4
INPUTS = ["features", "coords"]
FP32_TOL = 1e-4
# fp16: inputs, weights and every stored activation round to 11 significant bits (relative 4.9e-4 each),
# the sparse convs accumulate in fp32; a few layers stay well inside 1% of the output's scale.
FP16_TOL = 1e-2


# ------------------------------------------------------------------------------------------ models
def _randomize_batchnorms(model: torch.nn.Module, gen: torch.Generator) -> torch.nn.Module:
    """Random running statistics and affine parameters: the identity BN of a fresh layer would let a
    wrong fold pass unnoticed."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.05)  # small: eps matters
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) - 0.5)
    return model.eval()


class ConvBnActNet(torch.nn.Module):
    """SubM -> BN -> ReLU, strided conv -> BN -> LeakyReLU, bias-free SubM -> BN -> Sigmoid, inverse
    conv -> BN -> ReLU (sparse output), and ToDense reshaped to BEV by its traced shape -> Conv2d -> ReLU
    (a dense head whose Relu must stay)."""

    def __init__(self) -> None:
        super().__init__()
        # OpenPCDet's eps; a fold that ignored the node's epsilon would show.
        self.stem = snn.SparseSequential(
            snn.SubMConv3d(C_IN, 8, 3), torch.nn.BatchNorm1d(8, eps=1e-3, momentum=0.01), torch.nn.ReLU()
        )
        self.down = snn.SparseSequential(
            snn.SparseConv3d(8, 16, 3, 2, 1, indice_key="down"), torch.nn.BatchNorm1d(16), torch.nn.LeakyReLU(0.2)
        )
        self.mid = snn.SparseSequential(
            snn.SubMConv3d(16, 16, 3, bias=False), torch.nn.BatchNorm1d(16), torch.nn.Sigmoid()
        )
        self.up = snn.SparseSequential(
            snn.SparseInverseConv3d(16, 8, 3, indice_key="down"), torch.nn.BatchNorm1d(8), torch.nn.ReLU()
        )
        self.dense = snn.ToDense()
        self.head = torch.nn.Sequential(torch.nn.Conv2d(16 * DOWN_SHAPE[0], 4, 3, padding=1), torch.nn.ReLU())

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(SparseTensor(features, coords, SHAPE, BATCH))
        y = self.mid(self.down(x))
        bev = self.dense(y)
        n, c, d, h, w = bev.shape  # traced as Shape/Gather chains on the Densify output
        return self.up(y).features, self.head(bev.view(n, c * d, h, w))


class BranchyNet(torch.nn.Module):
    """Rulebooks that only the graph passes can merge: a SubMConv3d on a branch of its own (the layers'
    automatic sharing does not reach across branches), one over a Cast of the same coords, and two
    inverse convs of one strided conv. A dilated SubM keeps a rulebook of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.a1 = snn.SubMConv3d(C_IN, 8, 3)
        self.a2 = snn.SubMConv3d(8, 8, 3)  # shares a1's rulebook through the layers' automatic sharing
        self.b = snn.SubMConv3d(C_IN, 8, 3)  # a branch from the input: a rulebook node of its own
        self.cast_branch = snn.SubMConv3d(C_IN, 8, 3)
        self.dilated = snn.SubMConv3d(C_IN, 8, 3, dilation=2)
        self.down = snn.SparseConv3d(C_IN, 8, 3, 2, 1, indice_key="d")
        self.up1 = snn.SparseInverseConv3d(8, 8, 3, indice_key="d")
        self.up2 = snn.SparseInverseConv3d(8, 8, 3, indice_key="d")

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = SparseTensor(features, coords, SHAPE, BATCH)
        a = self.a2(self.a1(x))
        b = self.b(x)
        # spconv's tensor constructor does this to every index tensor it gets (the tracer records a Cast).
        cast = self.cast_branch(SparseTensor(features, coords.int(), SHAPE, BATCH))
        down = self.down(x)
        up = self.up1(down).features + self.up2(down).features
        return a.features + b.features + cast.features + up, self.dilated(x).features


def _build(cls: type[torch.nn.Module], gen: torch.Generator) -> torch.nn.Module:
    """``cls()`` in eval mode, its layers initialised from ``gen`` (layers draw from torch's global RNG:
    fork it, so that other tests see the same global state either way), its BNs randomized."""
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
        model = cls()
    return _randomize_batchnorms(model, gen)


def _inputs(gen: torch.Generator, n: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    coords = clustered_sites(gen, n, SHAPE, BATCH)
    return torch.randn(coords.shape[0], C_IN, generator=gen), coords


def _export(model: torch.nn.Module, args: tuple, **kwargs) -> onnx.ModelProto:
    return export(model, args, io.BytesIO(), input_names=INPUTS, **kwargs)


def _raw_export(
    model: torch.nn.Module, args: tuple, monkeypatch: pytest.MonkeyPatch, dynamo: bool = False
) -> onnx.ModelProto:
    """The export as torch.onnx.export wrote it, before any graph pass. By default the TorchScript path's,
    which leaves the passes the most to do (the dynamo path's torch.export resolves shape chains while
    tracing, and its onnxscript optimizer merges identical nodes)."""
    with monkeypatch.context() as patch:
        patch.setattr(importlib.import_module("sparsetrt.exporter.export"), "optimize", lambda proto, **kw: proto)
        return _export(model, args, dynamo=dynamo)


# ------------------------------------------------------------------------------------------ helpers
def _ops(proto: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in proto.graph.node)


def _attr(node: onnx.NodeProto, name: str):
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _nodes(proto: onnx.ModelProto, op_type: str) -> list[onnx.NodeProto]:
    return [n for n in proto.graph.node if n.op_type == op_type]


def _producers(proto: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in proto.graph.node for o in n.output}


def _elem_types(proto: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor, from strict shape inference."""
    register_onnx_schemas()
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def _torch_outputs(model: torch.nn.Module, args: tuple) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in model(*args)]


def _assert_matches(got: list[np.ndarray], ref: list[np.ndarray], tol: float) -> None:
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert g.shape == r.shape
        scale = max(float(np.abs(r).max()), 1.0) if r.size else 1.0
        np.testing.assert_allclose(g.astype(np.float64), r, rtol=tol, atol=tol * scale)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def net(gen) -> torch.nn.Module:
    return _build(ConvBnActNet, gen)


# ------------------------------------------------------------------------------------------ structure
def test_batchnorm_and_activations_fold_into_sparse_convs(net, gen, monkeypatch):
    args = _inputs(gen)
    raw = _raw_export(net, args, monkeypatch)
    assert _ops(raw)["BatchNormalization"] == 4 and _ops(raw)["Relu"] == 3  # what there is to fold
    proto = _export(net, args)
    ops = _ops(proto)
    assert ops["BatchNormalization"] == 0 and ops["LeakyRelu"] == 0 and ops["Sigmoid"] == 0
    assert ops["Relu"] == 1 and _producers(proto)[_nodes(proto, "Relu")[0].input[0]].op_type == "Conv"
    convs = _nodes(proto, "SparseConv")
    activations = {c.name.split("/")[1]: _attr(c, "activation") for c in convs}
    assert activations == {"stem": 1, "down": 2, "mid": 3, "up": 1}
    assert _attr(next(c for c in convs if c.name.startswith("/down/")), "alpha") == pytest.approx(0.2)
    initializers = {t.name for t in proto.graph.initializer}
    for conv in convs:
        assert len(conv.input) == 4, "every folded conv gains a bias, the bias-free one included"
        assert conv.input[2] == f"{conv.name}.weight" and conv.input[3] == f"{conv.name}.bias"
        assert {conv.input[2], conv.input[3]} <= initializers


def test_folded_weight_and_bias_follow_the_formula(net, gen):
    """W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps), per output channel, with
    the BN's own eps (1e-3 in the stem), for a conv with and one without bias."""
    proto = _export(net, _inputs(gen))
    initializers = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for module, conv_name in ((net.stem, "/stem/stem.0/SparseConv"), (net.mid, "/mid/mid.0/SparseConv")):
        conv, bn = module[0], module[1]
        s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
        bias = torch.zeros(conv.out_channels, dtype=torch.float64) if conv.bias is None else conv.bias.double()
        weight = conv.weight.detach().double().reshape(conv.out_channels, -1, conv.in_channels)
        np.testing.assert_allclose(initializers[f"{conv_name}.weight"], weight * s[:, None, None], rtol=1e-6, atol=1e-7)
        expected_bias = (bias - bn.running_mean.double()) * s + bn.bias.double()
        np.testing.assert_allclose(initializers[f"{conv_name}.bias"], expected_bias.detach(), rtol=1e-6, atol=1e-7)


def test_fold_and_fuse_can_be_turned_off(net, gen):
    ops = _ops(_export(net, _inputs(gen), fold_batchnorm=False, fuse_activations=False))
    assert ops["BatchNormalization"] == 4 and ops["Relu"] == 3 and ops["LeakyRelu"] == 1 and ops["Sigmoid"] == 1
    # Folding without fusing: the activations now read the convs, and stay.
    proto = _export(net, _inputs(gen), fuse_activations=False)
    assert _ops(proto)["BatchNormalization"] == 0
    assert all(_attr(c, "activation") == 0 for c in _nodes(proto, "SparseConv"))


class _SharedOutputNet(torch.nn.Module):
    """Convs whose BN or activation cannot be folded: a conv output read twice, a BN after a conv with
    a fused (spconv act_type) activation, a Tanh, and a Sigmoid after a conv with a fused ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = snn.SubMConv3d(C_IN, 8, 3)
        self.bn = torch.nn.BatchNorm1d(8)
        self.act_conv = snn.SparseConvolution(3, 8, 8, 3, subm=True, act_type="relu")
        self.bn2 = torch.nn.BatchNorm1d(8)
        self.tanh_conv = snn.SubMConv3d(8, 8, 3)
        self.act_conv2 = snn.SparseConvolution(3, 8, 8, 3, subm=True, act_type="relu")

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.shared(SparseTensor(features, coords, SHAPE, BATCH))
        y = self.bn(x.features) + x.features  # the raw conv output is read by the BN and the Add
        z = self.act_conv(x.replace_feature(y))
        t = torch.tanh(self.tanh_conv(z.replace_feature(self.bn2(z.features))).features)
        return t, torch.sigmoid(self.act_conv2(z).features)


def test_unfoldable_patterns_stay(gen):
    model = _build(_SharedOutputNet, gen)
    proto = _export(model, _inputs(gen))
    ops = _ops(proto)
    assert ops["BatchNormalization"] == 2 and ops["Tanh"] == 1 and ops["Sigmoid"] == 1
    activations = {c.name.split("/")[1]: _attr(c, "activation") for c in _nodes(proto, "SparseConv")}
    assert activations == {"shared": 0, "act_conv": 1, "tanh_conv": 0, "act_conv2": 1}


def test_identical_rulebooks_merge(gen, monkeypatch):
    model = _build(BranchyNet, gen)
    args = _inputs(gen)
    raw = _raw_export(model, args, monkeypatch)
    raw_plain = [n for n in _nodes(raw, "SubmRulebook") if _attr(n, "dilation") == [1, 1, 1]]
    # torch's own CSE merges identical calls; the one behind the no-op Cast is left for our passes to merge.
    assert len(raw_plain) == 2 and _ops(raw)["Cast"] == 1
    for dynamo in (False, True):
        proto = _export(model, args, dynamo=dynamo)
        subm = _nodes(proto, "SubmRulebook")
        assert sorted(tuple(_attr(n, "dilation")) for n in subm) == [(1, 1, 1), (2, 2, 2)]
        assert all(n.input == ["coords"] for n in subm), "the no-op Cast of the coords is gone"
        assert _ops(proto)["InverseRulebook"] == 1 and _ops(proto)["SparseRulebook"] == 1
        assert _ops(proto)["Cast"] == 0
        # Every undilated SubM conv reads the one rulebook, through the one ConvPlan of its map.
        plain = next(n.output[0] for n in subm if _attr(n, "dilation") == [1, 1, 1])
        plans = {n.output[0]: n.input[0] for n in _nodes(proto, "ConvPlan")}
        assert sum(plans.get(c.input[1], c.input[1]) == plain for c in _nodes(proto, "SparseConv")) == 4
        assert list(plans.values()).count(plain) == 1


def test_no_noop_casts_and_static_shape_chains_fold(net, gen, monkeypatch):
    args = _inputs(gen)
    # The BEV reshape reads the Densify output's shape: both exporters fold that chain themselves now that
    # Densify's output type is static (the hand-built model below gives our folding pass its work).
    for dynamo in (False, True):
        raw = _raw_export(net, args, monkeypatch, dynamo=dynamo)
        proto = _export(net, args, dynamo=dynamo)
        types = _elem_types(proto)
        for cast in _nodes(proto, "Cast"):
            assert types[cast.input[0]] != _attr(cast, "to"), f"no-op Cast {cast.name} left"
        ops = _ops(proto)
        assert not {"Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Identity"} & set(ops)
        (reshape,) = _nodes(proto, "Reshape")
        target = numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == reshape.input[1]))
        assert target.tolist() == [BATCH, 16 * DOWN_SHAPE[0], *DOWN_SHAPE[1:]]
        assert [i.name for i in proto.graph.input] == INPUTS
        assert [o.name for o in proto.graph.output] == [o.name for o in raw.graph.output]


def _hand_built_model() -> onnx.ModelProto:
    """Two SubmRulebooks (one behind a no-op Cast and an Identity), two identical convs writing graph
    outputs through an Identity and a no-op Cast, and a Densify of constants whose shape feeds a
    Reshape and is a graph output too: what the passes meet in real exports, small enough to check by
    hand."""
    f = helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 4])
    c = helper.make_tensor_value_info("c", TensorProto.INT32, ["N", 4])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [24])
    outputs = [
        helper.make_tensor_value_info("out_a", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("out_b", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("dense", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("reshaped", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("dense_shape", TensorProto.INT64, None),
    ]
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((6, 27, 4)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((2, 1)).astype(np.float32), "const_f"),
        numpy_helper.from_array(np.array([[0, 0, 1, 1], [0, 1, 2, 0]], np.int32), "const_idx"),
    ]
    geometry = {"spatial_shape": [2, 3, 4], "kernel_size": [3, 3, 3], "dilation": [1, 1, 1]}
    nodes = [
        helper.make_node("Cast", ["c"], ["c_cast"], to=TensorProto.INT32),
        helper.make_node("Identity", ["c_cast"], ["c_id"]),
        helper.make_node("SubmRulebook", ["c_id"], ["nb_a"], domain=DOMAIN, **geometry),
        helper.make_node("SubmRulebook", ["c"], ["nb_b"], domain=DOMAIN, **geometry),
        helper.make_node("SparseConv", ["f", "nb_a", "w"], ["y_a"], domain=DOMAIN, activation=0, alpha=0.0),
        helper.make_node("SparseConv", ["f", "nb_b", "w"], ["y_b"], domain=DOMAIN, activation=0, alpha=0.0),
        helper.make_node("Identity", ["y_a"], ["out_a"]),
        helper.make_node("Cast", ["y_b"], ["out_b"], to=TensorProto.FLOAT),
        helper.make_node(
            "Densify", ["const_f", "const_idx"], ["dense"], domain=DOMAIN, spatial_shape=[3, 4], batch_size=2
        ),
        helper.make_node("Shape", ["dense"], ["dense_shape"]),
        helper.make_node("Reshape", ["x", "dense_shape"], ["reshaped"]),
    ]
    graph = helper.make_graph(nodes, "hand_built", [f, c, x], outputs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets)


def test_passes_keep_output_names_and_never_evaluate_sparse_nodes(monkeypatch):
    register_onnx_schemas()
    evaluated: list[str] = []
    session_class = onnxruntime.InferenceSession

    def watching_session(model: bytes, *args, **kwargs) -> onnxruntime.InferenceSession:
        evaluated.extend(f"{n.domain}::{n.op_type}" for n in onnx.load_from_string(model).graph.node)
        return session_class(model, *args, **kwargs)

    # Constant folding evaluates subgraphs with onnxruntime; none of them may hold one of our ops.
    with monkeypatch.context() as patch:
        patch.setattr(onnxruntime, "InferenceSession", watching_session)
        proto = optimize(_hand_built_model())
    assert not [op for op in evaluated if op.startswith(f"{DOMAIN}::")]
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == ["out_a", "out_b", "dense", "reshaped", "dense_shape"]
    ops = _ops(proto)
    assert ops["Cast"] == 0 and ops["Identity"] == 0 and ops["Shape"] == 0
    assert ops["SubmRulebook"] == 1
    # The two convs compute the same, but each writes a graph output of its own: both stay.
    assert sorted(n.output[0] for n in _nodes(proto, "SparseConv")) == ["out_a", "out_b"]
    # Densify reads only constants, yet it is kept for the runtime (onnxruntime cannot evaluate it);
    # its statically inferred shape still folds the Shape feeding the Reshape.
    (densify,) = _nodes(proto, "Densify")
    assert list(densify.input) == ["const_f", "const_idx"]
    (reshape,) = _nodes(proto, "Reshape")
    target = next(t for t in proto.graph.initializer if t.name == reshape.input[1])
    assert numpy_helper.to_array(target).tolist() == [2, 1, 3, 4]
    # The folded shape is also a graph output: a node still writes it (TensorRT cannot output weights).
    assert _producers(proto)["dense_shape"].op_type == "Constant"
    assert "dense_shape" not in {t.name for t in proto.graph.initializer}


# ------------------------------------------------------------------------------------------ fp16
def test_fp16_stores_float16_and_keeps_types_consistent(net, gen):
    for kwargs in ({}, {"fold_batchnorm": False, "fuse_activations": False}):  # unfused BNs must type too
        proto = _export(net, _inputs(gen), fp16=True, **kwargs)  # export runs check_model(full_check=True)
        floats = [t for t in proto.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
        assert floats and all(t.data_type == TensorProto.FLOAT16 for t in floats)
        inputs = {i.name: i.type.tensor_type.elem_type for i in proto.graph.input}
        assert inputs == {"features": TensorProto.FLOAT16, "coords": TensorProto.INT32}
        assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT16 for o in proto.graph.output)
        types = _elem_types(proto)
        assert TensorProto.FLOAT not in set(types.values()), "a float32 tensor is left in an fp16 export"


def test_fp16_keeps_float32_only_inputs_float32():
    """Resize's scales take float32 only: after the fp16 conversion they still are."""
    register_onnx_schemas()
    f = helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 3])
    c = helper.make_tensor_value_info("c", TensorProto.INT32, ["N", 3])
    out = helper.make_tensor_value_info("up", TensorProto.FLOAT, None)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Densify", ["f", "c"], ["dense"], domain=DOMAIN, spatial_shape=[3, 4], batch_size=2),
        helper.make_node("Resize", ["dense", "", "scales"], ["up"], mode="nearest"),
    ]
    graph = helper.make_graph(nodes, "resize", [f, c], [out], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
    proto = optimize(model, fp16=True)
    onnx.checker.check_model(proto, full_check=True)
    assert {t.name: t.data_type for t in proto.graph.initializer} == {"scales": TensorProto.FLOAT}
    assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16


class _PlainConvNet(torch.nn.Module):
    """One conv, no BN: its weight is stored as the model has it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = snn.SubMConv3d(C_IN, 4, 3)

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.conv(SparseTensor(features, coords, SHAPE, BATCH)).dense()


def test_fp16_refuses_weights_beyond_float16(gen):
    model = _build(_PlainConvNet, gen)
    args = _inputs(gen, 60)
    with torch.no_grad():
        model.conv.weight[1, 0, 0, 0, 2] = 1e6
    with pytest.raises(ValueError, match=r"fp16.*'/conv/SparseConv\.weight' \(max \|value\| 1e\+06\).*65504"):
        _export(model, args, fp16=True)
    _export(model, args)  # fp32 holds it
    with torch.no_grad():
        model.conv.weight[1, 0, 0, 0, 2] = 1e-9  # float16's smallest subnormal is 6e-8
    with pytest.warns(UserWarning, match=r"fp16.*round to 0.*'/conv/SparseConv\.weight' \(1 of 432\)"):
        _export(model, args, fp16=True)


# ------------------------------------------------------------------------------------------ numerics
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_optimized_export_computes_what_pytorch_computes(net, gen, fp16):
    """One export, two other voxel counts through the same file: PyTorch == ReferenceSession."""
    session = ReferenceSession(_export(net, _inputs(gen, 150), fp16=fp16))
    for n in (90, 260):
        features, coords = _inputs(gen, n)
        ref = _torch_outputs(net, (features, coords))
        feed = {"features": features.numpy().astype(np.float16 if fp16 else np.float32), "coords": coords.numpy()}
        _assert_matches(session.run(None, feed), ref, FP16_TOL if fp16 else FP32_TOL)


def test_merged_rulebooks_compute_what_pytorch_computes(gen):
    model = _build(BranchyNet, gen)
    session = ReferenceSession(_export(model, _inputs(gen, 150)))
    for n in (70, 240):
        features, coords = _inputs(gen, n)
        ref = _torch_outputs(model, (features, coords))
        _assert_matches(session.run(None, {"features": features.numpy(), "coords": coords.numpy()}), ref, FP32_TOL)


# ------------------------------------------------------------------------------------------ residuals, plans
class ResidualNet(torch.nn.Module):
    """Residual blocks as OpenPCDet writes them (``replace_feature(out.features + identity)`` then the activation),
    on the input sites and after a strided conv, one with a bias-free second conv and a LeakyReLU; and Adds that
    must stay: a constant offset, a conv output that something else reads too, and a conv with an activation
    before its Add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = snn.SparseSequential(snn.SubMConv3d(C_IN, 8, 3), torch.nn.BatchNorm1d(8), torch.nn.ReLU())
        self.a1 = snn.SparseSequential(snn.SubMConv3d(8, 8, 3), torch.nn.BatchNorm1d(8), torch.nn.ReLU())
        self.a2 = snn.SparseSequential(snn.SubMConv3d(8, 8, 3), torch.nn.BatchNorm1d(8))
        self.down = snn.SparseSequential(snn.SparseConv3d(8, 16, 3, 2, 1), torch.nn.BatchNorm1d(16), torch.nn.ReLU())
        self.b1 = snn.SubMConv3d(16, 16, 3, bias=False)
        self.shared = snn.SubMConv3d(16, 16, 3)
        self.act_first = snn.SparseSequential(snn.SubMConv3d(16, 16, 3), torch.nn.ReLU())
        self.offset = torch.nn.Parameter(torch.linspace(-1, 1, 16))
        self.point = snn.SubMConv3d(16, 16, 1)  # kernel volume 1: no plan

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(SparseTensor(features, coords, SHAPE, BATCH))
        a = self.a2(self.a1(x))
        a = a.replace_feature(torch.relu(a.features + x.features))  # fused: + identity, ReLU
        d = self.down(a)
        b = self.b1(d)
        b = b.replace_feature(torch.nn.functional.leaky_relu(b.features + d.features, 0.3))  # fused, zero bias
        s = self.shared(b)
        kept = s.features + b.features + s.features  # s is read twice: stays
        c = self.act_first(b)
        kept2 = c.features + b.features  # the ReLU comes before the Add: stays
        offset = self.point(b).features + self.offset  # a constant, broadcast: stays
        return a.features, kept, kept2, offset


def test_residual_adds_fuse_into_convs(gen, monkeypatch):
    model = _build(ResidualNet, gen)
    args = _inputs(gen)
    raw = _raw_export(model, args, monkeypatch)
    proto = _export(model, args)
    assert _ops(raw)["Add"] == 6 and _ops(proto)["Add"] == 4  # two residual Adds fused, four stay
    fused = [c for c in _nodes(proto, "SparseConv") if len(c.input) == 5]
    by_layer = {c.name.split("/")[1]: c for c in fused}
    assert set(by_layer) == {"a2", "b1"}
    assert _attr(by_layer["a2"], "activation") == 1
    assert _attr(by_layer["b1"], "activation") == 2 and _attr(by_layer["b1"], "alpha") == pytest.approx(0.3)
    initializers = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert not initializers[by_layer["b1"].input[3]].any(), "the bias-free conv gets a zero bias before its residual"
    assert _ops(proto)["LeakyRelu"] == 0 and _ops(proto)["Relu"] == 0
    unfused = optimize(raw, fuse_residuals=False)
    assert _ops(unfused)["Add"] == 6 and all(len(c.input) <= 4 for c in _nodes(unfused, "SparseConv"))


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_fused_residuals_compute_what_pytorch_computes(gen, fp16):
    model = _build(ResidualNet, gen)
    session = ReferenceSession(_export(model, _inputs(gen, 150), fp16=fp16))
    for n in (80, 250):
        features, coords = _inputs(gen, n)
        ref = _torch_outputs(model, (features, coords))
        feed = {"features": features.numpy().astype(np.float16 if fp16 else np.float32), "coords": coords.numpy()}
        _assert_matches(session.run(None, feed), ref, FP16_TOL if fp16 else FP32_TOL)


def test_each_map_gets_one_conv_plan(gen, monkeypatch):
    """Convs read a ConvPlan of their map (one per map after merging), except kernel-volume-1 convs; the plans
    change no result of the reference runtime (it turns a plan back into its map), and can be turned off."""
    model = _build(ResidualNet, gen)
    args = _inputs(gen)
    proto = _export(model, args)
    producers = _producers(proto)
    plans = _nodes(proto, "ConvPlan")
    sources = [p.input[0] for p in plans]
    assert len(sources) == len(set(sources)) == 3  # stem's map (shared), the strided map, the map after it
    for conv in _nodes(proto, "SparseConv"):
        source = producers[conv.input[1]]
        assert source.op_type == ("SubmRulebook" if conv.name.startswith("/point/") else "ConvPlan"), conv.name
    for plan in plans:
        attrs = {a.name: helper.get_attribute_value(a) for a in plan.attribute}
        assert attrs == {"plugin_namespace": b"sparsetrt", "plugin_version": b"2"}
    plain = optimize(_raw_export(model, args, monkeypatch), conv_plans=False)
    assert _ops(plain)["ConvPlan"] == 0
    features, coords = _inputs(gen, 200)
    feed = {"features": features.numpy(), "coords": coords.numpy()}
    for got, want in zip(ReferenceSession(proto).run(None, feed), ReferenceSession(plain).run(None, feed), strict=True):
        assert np.array_equal(got, want)


def test_constants_of_different_shape_or_dtype_never_merge():
    """A 0-D constant 2, a 1-element [2] and an int32 [2] are three different inputs (PartA2's `view(n, C, -1)
    .sum(dim=2)` next to a scalar 2 was merged into a corrupt file): the Unsqueeze nodes reading them stay apart,
    while two Unsqueezes of equal constants merge."""
    register_onnx_schemas()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 2])
    values = {
        "scalar": np.array(2, np.int64),  # same bytes as [2], 0-D; first, so a wrong merge would keep it
        "axes_a": np.array([2], np.int64),
        "axes_b": np.array([2], np.int64),  # equal to axes_a: merges
        "axes_i32": np.array([2], np.int32),  # same value, other dtype
    }
    nodes = [
        helper.make_node("Constant", [], [f"{name}_c"], value=numpy_helper.from_array(v, name))
        for name, v in values.items()
    ]
    nodes += [
        helper.make_node("ReduceSum", ["x", "axes_a_c"], ["sum_a"]),
        helper.make_node("ReduceSum", ["x", "axes_b_c"], ["sum_b"]),
        helper.make_node("Cast", ["scalar_c"], ["scalar_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["axes_i32_c"], ["vector_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["sum_a", "sum_b"], ["summed"]),
        helper.make_node("Mul", ["summed", "scalar_f"], ["scaled"]),
        helper.make_node("Add", ["scaled", "vector_f"], ["out"]),
    ]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph(nodes, "consts", [x], [out]), opset_imports=[helper.make_opsetid("", 17)]
    )
    proto = optimize(model)
    onnx.checker.check_model(proto, full_check=True)
    feed = {"x": np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32)}
    got = onnxruntime.InferenceSession(proto.SerializeToString()).run(None, feed)[0]
    want = feed["x"].sum(axis=2, keepdims=True) * 2 * 2 + 2
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert _ops(proto)["ReduceSum"] == 1  # the two equal reductions merged
