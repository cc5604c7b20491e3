"""The op schema is the one source of truth: the docs, ONNX's registry and the emitted nodes follow it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from sparsetrt.errors import ModelError
from sparsetrt.exporter.schema import (
    DOMAIN,
    check_attributes,
    check_input_shapes,
    load,
    lookup_attributes,
    snake_name,
)
from sparsetrt.exporter.schema import cpp as cpp_header
from sparsetrt.exporter.schema.docs import plugin_readmes, render, update_plugin_readme
from sparsetrt.exporter.schema.onnx_registration import add_lookup_attributes, register_onnx_schemas
from sparsetrt.exporter.schema.rules import RULE_KINDS


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


F32, F16, I32 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32
_GEOMETRY = {"spatial_shape": [10, 10, 10], "kernel_size": [3, 3, 1], "dilation": [1, 1, 1]}
_SPARSE = {
    **_GEOMETRY,
    "stride": [2, 2, 2],
    "padding": [1, 1, 0],
    "output_padding": [0, 0, 0],
    "transposed": 0,
    "max_out": 0,
    "batch_size": 1,
}

_LINEAR, _RELU = {"activation": 0, "alpha": 0.0}, {"activation": 1, "alpha": 0.0}
_DENSE = {"spatial_shape": [10, 20, 30], "batch_size": 2}


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "expected"),
    [
        ("SubmRulebook", [(I32, ["N", 4])], _GEOMETRY, [(I32, [9, "N"])]),
        ("SparseRulebook", [(I32, [7, 4])], _SPARSE, [(I32, [None, 4]), (I32, [9, None]), (I32, [])]),
        ("InverseRulebook", [(I32, [27, "M"]), (I32, [9, 4])], {}, [(I32, [27, 9])]),
        ("ConvPlan", [(I32, [33, "M"])], {}, [(I32, [36, "M"])]),
        ("ConvPlan", [(I32, ["K", 5])], {}, [(I32, [None, 5])]),
        ("SparseConv", [(F16, ["N", 16]), (I32, [29, 8]), (F16, [32, 27, 16]), (F16, [32])], _LINEAR, [(F16, [8, 32])]),
        ("SparseConv", [(F32, None), (I32, None), (F32, [32, 27, 16])], _RELU, [(F32, [None, 32])]),
        ("SparseMaxPool", [(F32, ["N", 16]), (I32, [27, "M"])], {}, [(F32, ["M", 16])]),
        ("Densify", [(F32, ["N", 16]), (I32, ["N", 4])], _DENSE, [(F32, [2, 16, 10, 20, 30])]),
        ("UniqueSites", [(I32, [5, 3])], {}, [(I32, [None, 3]), (I32, [5]), (I32, [None]), (I32, [])]),
        ("SegmentReduce", [(F16, [4, 8]), (I32, [4]), (F16, ["M", 8])], {"reduction": 1}, [(F16, ["M", 8])]),
        ("MaskRows", [(I32, ["N"])], {}, [(I32, [None]), (I32, [])]),
    ],
)  # fmt: skip
def test_onnx_shape_inference_reads_the_schemas_symbolic_shapes(op, inputs, attrs, expected) -> None:
    """Each output dim that an input, an attribute or the geometry fixes is known statically; the data-dependent
    counts (M of a rulebook, UniqueSites, MaskRows) are left unknown, the element type follows the features'."""
    register_onnx_schemas()
    names = [f"in{i}" for i in range(len(inputs))]
    outputs = [f"out{i}" for i in range(len(expected))]
    graph = helper.make_graph(
        [helper.make_node(op, names, outputs, domain=DOMAIN, **attrs)],
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in zip(names, inputs, strict=True)],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, load().version)]
    inferred = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=opsets), strict_mode=True)
    for output, (elem, dims) in zip(inferred.graph.output, expected, strict=True):
        tensor = output.type.tensor_type
        got = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]
        got = [None if isinstance(d, str) and d.startswith("unk__") else d for d in got]
        assert (tensor.elem_type, got) == (elem, dims), f"{op} output {output.name}"


