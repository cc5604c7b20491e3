"""KernelSession: execute an exported ONNX file with every ``sparsetrt`` op run by our kernel library.

The kernels are the ones the TensorRT plugins call, behind a small C ABI loaded with ctypes
(``kernel_library``); each op's binding is its ``kernels`` function in ``runtime/ops/<op>.py``:

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

import numpy as np
import onnx
from onnx import helper

from .kernel_library import DeviceArray, KernelError, KernelLibrary, find_kernel_library
from .ops import KernelCall, op_module
from .reference import ReferenceSession

__all__ = ["KernelError", "KernelLibrary", "KernelSession", "find_kernel_library"]


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
            outs = op_module(node.op_type).kernels(KernelCall(lib, node, attrs, dev))
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
