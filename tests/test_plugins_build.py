"""The plugins CMake project builds, its CUDA kernels compile, and its host unit tests pass.

Configures ``plugins/`` into a temporary directory with ``SPARSETRT_CPU_CI=ON`` (kernels for one
architecture, sm_87, to keep this to well under a minute on 2 cores), builds with 2 jobs, and runs CTest:
each op's host test (``plugins/ops/<op>/<op>_test.cpp``: attribute parsing and validation, serialization round
trips, shape arithmetic and workspace layouts) and the shared ones (the schema contract, C++ tables generated from
``exporter/schema/sparsetrt_ops.json``, is tests/test_schema.py's). GPU kernel
tests are built too and skip themselves, saying so, where no CUDA device is present.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from plugins_build import PluginsBuild, run

from sparsetrt.exporter.schema import load, snake_name

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
KERNEL_SOURCES = sorted(PLUGINS.glob("ops/*/*.cu"))
GPU_TEST_SOURCES = sorted((PLUGINS / "test").rglob("*.cu"))


@pytest.fixture(scope="module")
def build_dir(plugins_build: PluginsBuild) -> Path:
    return plugins_build.build_dir


def test_every_cuda_source_compiles(plugins_build: PluginsBuild, build_dir: Path) -> None:
    if not plugins_build.cuda:
        pytest.skip(plugins_build.reason)
    assert "CUDA kernel library" in plugins_build.configure_log, plugins_build.configure_log
    assert KERNEL_SOURCES, "plugins/ops/*/ has no .cu files"
    objects = {p.name for p in build_dir.rglob("*.cu.o")}
    missing = [
        str(src.relative_to(ROOT)) for src in KERNEL_SOURCES + GPU_TEST_SOURCES if f"{src.name}.o" not in objects
    ]
    assert not missing, f"no object file for {missing} (is every .cu part of a target?)"
    assert (build_dir / "libsparsetrt_kernels.a").exists()


def test_host_unit_tests_pass(build_dir: Path) -> None:
    # The kernel tests on the CPU backend (label "kernels") run in test_kernels_cpu.py.
    result = run(["ctest", "--test-dir", str(build_dir), "--output-on-failure", "-LE", "kernels"])
    assert result.returncode == 0, f"ctest failed:\n{result.stdout}\n{result.stderr}"
    # One host test per op (ops/<op>/<op>_test.cpp, found by CMake with no line per op) and the shared ones.
    ops = sorted(p.parent.name for p in PLUGINS.glob("ops/*/*_test.cpp") if p.name == f"{p.parent.name}_test.cpp")
    assert ops == sorted(snake_name(op) for op in load().ops), f"an op without its host test: {ops}"
    for name in [*ops, "workspace_arithmetic", "node_check"]:
        assert f" {name} " in result.stdout, f"CTest did not run {name}:\n{result.stdout}"


def _check_architectures():
    spec = importlib.util.spec_from_file_location("check_cuda_architectures", PLUGINS / "check_cuda_architectures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_libraries_hold_code_for_every_configured_architecture(build_dir: Path, tmp_path: Path) -> None:
    """cuobjdump lists machine code (and PTX) for every architecture the build was configured for; a library
    missing one fails every launch on that GPU with "no kernel image". CI builds sm_87 only; the same check on a
    default build covers 80, 86, 87, 89, 90, 100, 110, 120 and compute_120 PTX (plugins/README.md)."""
    check = _check_architectures()
    cuobjdump = check.find_cuobjdump()
    if cuobjdump is None:
        pytest.skip("cuobjdump not found (CUDA toolkit, or pip install nvidia-cuda-cuobjdump): cannot list GPU code")
    assert check.check(build_dir, cuobjdump) == []
    # The check itself: a build configured for an architecture its libraries lack is caught.
    fake = tmp_path / "fake_build"
    fake.mkdir()
    cache = (build_dir / "CMakeCache.txt").read_text()
    archs = check.configured(build_dir)
    fake_archs = ";".join([*archs, "80-real", "120-virtual"]) if archs != ["native"] else "10-real;120-virtual"
    pattern = r"^SPARSETRT_CUDA_ARCHITECTURES:(\w+)=.*$"
    replacement = rf"SPARSETRT_CUDA_ARCHITECTURES:\1={fake_archs}"
    (fake / "CMakeCache.txt").write_text(re.sub(pattern, replacement, cache, flags=re.M))
    (fake / "libsparsetrt_kernels.a").symlink_to(build_dir / "libsparsetrt_kernels.a")
    problems = check.check(fake, cuobjdump)
    assert any("lacks machine code (ELF) for sm_" in p for p in problems), problems
    assert any("lacks PTX for compute_[120]" in p for p in problems), problems
