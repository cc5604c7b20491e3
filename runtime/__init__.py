"""sparsetrt.runtime: run exported files and the engines built from them.

- ``ReferenceSession``: executes an exported ONNX file on a CPU (standard ops in onnxruntime, ours on the
  reference backend), like an onnxruntime ``InferenceSession``; it refuses what the plugins refuse and checks
  its feeds (``validate=False`` skips the latter). ``check_model``: those model checks alone.
- Errors: every refusal is a ``sparsetrt.errors.SparsetrtError`` (``ModelError``, ``InputError``, ...) whose
  message says what is wrong and what to do.
- ``KernelSession``: the same, with ours run by the plugins' kernel library (on a GPU, or on the CPU
  execution backend): whole networks through the kernels without TensorRT.
- ``build_engine``: a TensorRT or TensorRT-RTX engine from an exported file (TensorRT-RTX builds without a
  GPU), with the plugin library, a voxel-count profile, fp16, a workspace limit and a timing cache.
- ``EngineSession``: runs an engine on a GPU with numpy or torch inputs (data-dependent outputs through an
  output allocator, optional CUDA-graph replay), and benchmarks it.
- ``ModelSpec`` / ``validate_inputs``: what a model takes, and the checks of a feed before any GPU work.
- ``save_tensors`` / ``load_tensors``: the tensor file format shared with the C++ example.
"""

from .build import DEFAULT_VOXELS, BuildResult, EngineBuildError, build_engine, metadata_path
from .engine import BenchResult, CudaGraphError, EngineRunError, EngineSession, NoGPUError
from .kernel_session import KernelError, KernelLibrary, KernelSession, find_kernel_library
from .plugins import PluginLibraryError, load_plugin_libraries
from .reference import ReferenceSession, check_model
from .spec import InputError, ModelSpec, TensorSpec, validate_inputs
from .tensor_file import TensorFileError, load_tensors, save_tensors
from .tensorrt_module import TensorRTNotFoundError, load_tensorrt

__all__ = [
    "DEFAULT_VOXELS",
    "BenchResult",
    "BuildResult",
    "CudaGraphError",
    "EngineBuildError",
    "EngineRunError",
    "EngineSession",
    "InputError",
    "KernelError",
    "KernelLibrary",
    "KernelSession",
    "ModelSpec",
    "NoGPUError",
    "PluginLibraryError",
    "ReferenceSession",
    "TensorFileError",
    "TensorRTNotFoundError",
    "TensorSpec",
    "build_engine",
    "check_model",
    "find_kernel_library",
    "load_plugin_libraries",
    "load_tensorrt",
    "load_tensors",
    "metadata_path",
    "save_tensors",
    "validate_inputs",
]
