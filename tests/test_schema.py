"""The op schema is the one source of truth: the docs, ONNX's registry and the emitted nodes follow it."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from sparsetrt.exporter.schema import DOMAIN, check_attributes, load, lookup_attributes
from sparsetrt.exporter.schema.docs import plugin_readmes, render, update_plugin_readme
from sparsetrt.exporter.schema.onnx_registration import SHAPE_FUNCTIONS, add_lookup_attributes, register_onnx_schemas


def test_docs_are_generated_from_the_schema():
    path = Path(__file__).resolve().parents[1] / "docs" / "ops.md"
    assert path.read_text() == render(), "docs/ops.md is stale: python -m sparsetrt.exporter.schema.docs > docs/ops.md"


def test_every_op_has_a_plugin_folder_whose_readme_follows_the_schema():
    """plugins/ops/<op>/README.md exists for every op, and its inputs/outputs/attributes table is the schema's."""
    root = Path(__file__).resolve().parents[1]
    for path, definition in plugin_readmes(root).items():
        assert path.exists(), f"{definition.name} has no plugin folder README at {path.relative_to(root)}"
        text = path.read_text()
        assert text == update_plugin_readme(text, definition), (
            f"{path.relative_to(root)} is stale: python -m sparsetrt.exporter.schema.docs --plugin-readmes"
        )


def test_onnx_knows_every_op():
    register_onnx_schemas()
    schema = load()
    assert set(SHAPE_FUNCTIONS) == set(schema.ops)
    for definition in schema.ops.values():
        registered = onnx.defs.get_schema(definition.name, definition.since_version, schema.domain)
        assert [i.name for i in registered.inputs] == [p.name for p in definition.inputs]
        for version in definition.previous_versions:  # the inputs an older version had
            older = onnx.defs.get_schema(definition.name, version, schema.domain)
            assert older.since_version == version
            assert [i.name for i in older.inputs] == [p.name for p in definition.inputs_of(version)]
        assert [o.name for o in registered.outputs] == [p.name for p in definition.outputs]
        lookup = {a.name for a in schema.lookup_attributes}
        assert set(registered.attributes) == {a.name for a in definition.attributes} | lookup
        assert all(not registered.attributes[name].required for name in lookup)


def test_attribute_types_are_those_tensorrt_passes_through():
    for definition in load().ops.values():
        for a in definition.attributes:
            assert a.type in ("int", "ints", "float"), f"{definition.name}.{a.name}: {a.type}"


def test_check_attributes_refuses_drift():
    ok = {"spatial_shape": [4, 4, 4], "kernel_size": [3, 3, 3], "dilation": [1, 1, 1]}
    check_attributes("SubmRulebook", ok)
    with pytest.raises(ValueError, match="do not match"):
        check_attributes("SubmRulebook", {**ok, "extra": 1})
    with pytest.raises(ValueError, match="must be ints"):
        check_attributes("SubmRulebook", {**ok, "dilation": [1.0, 1.0, 1.0]})
    with pytest.raises(KeyError, match="no op"):
        check_attributes("Nope", {})


def test_lookup_attributes_name_the_plugin_creator():
    """Every op's nodes carry the namespace and version TensorRT 10.3-10.9's parser looks plugins up by."""
    for name, definition in load().ops.items():
        assert lookup_attributes(name) == {
            "plugin_namespace": "sparsetrt",
            "plugin_version": str(definition.since_version),
        }


def test_check_attributes_accepts_the_lookup_attributes_and_checks_their_values():
    ok = {"spatial_shape": [4, 4, 4], "kernel_size": [3, 3, 3], "dilation": [1, 1, 1]}
    check_attributes("SubmRulebook", {**ok, "plugin_namespace": "sparsetrt", "plugin_version": b"1"})
    check_attributes("SubmRulebook", ok)  # files exported before them stay valid
    with pytest.raises(ValueError, match=r"plugin_namespace is '', .* only under 'sparsetrt'"):
        check_attributes("SubmRulebook", {**ok, "plugin_namespace": ""})
    with pytest.raises(ValueError, match=r"plugin_version is '2'"):
        check_attributes("InverseRulebook", {"plugin_version": "2"})
    check_attributes("SparseConv", {"activation": 0, "alpha": 0.0, "plugin_version": "1"})  # an older version


