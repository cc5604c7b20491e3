"""Generate the plugins' copy of the schema: every C++ table and the attribute code the plugins build on.

``python -m sparsetrt.exporter.schema.cpp`` (re)writes them all; ``--check`` lists the stale ones:

- ``plugins/common/include/sparsetrt/op_fields.h``: the ops as the plugin creators see them (names, plugin
  versions, previous versions, field names and TensorRT field types, the lookup attributes) and the schema's
  enumerated attribute values as C++ enums (``activation`` -> ``Activation::kLeakyRelu``), which the kernels use;
- ``plugins/common/include/sparsetrt/op_rules.h``: every attribute's valid values, the rules across attributes
  and the symbolic input shapes, which ``common/src/attributes.cpp`` and ``shapes.cpp`` apply;
- ``plugins/ops/<op>/<op>_attributes.h`` for each op with attributes: its attribute struct, parse (strict:
  unknown, repeated, mistyped and missing fields refused, then the schema's rules), serialization and
  validation, over the generic field reader of ``sparsetrt/attributes.h``;
- ``plugins/ops/op_table.h``: every op's host check function (``check<Op>Node`` of ``ops/<op>/<op>_host.h``: what
  an engine build does with one node) and, for ops with attributes, its serialization round trip, in schema
  order, so the rules driver and the fuzzer of ``plugins/test/`` reach every op without naming one.

So the C++ side applies the JSON, not a transcription of it; ``tests/test_schema.py`` fails when a committed
file differs from this output.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from . import Attr, OpDef, Rule, Schema, load, snake_name

HEADER = "plugins/common/include/sparsetrt/op_rules.h"
FIELDS_HEADER = "plugins/common/include/sparsetrt/op_fields.h"
OP_TABLE = "plugins/ops/op_table.h"
COMMAND = "python -m sparsetrt.exporter.schema.cpp"

_EMPTY = '{""}'  # C++ has no zero-length arrays; counts say 0
_KINDS = {"product": "kProduct", "reach": "kReach", "zero_unless": "kZeroUnless", "output_grid": "kOutputGrid"}


def _str(s: str) -> str:
    return json.dumps(s)  # a C string literal for ASCII text


def _strings(items: Iterable[str]) -> str:
    return "{" + ", ".join(_str(i) for i in items) + "}"


def _ident(op: str, what: str, i: int | None = None) -> str:
    return f"k{op}{what}" + (str(i) if i is not None else "")


def _value_rule(op: OpDef, a: Attr, arrays: list[str]) -> str:
    if a.length == "D":
        length = "LengthRule::kSpatialDims, 0, 0"
    elif a.length is not None:
        length = f"LengthRule::kRange, {a.length[0]}, {a.length[1]}"
    else:
        length = "LengthRule::kAny, 0, 0"
    values = names = strings = "nullptr"
    num_values = num_strings = 0
    if a.values is not None and all(isinstance(v, str) for v in a.values):
        strings = _ident(op.name, f"_{a.name}_strings")
        arrays.append(f"inline constexpr const char* {strings}[] = {_strings(a.values)};")
        num_strings = len(a.values)
    elif a.values is not None:
        values = _ident(op.name, f"_{a.name}_values")
        arrays.append(f"inline constexpr int64_t {values}[] = {{{', '.join(str(int(v)) for v in a.values)}}};")
        num_values = len(a.values)
        if a.value_names:
            names = _ident(op.name, f"_{a.name}_names")
            arrays.append(f"inline constexpr const char* {names}[] = {_strings(a.value_names)};")
    has_min, has_max = a.min is not None, a.max is not None
    return (
        f"    {{{_str(a.name)}, {length}, {str(has_min).lower()}, {int(a.min or 0)}, {str(has_max).lower()}, "
        f"{int(a.max or 0)}, {values}, {names}, {num_values}, {strings}, {num_strings}, {str(a.finite).lower()}}},"
    )


def _terms(rule: Rule) -> list[str]:
    p = rule.params
    if rule.kind == "product":
        return list(p["of"])
    if rule.kind == "reach":
        return [p["grid"], p.get("padding", ""), p["kernel"], p["dilation"]]
    if rule.kind == "zero_unless":
        return [p["unless"]]
    return []


def render(schema: Schema | None = None) -> str:
    """``op_rules.h``."""
    schema = schema or load()
    arrays: list[str] = []
    tables: list[str] = []
    entries: list[str] = []
    for op in schema.ops.values():
        values = rules = inputs = "nullptr"
        if op.attributes:
            values = _ident(op.name, "Values")
            rows = [_value_rule(op, a, arrays) for a in op.attributes]
            tables += [f"inline constexpr ValueRule {values}[] = {{", *rows, "};"]
        if op.rules:
            rules = _ident(op.name, "Rules")
            rows = []
            for i, r in enumerate(op.rules):
                terms = _ident(op.name, "RuleTerms", i)
                arrays.append(
                    f"inline constexpr const char* {terms}[] = {_strings(_terms(r)) if _terms(r) else _EMPTY};"
                )
                rows.append(
                    f"    {{RuleKind::{_KINDS[r.kind]}, {_str(r.field)}, {_str(r.doc)}, {int(r.params.get('max', 0))}, "
                    f"{terms}, {len(_terms(r))}}},"
                )
            tables += [f"inline constexpr CrossRule {rules}[] = {{", *rows, "};"]
        if op.inputs:
            inputs = _ident(op.name, "Inputs")
            rows = []
            for p in op.inputs:
                dims = _ident(op.name, f"_{p.name}_dims")
                arrays.append(f"inline constexpr const char* {dims}[] = {_strings(p.shape) if p.shape else _EMPTY};")
                limits = "nullptr"
                if p.max_dims is not None:
                    limits = _ident(op.name, f"_{p.name}_max_dims")
                    bounds = ", ".join(str(-1 if v is None else int(v)) for v in p.max_dims)
                    arrays.append(f"inline constexpr int64_t {limits}[] = {{{bounds}}};")
                requires = _str(p.requires) if p.requires is not None else "nullptr"
                rows.append(
                    f"    {{{_str(p.name)}, {str(p.optional).lower()}, {dims}, {len(p.shape)}, {limits}, {requires}}},"
                )
            tables += [f"inline constexpr InputShape {inputs}[] = {{", *rows, "};"]
        entries.append(
            f"    {{{_str(op.name)}, {values}, {len(op.attributes)}, {rules}, {len(op.rules)}, {inputs}, "
            f"{len(op.inputs)}}},"
        )
    lines = [
        "// GENERATED by `python -m sparsetrt.exporter.schema.cpp` from exporter/schema/sparsetrt_ops.json:",
        "// do not edit. The schema's rules for the plugin creators: each attribute's own rules, the rules across",
        "// attributes, and the symbolic input shapes. common/src/attributes.cpp and shapes.cpp apply them in the",
        "// order and with the messages of exporter/schema/rules.py (the reference runtime's side);",
        "// tests/test_rules_cpp.py compares the two.",
        "// clang-format off",
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        "namespace sparsetrt {",
        "",
        "enum class LengthRule : int32_t { kAny, kRange, kSpatialDims };",
        "",
        "// One attribute's own rules, checked in this order: length, min, max, values, finite.",
        "struct ValueRule {",
        "  const char* field;",
        "  LengthRule length;",
        "  int32_t length_min, length_max;  // kRange",
        "  bool has_min;",
        "  int64_t min;",
        "  bool has_max;",
        "  int64_t max;",
        "  const int64_t* values;  // allowed int values (nullptr: any)",
        "  const char* const* value_names;",
        "  std::size_t num_values;",
        "  const char* const* string_values;  // allowed string values (nullptr: any)",
        "  std::size_t num_string_values;",
        "  bool finite;",
        "};",
        "",
        "enum class RuleKind : int32_t { kProduct, kReach, kZeroUnless, kOutputGrid };",
        "",
        '// A rule across attributes; terms: kProduct the factors (attributes or "output_grid"), kReach',
        '// {grid, padding or "", kernel, dilation}, kZeroUnless {the int attribute that allows non-zeros}.',
        "struct CrossRule {",
        "  RuleKind kind;",
        "  const char* field;  // the attribute its message names",
        "  const char* doc;",
        "  int64_t max;",
        "  const char* const* terms;",
        "  std::size_t num_terms;",
        "};",
        "",
        '// An input\'s symbolic shape: dims named alike must agree; "1+D" is 1 + len(spatial_shape); "A|B" is',
        '// either expression (terms joined by "+": an integer, a dim name, ceil(NAME/INTEGER)).',
        "struct InputShape {",
        "  const char* name;",
        "  bool optional;",
        "  const char* const* dims;",
        "  std::size_t rank;",
        "  const int64_t* max_dims;  // an upper bound per dim, -1 for none (nullptr: no bounds)",
        "  const char* requires;     // another input that must be given whenever this one is (or nullptr)",
        "};",
        "",
        "struct OpRules {",
        "  const char* op;",
        "  const ValueRule* values;",
        "  std::size_t num_values;",
        "  const CrossRule* rules;",
        "  std::size_t num_rules;",
        "  const InputShape* inputs;",
        "  std::size_t num_inputs;",
        "};",
        "",
        *arrays,
        "",
        *tables,
        "",
        "inline constexpr OpRules kOpRules[] = {",
        *entries,
        "};",
        "",
        "}  // namespace sparsetrt",
        "// clang-format on",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- op_fields.h
# Attribute types as TensorRT's ONNX parser passes them (no conversion: a creator declaring another type never
# sees the value): the C++ field type, the struct member's type, its FieldReader getter and FieldValue maker.
_FIELD_TYPES = {
    "int": ("FieldType::kInt32", "int32_t", "int32", "intField"),
    "ints": ("FieldType::kInt32Array", "std::vector<int32_t>", "ints", "intsField"),
    "float": ("FieldType::kFloat32", "float", "float32", "floatField"),
}


def _camel(name: str) -> str:
    """``leaky_relu`` -> ``LeakyRelu``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def _field_type(op: OpDef, a: Attr) -> tuple[str, str, str, str]:
    if a.type not in _FIELD_TYPES:
        raise ValueError(f"{op.name}.{a.name}: schema type {a.type!r} has no TensorRT plugin field type")
    return _FIELD_TYPES[a.type]


