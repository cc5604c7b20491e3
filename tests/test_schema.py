"""The op schema is the one source of truth: the docs, ONNX's registry and the emitted nodes follow it."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from sparsetrt.exporter.schema import check_attributes, load
from sparsetrt.exporter.schema.docs import plugin_readmes, render, update_plugin_readme
from sparsetrt.exporter.schema.onnx_registration import SHAPE_FUNCTIONS, register_onnx_schemas


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
        assert set(registered.attributes) == {a.name for a in definition.attributes}


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
