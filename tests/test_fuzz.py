"""libFuzzer over the C++ that reads untrusted bytes: the plugin creators' attribute parser (and everything
computed from what it accepts: geometry, output grid and bound, workspace sizes, input-shape checks) and the
deployment example's tensor-file reader. Each target is built with clang's ``-fsanitize=fuzzer,address,undefined``
(so an overflow, an out-of-bounds access or an allocation the input merely claims is a finding) and run for a
bounded time, ``SPARSETRT_FUZZ_SECONDS`` each (default 10), from a seed corpus written here, with the session's
random seed. A finding fails the test with libFuzzer's report and the input that triggered it.

Needs clang and its libFuzzer runtime (Debian/Ubuntu: ``apt-get install clang libclang-rt-14-dev``, or the
version apt offers); without them these tests skip, saying so. CI does not install clang: the targets run on
developer machines and wherever clang is present.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SESSION_SEED
from cpp_tools import HOST_INCLUDES, HOST_SOURCES, ROOT

from sparsetrt.exporter.schema import load
from sparsetrt.runtime import save_tensors

SECONDS = int(os.environ.get("SPARSETRT_FUZZ_SECONDS", "10"))
FLAGS = ["-std=c++17", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]


def _clang() -> str:
    clang = shutil.which("clang++") or next(
        (shutil.which(f"clang++-{v}") for v in range(20, 13, -1) if shutil.which(f"clang++-{v}")), None
    )
    if clang is None:
        pytest.skip("clang++ is not installed: the libFuzzer targets cannot be built (apt-get install clang)")
    return clang


def _build(tmp: Path, name: str, sources: list[Path], includes: list[Path]) -> Path:
    binary = tmp / name
    cmd = [_clang(), *FLAGS, *(f"-I{i}" for i in includes), *map(str, sources), "-o", str(binary)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and "clang_rt.fuzzer" in result.stderr + result.stdout:
        pytest.skip(
            "clang's libFuzzer runtime is not installed (apt-get install libclang-rt-14-dev, or the version "
            "matching clang)"
        )
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr[-5000:]}"
    return binary


def _fuzz(binary: Path, corpus: Path, tmp: Path) -> None:
    artifacts = tmp / "artifacts"
    artifacts.mkdir()
    cmd = [
        str(binary),
        str(corpus),
        f"-max_total_time={SECONDS}",
        f"-seed={SESSION_SEED % (2**32 - 1) + 1}",
        "-rss_limit_mb=2048",  # an allocation beyond it (say, one a file merely claims) is a finding
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 300)
    found = sorted(artifacts.iterdir())
    report = result.stderr[-6000:]
    if found:
        report += "".join(f"\n{p.name}: {p.read_bytes()[:256].hex()}" for p in found)
    assert result.returncode == 0 and not found, f"libFuzzer found a problem in {binary.name}:\n{report}"
    runs = [line for line in result.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 1000, report  # it really ran


# Input sizes of the seeds, by the schema's dim names (each below 199: one byte in the layout).
SEED_DIMS = {"N": 100, "M": 90, "K": 27, "C": 16, "C_in": 16, "C_out": 32}


def _attribute_seed(op_index: int, values: dict) -> bytes:
    """A valid node in fuzz_attributes.cpp's layout: its attributes in the "schema" mode (every value as 0xFF + 4 raw
    bytes), then input dims that fit the schema's symbolic shapes (every optional input present)."""
    definition = list(load().ops.values())[op_index]
    ndim = len(values.get("spatial_shape", [0, 0, 0]))
    out = bytes([op_index, 0, ndim])
    for a in definition.attributes:
        out += b"\x00"  # no mutation
        items = values[a.name] if isinstance(values[a.name], list) else [values[a.name]]
        for v in items:
            out += b"\xff" + (struct.pack("<f", v) if isinstance(v, float) else struct.pack("<i", v))
    out += b"\x01"  # with input dims
    for p in definition.inputs:
        if p.optional:
            out += b"\x00"  # present
        dims = [1 + ndim if s == "1+D" else SEED_DIMS[s.split("|")[0]] for s in p.shape]
        out += bytes([len(dims), *(d + 1 for d in dims)])
    return out


def test_fuzz_attribute_parser(tmp_path: Path) -> None:
    binary = _build(
        tmp_path,
        "fuzz_attributes",
        [ROOT / "plugins" / "test" / "fuzz" / "fuzz_attributes.cpp", *HOST_SOURCES],
        HOST_INCLUDES,
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    ops = load().ops
    seeds = {
        "SubmRulebook": {"spatial_shape": [41, 1440, 1440], "kernel_size": [3, 3, 3], "dilation": [1, 1, 1]},
        "SparseRulebook": {
            "spatial_shape": [41, 1440, 1440], "kernel_size": [3, 3, 3], "stride": [2, 2, 2], "padding": [1, 1, 1],
            "dilation": [1, 1, 1], "output_padding": [0, 0, 0], "transposed": 0, "max_out": 0, "batch_size": 2,
        },
        "SparseConv": {"activation": 2, "alpha": 0.1},
        "Densify": {"spatial_shape": [2, 200, 176], "batch_size": 2},
        "SegmentReduce": {"reduction": 1},
    }  # fmt: skip
    # One seed per op, so each starts from a node its checks accept (an op without attributes needs no values).
    missing = [op for op, d in ops.items() if d.attributes and op not in seeds]
    assert not missing, f"no fuzz seed for {missing}: add its attributes to the seeds"
    for i, op in enumerate(ops):
        (corpus / op).write_bytes(_attribute_seed(i, seeds.get(op, {})))
    _fuzz(binary, corpus, tmp_path)


def test_fuzz_tensor_file_reader(tmp_path: Path) -> None:
    example = ROOT / "examples" / "cpp_deploy"
    binary = _build(tmp_path, "fuzz_tensor_file", [example / "fuzz_tensor_file.cpp"], [example])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    save_tensors(
        corpus / "frame",
        {"voxel_features": np.ones((3, 4), np.float32), "voxel_coords": np.zeros((3, 4), np.int32)},
    )
    save_tensors(corpus / "odd", {"s": np.float16(1.5), "é": np.zeros((0, 7), np.int64), "b": np.ones(3, bool)})
    _fuzz(binary, corpus, tmp_path)
