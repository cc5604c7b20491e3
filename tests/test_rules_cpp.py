"""One set of rules, two implementations that must agree: the Python side (``exporter/schema/rules.py``: the
exporter and the reference runtime) and the plugin creators' C++ (``plugins/common``: attribute parsing from the
generated ``op_rules.h`` and the input-shape checks), on thousands of attribute sets and input shapes, fresh
each run: valid ones, edge values (0, -1, 2^20, 2^31 - 1...), wrong lengths, NaN and infinite floats, unknown,
repeated, mistyped and missing fields, and dims that disagree. Both must accept the same cases and refuse the
others with the same message, which names op, node and field (or input).

The C++ side is compiled here from its sources with the system's C++ compiler (no CUDA or TensorRT needed).
"""

from __future__ import annotations

import math
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cpp_tools import HOST_SOURCES, ROOT, compile_program, cxx

from sparsetrt.errors import ModelError
from sparsetrt.exporter.schema import check_attributes, check_input_shapes, load

DRIVER = ROOT / "plugins" / "test" / "rules_driver.cpp"
EDGES = [0, 1, 2, 3, 5, 16, 41, 1440, 2**16, 2**20, 2**20 + 1, 2**21, 2**22, 2**30, 2**31 - 1, -1, -(2**31)]
FLOATS = [0.0, 0.1, -2.5, 1e30, math.nan, math.inf, -math.inf]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if cxx() is None:
        pytest.skip("no C++ compiler (c++, g++ or clang++): the plugins' C++ rules cannot be compiled here")
    return compile_program(tmp_path_factory.mktemp("rules") / "rules_driver", [*HOST_SOURCES, DRIVER])


def _int(rng: random.Random, small: tuple[int, int]) -> int:
    return rng.choice(EDGES) if rng.random() < 0.15 else rng.randint(*small)


def _attributes(rng: random.Random, op: str) -> list[tuple[str, Any]]:
    """A mostly plausible attribute set of ``op`` (schema order), then sometimes a field mutated."""
    definition = load().ops[op]
    ndim = rng.choice([1, 2, 3, 3, 3, 4]) if rng.random() > 0.05 else rng.choice([0, 5])
    values: dict[str, Any] = {}
    for a in definition.attributes:
        n = ndim if rng.random() > 0.05 else rng.choice([ndim - 1, ndim + 1, 0])
        n = max(n, 0)
        if a.name == "spatial_shape":
            values[a.name] = [_int(rng, (1, 60)) for _ in range(n)]
        elif a.name == "kernel_size":
            values[a.name] = [_int(rng, (1, 5)) for _ in range(n)]
        elif a.name in ("stride", "dilation"):
            values[a.name] = [_int(rng, (1, 3)) for _ in range(n)]
        elif a.name == "padding":
            values[a.name] = [_int(rng, (0, 2)) for _ in range(n)]
        elif a.name == "output_padding":
            values[a.name] = [_int(rng, (0, 1)) if rng.random() < 0.4 else 0 for _ in range(n)]
        elif a.name == "transposed":
            values[a.name] = _int(rng, (0, 1))
        elif a.name == "max_out":
            values[a.name] = _int(rng, (0, 100)) if rng.random() < 0.5 else 0
        elif a.name == "batch_size":
            values[a.name] = _int(rng, (1, 4))
        elif a.name == "activation":
            values[a.name] = _int(rng, (-1, 5))
        elif a.name == "alpha":
            values[a.name] = struct.unpack("<f", struct.pack("<f", rng.choice(FLOATS)))[0]  # a float32
        elif a.type == "int" and a.values is not None:  # an enumeration (SegmentReduce's reduction, ...)
            values[a.name] = _int(rng, (min(a.values) - 1, max(a.values) + 1))
        elif a.type == "string":
            continue  # the C++ side of string attributes (plugin_namespace, ...) is not in this driver
        else:
            raise AssertionError(f"no generator for {op}.{a.name}: extend _attributes")
    pairs = list(values.items())
    roll = rng.random()
    if roll < 0.03 and pairs:
        pairs.pop(rng.randrange(len(pairs)))  # missing
    elif roll < 0.06:
        pairs.insert(rng.randrange(len(pairs) + 1), ("groups", 1))  # unknown
    elif roll < 0.08 and pairs:
        pairs.append(pairs[rng.randrange(len(pairs))])  # repeated
    elif roll < 0.10 and pairs:
        i = rng.randrange(len(pairs))
        name, value = pairs[i]
        pairs[i] = (name, [value] * 2 if not isinstance(value, list) else (0.5 if value else 7))  # mistyped
    return pairs


def _shapes(rng: random.Random, op: str, attrs: dict[str, Any]) -> list[list[int] | None]:
    """Input dims for ``op``: consistent with its symbolic shapes, then sometimes one dim or rank off, some -1."""
    definition = load().ops[op]
    ndim = len(attrs.get("spatial_shape", [])) or rng.randint(1, 4)
    sizes = {s: rng.choice([1, 2, 3, 8, 27, 100, 125]) for p in definition.inputs for s in p.shape}
    shapes: list[list[int] | None] = []
    for p in definition.inputs:
        if p.optional and rng.random() < 0.5:
            shapes.append(None)
            continue
        dims = [1 + ndim if s == "1+D" else sizes[s] for s in p.shape]
        if rng.random() < 0.1:
            dims[rng.randrange(len(dims))] += rng.choice([-1, 1])
        if rng.random() < 0.03:
            dims = [*dims, 1] if rng.random() < 0.5 else dims[:-1]
        dims = [-1 if rng.random() < 0.15 else d for d in dims]
        shapes.append(dims)
    while shapes and shapes[-1] is None:
        shapes.pop()  # an absent optional input at the end is simply not there
    return shapes


