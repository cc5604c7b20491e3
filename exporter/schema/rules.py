"""The schema's rules, applied: which attribute values and input shapes an op accepts.

The plugin creators apply the same rules from the same table (generated into C++ by ``cpp.py``) in the same
order, with the same messages, so the reference runtime refuses exactly what an engine build refuses;
``tests/test_rules_cpp.py`` runs both on thousands of attribute sets and compares. Order: the attributes as
given (unknown, repeated, mistyped), then each schema attribute in schema order (missing, int32 range,
length, min, max, values, finite), then the op's rules in order. The first failure is reported, as
``sparsetrt::OP node 'NAME', attribute 'FIELD': what`` (a ``ModelError``).

Rule kinds (params in the JSON):
- ``product`` (``of``: attributes or ``output_grid``, ``max``): the product of all their values <= max.
- ``reach`` (``grid``, ``kernel``, ``dilation``, optional ``padding``, ``max``): per dim,
  grid + 2 * padding + (kernel - 1) * dilation <= max, so every coordinate a kernel forms fits int32.
- ``zero_unless`` (``unless``): the field is all zeros while the int attribute ``unless`` is 0.
- ``output_grid`` (``max``): a regular or transposed conv's output grid (spconv's formulas) is >= 1 and
  <= max in every dim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sparsetrt.errors import ModelError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Python value -> schema type name, as TensorRT's parser would hand it to a creator.
_PY_TYPES = {int: "int", float: "float", str: "string"}


def _where(op: str, node: str | None) -> str:
    return f"sparsetrt::{op}" + (f" node '{node}'" if node is not None else " (at export)")


def _fail(op: str, node: str | None, field: str, what: str) -> ModelError:
    return ModelError(f"{_where(op, node)}, attribute '{field}': {what}")


def fmt_list(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def fmt_limit(v: int) -> str:
    """Limits as people write them: 2^32, 2^31 - 1 (the C++ side formats them the same way)."""
    for k in range(10, 64):
        if v == 1 << k:
            return f"2^{k}"
        if v == (1 << k) - 1:
            return f"2^{k} - 1"
    return str(v)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "int"
    if isinstance(value, list | tuple):
        kinds = {_type_of(v) for v in value}
        if kinds <= {"int"}:
            return "ints"
        return "floats" if kinds <= {"int", "float"} else "list"
    if isinstance(value, bytes):
        return "string"
    return _PY_TYPES.get(type(value), type(value).__name__)


def _alternatives(values: Sequence[Any], names: Sequence[str] | None) -> str:
    parts = [f"{v!r}" if isinstance(v, str) else str(v) for v in values]
    if names:
        parts = [f"{p} ({n})" for p, n in zip(parts, names, strict=True)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def check_attributes(
    op_name: str, attrs: Mapping[str, Any] | Sequence[tuple[str, Any]], node: str | None = None
) -> None:
    """Raise a ``ModelError`` naming op, node and field unless ``attrs`` (name -> value, or (name, value)
    pairs in file order, so a repeated name is seen) obey the op's schema: exactly its attributes, of their
    types, with values their rules allow. ``node`` is the ONNX node's name (None while exporting)."""
    from . import check_lookup_attributes, load
    from . import op as lookup

    definition = lookup(op_name)
    pairs = list(attrs.items()) if isinstance(attrs, Mapping) else list(attrs)
    # The lookup attributes (plugin_namespace, plugin_version) select the plugin; they are not op attributes.
    lookup_names = {a.name for a in load().lookup_attributes}
    check_lookup_attributes(op_name, {k: v for k, v in pairs if k in lookup_names}, node)
    pairs = [(k, v) for k, v in pairs if k not in lookup_names]
    declared = {a.name: a for a in definition.attributes}
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if isinstance(value, bytes):  # ONNX STRING attributes come as bytes
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _fail(op_name, node, name, "must be a UTF-8 string") from None
        if name not in declared:
            raise _fail(op_name, node, name, "unknown attribute for this op (schema drift?)")
        if name in seen:
            raise _fail(op_name, node, name, "given twice")
        kind = _type_of(value)
        want = declared[name].type
        if kind != want and not (want == "ints" and isinstance(value, list | tuple) and not value):
            raise _fail(op_name, node, name, f"must be of type {want}, got {kind}")
        seen[name] = list(value) if isinstance(value, list | tuple) else value
    for a in definition.attributes:
        if a.name not in seen:
            raise _fail(op_name, node, a.name, "missing (every attribute of the schema is required)")
    ndim = len(seen["spatial_shape"]) if "spatial_shape" in seen else None
    for a in definition.attributes:
        _check_value(op_name, node, a, seen[a.name], ndim)
    for rule in definition.rules:
        _check_rule(op_name, node, rule, seen)