def test_every_op_has_runtime_kernels():
    """runtime/ops/<op>.py holds each op's reference kernel and its kernel-library binding, found by the op's
    name: the sessions name no op, and no module is left over from a removed one."""
    import pkgutil

    from sparsetrt.runtime import ops

    ops_with_modules = {snake_name(name) for name in load().ops}
    modules = {m.name for m in pkgutil.iter_modules(ops.__path__)} - {"common"}
    assert modules == ops_with_modules
    for name in load().ops:
        module = ops.op_module(name)
        assert callable(module.reference) and callable(module.kernels), f"{module.__name__}"


def test_attribute_types_are_those_tensorrt_passes_through():
    for definition in load().ops.values():
        for a in definition.attributes:
            assert a.type in ("int", "ints", "float"), f"{definition.name}.{a.name}: {a.type}"


def test_check_attributes_refuses_drift():
    ok = {"spatial_shape": [4, 4, 4], "kernel_size": [3, 3, 3], "dilation": [1, 1, 1]}
    check_attributes("SubmRulebook", ok)
    with pytest.raises(ModelError, match="attribute 'extra': unknown attribute for this op"):
        check_attributes("SubmRulebook", {**ok, "extra": 1})
    with pytest.raises(ModelError, match="attribute 'dilation': must be of type ints, got floats"):
        check_attributes("SubmRulebook", {**ok, "dilation": [1.0, 1.0, 1.0]})
    with pytest.raises(ModelError, match="attribute 'dilation': missing"):
        check_attributes("SubmRulebook", {k: v for k, v in ok.items() if k != "dilation"})
    with pytest.raises(ModelError, match="attribute 'kernel_size': given twice"):
        check_attributes("SubmRulebook", [*ok.items(), ("kernel_size", [3, 3, 3])])
    with pytest.raises(ModelError, match="no op 'Nope'"):
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
    with pytest.raises(ModelError, match=r"'plugin_namespace': is '', .* only under 'sparsetrt'"):
        check_attributes("SubmRulebook", {**ok, "plugin_namespace": ""})
    with pytest.raises(ModelError, match=r"'plugin_version': is '2'"):
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


def test_the_cpp_tables_and_attribute_code_are_generated_from_the_schema():
    """op_fields.h, op_rules.h and every op's ops/<op>/<op>_attributes.h are the generator's output (the schema
    contract of the plugins: what the creators declare, parse, validate and serialize)."""
    root = Path(__file__).resolve().parents[1]
    files = cpp_header.generated()
    assert {cpp_header.HEADER, cpp_header.FIELDS_HEADER} <= set(files)
    assert {cpp_header.attributes_header(n) for n, d in load().ops.items() if d.attributes} <= set(files)
    # The op table names every op's check function, so the rules driver and the fuzzer reach each op.
    table = files[cpp_header.OP_TABLE]
    assert all(f"{{{json.dumps(n)}, {cpp_header.check_function(n)}, " in table for n in load().ops), table
    stale = cpp_header.stale(root)
    assert not stale, f"stale: {', '.join(stale)} (regenerate: {cpp_header.COMMAND})"


def test_a_schema_change_makes_the_cpp_files_stale():
    """Drift is caught: a changed attribute type changes the field table and the op's attribute code."""
    schema = load()
    op = schema.ops["SparseRulebook"]
    attrs = tuple(dataclasses.replace(a, type="float") if a.name == "max_out" else a for a in op.attributes)
    drifted = dataclasses.replace(schema, ops={**schema.ops, op.name: dataclasses.replace(op, attributes=attrs)})
    root = Path(__file__).resolve().parents[1]
    assert set(cpp_header.stale(root, drifted)) == {
        cpp_header.FIELDS_HEADER,
        cpp_header.attributes_header("SparseRulebook"),
    }
    unknown = tuple(dataclasses.replace(a, type="string") if a.name == "max_out" else a for a in op.attributes)
    bad = dataclasses.replace(schema, ops={**schema.ops, op.name: dataclasses.replace(op, attributes=unknown)})
    with pytest.raises(ValueError, match=r"SparseRulebook\.max_out: schema type 'string' has no TensorRT"):
        cpp_header.generated(bad)


