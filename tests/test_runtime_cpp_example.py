"""examples/cpp_deploy: the C++ deployment example configures, compiles and links with CMake wherever TensorRT
headers (``TENSORRT_ROOT``), CUDA's runtime and a TensorRT library are found; here it links against the
TensorRT-RTX wheel's ``libtensorrt_rtx.so.1``. Where a GPU is present it also runs an engine and its outputs
are compared with the reference runtime's.

Compiling and linking is all a CPU machine can show: the headers found may be full TensorRT's while the
library is TensorRT-RTX's (the symbols resolve, the ABI is only right for matching headers), and nothing runs
without a GPU.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cpp_deploy"


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900)


def _tensorrt_library() -> tuple[str, list[str]]:
    """(library folder, extra CMake flags) of an installed TensorRT Python wheel's shared library."""
    for module, flags in (("tensorrt_libs", []), ("tensorrt_rtx_libs", ["-DSPARSETRT_USE_TENSORRT_RTX=ON"])):
        try:
            libs = importlib.import_module(module)
        except ImportError:
            continue
        return str(Path(libs.__file__).parent), flags
    pytest.skip("no TensorRT or TensorRT-RTX library is installed: the example cannot be linked here")


@pytest.fixture(scope="module")
def example_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: the C++ example cannot be built here")
    root = os.environ.get("TENSORRT_ROOT")
    if not root or not (Path(root) / "include" / "NvInfer.h").is_file():
        pytest.skip("TensorRT headers not found (TENSORRT_ROOT/include/NvInfer.h): the C++ example cannot compile here")
    if importlib.util.find_spec("tensorrt_rtx") is not None:
        from sparsetrt.runtime.tensorrt_module import load_tensorrt

        load_tensorrt("tensorrt_rtx")  # makes the unversioned libtensorrt_rtx.so link the wheel lacks
    library_dir, flags = _tensorrt_library()
    build = tmp_path_factory.mktemp("cpp_deploy")
    configure = _run(
        [
            "cmake",
            "-S",
            EXAMPLE,
            "-B",
            build,
            f"-DTENSORRT_ROOT={root}",
            f"-DTENSORRT_LIBRARY_DIR={library_dir}",
            *flags,
        ]
    )
    if "Could NOT find CUDAToolkit" in configure.stdout + configure.stderr:
        pytest.skip("the CUDA toolkit (cuda_runtime_api.h, libcudart) is not installed: the example cannot build here")
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = _run(["cmake", "--build", build, "--parallel", "2"])
    assert compiled.returncode == 0, compiled.stdout[-20000:] + compiled.stderr[-20000:]
    return build


def test_example_compiles_and_links_without_warnings(example_build: Path) -> None:
    binary = example_build / "sparsetrt_deploy"
    assert binary.is_file() and os.access(binary, os.X_OK)
    linked = _run(["ldd", binary]).stdout if shutil.which("ldd") else ""
    assert "libnvinfer" in linked or "libtensorrt_rtx" in linked or not linked
    usage = _run([binary])
    assert usage.returncode == 2 and "MODEL.engine LIBSPARSETRT_PLUGINS.so INPUTS.bin OUTPUTS.bin" in usage.stderr


@pytest.fixture(scope="session")
def cuda_device() -> None:
    # Session scope, listed first: skip before the (session-scoped) plugin library is built for nothing.
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the example cannot run an engine on this machine")


def test_example_runs_an_engine_on_a_gpu(
    cuda_device: None, example_build: Path, plugin_library: Path, tmp_path: Path
) -> None:
    from test_cli import sparse_recipe

    from sparsetrt.exporter import export
    from sparsetrt.runtime import ReferenceSession, build_engine, load_tensors, save_tensors

    recipe = sparse_recipe()
    export(
        recipe.model, recipe.args, tmp_path / "m.onnx", input_names=recipe.input_names, output_names=recipe.output_names
    )
    build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", plugins=[plugin_library], voxels=(1, 300, 600))
    feed = {n: t.numpy() for n, t in zip(recipe.input_names, recipe.args[:2], strict=True)}
    save_tensors(tmp_path / "in.bin", feed)
    binary = example_build / "sparsetrt_deploy"
    ran = _run([binary, tmp_path / "m.engine", plugin_library, tmp_path / "in.bin", tmp_path / "out.bin"])
    assert ran.returncode == 0, ran.stderr
    got = load_tensors(tmp_path / "out.bin")
    features, coords = ReferenceSession(tmp_path / "m.onnx").run(None, feed)
    order_ref, order_got = np.lexsort(coords.T[::-1]), np.lexsort(got["coords"].T[::-1])
    np.testing.assert_array_equal(got["coords"][order_got], coords[order_ref])
    np.testing.assert_allclose(got["features"][order_got], features[order_ref], rtol=1e-4, atol=1e-4)


def test_output_allocator_outlives_the_execution_context() -> None:
    """TensorRT keeps a pointer to the IOutputAllocator in the execution context, so the allocator (and the input
    buffers) must be destroyed after the context: locals die in reverse order of declaration, so they must be
    declared before it. (It was declared after it: the context's destructor ran with a dangling allocator.)"""
    source = (EXAMPLE / "main.cpp").read_text()
    run = source[source.index("int run(") :]
    context = run.index("createExecutionContext()")
    for declaration in ("OutputAllocator allocator;", "std::vector<DeviceBuffer> inputBuffers("):
        assert declaration in run and run.index(declaration) < context, declaration
