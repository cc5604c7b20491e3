"""Tensor files (docs/tensor_files.md): Python writes the documented bytes, reads them back, refuses bad
files with a message naming the problem, and agrees with the C++ reader/writer of examples/cpp_deploy, on
valid files and on thousands of malformed ones (the C++ reader is also fuzzed with libFuzzer: test_fuzz.py)."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from cpp_tools import compile_program, cxx

from sparsetrt.runtime import TensorFileError, load_tensors, save_tensors
from sparsetrt.runtime.tensor_file import read_tensors, write_tensors

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


def _record(name: bytes, code: int, dims: list[int], nbytes: int, data: bytes = b"") -> bytes:
    return (
        (
            struct.pack("<I", len(name))
            + name
            + struct.pack("<II", code, len(dims))
            + struct.pack(f"<{len(dims)}q", *dims)
        )
        + struct.pack("<Q", nbytes)
        + data
    )


def _file(*records: bytes, count: int | None = None) -> bytes:
    return b"SPTRTTNS" + struct.pack("<II", 1, len(records) if count is None else count) + b"".join(records)


# Hand-written malformed files: each must be refused with its reason (and the file's name), never crash,
# never allocate what the file merely claims.
MALFORMED = {
    # dims whose product overflows int64 (2^32 * 2^32 * 4 wraps to 0 in int64 arithmetic, and 0 bytes "match")
    "dims overflow int64": (_file(_record(b"x", 1, [2**32, 2**32, 4], 0)), "too large"),
    "zero dim beside a huge one": (_file(_record(b"x", 1, [0, 2**62], 0)), "too large"),
    "name not UTF-8": (_file(_record(b"\xff\xfe", 1, [1], 4, b"\0" * 4)), "tensor 0's name is not UTF-8"),
    "65 dims": (_file(_record(b"x", 1, [1] * 65, 4, b"\0" * 4)), "65 dims, more than 64"),
    "negative dim": (_file(_record(b"x", 1, [-1], 0)), "negative dims"),
    "byte count beyond the file": (_file(_record(b"x", 2, [2**40], 2**40)), "truncated"),
    "count beyond the file": (_file(count=2**32 - 1), "truncated"),
    "name length beyond the file": (_file(struct.pack("<I", 2**32 - 1)), "truncated"),
    "rank beyond the file": (_file(struct.pack("<I", 1) + b"x" + struct.pack("<II", 1, 2**20)), "more than 64"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_are_refused_with_the_reason(tmp_path: Path, case: str) -> None:
    blob, message = MALFORMED[case]
    path = tmp_path / "t.bin"
    path.write_bytes(blob)
    with pytest.raises(TensorFileError, match=message) as caught:
        load_tensors(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_tensor_file_error(tmp_path: Path) -> None:
    with pytest.raises(TensorFileError, match=r"nothing\.bin does not exist \(write one with"):
        load_tensors(tmp_path / "nothing.bin")


def _mutations(rng: random.Random, blob: bytes, n: int) -> list[bytes]:
    """Structure-blind damage to a valid file: flipped bits, overwritten length/dim fields with edge values,
    cuts and insertions."""
    edges = [0, 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**64 - 1]
    out = []
    for _ in range(n):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 3)):
            if not b:
                break  # cut to nothing: nothing left to damage
            roll, pos = rng.random(), rng.randrange(len(b))
            if roll < 0.4:
                b[pos] ^= 1 << rng.randrange(8)
            elif roll < 0.7:
                width = rng.choice([4, 8])
                b[pos : pos + width] = (rng.choice(edges) % 2 ** (8 * width)).to_bytes(width, "little")
            elif roll < 0.85:
                del b[pos:]
            else:
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
        out.append(bytes(b))
    return out


def _valid_blob(gen: torch.Generator) -> bytes:
    import io

    buffer = io.BytesIO()
    write_tensors(
        buffer,
        {
            "voxel_features": _random(gen, np.float16, (3, 2)),
            "voxel_coords": _random(gen, np.int32, (3, 4)),
            "é": np.zeros((0, 3), np.float32),
            "s": np.float64(2.5),
        },
    )
    return buffer.getvalue()


def test_damaged_files_are_refused_or_read_exactly(gen: torch.Generator) -> None:
    """Python's reader on thousands of damaged files: a TensorFileError, or (where the damage left a valid
    file) tensors that write back to the same bytes. Nothing else."""
    import io

    rng = random.Random(int(torch.randint(1 << 30, (1,), generator=gen)))
    refused = 0
    for blob in _mutations(rng, _valid_blob(gen), 3000):
        try:
            tensors = read_tensors(blob)
        except TensorFileError:
            refused += 1
            continue
        again = io.BytesIO()
        write_tensors(again, tensors)
        assert again.getvalue() == blob
    assert refused > 2000


@pytest.fixture(scope="module")
def roundtrip_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if cxx() is None:
        pytest.skip("no C++ compiler on this machine: the C++ side of the tensor format cannot be built here")
    source = ROOT / "examples" / "cpp_deploy" / "tensor_roundtrip.cpp"
    return compile_program(tmp_path_factory.mktemp("tensor_roundtrip") / "roundtrip", [source])


def test_cpp_reader_and_writer_agree_with_python(roundtrip_tool: Path, gen: torch.Generator, tmp_path: Path) -> None:
    """examples/cpp_deploy/tensor_file.h reads what Python wrote and writes it back byte for byte."""
    tool = roundtrip_tool
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


def test_cpp_and_python_readers_refuse_the_same_files(roundtrip_tool: Path, gen: torch.Generator, tmp_path: Path):
    """The hand-written malformed files and a few hundred damaged ones: the C++ reader refuses exactly the
    files Python refuses, and writes back the ones it accepts unchanged."""
    rng = random.Random(int(torch.randint(1 << 30, (1,), generator=gen)))
    blobs = [blob for blob, _ in MALFORMED.values()] + _mutations(rng, _valid_blob(gen), 300)
    disagree = []
    for i, blob in enumerate(blobs):
        path, out = tmp_path / f"{i}.bin", tmp_path / f"{i}.out"
        path.write_bytes(blob)
        try:
            read_tensors(blob)
            python_ok = True
        except TensorFileError:
            python_ok = False
        ran = subprocess.run([roundtrip_tool, path, out], capture_output=True, text=True, timeout=60)
        assert ran.returncode in (0, 1), f"C++ reader crashed on {path}: {ran.returncode} {ran.stderr}"
        if (ran.returncode == 0) != python_ok:
            disagree.append((blob[:64], python_ok, ran.stderr.strip()))
        elif python_ok:
            assert out.read_bytes() == blob
    assert not disagree, disagree[:3]