def _check_value(op: str, node: str | None, a: Any, value: Any, ndim: int | None) -> None:
    fail = lambda what: _fail(op, node, a.name, what)  # noqa: E731
    if a.type == "int":
        if not INT32_MIN <= value <= INT32_MAX:
            raise fail(f"must fit in int32 (TensorRT passes INT32), got {value}")
        if a.min is not None and value < a.min:
            raise fail(f"must be >= {a.min}, got {value}")
        if a.max is not None and value > a.max:
            raise fail(f"must be <= {a.max}, got {value}")
    elif a.type == "ints":
        if any(not INT32_MIN <= v <= INT32_MAX for v in value):
            raise fail(f"every entry must fit in int32 (TensorRT passes INT32), got {fmt_list(value)}")
        if a.length == "D":
            if ndim is not None and len(value) != ndim:
                raise fail(f"must have {ndim} entries (one per spatial dim of spatial_shape), got {fmt_list(value)}")
        elif a.length is not None:
            lo, hi = a.length
            if not lo <= len(value) <= hi:
                raise fail(f"must have {lo} to {hi} entries (one per spatial dim), got {fmt_list(value)}")
        if a.min is not None and any(v < a.min for v in value):
            raise fail(f"every entry must be >= {a.min}, got {fmt_list(value)}")
        if a.max is not None and any(v > a.max for v in value):
            raise fail(f"every entry must be <= {a.max}, got {fmt_list(value)}")
    elif a.type == "float":
        if a.finite and not math.isfinite(value):
            raise fail("must be finite (not NaN or infinity)")
    if a.values is not None and value not in a.values:
        shown = f"{value!r}" if isinstance(value, str) else str(value)
        raise fail(f"must be {_alternatives(a.values, a.value_names)}, got {shown}")


