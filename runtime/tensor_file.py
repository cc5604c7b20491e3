"""Tensor files: named arrays in one small binary format that Python and C++ (no Python) both read and write.

The CLI writes model inputs (``sparsetrt export --save-inputs``) and outputs (``sparsetrt run --save``) in
it, and ``examples/cpp_deploy`` reads inputs from and writes outputs to it, so the two interoperate. The
format is described in ``docs/tensor_files.md``; in short, all integers little-endian::

    magic  8 bytes  b"SPTRTTNS"
    uint32 version (1), uint32 count
    count times:
        uint32 name length, name (UTF-8)
        uint32 dtype (ONNX TensorProto code: 1 float32, 10 float16, 11 float64, 6 int32, 7 int64, 3 int8, 2 uint8,
               9 bool)
        uint32 ndim, int64 dims[ndim]
        uint64 nbytes, then nbytes of data in C order

Readers (this one and ``examples/cpp_deploy/tensor_file.h``) refuse the same files: at most 64 dims (numpy's
limit), none negative, at most 2^62 bytes in the non-zero dims (so no size computation overflows), a byte
count equal to the dims' and a UTF-8 name that appears once.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from sparsetrt.errors import InputError

MAGIC = b"SPTRTTNS"
VERSION = 1

# ONNX TensorProto element types: a standard numbering that C++ code can take from the ONNX spec.
DTYPE_CODES: dict[np.dtype, int] = {
    np.dtype(np.float32): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.int8): 3,
    np.dtype(np.int32): 6,
    np.dtype(np.int64): 7,
    np.dtype(np.bool_): 9,
    np.dtype(np.float16): 10,
    np.dtype(np.float64): 11,
}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}


MAX_DIMS = 64  # numpy's limit
MAX_BYTES = 1 << 62  # of the non-zero dims times the item size


class TensorFileError(InputError):
    """A tensor file that cannot be read or written; the message names the file and the problem."""


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype not in DTYPE_CODES:
        supported = ", ".join(str(d) for d in DTYPE_CODES)
        raise TensorFileError(f"tensor {name!r} has dtype {array.dtype}, which tensor files do not hold ({supported})")
    return array if array.flags.c_contiguous else array.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, Any]) -> None:
    """Write ``tensors`` (name -> numpy array or torch tensor) to ``path``, in the order given."""
    buffer = io.BytesIO()
    write_tensors(buffer, tensors)  # raises before the file is touched
    try:
        with open(path, "wb") as f:
            f.write(buffer.getvalue())
    except OSError as e:
        raise TensorFileError(f"cannot write tensor file {os.fspath(path)}: {e.strerror or e}") from e


def write_tensors(f: BinaryIO, tensors: Mapping[str, Any]) -> None:
    bad = [name for name in tensors if not isinstance(name, str)]
    if bad:
        raise TensorFileError(f"tensor names must be strings, got {bad[0]!r}")
    arrays = {name: _as_numpy(name, value) for name, value in tensors.items()}  # all checked before writing
    f.write(MAGIC)
    f.write(struct.pack("<II", VERSION, len(arrays)))
    for name, array in arrays.items():
        encoded = name.encode("utf-8")
        f.write(struct.pack("<I", len(encoded)))
        f.write(encoded)
        f.write(struct.pack("<II", DTYPE_CODES[array.dtype], array.ndim))
        f.write(struct.pack(f"<{array.ndim}q", *array.shape))
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        f.write(struct.pack("<Q", len(data)))
        f.write(data)


def load_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a tensor file into name -> numpy array, in file order."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise TensorFileError(
            f"tensor file {os.fspath(path)} does not exist (write one with `sparsetrt export --save-inputs` or "
            "sparsetrt.runtime.save_tensors)"
        ) from None
    except OSError as e:
        raise TensorFileError(f"cannot read tensor file {os.fspath(path)}: {e.strerror or e}") from e
    return read_tensors(blob, where=os.fspath(path))


def read_tensors(blob: bytes, where: str = "<bytes>") -> dict[str, np.ndarray]:
    view = memoryview(blob)
    pos = 0

    def take(n: int, what: str) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise TensorFileError(
                f"{where}: truncated at byte {pos} while reading {what} ({n} bytes needed, {len(view) - pos} left)"
            )
        chunk = view[pos : pos + n]
        pos += n
        return chunk

    if bytes(take(len(MAGIC), "the magic number")) != MAGIC:
        raise TensorFileError(
            f"{where} is not a sparsetrt tensor file (it does not start with {MAGIC!r}); write one with "
            "sparsetrt.runtime.save_tensors or `sparsetrt export --save-inputs`"
        )
    version, count = struct.unpack("<II", take(8, "the header"))
    if version != VERSION:
        raise TensorFileError(f"{where}: tensor file version {version}; this sparsetrt reads version {VERSION}")
    tensors: dict[str, np.ndarray] = {}
    for i in range(count):
        (name_len,) = struct.unpack("<I", take(4, f"tensor {i}'s name length"))
        raw = bytes(take(name_len, f"tensor {i}'s name"))
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TensorFileError(
                f"{where}: tensor {i}'s name is not UTF-8 ({raw[:40]!r}: {e.reason} at byte {e.start})"
            ) from None
        code, ndim = struct.unpack("<II", take(8, f"tensor {name!r}'s dtype and rank"))
        if code not in CODE_DTYPES:
            raise TensorFileError(f"{where}: tensor {name!r} has unknown dtype code {code}")
        if ndim > MAX_DIMS:
            raise TensorFileError(f"{where}: tensor {name!r} has {ndim} dims, more than {MAX_DIMS}")
        dims = struct.unpack(f"<{ndim}q", take(8 * ndim, f"tensor {name!r}'s dims"))
        if any(d < 0 for d in dims):
            raise TensorFileError(f"{where}: tensor {name!r} has negative dims {list(dims)}")
        dtype = CODE_DTYPES[code]
        if math.prod(d for d in dims if d) * dtype.itemsize > MAX_BYTES:  # exact: Python ints do not overflow
            raise TensorFileError(
                f"{where}: tensor {name!r} is too large (dims {list(dims)} hold more than 2^62 bytes)"
            )
        (nbytes,) = struct.unpack("<Q", take(8, f"tensor {name!r}'s byte count"))
        expected = math.prod(dims) * dtype.itemsize
        if nbytes != expected:
            raise TensorFileError(
                f"{where}: tensor {name!r} ({dtype} {list(dims)}) should hold {expected} bytes, the file says {nbytes}"
            )
        if name in tensors:
            raise TensorFileError(f"{where}: tensor name {name!r} appears twice")
        data = take(nbytes, f"tensor {name!r}'s data")
        tensors[name] = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if pos != len(view):
        raise TensorFileError(f"{where}: {len(view) - pos} bytes of trailing data after {count} tensors")
    return tensors
