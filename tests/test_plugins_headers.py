"""The plugin layer compiles against every TensorRT version we deploy on: each header set named in
``SPARSETRT_TENSORRT_ROOTS`` (folders whose ``include/`` holds TensorRT's headers, separated by ``os.pathsep``;
else ``TENSORRT_ROOT`` alone) compiles every plugin source, the plugin unit tests, the plugin GPU tests (each op's
enqueue test) and the C++ deployment example, warnings as errors in our code.

This is a compile check, not a build of the whole library: the CUDA kernels know nothing of TensorRT (their
compilation is ``test_plugins_build.py``'s), so only the TensorRT-facing translation units depend on the headers.
Deployment targets: TensorRT 10.3 (JetPack 6), 10.13 (JetPack 7), 11.x (x86 and future Jetson releases); the
headers are NVIDIA/TensorRT's ``include/`` at the release tags (Apache-2.0), fetched, never part of this repository::

    git clone --depth 1 --branch v10.3.0 https://github.com/NVIDIA/TensorRT /tmp/trt-10.3
    SPARSETRT_TENSORRT_ROOTS=/tmp/trt-10.3:/tmp/trt-10.13:/tmp/trt-11 pytest tests/test_plugins_headers.py
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from plugins_build import nvcc

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
SOURCES = sorted(
    [
        *PLUGINS.glob("plugin/*.cpp"),
        *PLUGINS.glob("ops/*/*_plugin.cpp"),
        PLUGINS / "ops" / "registry.cpp",
        PLUGINS / "test" / "test_plugins.cpp",
        PLUGINS / "test" / "gpu" / "test_plugin_enqueue.cpp",
        *PLUGINS.glob("ops/*/*_enqueue_test.cpp"),
        ROOT / "examples" / "cpp_deploy" / "main.cpp",
    ]
)
INCLUDES = [
    PLUGINS,
    PLUGINS / "common" / "include",
    PLUGINS / "kernels" / "include",
    PLUGINS / "test",
    PLUGINS / "test" / "gpu",
    ROOT / "examples" / "cpp_deploy",
]


def _header_roots() -> list[Path]:
    raw = os.environ.get("SPARSETRT_TENSORRT_ROOTS") or os.environ.get("TENSORRT_ROOT") or ""
    return [Path(p) for p in raw.split(os.pathsep) if p]


def _version(include: Path) -> str:
    """``10.3.0`` from NvInferVersion.h (10.x defines NV_TENSORRT_* directly, 11.x through TRT_*_ENTERPRISE)."""
    text = (include / "NvInferVersion.h").read_text()
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"#define (?:NV_TENSORRT_{name}|TRT_{name}_ENTERPRISE) (\d+)", text)
        parts.append(match.group(1) if match else "?")
    return ".".join(parts)


def _cuda_include() -> Path | None:
    """CUDA's include folder, as nvcc itself reports it (the plugin layer includes cuda_runtime_api.h)."""
    compiler = nvcc()
    if compiler is None:
        return None
    dry = subprocess.run(
        [compiler, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull], capture_output=True, text=True
    )
    match = re.search(r'INCLUDES="-I([^"]+)"', dry.stdout + dry.stderr)
    return Path(match.group(1)) if match else None


def _compile(source: Path, include: Path, cuda: Path) -> tuple[Path, str]:
    cmd = ["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror"]
    cmd += [f"-I{p}" for p in INCLUDES] + ["-isystem", str(include), "-isystem", str(cuda), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return source, "" if result.returncode == 0 else result.stderr[-4000:]


@pytest.fixture(scope="module")
def cuda_include() -> Path:
    cuda = _cuda_include()
    if cuda is None or not (cuda / "cuda_runtime_api.h").is_file():
        pytest.skip("CUDA's headers were not found (nvcc missing): the plugin layer cannot be compiled here")
    return cuda


@pytest.mark.parametrize("root", _header_roots() or [None], ids=lambda p: str(p) if p else "none")
def test_plugin_layer_compiles_against_tensorrt_headers(root: Path | None, cuda_include: Path) -> None:
    if root is None:
        pytest.skip(
            "no TensorRT headers given: set SPARSETRT_TENSORRT_ROOTS (folders with include/NvInferRuntime.h, "
            f"separated by '{os.pathsep}') or TENSORRT_ROOT to compile the plugin layer against them"
        )
    include = root / "include"
    if not (include / "NvInferRuntime.h").is_file():
        pytest.fail(f"{root} has no include/NvInferRuntime.h (SPARSETRT_TENSORRT_ROOTS names TensorRT header roots)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        errors = {src: err for src, err in pool.map(lambda s: _compile(s, include, cuda_include), SOURCES) if err}
    version = _version(include)
    assert not errors, f"against TensorRT {version} headers ({include}):\n" + "\n".join(
        f"--- {src.relative_to(ROOT)}\n{err}" for src, err in errors.items()
    )