def test_enumerated_attributes_become_cpp_enums():
    """The schema's values and value_names are the C++ enums (the kernels' Activation, Reduction): one source."""
    enums = cpp_header.enums()
    assert enums["Activation"][1] == (("kNone", 0), ("kRelu", 1), ("kLeakyRelu", 2), ("kSigmoid", 3))
    assert enums["Reduction"][1] == (("kSum", 0), ("kMax", 1))
    assert enums["Transposed"][1] == (("kRegular", 0), ("kTransposed", 1))
    fields = cpp_header.render_fields()
    assert "enum class Activation : int32_t { kNone = 0, kRelu = 1, kLeakyRelu = 2, kSigmoid = 3 };" in fields


def test_rules_are_well_formed():
    """Every rule kind is one both sides implement; D-length attributes come after spatial_shape (which sets
    D); value lists only on scalars, with a name per value."""
    for definition in load().ops.values():
        names = [a.name for a in definition.attributes]
        for a in definition.attributes:
            if a.length == "D":
                assert "spatial_shape" in names[: names.index(a.name)], f"{definition.name}.{a.name}"
            if a.values is not None:
                assert a.type in ("int", "string"), f"{definition.name}.{a.name}"
                assert a.value_names is None or len(a.value_names) == len(a.values)
            assert a.type != "float" or (a.min is None and a.max is None), "float bounds are not implemented"
        for r in definition.rules:
            assert r.kind in RULE_KINDS, f"{definition.name}: {r.kind}"
            assert r.field in names and r.doc, f"{definition.name}: {r}"


def _sparse(**changes):
    attrs = {
        "spatial_shape": [41, 1440, 1440],
        "kernel_size": [3, 3, 3],
        "stride": [2, 2, 2],
        "padding": [1, 1, 1],
        "dilation": [1, 1, 1],
        "output_padding": [0, 0, 0],
        "transposed": 0,
        "max_out": 0,
        "batch_size": 2,
    }
    return {**attrs, **changes}


@pytest.mark.parametrize(
    ("op", "attrs", "message"),
    [
        # The cases: values the plugins refuse, which the reference runtime ran.
        ("SparseRulebook", _sparse(transposed=5), "'transposed': must be 0 (regular) or 1 (transposed), got 5"),
        ("SparseConv", {"activation": 7, "alpha": 0.0}, "'activation': must be 0 (none), 1 (relu), 2 (leaky_relu)"),
        ("SparseConv", {"activation": 2, "alpha": float("nan")}, "'alpha': must be finite"),
        ("Densify", {"spatial_shape": [4, 4], "batch_size": 0}, "'batch_size': must be >= 1, got 0"),
        # Products that overflowed int64 in C++ (2^21 * 2^21 * 2^22 = 2^64 wrapped to 0 and passed).
        (
            "SparseRulebook",
            _sparse(kernel_size=[2**21, 2**21, 2**22]),
            "'kernel_size': the kernel volume K, a tensor dim and a loop bound in every kernel (the product of "
            "kernel_size [2097152, 2097152, 4194304]) exceeds 2^20",
        ),
        # (k / 2) * dilation overflowed int32 in makeGeometry: the reach rule keeps every coordinate in int32.
        (
            "SubmRulebook",
            {"spatial_shape": [8], "kernel_size": [2**20], "dilation": [2**20]},
            "'kernel_size': every coordinate a kernel forms fits int32: in dim 0, spatial_shape + (kernel_size - 1) "
            "* dilation = 1099510579208 exceeds 2^31 - 1",
        ),
        ("SubmRulebook", {"spatial_shape": [2**40], "kernel_size": [1], "dilation": [1]}, "must fit in int32"),
        ("SparseRulebook", _sparse(output_padding=[1, 0, 0]), "'output_padding': output_padding only applies"),
        (
            "SparseRulebook",
            _sparse(spatial_shape=[1, 1440, 1440], kernel_size=[5, 3, 3], padding=[0, 0, 0]),
            "'spatial_shape': dim 0 of size 1 becomes -1 with this kernel_size/stride/padding/dilation",
        ),
        (
            "SparseRulebook",
            _sparse(spatial_shape=[2**30, 2**30, 1], stride=[1, 1, 1], transposed=1),
            "'spatial_shape': the grid's site count",
        ),
        (
            "SparseRulebook",
            _sparse(spatial_shape=[2**16, 2**16, 1], batch_size=2**31 - 1, stride=[1, 1, 1]),
            "'batch_size': the range of the input's site keys (batch x grid) (the product of batch_size 2147483647 "
            "and spatial_shape [65536, 65536, 1]) exceeds 2^62 - 1",
        ),
        ("SparseRulebook", _sparse(stride=[2, 2]), "'stride': must have 3 entries (one per spatial dim of spatial_sh"),
        ("Densify", {"spatial_shape": [1] * 5, "batch_size": 1}, "'spatial_shape': must have 1 to 4 entries"),
    ],
)
def test_rules_refuse_with_op_node_and_field(op: str, attrs: dict, message: str) -> None:
    with pytest.raises(ModelError) as caught:
        check_attributes(op, attrs, node="n7")
    assert str(caught.value).startswith(f"sparsetrt::{op} node 'n7', attribute '")
    assert message in str(caught.value)