def test_onnx_checker_knows_the_lookup_attributes_and_their_type():
    register_onnx_schemas()
    geometry = {"spatial_shape": [8, 8], "kernel_size": [3, 3], "dilation": [1, 1]}

    def model(**extra: object) -> onnx.ModelProto:
        node = helper.make_node("SubmRulebook", ["c"], ["n"], domain=DOMAIN, **geometry, **extra)
        graph = helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("c", TensorProto.INT32, ["N", 3])],
            [helper.make_tensor_value_info("n", TensorProto.INT32, [9, "N"])],
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, load().version)]
        return helper.make_model(graph, opset_imports=opsets)

    onnx.checker.check_model(model(plugin_namespace="sparsetrt", plugin_version="1"), full_check=True)
    onnx.checker.check_model(model(), full_check=True)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model(plugin_namespace=3), full_check=True)
    old = model()
    assert add_lookup_attributes(old) == 2 and add_lookup_attributes(old) == 0
    assert {a.name: helper.get_attribute_value(a) for a in old.graph.node[0].attribute}["plugin_namespace"] == (
        b"sparsetrt"
    )


def test_sparse_conv_version_1_files_still_check_and_run():
    """SparseConv 2 added the residual input and the ConvPlan form of the map. A file of domain version 1 (its
    SparseConv nodes at plugin_version "1", four inputs at most) still passes ONNX's checker and runs in the
    reference runtime; a version-1 node with a residual, or a version nobody made, is refused."""
    import numpy as np

    from sparsetrt.runtime import ReferenceSession

    register_onnx_schemas()
    definition = load().ops["SparseConv"]
    assert definition.versions == (1, 2)
    assert [p.name for p in definition.inputs_of(1)] == ["features", "neighbors", "weight", "bias"]
    assert onnx.defs.get_schema("SparseConv", 1, DOMAIN).since_version == 1
    check_attributes("SparseConv", {"activation": 0, "alpha": 0.0, "plugin_version": "1"})
    with pytest.raises(ValueError, match=r"plugin_version is '3'.*'1' or '2'"):
        check_attributes("SparseConv", {"activation": 0, "alpha": 0.0, "plugin_version": "3"})

    def model(version: int, inputs: list[str]) -> onnx.ModelProto:
        conv = helper.make_node(
            "SparseConv", inputs, ["y"], domain=DOMAIN, activation=1, alpha=0.0,
            plugin_namespace="sparsetrt", plugin_version=str(version),
        )  # fmt: skip
        subm = helper.make_node(
            "SubmRulebook", ["c"], ["n"], domain=DOMAIN, spatial_shape=[8, 8], kernel_size=[3, 3], dilation=[1, 1],
            plugin_namespace="sparsetrt", plugin_version="1",
        )  # fmt: skip
        init = [
            onnx.numpy_helper.from_array(np.full((2, 9, 3), 0.5, np.float32), "w"),
            onnx.numpy_helper.from_array(np.zeros(2, np.float32), "b"),
        ]
        graph = helper.make_graph(
            [subm, conv],
            "g",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                helper.make_tensor_value_info("c", TensorProto.INT32, ["N", 3]),
                helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", 2]),
            ],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
            init,
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, version)]
        return helper.make_model(graph, opset_imports=opsets)

    feed = {
        "x": np.ones((2, 3), np.float32),
        "c": np.array([[0, 1, 1], [0, 1, 2]], np.int32),
        "r": np.array([[1, -10], [2, -20]], np.float32),
    }
    old = model(1, ["x", "n", "w", "b"])
    onnx.checker.check_model(old, full_check=True)
    np.testing.assert_allclose(ReferenceSession(old).run(None, feed)[0], [[3, 3], [3, 3]])
    new = model(2, ["x", "n", "w", "b", "r"])
    onnx.checker.check_model(new, full_check=True)
    np.testing.assert_allclose(ReferenceSession(new).run(None, feed)[0], [[4, 0], [5, 0]])
    with pytest.raises(ValueError, match=r"version 1\) has 5 inputs"):
        ReferenceSession(model(1, ["x", "n", "w", "b", "r"]))
