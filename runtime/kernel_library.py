"""The kernel library behind its C ABI (``plugins/kernels/include/sparsetrt/kernels_capi.h`` and each op's
``plugins/ops/<op>/`` entry points), loaded with ctypes: device buffers, errors, and the argument helpers each op's
binding (``runtime/ops/<op>.py``, ``kernels``) uses.

- ``libsparsetrt_kernels_cuda.so`` runs the kernels on a GPU;
- ``libsparsetrt_kernels_cpu.so`` runs the same sources on the CPU execution backend (``plugins/cpu_backend``).

Both come out of ``cmake -S plugins -B build/plugins`` (the CPU one where the CPU backend is built, the CUDA one
where nvcc is found).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DeviceArray", "KernelError", "KernelLibrary", "c_ints", "c_ptr", "dtype_code", "find_kernel_library"]

ABI_VERSION = 3
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}


class KernelError(RuntimeError):
    """A kernel refused its input or failed; the message says which op and why."""


def find_kernel_library(backend: str = "cpu") -> Path:
    """The kernel library: ``$SPARSETRT_KERNELS_LIB``, else ``build/plugins/libsparsetrt_kernels_<backend>.so``."""
    env = os.environ.get("SPARSETRT_KERNELS_LIB")
    if env:
        return Path(env)
    path = Path(__file__).resolve().parents[1] / "build" / "plugins" / f"libsparsetrt_kernels_{backend}.so"
    if not path.exists():
        raise KernelError(
            f"no kernel library at {path}: build it with `cmake -S plugins -B build/plugins && cmake --build "
            "build/plugins` (the CPU backend needs only a C++ compiler), or set SPARSETRT_KERNELS_LIB"
        )
    return path


class DeviceArray:
    """A device buffer holding an array of ``shape`` and ``dtype`` (freed with the object)."""

    def __init__(self, lib: KernelLibrary, shape: tuple[int, ...], dtype: np.dtype, capacity: int | None = None):
        self.lib, self.shape, self.dtype = lib, tuple(int(s) for s in shape), np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr = ctypes.c_void_p()
        lib.call("spt_malloc", ctypes.byref(self.ptr), ctypes.c_size_t(max(self.nbytes, capacity or 0)))

    def __del__(self) -> None:
        if getattr(self, "ptr", None) and self.ptr.value:
            self.lib.raw.spt_free(self.ptr)

    def numpy(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if self.nbytes:
            self.lib.call("spt_download", out.ctypes.data_as(ctypes.c_void_p), self.ptr, ctypes.c_size_t(self.nbytes))
        return out


class KernelLibrary:
    """ctypes bindings of ``libsparsetrt_kernels_{cuda,cpu}.so``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.raw = ctypes.CDLL(os.fspath(self.path))
        except OSError as e:
            raise KernelError(f"cannot load the kernel library {self.path}: {e}") from e
        self.raw.spt_last_error.restype = ctypes.c_char_p
        self.raw.spt_backend.restype = ctypes.c_char_p
        version = self.raw.spt_abi_version()
        if version != ABI_VERSION:
            raise KernelError(f"{self.path} has kernel ABI {version}, this sparsetrt expects {ABI_VERSION}: rebuild it")
        self.backend = self.raw.spt_backend().decode()
        name = ctypes.create_string_buffer(256)
        self.call("spt_device_name", name, 256)
        self.device = name.value.decode()

    def call(self, fn: str, *args: Any) -> None:
        rc = getattr(self.raw, fn)(*args)
        if rc != 0:
            raise KernelError(self.raw.spt_last_error().decode() or f"{fn} failed with CUDA error {rc}")

    def device_info(self) -> dict[str, int]:
        """``{"major": ..., "minor": ..., "multiprocessors": ...}`` of the device the kernels run on."""
        values = (ctypes.c_int32 * 3)()
        self.call("spt_device_info", ctypes.byref(values, 0), ctypes.byref(values, 4), ctypes.byref(values, 8))
        return {"major": int(values[0]), "minor": int(values[1]), "multiprocessors": int(values[2])}

    def instruction_counts(self) -> dict[str, int]:
        """Warp instructions the CPU backend executed since ``reset_instruction_counts``: ``{"mma": ..., "ldmatrix":
        ...}`` (``mma`` = mma.sync m16n8k16, 16 x 8 x 16 multiply-adds each). A GPU library raises KernelError."""
        counts = (ctypes.c_uint64 * 2)()
        self.call("spt_instruction_counts", counts)
        return {"mma": int(counts[0]), "ldmatrix": int(counts[1])}

    def reset_instruction_counts(self) -> None:
        self.call("spt_instruction_counts_reset")

    def upload(self, array: np.ndarray) -> DeviceArray:
        array = np.ascontiguousarray(array)
        dev = DeviceArray(self, array.shape, array.dtype)
        if dev.nbytes:
            self.call("spt_upload", dev.ptr, array.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(dev.nbytes))
        return dev

    def empty(self, shape: tuple[int, ...], dtype: Any, capacity: int | None = None) -> DeviceArray:
        return DeviceArray(self, shape, np.dtype(dtype), capacity)


def c_ints(values: list[int]) -> ctypes.Array:
    """An int32 array argument (never zero-length: ctypes needs a buffer)."""
    return (ctypes.c_int32 * max(len(values), 1))(*values)


def c_ptr(array: DeviceArray | None) -> ctypes.c_void_p:
    """A device pointer argument; NULL for an absent optional input."""
    return array.ptr if array is not None else ctypes.c_void_p()


def dtype_code(features: DeviceArray) -> int:
    """The C ABI's dtype code of a feature array (0 float32, 1 float16)."""
    if features.dtype not in _DTYPES:
        raise KernelError(f"features are {features.dtype}; the kernels take float32 or float16")
    return _DTYPES[features.dtype]
