"""Builds ``plugins/`` once per test session, for every test that needs the kernels or the plugin library.

Configured with ``SPARSETRT_CPU_CI=ON`` (CUDA kernels for sm_87 only: CI just proves the code compiles; where
a GPU is present, for that GPU instead: ``native``, so the GPU tests run its code), the CPU execution backend
on (the same kernels run on this machine's CPU: ``plugins/cpu_backend``; it needs only the host compiler, so it
is built even where nvcc is missing) and, where TensorRT headers are found (``TENSORRT_ROOT``, or the standard
install locations CMake searches), the TensorRT plugin library ``libsparsetrt_plugins.so`` too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
LIBRARY_NAME = "libsparsetrt_plugins.so"


@dataclass
class PluginsBuild:
    build_dir: Path | None  # None: nothing could be configured (the reason says why)
    configure_log: str
    reason: str  # why something was not built; empty when all of it was
    cuda: bool = True  # the CUDA kernels were compiled (nvcc found)

    def cpu_executable(self, name: str) -> Path | None:
        """A CPU-backend test program (``test/gpu/<name>``), or None where it was not built."""
        path = self.build_dir / "test" / "gpu" / name if self.build_dir else None
        return path if path is not None and path.exists() else None

    @property
    def kernels_cpu_library(self) -> Path | None:
        path = self.build_dir / "libsparsetrt_kernels_cpu.so" if self.build_dir else None
        return path if path is not None and path.exists() else None

    @property
    def library(self) -> Path | None:
        path = self.build_dir / LIBRARY_NAME if self.build_dir else None
        return path if path is not None and path.exists() else None


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800, env=env)


def nvcc() -> str | None:
    return (
        os.environ.get("CUDACXX")
        or shutil.which("nvcc")
        or next((p for p in ("/usr/local/cuda/bin/nvcc",) if Path(p).exists()), None)
    )


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (nvidia-smi lists one)."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def build_plugins(build_dir: Path) -> PluginsBuild:
    """Configure and build; raises AssertionError with the log if the code fails to compile."""
    if shutil.which("cmake") is None:
        return PluginsBuild(None, "", "cmake is not installed: plugins/ cannot be built here")
    compiler = nvcc()
    cuda = [f"-DCMAKE_CUDA_COMPILER={compiler}"] if compiler else ["-DSPARSETRT_BUILD_KERNELS=OFF"]
    configure = run(
        [
            "cmake",
            "-S", str(PLUGINS),
            "-B", str(build_dir),
            "-DSPARSETRT_CPU_CI=ON",
            "-DSPARSETRT_CPU_BACKEND=ON",
            "-DCMAKE_BUILD_TYPE=Release",
            *cuda,
            # Where a GPU is, the GPU tests run: code for it (sm_87 only would fail every launch elsewhere).
            *(["-DSPARSETRT_CUDA_ARCHITECTURES=native"] if compiler and gpu_present() else []),
        ]
    )  # fmt: skip
    assert configure.returncode == 0, f"cmake configure failed:\n{configure.stdout}\n{configure.stderr}"
    compiled = run(["cmake", "--build", str(build_dir), "--parallel", "2"])
    assert compiled.returncode == 0, f"plugins build failed:\n{compiled.stdout[-20000:]}\n{compiled.stderr[-20000:]}"
    reason = ""
    if compiler is None:
        reason = "nvcc (CUDA toolkit) not found: the CUDA kernels and the plugin library cannot be compiled here"
    elif "plugin library skipped" in configure.stdout:
        reason = next(line for line in configure.stdout.splitlines() if "plugin library skipped" in line)
        reason = reason.split("sparsetrt: ", 1)[-1]
    return PluginsBuild(build_dir, configure.stdout, reason, cuda=compiler is not None)
