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
