"""KernelSession: execute an exported ONNX file with every ``sparsetrt`` op run by our kernel library.

The kernels are the ones the TensorRT plugins call, behind a small C ABI
(``plugins/kernels/include/sparsetrt/kernels_capi.h``), loaded with ctypes:

- ``libsparsetrt_kernels_cuda.so`` runs them on a GPU: how a GPU machine without TensorRT checks and times
  our kernels on whole networks;
- ``libsparsetrt_kernels_cpu.so`` runs the same sources on the CPU execution backend
  (``plugins/cpu_backend``): how every machine, CI included, checks them.

Standard ops run as in ``ReferenceSession`` (onnxruntime). Tensors produced by a kernel stay in device memory
for the next kernel that reads them (rulebooks are shared by several convs); only those a standard op or the
caller reads are copied to the host. Both libraries come out of ``cmake -S plugins -B build/plugins`` (the CPU
one where the CPU backend is built, the CUDA one where nvcc is found).
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from .reference import ReferenceSession

__all__ = ["KernelError", "KernelLibrary", "KernelSession", "find_kernel_library"]

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


def _ints(values: list[int]) -> ctypes.Array:
    return (ctypes.c_int32 * max(len(values), 1))(*values)


def _ptr(array: DeviceArray | None) -> ctypes.c_void_p:
    return array.ptr if array is not None else ctypes.c_void_p()


@dataclass
class _RunState:
    device: dict[str, DeviceArray] = field(default_factory=dict)  # tensors already in device memory
    times_ms: dict[str, float] = field(default_factory=dict)
    device_ms: dict[str, float] = field(default_factory=dict)


class KernelSession(ReferenceSession):
    """``KernelSession(path_or_model, library).run(output_names, input_feed)`` -> list of numpy arrays.

    ``library`` is a path or a ``KernelLibrary``; by default ``find_kernel_library("cpu")``. After a run,
    ``last_times_ms`` holds each sparsetrt node's wall time (its kernels, allocations and copies) and
    ``last_device_ms`` its kernels' device time (CUDA events around them; the CPU backend's are wall-clock).
    """

    def __init__(
        self, model: str | os.PathLike | onnx.ModelProto, library: str | os.PathLike | KernelLibrary | None = None
    ):
        super().__init__(model)
        if not isinstance(library, KernelLibrary):
            library = KernelLibrary(library if library is not None else find_kernel_library("cpu"))
        self.library = library
        self.last_times_ms: dict[str, float] = {}
        self.last_device_ms: dict[str, float] = {}
        self._constants: dict[str, DeviceArray] = {}

    def _new_run_state(self) -> _RunState:
        if not hasattr(self, "_host_needed"):
            # Kernel outputs go back to the host only where a standard op or the caller reads them.
            self._host_needed = set(self._outputs)
            for step in self._steps:
                if not isinstance(step, onnx.NodeProto):
                    self._host_needed.update(step.inputs)
        return _RunState()

    def _finish_run(self, state: _RunState) -> None:
        self.last_times_ms = state.times_ms
        self.last_device_ms = state.device_ms

    def _run_custom(self, node: onnx.NodeProto, values: dict[str, np.ndarray], state: _RunState) -> None:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        lib = self.library

        def dev(name: str) -> DeviceArray:
            if name in self._initializers:  # weights: uploaded once per session
                if name not in self._constants:
                    self._constants[name] = lib.upload(self._initializers[name])
                return self._constants[name]
            if name not in state.device:
                state.device[name] = lib.upload(values[name])
            return state.device[name]

        start = time.perf_counter()
        try:
            outs = _OPS[node.op_type](lib, node, attrs, values, dev)
        except KernelError as e:
            raise KernelError(f"{node.op_type} node {node.name!r}: {e}") from None
        for name, value in zip(node.output, outs, strict=True):
            if not name:
                continue
            if isinstance(value, DeviceArray):
                state.device[name] = value
                if name in self._host_needed:
                    values[name] = value.numpy()
            else:
                values[name] = value
        state.times_ms[node.name or node.output[0]] = (time.perf_counter() - start) * 1e3
        device_ms = ctypes.c_float()
        lib.call("spt_last_op_ms", ctypes.byref(device_ms))
        state.device_ms[node.name or node.output[0]] = float(device_ms.value)


def _subm_rulebook(lib, node, attrs, values, dev) -> list:
    indices = dev(node.input[0])
    n, ndim = indices.shape[0], len(attrs["spatial_shape"])
    k = int(np.prod(attrs["kernel_size"]))
    out = lib.empty((k, n), np.int32)
    lib.call(
        "spt_subm_rulebook", indices.ptr, ctypes.c_int64(n), ndim, _ints(attrs["spatial_shape"]),
        _ints(attrs["kernel_size"]), _ints(attrs["dilation"]), out.ptr,
    )  # fmt: skip
    return [out]


def _sparse_rulebook(lib, node, attrs, values, dev) -> list:
    indices = dev(node.input[0])
    n, ndim = indices.shape[0], len(attrs["spatial_shape"])
    geometry = [_ints(attrs[a]) for a in ("spatial_shape", "kernel_size", "stride", "padding", "dilation")]
    geometry.append(_ints(attrs["output_padding"]))
    flags = [attrs["transposed"], attrs["max_out"], attrs["batch_size"]]
    bound, shape = ctypes.c_int64(), (ctypes.c_int64 * ndim)()
    lib.call("spt_sparse_rulebook_bound", ctypes.c_int64(n), ndim, *geometry, *flags, ctypes.byref(bound), shape)
    k = int(np.prod(attrs["kernel_size"]))
    cap = bound.value
    out_indices = lib.empty((cap, 1 + ndim), np.int32)
    neighbors = lib.empty((k, cap), np.int32)
    m = ctypes.c_int64()
    lib.call(
        "spt_sparse_rulebook", indices.ptr, ctypes.c_int64(n), ndim, *geometry, *flags, out_indices.ptr,
        neighbors.ptr, ctypes.byref(m),
    )  # fmt: skip
    # Outputs are allocated at the bound, as TensorRT does; the first M rows (the first K * M map entries,
    # row k at k * M) are the result.
    out_indices.shape, neighbors.shape = (m.value, 1 + ndim), (k, m.value)
    out_indices.nbytes = m.value * (1 + ndim) * 4
    neighbors.nbytes = k * m.value * 4
    return [out_indices, neighbors, np.array(m.value, np.int32)]


def _inverse_rulebook(lib, node, attrs, values, dev) -> list:
    neighbors = dev(node.input[0])
    k, m = neighbors.shape
    n = dev(node.input[1]).shape[0]
    out = lib.empty((k, n), np.int32)
    lib.call("spt_inverse_rulebook", neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), ctypes.c_int64(n), out.ptr)
    return [out]


def _dtype(features: DeviceArray) -> int:
    if features.dtype not in _DTYPES:
        raise KernelError(f"features are {features.dtype}; the kernels take float32 or float16")
    return _DTYPES[features.dtype]


def _conv_plan(lib, node, attrs, values, dev) -> list:
    neighbors = dev(node.input[0])
    k, m = neighbors.shape
    out = lib.empty((k + 1 + (k + 31) // 32, m), np.int32)
    lib.call("spt_conv_plan", neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), out.ptr)
    return [out]


def _sparse_conv(lib, node, attrs, values, dev) -> list:
    features, neighbors, weight = dev(node.input[0]), dev(node.input[1]), dev(node.input[2])
    bias = dev(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    residual = dev(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    c_out, k, c_in = weight.shape
    n, m = features.shape[0], neighbors.shape[1]
    if neighbors.shape[0] not in (k, k + 1 + (k + 31) // 32):
        raise KernelError(
            f"the map input is {list(neighbors.shape)}: a map [{k}, M] or its ConvPlan [{k + 1 + (k + 31) // 32}, M] "
            f"for this weight (kernel volume {k})"
        )
    layout = 0 if neighbors.shape[0] == k else 1  # the map itself, or its ConvPlan
    if residual is not None and residual.shape != (m, c_out):
        raise KernelError(f"residual is {list(residual.shape)}, the conv's output [{m}, {c_out}]")
    out = lib.empty((m, c_out), features.dtype)
    lib.call(
        "spt_sparse_conv", _dtype(features), features.ptr, ctypes.c_int64(n), ctypes.c_int64(c_in),
        neighbors.ptr, layout, ctypes.c_int64(k), ctypes.c_int64(m), weight.ptr, _ptr(bias), _ptr(residual),
        ctypes.c_int64(c_out), int(attrs["activation"]), ctypes.c_float(attrs["alpha"]), out.ptr,
    )  # fmt: skip
    return [out]


def _sparse_max_pool(lib, node, attrs, values, dev) -> list:
    features, neighbors = dev(node.input[0]), dev(node.input[1])
    n, c = features.shape
    k, m = neighbors.shape
    out = lib.empty((m, c), features.dtype)
    lib.call(
        "spt_sparse_max_pool", _dtype(features), features.ptr, ctypes.c_int64(n), ctypes.c_int64(c),
        neighbors.ptr, ctypes.c_int64(k), ctypes.c_int64(m), out.ptr,
    )  # fmt: skip
    return [out]


def _densify(lib, node, attrs, values, dev) -> list:
    features, indices = dev(node.input[0]), dev(node.input[1])
    n, c = features.shape
    shape, batch = list(attrs["spatial_shape"]), int(attrs["batch_size"])
    out = lib.empty((batch, c, *shape), features.dtype)
    lib.call(
        "spt_densify", _dtype(features), features.ptr, indices.ptr, ctypes.c_int64(n),
        ctypes.c_int64(c), len(shape), _ints(shape), batch, out.ptr,
    )  # fmt: skip
    return [out]


def _unique_sites(lib, node, attrs, values, dev) -> list:
    indices = dev(node.input[0])
    n, k = indices.shape
    unique, inverse, counts = lib.empty((n, k), np.int32), lib.empty((n,), np.int32), lib.empty((n,), np.int32)
    m = ctypes.c_int64()
    lib.call(
        "spt_unique_sites", indices.ptr, ctypes.c_int64(n), ctypes.c_int64(k), unique.ptr, inverse.ptr, counts.ptr,
        ctypes.byref(m),
    )  # fmt: skip
    # Allocated at the bound M <= N, as TensorRT does; the first M rows are the result.
    unique.shape, counts.shape = (m.value, k), (m.value,)
    unique.nbytes, counts.nbytes = m.value * k * 4, m.value * 4
    return [unique, inverse, counts, np.array(m.value, np.int32)]


def _segment_reduce(lib, node, attrs, values, dev) -> list:
    features, segments, init = dev(node.input[0]), dev(node.input[1]), dev(node.input[2])
    n, c = features.shape
    m = init.shape[0]
    out = lib.empty((m, c), features.dtype)
    lib.call(
        "spt_segment_reduce", _dtype(features), features.ptr, segments.ptr, ctypes.c_int64(n), ctypes.c_int64(c),
        init.ptr, ctypes.c_int64(m), int(attrs["reduction"]), out.ptr,
    )  # fmt: skip
    return [out]


def _mask_rows(lib, node, attrs, values, dev) -> list:
    mask = dev(node.input[0])
    (n,) = mask.shape
    rows = lib.empty((n,), np.int32)
    m = ctypes.c_int64()
    lib.call("spt_mask_rows", mask.ptr, ctypes.c_int64(n), rows.ptr, ctypes.byref(m))
    rows.shape, rows.nbytes = (m.value,), m.value * 4  # allocated at the bound M <= N, as TensorRT does
    return [rows, np.array(m.value, np.int32)]


_OPS = {
    "SubmRulebook": _subm_rulebook,
    "SparseRulebook": _sparse_rulebook,
    "InverseRulebook": _inverse_rulebook,
    "ConvPlan": _conv_plan,
    "SparseConv": _sparse_conv,
    "SparseMaxPool": _sparse_max_pool,
    "Densify": _densify,
    "UniqueSites": _unique_sites,
    "SegmentReduce": _segment_reduce,
    "MaskRows": _mask_rows,
}