def _encode(op: str, node: str, pairs: list[tuple[str, Any]], shapes: list[list[int] | None] | None) -> str:
    fields = []
    for name, value in pairs:
        if isinstance(value, float):
            fields.append(f"{name}=f:{struct.unpack('<I', struct.pack('<f', value))[0]}")
        elif isinstance(value, list):
            fields.append(f"{name}=a:{','.join(str(v) for v in value)}")
        else:
            fields.append(f"{name}=i:{value}")
    dims = "-" if shapes is None else "|".join("~" if s is None else ",".join(map(str, s)) for s in shapes)
    return "\t".join([op, node, ";".join(fields) or "-", dims])


def _python(op: str, node: str, pairs: list[tuple[str, Any]], shapes: list[list[int] | None] | None) -> str:
    try:
        check_attributes(op, pairs, node=node)
        if shapes is not None:
            check_input_shapes(op, node, dict(pairs), shapes)
    except ModelError as e:
        return f"error\t{e}"
    return "ok"


def _sparse(**changes: Any) -> list[tuple[str, Any]]:
    attrs = {
        "spatial_shape": [41, 1440, 1440], "kernel_size": [3, 3, 3], "stride": [2, 2, 2], "padding": [1, 1, 1],
        "dilation": [1, 1, 1], "output_padding": [0, 0, 0], "transposed": 0, "max_out": 0, "batch_size": 2,
    }  # fmt: skip
    return list({**attrs, **changes}.items())


I32 = 2**31 - 1
# The edge cases each rule exists for, always compared (the random mix may miss a few of them).
CRAFTED: list[tuple[str, list[tuple[str, Any]], list[list[int] | None] | None]] = [
    ("SparseRulebook", _sparse(kernel_size=[2**21, 2**21, 2**22]), None),  # 2^64 wrapped to 0 in int64
    ("SubmRulebook", [("spatial_shape", [8]), ("kernel_size", [2**20]), ("dilation", [2**20])], None),  # reach
    ("SubmRulebook", [("spatial_shape", [I32]), ("kernel_size", [2]), ("dilation", [1])], None),  # reach, just over
    ("SubmRulebook", [("spatial_shape", [I32 - 1]), ("kernel_size", [2]), ("dilation", [1])], None),  # just within
    ("SparseRulebook", _sparse(spatial_shape=[2, 1, 1], stride=[I32, 1, 1], transposed=1), None),  # out > int32
    ("SparseRulebook", _sparse(spatial_shape=[2**16, 2**16, 1], stride=[1, 1, 1], batch_size=I32), None),  # keys
    ("SparseRulebook", _sparse(spatial_shape=[2**16, 2**16, 2], stride=[1, 1, 1]), None),  # grid 2^33
    ("SparseRulebook", _sparse(spatial_shape=[1, 8, 8], kernel_size=[5, 3, 3], padding=[0, 0, 0]), None),  # < 1
    ("SparseRulebook", _sparse(output_padding=[0, 1, 0]), None),
    ("SparseRulebook", _sparse(transposed=1, output_padding=[1, 1, 1], max_out=I32), None),
    ("SparseConv", [("activation", 2), ("alpha", math.inf)], None),
    ("Densify", [("spatial_shape", [2**16, 2**16]), ("batch_size", 2**30)], None),  # 2^62 > 2^62 - 1
    ("Densify", [("spatial_shape", [2**16, 2**16]), ("batch_size", 2**30 - 1)], None),
    ("SparseConv", [("activation", 0), ("alpha", 0.0)], [[100, 16], [27, 90], [32, 2, 16]]),  # weight K = 2
    ("SparseConv", [("activation", 0), ("alpha", 0.0)], [[100, 16], [27, 90], [32, 27, 16], [31]]),
    ("Densify", [("spatial_shape", [4, 4]), ("batch_size", 1)], [[10, 8], [9, 3]]),
]


def test_python_and_cpp_accept_and_refuse_alike(driver: Path, gen) -> None:
    import torch

    rng = random.Random(int(torch.randint(1 << 30, (1,), generator=gen)))
    ops = list(load().ops)
    cases = [_encode(op, "crafted", pairs, shapes) for op, pairs, shapes in CRAFTED]
    expected = [_python(op, "crafted", pairs, shapes) for op, pairs, shapes in CRAFTED]
    assert expected.count("ok") == 3, expected  # the two "just within" cases and the transposed one
    for i in range(6000):
        op = rng.choice(ops)
        node = rng.choice(["n0", f"/backbone/conv{i}/{op}", "x"])
        pairs = _attributes(rng, op)
        if any(isinstance(v, list) and isinstance(v, list) and v and isinstance(v[0], float) for _, v in pairs):
            continue
        shapes = None
        attrs = dict(pairs)
        if rng.random() < 0.5 and _python(op, node, pairs, None) == "ok":
            shapes = _shapes(rng, op, attrs)
        cases.append(_encode(op, node, pairs, shapes))
        expected.append(_python(op, node, pairs, shapes))
    result = subprocess.run(
        [str(driver)], input="\n".join(cases) + "\n", capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    got = result.stdout.splitlines()
    assert len(got) == len(cases)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert not mismatches, "\n\n".join(f"case  {c}\npython {e}\nc++    {g}" for c, e, g in mismatches[:5])
    accepted = sum(e == "ok" for e in expected)
    refused = {e.split(": ")[0].split("'")[-2] for e in expected if e != "ok"}  # the fields and inputs named
    # The mix exercised both outcomes and many fields; each op's every attribute was refused at least once.
    assert 0.2 * len(cases) < accepted < 0.9 * len(cases), accepted
    every_field = {a.name for d in load().ops.values() for a in d.attributes}
    assert every_field <= refused, every_field - refused