def enums(schema: Schema | None = None) -> dict[str, tuple[str, tuple[tuple[str, int], ...]]]:
    """The schema's enumerated int attributes as C++ enums: name (the attribute's, camel-cased) ->
    (where it comes from, ((enumerator, value), ...)). Two ops may share an enum only with the same values."""
    schema = schema or load()
    out: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {}
    for op in schema.ops.values():
        for a in op.attributes:
            if a.type != "int" or a.values is None:
                continue
            if a.value_names is None:
                raise ValueError(f"{op.name}.{a.name}: enumerated values need value_names (the C++ enumerators)")
            items = tuple((f"k{_camel(n)}", int(v)) for n, v in zip(a.value_names, a.values, strict=True))
            name = _camel(a.name)
            if name in out and out[name][1] != items:
                raise ValueError(f"{op.name}.{a.name}: enum {name} already has other values ({out[name][0]})")
            out.setdefault(name, (f"{op.name}.{a.name}", items))
    return out


def render_fields(schema: Schema | None = None) -> str:
    """``op_fields.h``."""
    schema = schema or load()
    lines = [
        f"// GENERATED by `{COMMAND}` from exporter/schema/sparsetrt_ops.json: do not edit.",
        "// The op schema as the plugin creators see it, with no TensorRT or CUDA header: every creator declares",
        "// exactly these fields, and FieldReader (sparsetrt/attributes.h) accepts exactly these. Also the schema's",
        "// enumerated attribute values as enums (the kernels take them), numbered as the schema numbers them.",
        "// clang-format off",
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        "namespace sparsetrt {",
        "",
        "// Attribute types as TensorRT's ONNX parser passes them: int -> INT32, ints -> INT32 array,",
        "// float -> FLOAT32 (no conversion happens, so a creator declaring another type never sees the value).",
        "enum class FieldType { kInt32, kInt32Array, kFloat32 };",
        "",
        "struct FieldSpec {",
        "  const char* name;",
        "  FieldType type;",
        "};",
        "",
        "struct OpSpec {",
        "  const char* name;",
        "  const char* version;  // the plugin version: the schema's since_version as a string",
        "  const FieldSpec* fields;",
        "  std::size_t num_fields;",
        "  // The schema's previous_versions (at most one here): older files and engines name it, and the plugin",
        "  // library registers a creator for it too (the op's later additions are optional, so one plugin serves",
        "  // both).",
        "  const char* previous_version = nullptr;",
        "};",
        "",
        "// The ONNX domain, which TensorRT's parser also uses as the plugin namespace.",
        f"inline constexpr char kPluginNamespace[] = {_str(schema.domain)};",
        "",
        "// The schema's lookup attributes: every exported node carries them (string attributes) so that TensorRT's",
        "// ONNX parser finds our creators. TensorRT 10.3-10.9 read the namespace only from `plugin_namespace`",
        '// (default ""); 10.10 and later, and TensorRT-RTX, fall back to the node\'s domain. They select the creator',
        "// and are not plugin parameters: creators do not declare them (the parser hands a creator only the fields it",
        "// declares), and accept them, checking their values, when a caller passes them anyway (docs/deployment.md).",
        f"inline constexpr const char* kLookupFields[] = {_strings(a.name for a in schema.lookup_attributes)};",
        "inline constexpr std::size_t kNumLookupFields = sizeof(kLookupFields) / sizeof(kLookupFields[0]);",
        "",
    ]
    for name, (source, items) in enums(schema).items():
        body = ", ".join(f"{k} = {v}" for k, v in items)
        lines += [f"// {source}", f"enum class {name} : int32_t {{ {body} }};", ""]
    entries = []
    for op in schema.ops.values():
        if len(op.previous_versions) > 1:
            raise ValueError(f"{op.name}: the plugin table holds one previous version, the schema lists more")
        previous = f", {_str(str(op.previous_versions[0]))}" if op.previous_versions else ""
        if op.attributes:
            table = _ident(op.name, "Fields")
            lines.append(f"inline constexpr FieldSpec {table}[] = {{")
            lines += [f"    {{{_str(a.name)}, {_field_type(op, a)[0]}}}," for a in op.attributes]
            lines += ["};", ""]
            fields = f"{table}, {len(op.attributes)}"
        else:
            fields = "nullptr, 0"  # C++ has no zero-length arrays
        entries.append(f"    {{{_str(op.name)}, {_str(str(op.since_version))}, {fields}{previous}}},")
    lines += [
        "// Schema order.",
        "inline constexpr OpSpec kOps[] = {",
        *entries,
        "};",
        "",
        "inline constexpr std::size_t kNumOps = sizeof(kOps) / sizeof(kOps[0]);",
        "",
        "inline const char* fieldTypeName(FieldType t) {",
        "  switch (t) {",
        *[f"    case {cpp}:\n      return {_str(schema_type)};" for schema_type, (cpp, *_) in _FIELD_TYPES.items()],
        "  }",
        '  return "?";',
        "}",
        "",
        "}  // namespace sparsetrt",
        "// clang-format on",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- <op>_attributes.h
def attributes_header(op: str) -> str:
    return f"plugins/ops/{snake_name(op)}/{snake_name(op)}_attributes.h"


def _default(a: Attr) -> str:
    """A member's initial value: an int starts at its smallest valid value (the first of its values, else its
    min, else 0), so a default-constructed struct holds valid scalars."""
    if a.type == "ints":
        return ""
    if a.type == "float":
        return " = 0.0f"
    start = a.values[0] if a.values is not None else (a.min if a.min is not None else 0)
    return f" = {int(start)}"


def render_attributes(op: OpDef) -> str:
    """``plugins/ops/<op>/<op>_attributes.h`` of an op with attributes."""
    struct = f"{op.name}Attrs"
    members, compare, reads, writes = [], [], [], []
    for a in op.attributes:
        _, member_type, getter, maker = _field_type(op, a)
        doc = f"  // {a.doc}" if a.doc else ""
        if a.values is not None and a.type == "int":
            doc += f" (values: {_camel(a.name)})"
        members.append(f"  {member_type} {a.name}{_default(a)};{doc}")
        compare.append(f"{a.name} == o.{a.name}")
        reads.append(f"  a.{a.name} = r.{getter}({_str(a.name)});")
        writes.append(f"{maker}({_str(a.name)}, a.{a.name})")
    lines = [
        f"// GENERATED by `{COMMAND}` from exporter/schema/sparsetrt_ops.json: do not edit.",
        f"// {op.name}'s attributes: the struct, parse (every field required; unknown, repeated and mistyped fields",
        "// refused; then the schema's rules), validation and serialization in schema order (parse(toFields(a)) == a).",
        "// Messages name the op, the node and the field (sparsetrt/attributes.h).",
        "// clang-format off",
        "#pragma once",
        "",
        "#include <cstdint>",
        "#include <string>",
        "#include <vector>",
        "",
        '#include "sparsetrt/attributes.h"',
        "",
        "namespace sparsetrt {",
        "",
        f"struct {struct} {{",
        *members,
        f"  bool operator==(const {struct}& o) const {{",
        "    return " + " &&\n           ".join(compare) + ";",
        "  }",
        "};",
        "",
        "// The fields to serialize, in schema order.",
        f"inline std::vector<FieldValue> toFields(const {struct}& a) {{",
        "  return {" + ",\n          ".join(writes) + "};",
        "}",
        "",
        "// The schema's rules (sparsetrt/op_rules.h); throws AttributeError naming node and field.",
        f"inline void validate(const std::string& node, const {struct}& a) {{",
        f"  validateFields({_str(op.name)}, node, toFields(a));",
        "}",
        "",
        "// `node` is the ONNX node's name (TensorRT passes it to createPlugin), used in every message.",
        f"inline {struct} parse{op.name}(const std::string& node, const FieldView* fields, int32_t num_fields) {{",
        f"  const FieldReader r({_str(op.name)}, node, fields, num_fields);",
        f"  {struct} a;",
        *reads,
        "  validate(node, a);",
        "  return a;",
        "}",
        "",
        "}  // namespace sparsetrt",
        "// clang-format on",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ op_table.h
def check_function(op: str) -> str:
    """The op's host check function (``ops/<op>/<op>_host.h``): ``SparseConv`` -> ``checkSparseConvNode``."""
    return f"check{op}Node"


def render_op_table(schema: Schema | None = None) -> str:
    """``plugins/ops/op_table.h``."""
    schema = schema or load()
    includes = sorted(f'#include "ops/{snake_name(n)}/{snake_name(n)}_host.h"' for n in schema.ops)
    entries: list[str] = []
    for op in schema.ops.values():
        round_trip = f"roundTrips<{op.name}Attrs, parse{op.name}>" if op.attributes else "nullptr"
        entries.append(f"    {{{_str(op.name)}, {check_function(op.name)}, {round_trip}}},")
    lines = [
        f"// GENERATED by `{COMMAND}` from exporter/schema/sparsetrt_ops.json: do not edit.",
        "// Every op's host check function (what an engine build does with one node: sparsetrt/node_check.h) and, for",
        "// ops with attributes, the serialization round trip, in schema order (kOps' order). The rules driver and the",
        "// fuzzer of plugins/test/ go through this table and name no op, so a new op needs no line there.",
        "// clang-format off",
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "#include <string>",
        "#include <vector>",
        "",
        *includes,
        '#include "sparsetrt/node_check.h"',
        '#include "sparsetrt/op_fields.h"',
        "",
        "namespace sparsetrt {",
        "",
        "struct OpEntry {",
        "  const char* name;",
        "  CheckNodeFn check;",
        "  bool (*round_trip)(const NodeDesc&);  // nullptr: the op has no attributes",
        "};",
        "",
        "inline constexpr OpEntry kOpTable[] = {",
        *entries,
        "};",
        "",
        "constexpr bool opTableFollowsOpFields() {",
        "  if (sizeof(kOpTable) / sizeof(kOpTable[0]) != kNumOps) return false;",
        "  for (std::size_t i = 0; i < kNumOps; ++i) {",
        "    const char* a = kOpTable[i].name;",
        "    const char* b = kOps[i].name;",
        "    while (*a != 0 && *a == *b) ++a, ++b;",
        "    if (*a != *b) return false;",
        "  }",
        "  return true;",
        "}",
        'static_assert(opTableFollowsOpFields(), "kOpTable lists the ops of op_fields.h in its order");',
        "",
        "// The entry of the op named `op`, or nullptr.",
        "inline const OpEntry* findOp(const std::string& op) {",
        "  for (const OpEntry& e : kOpTable)",
        "    if (op == e.name) return &e;",
        "  return nullptr;",
        "}",
        "",
        "}  // namespace sparsetrt",
        "// clang-format on",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- all files
def generated(schema: Schema | None = None) -> dict[str, str]:
    """Every generated file: its path (relative to the repository root) -> its text."""
    schema = schema or load()
    files = {FIELDS_HEADER: render_fields(schema), HEADER: render(schema), OP_TABLE: render_op_table(schema)}
    for op in schema.ops.values():
        if op.attributes:
            files[attributes_header(op.name)] = render_attributes(op)
    return files


def stale(root: Path, schema: Schema | None = None) -> list[str]:
    """The generated files under ``root`` that differ from (or lack) this generator's output."""
    return [
        path
        for path, text in generated(schema).items()
        if not (root / path).is_file() or (root / path).read_text() != text
    ]


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    if argv == ["--check"]:
        bad = stale(root)
        for path in bad:
            print(f"{path} is stale: {COMMAND}")
        return 1 if bad else 0
    if argv:
        print(f"usage: {COMMAND} [--check]", file=sys.stderr)
        return 2
    for path, text in generated().items():
        (root / path).write_text(text)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
