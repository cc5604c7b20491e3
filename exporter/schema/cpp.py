"""Generate the plugins' copy of the schema's rules: ``plugins/common/include/sparsetrt/op_rules.h``.

``python -m sparsetrt.exporter.schema.cpp > plugins/common/include/sparsetrt/op_rules.h``

The plugin creators validate attributes and input shapes from this table (``common/src/attributes.cpp``,
``common/src/shapes.cpp``), so the C++ side applies the JSON's rules, not a transcription of them;
``tests/test_schema.py`` fails when the header differs from this output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from . import Attr, OpDef, Rule, load

HEADER = "plugins/common/include/sparsetrt/op_rules.h"

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


def render() -> str:
    schema = load()
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


if __name__ == "__main__":
    sys.stdout.write(render())
