"""Small C++ programs the tests compile straight from the sources with the system's C++ compiler (no CMake, no
CUDA, no TensorRT): the plugins' host logic has no dependency, so CI machines with any C++17 compiler check it
against the Python side. Where no compiler exists the tests that need one skip, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "plugins" / "common"
# The host logic: what the ops share (common/src) and each op's own (ops/<op>/<op>_host.cpp).
HOST_SOURCES = sorted(COMMON.glob("src/*.cpp")) + sorted((ROOT / "plugins" / "ops").glob("*/*_host.cpp"))
# common/include, and plugins/ for ops/<op>/: each op's host logic and generated attributes live in its folder.
HOST_INCLUDES = [COMMON / "include", ROOT / "plugins"]


def cxx() -> str | None:
    """A C++ compiler: $CXX, else c++, g++ or clang++ on the PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_program(
    output: Path, sources: list[Path], *, compiler: str | None = None, flags: list[str] | None = None
) -> Path:
    """Compile ``sources`` into ``output`` (C++17, the host logic's include folder); AssertionError with the
    compiler's output on failure."""
    compiler = compiler or cxx()
    assert compiler is not None, "no C++ compiler"
    cmd = [
        compiler,
        "-std=c++17",
        "-O1",
        "-Wall",
        "-Wextra",
        "-Werror",
        *(f"-I{p}" for p in HOST_INCLUDES),
        *(flags or []),
        *map(str, sources),
        "-o",
        str(output),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}{result.stderr}"
    return output