def test_valid_attributes_pass_the_rules():
    check_attributes("SparseRulebook", _sparse())
    check_attributes("SparseRulebook", _sparse(transposed=1, output_padding=[1, 0, 1], max_out=10))
    check_attributes("SparseConv", {"activation": 2, "alpha": 0.1})
    check_attributes("SubmRulebook", {"spatial_shape": [8], "kernel_size": [2**20], "dilation": [1]})


def test_input_shapes_follow_the_symbolic_shapes():
    conv = {"activation": 0, "alpha": 0.0}
    check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 27, 16], [32]])
    check_input_shapes("SparseConv", "c", conv, [[-1, 16], [27, -1], [32, 27, 16], None])
    # The map's rows are K (a map) or K + 1 + ceil(K/32) (its ConvPlan), K the weight's kernel volume.
    check_input_shapes("SparseConv", "c", conv, [[100, 16], [29, 90], [32, 27, 16], [32], [90, 32]])
    refused = r"input 'neighbors': dim 0 must be K = 2 or K\+1\+ceil\(K/32\) = 4 \(K = 2 of input 'weight'\), got 27"
    with pytest.raises(ModelError, match=f"node 'c', {refused}"):
        check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 2, 16]])
    with pytest.raises(ModelError, match=r"input 'residual': needs input 'bias' as well"):
        check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 27, 16], None, [90, 32]])
    with pytest.raises(ModelError, match=r"input 'residual': dim 0 \(M\) must equal M = 90 of input 'neighbors'"):
        check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 27, 16], [32], [91, 32]])
    with pytest.raises(ModelError, match=r"ConvPlan node 'p', input 'neighbors': dim 0 \(K\) must be at most 1024"):
        check_input_shapes("ConvPlan", "p", {}, [[1025, 90]])
    with pytest.raises(ModelError, match=r"input 'bias': dim 0 \(C_out\) must equal C_out = 32 of input 'weight'"):
        check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 27, 16], [31]])
    with pytest.raises(
        ModelError, match=r"input 'weight': must be \[C_out, K, C_in\] \(rank 3\), got \[32, 3, 3, 3, 16\]"
    ):
        check_input_shapes("SparseConv", "c", conv, [[100, 16], [27, 90], [32, 3, 3, 3, 16]])
    dense = {"spatial_shape": [4, 4], "batch_size": 1}
    with pytest.raises(ModelError, match=r"input 'indices': dim 1 must be 1 \+ D = 3 \(batch, one coordinate"):
        check_input_shapes("Densify", "d", dense, [[10, 8], [10, 4]])


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
    with pytest.raises(ValueError, match=r"'plugin_version': is '3'.*'1' or '2'"):
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
    with pytest.raises(ValueError, match=r"\(version 1\) has inputs \['x', 'n', 'w', 'b', 'r'\]"):
        ReferenceSession(model(1, ["x", "n", "w", "b", "r"]))
