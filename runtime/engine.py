"""Run a serialized engine on a GPU: ``EngineSession(path, plugins).run(feed)`` -> outputs as torch tensors.

- Inputs may be numpy arrays or torch tensors (CPU or CUDA); they are checked against the model's spec
  (``spec.validate_inputs``) before any GPU work, then placed on the device.
- Every output goes through an ``IOutputAllocator`` backed by torch's caching allocator, so data-dependent
  shapes (the sites a strided sparse conv creates) come back at their true size without a fixed cap.
- ``cuda_graph=True`` replays the work of a run as a CUDA graph. TensorRT-RTX does this itself (its
  runtime config's whole-graph capture, shape-aware); with full TensorRT we capture one graph per set of
  input shapes. That needs an engine without data-dependent internals: TensorRT reads a data-dependent
  size (the sites a strided sparse conv creates: every SparseRulebook) back to the host mid-run, which a
  graph cannot hold. Such engines are refused up front, when the session is made (``CudaGraphError``,
  naming the layers), from the model's spec (``<engine>.json`` or ``spec=``); without a spec we cannot
  tell, and refuse too.
- ``benchmark`` times runs with inputs already on the device (host wall time and CUDA-event GPU time).

polygraphy's ``TrtRunner`` runs engines too, but copies through its own buffers, has no CUDA-graph replay
and no input checks; we use its loaders (``EngineFromBytes``) and its comparator (``compare``), not it.

Nothing in this module has run on a GPU in this project's CI (none is there): see the README.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparsetrt.errors import SparsetrtError

from .build import metadata_path
from .plugins import load_plugin_libraries
from .spec import ModelSpec, TensorSpec, load_spec, validate_inputs
from .tensorrt_module import is_rtx, load_tensorrt, polygraphy_output, polygraphy_trt, which_tensorrt


class NoGPUError(SparsetrtError, RuntimeError):
    """Running an engine needs a CUDA device; this machine (or this torch build) has none."""


class EngineRunError(SparsetrtError, RuntimeError):
    pass


class CudaGraphError(EngineRunError):
    pass


def cuda_graph_refusal(spec: ModelSpec | None) -> str | None:
    """Why full TensorRT cannot replay an engine of ``spec`` as a CUDA graph, or None when it can."""
    if spec is None or spec.data_dependent is None:
        return (
            "CUDA-graph replay needs to know that the engine has no data-dependent internals, and nothing says so "
            "(no <engine>.json from `sparsetrt build`, or one written before it recorded them): pass "
            "spec=ModelSpec.from_onnx('model.onnx'), rebuild with `sparsetrt build`, or run without --cuda-graph"
        )
    if spec.data_dependent:
        shown = ", ".join(spec.data_dependent[:3]) + (", ..." if len(spec.data_dependent) > 3 else "")
        return (
            f"CUDA graphs cannot replay this engine: {len(spec.data_dependent)} layer(s) have a data-dependent output "
            f"size ({shown}; e.g. the sites a strided sparse conv creates), which TensorRT reads back to the host "
            "in the middle of every run. Run without --cuda-graph, or build and run with TensorRT-RTX, whose runtime "
            "captures graphs itself"
        )
    return None


def require_cuda() -> None:
    if not torch.cuda.is_available():
        build = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no usable CUDA device"
        raise NoGPUError(
            f"running a TensorRT engine needs an NVIDIA GPU and a CUDA build of PyTorch; this machine has {build} "
            f"(torch {torch.__version__}). On a CPU, run or check the ONNX file instead (`sparsetrt run model.onnx "
            "...`, `sparsetrt check model.onnx ...`: the reference runtime)"
        )


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "int32": torch.int32,
        "int64": torch.int64,
        "int8": torch.int8,
        "uint8": torch.uint8,
        "bool": torch.bool,
    }
    for name, torch_dtype in table.items():
        if getattr(trt, name, None) == dtype:
            return torch_dtype
    raise EngineRunError(f"engine tensor type {dtype} has no torch equivalent")


def _make_output_allocator(trt: Any, device: torch.device) -> Any:
    class TorchOutputAllocator(trt.IOutputAllocator):  # type: ignore[name-defined, misc]
        """Output memory from torch's caching allocator, grown only when a run needs more. TensorRT calls
        ``reallocate_output_async`` once the size is known (after its own sync for data-dependent counts)
        and ``notify_shape`` with the final shape."""

        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, torch.Tensor] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            return self._reallocate(tensor_name, size)

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int) -> int:
            return self._reallocate(tensor_name, size)

        def _reallocate(self, name: str, size: int) -> int:
            buffer = self.buffers.get(name)
            if buffer is None or buffer.numel() < size:
                # Never 0 bytes: TensorRT treats a null address as failure; torch aligns to 512 bytes.
                self.buffers[name] = torch.empty(max(int(size), 1), dtype=torch.uint8, device=device)
            return self.buffers[name].data_ptr()

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return TorchOutputAllocator()


@dataclass
class BenchResult:
    """Latencies of ``runs`` timed runs after ``warmup`` untimed ones, in milliseconds."""

    runs: int
    warmup: int
    host_ms: list[float]  # wall clock per run on the host: enqueue until the outputs are ready
    device_ms: list[float]  # GPU time between CUDA events around the work (empty on a CPU runtime)
    mode: str = ""

    @staticmethod
    def _percentiles(values: Sequence[float]) -> dict[str, float]:
        if not values:
            return {}
        ordered = np.sort(np.asarray(values, dtype=np.float64))
        out = {f"p{q}": float(np.percentile(ordered, q)) for q in (50, 90, 95, 99)}
        out.update(mean=float(statistics.fmean(ordered)), min=float(ordered[0]), max=float(ordered[-1]))
        return out

    @property
    def host(self) -> dict[str, float]:
        return self._percentiles(self.host_ms)

    @property
    def device(self) -> dict[str, float]:
        return self._percentiles(self.device_ms)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: dict[str, torch.Tensor]  # static input buffers the graph reads
    outputs: dict[str, torch.Tensor]  # the buffers it writes, kept alive with it
    shapes: dict[str, tuple[int, ...]]


class EngineSession:
    """A deserialized engine, an execution context and a CUDA stream, ready to run.

    ``engine``: an engine file (its ``<engine>.json`` spec is read when present) or serialized bytes.
    ``plugins``: plugin libraries the engine's layers need. ``spec``: the model's spec, when the engine has
    no metadata file (e.g. ``ModelSpec.from_onnx("model.onnx")``); without either, inputs are checked
    against what the engine itself records (names, types, shapes, profile), not their coordinates.
    """

    def __init__(
        self,
        engine: str | os.PathLike | bytes,
        plugins: Sequence[str | os.PathLike] = (),
        *,
        spec: ModelSpec | None = None,
        cuda_graph: bool = False,
        device: int | str | torch.device | None = None,
        prefer: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.metadata: dict[str, Any] = {}
        if isinstance(engine, bytes | bytearray):
            data = bytes(engine)
        else:
            path = Path(engine)
            if not path.is_file():
                raise FileNotFoundError(f"engine file {path} does not exist (build one with `sparsetrt build`)")
            data = path.read_bytes()
            meta = metadata_path(path)
            if spec is None and meta.is_file():
                spec, self.metadata = load_spec(meta)
        prefer = prefer or self.metadata.get("built_with", {}).get("module")
        # Refused before any GPU work: full TensorRT cannot capture an engine with data-dependent internals.
        if cuda_graph and which_tensorrt(prefer) != "tensorrt_rtx" and (reason := cuda_graph_refusal(spec)):
            raise CudaGraphError(reason)
        require_cuda()
        self.device = torch.device("cuda" if device is None else device)
        if self.device.type != "cuda":
            raise ValueError(f"device must be a CUDA device, got {self.device}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())

        self.trt = trt = load_tensorrt(prefer)
        backend = polygraphy_trt(trt)
        load_plugin_libraries(trt, plugins)
        from polygraphy.backend.trt import util as trt_util
        from polygraphy.exception import PolygraphyException

        with torch.cuda.device(self.device), polygraphy_output(verbose):
            self._runtime = trt.Runtime(trt_util.get_trt_logger())  # outlives the engine: we keep it
            try:
                self.engine = backend.EngineFromBytes(data, runtime=self._runtime)()
            except PolygraphyException as e:
                raise EngineRunError(
                    f"TensorRT ({trt.__name__} {trt.__version__}) could not load the engine: {e}. An engine runs only "
                    "with the TensorRT flavour and version that built it"
                    + (f" ({self.metadata['built_with']})" if "built_with" in self.metadata else "")
                    + ", and needs the plugin libraries it was built with (--plugins)"
                ) from e
            self._io = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.input_names = [n for n in self._io if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            self.output_names = [n for n in self._io if n not in self.input_names]
            self.spec = self._spec_from_engine(spec)
            self._native_graph = False
            if cuda_graph and is_rtx(trt) and hasattr(self.engine, "create_runtime_config"):
                # TensorRT-RTX captures and replays graphs itself, re-capturing when shapes change.
                config = self.engine.create_runtime_config()
                config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
                self.context = self.engine.create_execution_context(config)
                self._native_graph = True
            else:
                if cuda_graph and (reason := cuda_graph_refusal(self.spec)):  # TensorRT-RTX without graphs of its own
                    raise CudaGraphError(reason)
                self.context = self.engine.create_execution_context()
            if self.context is None:
                raise EngineRunError("TensorRT could not create an execution context (its message is above)")
            self.stream = torch.cuda.Stream(self.device)
            self.allocator = _make_output_allocator(trt, self.device)
            for name in self.output_names:
                if not self.context.set_output_allocator(name, self.allocator):
                    raise EngineRunError(f"TensorRT refused an output allocator for {name!r}")
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple, _Graph] = {}
        self._dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in self._io}

    # ------------------------------------------------------------------------------------------ spec
    def _spec_from_engine(self, spec: ModelSpec | None) -> ModelSpec:
        """The given spec with the engine's own profile, or, without one, what the engine records."""
        trt, engine = self.trt, self.engine

        def dtype(name: str) -> str:
            return str(_torch_dtype(trt, engine.get_tensor_dtype(name))).removeprefix("torch.")

        def shape(name: str) -> tuple[int | str, ...]:
            dims = tuple(engine.get_tensor_shape(name))
            return tuple(int(d) if d >= 0 else ("num_voxels" if i == 0 else "?") for i, d in enumerate(dims))

        profile = {}
        for name in self.input_names:
            if any(d < 0 for d in engine.get_tensor_shape(name)):
                low, opt, high = engine.get_tensor_profile_shape(name, 0)
                profile[name] = (tuple(low), tuple(opt), tuple(high))
        if spec is None:
            spec = ModelSpec(
                inputs=[TensorSpec(n, dtype(n), shape(n)) for n in self.input_names],
                outputs=[TensorSpec(n, dtype(n), shape(n)) for n in self.output_names],
            )
        else:
            missing = set(self.input_names) ^ set(spec.input_names)
            if missing:
                raise EngineRunError(
                    f"the spec's inputs {spec.input_names} are not the engine's {self.input_names}: "
                    "is the metadata file from another engine?"
                )
        spec.profile = profile  # type: ignore[assignment]
        return spec

    # ------------------------------------------------------------------------------------------ run
    def prepare(self, feed: Mapping[str, Any], validate: bool = True) -> dict[str, torch.Tensor]:
        """Check ``feed`` and place it on the device, contiguous, in the engine's types."""
        if validate:
            feed = validate_inputs(self.spec, feed)
        inputs = {}
        for name in self.input_names:
            value = feed[name]
            tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            inputs[name] = tensor.to(self.device, self._dtypes[name], non_blocking=True).contiguous()
        return inputs

    def run(self, feed: Mapping[str, Any], *, validate: bool = True, copy: bool = True) -> dict[str, torch.Tensor]:
        """Outputs for ``feed`` (name -> array/tensor), as CUDA tensors by output name. With ``copy=False``
        they are views of buffers the next run overwrites."""
        return self.execute(self.prepare(feed, validate), copy=copy)

    def execute(self, inputs: Mapping[str, torch.Tensor], *, copy: bool = True) -> dict[str, torch.Tensor]:
        """Run on prepared device tensors (see ``prepare``): no checks, no host copies."""
        producer = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(producer)  # inputs were written on the caller's stream
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            if self.cuda_graph and not self._native_graph:
                outputs = self._replay(inputs)
            else:
                self._bind(inputs)
                if not self.context.execute_async_v3(self.stream.cuda_stream):
                    raise EngineRunError("TensorRT's execute_async_v3 failed (its message is above)")
                outputs = self._outputs(self.allocator.buffers, self.allocator.shapes)
            if copy:
                outputs = {k: v.clone() for k, v in outputs.items()}
        for tensor in inputs.values():
            tensor.record_stream(self.stream)  # the caller may free them once run() returns
        producer.wait_stream(self.stream)
        self.stream.synchronize()
        return outputs

    def _bind(self, inputs: Mapping[str, torch.Tensor]) -> None:
        for name in self.input_names:
            tensor = inputs[name]
            if not self.context.set_input_shape(name, tuple(tensor.shape)):
                raise EngineRunError(
                    f"TensorRT refused shape {list(tensor.shape)} for input {name!r} (profile: "
                    f"{self.spec.profile.get(name)})"
                )
            self.context.set_tensor_address(name, tensor.data_ptr())

    def _outputs(self, buffers: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]) -> dict:
        outputs = {}
        for name in self.output_names:
            if name not in shapes:
                raise EngineRunError(f"TensorRT did not report the shape of output {name!r}")
            dtype, shape = self._dtypes[name], shapes[name]
            count = int(np.prod(shape, dtype=np.int64))
            nbytes = count * torch.tensor([], dtype=dtype).element_size()
            outputs[name] = buffers[name][:nbytes].view(dtype).reshape(shape)
        return outputs

    def _replay(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        key = tuple((n, tuple(inputs[n].shape)) for n in self.input_names)
        record = self._graphs.get(key)
        if record is None:
            record = self._capture(inputs)
            self._graphs[key] = record
        for name, tensor in inputs.items():
            record.inputs[name].copy_(tensor, non_blocking=True)
        record.graph.replay()
        return self._outputs(record.outputs, record.shapes)

    def _capture(self, inputs: Mapping[str, torch.Tensor]) -> _Graph:
        static = {n: t.clone() for n, t in inputs.items()}
        self._bind(static)
        dynamic = [n for n in self.output_names if any(d < 0 for d in self.context.get_tensor_shape(n))]
        if dynamic:
            raise CudaGraphError(
                f"outputs {dynamic} have data-dependent shapes (e.g. the sites a strided sparse conv creates): a "
                "CUDA graph would replay the first run's sizes. Run without --cuda-graph, or output only dense "
                "tensors (Densify)"
            )
        # One eager run first: TensorRT finishes deferred shape-dependent setup and our allocator sizes its
        # buffers, so nothing allocates or synchronizes during capture.
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise EngineRunError("TensorRT's execute_async_v3 failed (its message is above)")
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: CUDA work other threads of the process do meanwhile does not break the capture.
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                ok = self.context.execute_async_v3(self.stream.cuda_stream)
        except RuntimeError as e:
            raise CudaGraphError(
                f"capturing the engine into a CUDA graph failed ({e}); the engine synchronizes inside (data-dependent "
                "sizes need a device-to-host copy): run without --cuda-graph"
            ) from e
        if not ok:
            raise CudaGraphError("TensorRT's execute_async_v3 failed during CUDA-graph capture (its message is above)")
        return _Graph(graph, static, dict(self.allocator.buffers), dict(self.allocator.shapes))

    # ------------------------------------------------------------------------------------------ bench
    def benchmark(self, feed: Mapping[str, Any], iterations: int = 100, warmup: int = 10) -> BenchResult:
        """Time ``iterations`` runs of ``feed`` (checked and uploaded once) after ``warmup`` untimed runs."""
        if iterations < 1 or warmup < 0:
            raise ValueError(f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}")
        inputs = self.prepare(feed)
        for _ in range(warmup):
            self.execute(inputs, copy=False)
        host, device = [], []
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(iterations):
            t0 = time.perf_counter()
            start.record(self.stream)
            self.execute(inputs, copy=False)
            stop.record(self.stream)
            stop.synchronize()
            host.append((time.perf_counter() - t0) * 1e3)
            device.append(start.elapsed_time(stop))
        mode = "cuda graph (TensorRT-RTX)" if self._native_graph else "cuda graph" if self.cuda_graph else "eager"
        return BenchResult(iterations, warmup, host, device, mode)


def benchmark_callable(fn: Any, iterations: int, warmup: int, mode: str) -> BenchResult:
    """Host wall-clock latencies of ``fn()`` (for the CPU reference runtime)."""
    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}")
    for _ in range(warmup):
        fn()
    host = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        host.append((time.perf_counter() - t0) * 1e3)
    return BenchResult(iterations, warmup, host, [], mode)
