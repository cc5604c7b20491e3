"""Our custom ops (``torch.ops.sparsetrt.*``): each follows its schema op, its fake implementation agrees
with its real one (torch.library.opcheck), and torch.export traces a layer stack with a symbolic voxel
count and unbacked output counts."""

from __future__ import annotations

import pytest
import torch
from oracles import clustered_sites

from sparsetrt.exporter import SparseTensor
from sparsetrt.exporter import nn as snn
from sparsetrt.exporter.custom_ops import overloads
from sparsetrt.exporter.onnx_translation import node_spec
from sparsetrt.exporter.schema import op

SHAPE = [7, 9, 8]
_ATTRIBUTE_TYPES = {"int": torch._C.IntType, "ints": torch._C.ListType, "float": torch._C.FloatType}


def test_every_schema_op_has_a_custom_op_with_its_inputs_attributes_and_outputs():
    """Tensor arguments are the schema's inputs (names, order, optional ones optional), the other arguments
    schema attributes of the same type, the returns the schema's outputs: what makes one generic translation
    per exporter emit every op (``onnx_translation.node_spec``)."""
    from sparsetrt.exporter.schema import load

    assert sorted(overloads().values()) == sorted(load().ops)
    for overload, op_type in overloads().items():
        definition = op(op_type)
        arguments = overload._schema.arguments
        tensors = [a for a in arguments if "Tensor" in str(a.type)]
        assert [a.name for a in tensors] == [p.name for p in definition.inputs], op_type
        optional = [isinstance(a.type, torch._C.OptionalType) for a in tensors]
        assert optional == [p.optional for p in definition.inputs], op_type
        for a in arguments:
            if a in tensors:
                continue
            assert isinstance(a.type, _ATTRIBUTE_TYPES[definition.attribute(a.name).type]), (op_type, a.name)
        assert len(overload._schema.returns) == len(definition.outputs), op_type


def test_node_spec_drops_an_omitted_optional_input_and_checks_attributes():
    conv = torch.ops.sparsetrt.sparse_conv.default
    spec = node_spec(conv, ["f", "n", "w", None, None, 1, 0.5], {})
    assert (spec.op_type, spec.inputs) == ("SparseConv", ["f", "n", "w"])
    assert {"activation": 1, "alpha": 0.5}.items() <= spec.attributes.items()  # the call's; the schema may add
    with pytest.raises(ValueError, match=r"SparseConv.*'alpha': must be of type float"):
        node_spec(conv, ["f", "n", "w", None, None, 1, 1], {})


def _sample_args(gen: torch.Generator) -> dict[str, tuple]:
    indices = clustered_sites(gen, 60, SHAPE, 2)
    n = indices.shape[0]
    features = torch.randn(n, 3, generator=gen)
    subm = torch.ops.sparsetrt.subm_rulebook(indices, SHAPE, [3, 3, 3], [1, 1, 1])
    geometry = (SHAPE, [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], [0, 0, 0])
    _, strided, _ = torch.ops.sparsetrt.sparse_rulebook(indices, *geometry, 0, 0, 2)
    weight = torch.randn(5, 27, 3, generator=gen)
    return {
        "subm_rulebook": (indices, SHAPE, [3, 3, 3], [1, 1, 1]),
        "sparse_rulebook": (indices, *geometry, 0, 0, 2),
        "inverse_rulebook": (strided, indices),
        "conv_plan": (subm,),
        "sparse_conv": (features, strided, weight, torch.randn(5, generator=gen), None, 2, 0.1),
        "sparse_conv_plan_residual": (
            features,
            torch.ops.sparsetrt.conv_plan(subm),
            weight,
            torch.randn(5, generator=gen),
            torch.randn(features.shape[0], 5, generator=gen),
            1,
            0.0,
        ),
        "sparse_max_pool": (features, subm),
        "densify": (features, indices, SHAPE, 2),
    }


def test_fake_implementations_agree_with_the_real_ones(gen):
    for name, args in _sample_args(gen).items():
        overload = getattr(torch.ops.sparsetrt, name.removesuffix("_plan_residual")).default
        torch.library.opcheck(overload, args, test_utils=("test_schema", "test_faketensor"))


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = snn.SubMConv3d(3, 4, 3, indice_key="s")
        self.down = snn.SparseConv3d(4, 4, 3, 2, 1, indice_key="d")
        self.b = snn.SubMConv3d(4, 4, 3)
        self.up = snn.SparseInverseConv3d(4, 4, 3, indice_key="d")

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = self.a(SparseTensor(features, coords, SHAPE, batch_size))
        y = self.b(self.down(x))
        return (self.up(y) + x).features, y.indices, y.dense()


def test_torch_export_traces_symbolic_voxel_counts(gen):
    """What a user's own ``torch.export`` of a converted model gives: one custom op per sparse layer, the
    voxel count symbolic, the strided layer's site count unbacked, the batch size a constant."""
    coords = clustered_sites(gen, 80, SHAPE, 2)
    args = (torch.randn(coords.shape[0], 3, generator=gen), coords, 2)
    n = torch.export.Dim("num_voxels", min=1)
    program = torch.export.export(_Net().eval(), args, dynamic_shapes=({0: n}, {0: n}, None), strict=False)
    calls = [node.target for node in program.graph.nodes if node.op == "call_function"]
    ops = [str(t) for t in calls if str(t).startswith("sparsetrt.")]
    used = ("subm_rulebook", "sparse_rulebook", "inverse_rulebook", "sparse_conv", "densify")
    assert sorted(set(ops)) == sorted(f"sparsetrt.{name}.default" for name in used)
    assert ops.count("sparsetrt.sparse_conv.default") == 4
    features_in = next(n.meta["val"] for n in program.graph.nodes if n.name == "features")
    features_out, sites_out, dense_out = (n.meta["val"] for n in program.graph.output_node().args[0])
    voxels = features_in.shape[0].node.expr
    assert str(voxels).startswith("s"), voxels  # backed: the input's symbolic voxel count
    assert features_out.shape[0].node.expr == voxels  # the inverse conv restores the input sites
    assert str(sites_out.shape[0].node.expr).startswith("u")  # unbacked: the strided layer's output count
    assert tuple(dense_out.shape) == (2, 4, 4, 5, 4)  # static: batch, channels, the strided grid
