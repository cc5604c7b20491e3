"""Tensor files (docs/tensor_files.md): Python writes the documented bytes, reads them back, refuses bad
files with a message naming the problem, and agrees with the C++ reader/writer of examples/cpp_deploy."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsetrt.runtime import TensorFileError, load_tensors, save_tensors

ROOT = Path(__file__).resolve().parents[1]
ONNX_CODES = {np.float32: 1, np.uint8: 2, np.int8: 3, np.int32: 6, np.int64: 7, np.bool_: 9, np.float16: 10}


def _random(gen: torch.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    values = torch.randn(shape, generator=gen).numpy() * 100
    return (values > 0) if dtype is np.bool_ else values.astype(dtype)


def test_bytes_follow_the_documented_layout(tmp_path: Path) -> None:
    """The oracle is the layout written out by hand with struct, field by field as the doc gives it."""
    coords = np.array([[0, 1, 2], [1, 3, 4]], dtype=np.int32)
    feats = np.array([[0.5], [-2.0]], dtype=np.float16)
    save_tensors(tmp_path / "t.bin", {"voxel_coords": coords, "f": feats})
    expected = b"SPTRTTNS" + struct.pack("<II", 1, 2)
    for name, array, code in (("voxel_coords", coords, 6), ("f", feats, 10)):
        expected += struct.pack("<I", len(name)) + name.encode() + struct.pack("<II", code, array.ndim)
        expected += struct.pack(f"<{array.ndim}q", *array.shape)
        expected += struct.pack("<Q", array.nbytes) + array.astype(array.dtype.newbyteorder("<")).tobytes()
    assert (tmp_path / "t.bin").read_bytes() == expected


def test_round_trip_every_dtype_and_shape(gen: torch.Generator, tmp_path: Path) -> None:
    tensors = {}
    for i, dtype in enumerate(ONNX_CODES):
        shape = tuple(int(s) for s in torch.randint(0, 5, (i % 4,), generator=gen))  # 0-d and empty ones too
        tensors[f"t{i}/{np.dtype(dtype).name}"] = _random(gen, dtype, shape)
    tensors["from torch"] = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    save_tensors(tmp_path / "t.bin", tensors)
    back = load_tensors(tmp_path / "t.bin")
    assert list(back) == list(tensors)
    for name, value in tensors.items():
        expected = value.numpy() if isinstance(value, torch.Tensor) else value
        assert back[name].dtype == expected.dtype and back[name].shape == expected.shape
        np.testing.assert_array_equal(back[name], expected)
        assert back[name].flags.writeable


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"NOTMAGIC" + b[8:], "is not a sparsetrt tensor file"),
        (lambda b: b[:8] + struct.pack("<I", 7) + b[12:], "version 7"),
        (lambda b: b[:-3], "truncated"),
        (lambda b: b + b"\x00", "1 bytes of trailing data"),
        (lambda b: b.replace(struct.pack("<II", 1, 2), struct.pack("<II", 99, 2), 1), "unknown dtype code 99"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "t.bin"
    save_tensors(path, {"x": np.zeros((3, 2), np.float32)})
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(TensorFileError, match=message):
        load_tensors(path)


def test_wrong_byte_count_and_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    save_tensors(path, {"x": np.zeros(4, np.int32)})
    blob = path.read_bytes()
    path.write_bytes(blob.replace(struct.pack("<Q", 16), struct.pack("<Q", 12)))
    with pytest.raises(TensorFileError, match="should hold 16 bytes, the file says 12"):
        load_tensors(path)
    one = blob[16:]  # the tensor record after the header
    path.write_bytes(b"SPTRTTNS" + struct.pack("<II", 1, 2) + one + one)
    with pytest.raises(TensorFileError, match="appears twice"):
        load_tensors(path)


def test_unsupported_dtype_is_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    with pytest.raises(TensorFileError, match="complex64"):
        save_tensors(path, {"ok": np.zeros(2, np.float32), "z": np.zeros(2, np.complex64)})
    assert not path.exists()


def test_cpp_reader_and_writer_agree_with_python(gen: torch.Generator, tmp_path: Path) -> None:
    """examples/cpp_deploy/tensor_file.h reads what Python wrote and writes it back byte for byte."""
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler on this machine: the C++ side of the tensor format cannot be built here")
    tool = tmp_path / "roundtrip"
    source = ROOT / "examples" / "cpp_deploy" / "tensor_roundtrip.cpp"
    compiled = subprocess.run(
        [compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", str(source), "-o", str(tool)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compiled.returncode == 0, compiled.stderr
    tensors = {
        "voxel_features": _random(gen, np.float16, (5, 4)),
        "voxel_coords": _random(gen, np.int32, (5, 4)),
        "empty": np.zeros((0, 3), np.float32),
        "mask": _random(gen, np.bool_, (7,)),
    }
    save_tensors(tmp_path / "in.bin", tensors)
    ran = subprocess.run([tool, tmp_path / "in.bin", tmp_path / "out.bin"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "in.bin").read_bytes()
    assert ran.stdout.splitlines()[0] == "voxel_features float16 [5, 4] 40 bytes"
    (tmp_path / "bad.bin").write_bytes(b"garbage!")
    ran = subprocess.run([tool, tmp_path / "bad.bin", tmp_path / "o.bin"], capture_output=True, text=True)
    assert ran.returncode == 1 and "not a sparsetrt tensor file" in ran.stderr