def output_grid(attrs: Mapping[str, Any]) -> list[int]:
    """A SparseRulebook's output grid, spconv's formulas (exact integers; validation bounds them)."""
    out = []
    for i, s in enumerate(attrs["spatial_shape"]):
        k, st, p, d = attrs["kernel_size"][i], attrs["stride"][i], attrs["padding"][i], attrs["dilation"][i]
        if attrs["transposed"]:
            out.append((s - 1) * st - 2 * p + d * (k - 1) + attrs["output_padding"][i] + 1)
        else:
            out.append((s + 2 * p - d * (k - 1) - 1) // st + 1)
    return out


def _check_rule(op: str, node: str | None, rule: Any, attrs: dict[str, Any]) -> None:
    fail = lambda what: _fail(op, node, rule.field, what)  # noqa: E731
    p = rule.params
    limit = int(p.get("max", 0))
    if rule.kind == "product":
        terms, product = [], 1
        for name in p["of"]:
            value = output_grid(attrs) if name == "output_grid" else attrs[name]
            values = value if isinstance(value, list) else [value]
            product *= math.prod(values)
            terms.append(f"{name} {fmt_list(values) if isinstance(value, list) else value}")
        if product > limit:
            raise fail(f"{rule.doc} (the product of {' and '.join(terms)}) exceeds {fmt_limit(limit)}")
    elif rule.kind == "reach":
        padding = attrs[p["padding"]] if "padding" in p else None
        for i, (s, k, d) in enumerate(zip(attrs[p["grid"]], attrs[p["kernel"]], attrs[p["dilation"]], strict=True)):
            reach = s + (2 * padding[i] if padding is not None else 0) + (k - 1) * d
            if reach > limit:
                expr = f"{p['grid']}{' + 2 * ' + p['padding'] if padding is not None else ''}"
                expr += f" + ({p['kernel']} - 1) * {p['dilation']}"
                raise fail(f"{rule.doc}: in dim {i}, {expr} = {reach} exceeds {fmt_limit(limit)}")
    elif rule.kind == "zero_unless":
        value = attrs[rule.field]
        if not attrs[p["unless"]] and any(v != 0 for v in value):
            raise fail(f"{rule.doc}, got {fmt_list(value)}")
    elif rule.kind == "output_grid":
        for i, (s, o) in enumerate(zip(attrs["spatial_shape"], output_grid(attrs), strict=True)):
            if o < 1:
                raise fail(
                    f"dim {i} of size {s} becomes {o} with this kernel_size/stride/padding/dilation; "
                    "the grid is too small"
                )
            if o > limit:
                raise fail(f"dim {i} of the output grid is {o}, more than {fmt_limit(limit)}")
    else:  # pragma: no cover - tests/test_schema.py checks every rule kind is known
        raise ValueError(f"the schema's {op} has a rule of unknown kind {rule.kind!r}")


RULE_KINDS = ("product", "reach", "zero_unless", "output_grid")


# ---------------------------------------------------------------------------------------------- shapes
def check_input_shapes(
    op_name: str, node: str | None, attrs: Mapping[str, Any], shapes: Sequence[Sequence[int] | None]
) -> None:
    """Raise a ``ModelError`` naming op, node and input unless the input shapes fit the schema's symbolic
    shapes: ranks, ``1+D`` (D = len(spatial_shape)), every dim name (``K``, ``C_in``, ...) the same size
    wherever it appears, a dim's ``max_dims`` bound, alternatives (``K|K+1+ceil(K/32)``: a map's K rows or its
    ConvPlan's, once K is known from another input) and an input's ``requires``. ``shapes[i]`` is input i's
    dims (-1: not known yet) or None when an optional input is absent."""
    from . import op as lookup

    definition = lookup(op_name)
    where = _where(op_name, node)
    bound: dict[str, tuple[int, str]] = {}  # symbol -> (size, the input that set it)
    alternatives: list[tuple[str, int, str, int]] = []  # (input, dim, symbol, size): checked once all are bound
    ndim = len(attrs["spatial_shape"]) if "spatial_shape" in attrs else None
    given = {p.name for p, dims in zip(definition.inputs, shapes, strict=False) if dims is not None}
    for param, dims in zip(definition.inputs, shapes, strict=False):
        if dims is None:
            continue
        if param.requires is not None and param.requires not in given:
            raise ModelError(f"{where}, input '{param.name}': needs input '{param.requires}' as well")
        dims = [int(d) for d in dims]
        shown = "[" + ", ".join("?" if d < 0 else str(d) for d in dims) + "]"
        if len(dims) != len(param.shape):
            raise ModelError(
                f"{where}, input '{param.name}': must be [{', '.join(param.shape)}] (rank {len(param.shape)}), "
                f"got {shown}"
            )
        for i, (symbol, got) in enumerate(zip(param.shape, dims, strict=True)):
            if got < 0:
                continue
            limit = param.max_dims[i] if param.max_dims is not None else None
            if limit is not None and got > limit:
                raise ModelError(
                    f"{where}, input '{param.name}': dim {i} ({symbol}) must be at most {limit}, got {got}"
                )
            if symbol == "1+D" and ndim is not None:
                if got != 1 + ndim:
                    raise ModelError(
                        f"{where}, input '{param.name}': dim {i} must be 1 + D = {1 + ndim} (batch, one "
                        f"coordinate per dim of spatial_shape), got {got}"
                    )
            elif "|" in symbol:
                alternatives.append((param.name, i, symbol, got))
            elif symbol in bound and bound[symbol][0] != got:
                size, source = bound[symbol]
                raise ModelError(
                    f"{where}, input '{param.name}': dim {i} ({symbol}) must equal {symbol} = {size} of input "
                    f"'{source}', got {got}"
                )
            else:
                bound.setdefault(symbol, (got, param.name))
    for name, i, symbol, got in alternatives:
        options = symbol.split("|")
        sizes = {s: size for s, (size, _) in bound.items()}
        values = [dim_value(o, sizes) for o in options]
        if any(v is None for v in values):
            continue  # a symbol it uses is not known yet
        if got not in values:
            shown = " or ".join(f"{o} = {v}" for o, v in zip(options, values, strict=True))
            used = [o for o in options if o in bound]  # the dims named plainly, and where their sizes came from
            source = ", ".join(f"{u} = {bound[u][0]} of input '{bound[u][1]}'" for u in used)
            raise ModelError(f"{where}, input '{name}': dim {i} must be {shown} ({source}), got {got}")


def dim_value(expression: str, sizes: Mapping[str, int]) -> int | None:
    """A dim expression of the schema (terms joined by "+": an integer, a symbol, or ceil(SYMBOL/INTEGER)) with
    the symbols' sizes; None if a symbol has none."""
    total = 0
    for term in expression.split("+"):
        if term.isdigit():
            total += int(term)
        elif term.startswith("ceil(") and term.endswith(")"):
            symbol, divisor = term[5:-1].split("/")
            if symbol not in sizes:
                return None
            total += -(-sizes[symbol] // int(divisor))
        elif term in sizes:
            total += sizes[term]
        else:
            return None
    return total
