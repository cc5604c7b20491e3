"""Our CUDA kernels, run on the CPU execution backend (``plugins/cpu_backend``), from the same sources.

- ``test_kernels`` (each op's ``plugins/ops/<op>/<op>_kernels_test.cu`` and the tests across ops of
  ``plugins/test/gpu``: every kernel against brute-force CPU models, edge cases, odd channels, fp16 tensor cores
  through the PTX interpreter, determinism, overflow contract, CUDA-graph capture) passes, in plain order, with
  blocks and threads shuffled, and with the device reported as sm_75 (the fp16 conv's CUDA-core path);
- ``test_plugin_enqueue`` (each op's ``<op>_enqueue_test.cpp``: every plugin's enqueue path against the kernels)
  passes where TensorRT's headers are found;
- an AddressSanitizer build of the kernel tests passes;
- deliberate mutations of the kernels (a removed barrier, an off-by-one, a wrong fragment index, a missing
  bounds check) are caught, so a passing run means something.

``pytest -m kernels`` runs these and the whole-network comparisons (test_kernel_session.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugins_build import PLUGINS, PluginsBuild, run

pytestmark = pytest.mark.kernels


def _run_tests(exe: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=1800, env={**os.environ, **(env or {})}
    )
    print(result.stdout[-4000:])
    return result


def _passed(result: subprocess.CompletedProcess) -> tuple[int, int]:
    found = re.search(r"(\d+) checks, (\d+) failures", result.stdout)
    assert found, f"no summary line (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return int(found.group(1)), int(found.group(2))


@pytest.fixture(scope="module")
def test_kernels(plugins_build: PluginsBuild) -> Path:
    exe = plugins_build.cpu_executable("test_kernels_cpu")
    assert exe is not None, f"the CPU backend's kernel tests were not built:\n{plugins_build.configure_log}"
    return exe


@pytest.mark.parametrize(
    "env",
    [{}, {"SPARSETRT_CPU_SHUFFLE": "20261127"}],
    ids=["in_order", "shuffled"],
)
def test_kernel_tests_pass_on_the_cpu(test_kernels: Path, env: dict[str, str]) -> None:
    result = _run_tests(test_kernels, env=env)
    checks, failures = _passed(result)
    assert result.returncode == 0 and failures == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert checks >= 1300, f"only {checks} checks ran"
    for group in ("subm", "sparse", "conv", "pool", "plan", "densify", "graph"):
        assert f"[ ok ] {group}" in result.stdout


def test_fp16_conv_without_tensor_cores(test_kernels: Path) -> None:
    """A device below sm_80: the fp16 conv takes its CUDA-core path (the kernels pick it at run time)."""
    result = _run_tests(test_kernels, "conv_quick", env={"SPARSETRT_CPU_SM": "75"})
    assert "sm_75" in result.stdout
    assert result.returncode == 0 and _passed(result)[1] == 0, result.stdout[-6000:]


def test_plugin_enqueue_on_the_cpu(plugins_build: PluginsBuild) -> None:
    exe = plugins_build.cpu_executable("test_plugin_enqueue_cpu")
    if exe is None:
        pytest.skip("TensorRT's headers were not found (set TENSORRT_ROOT): the plugins cannot be compiled")
    result = _run_tests(exe)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "passed: 0 failure(s)" in result.stdout


def _configure_cpu_only(source: Path, build: Path, *extra: str) -> None:
    configure = run(
        ["cmake", "-S", str(source), "-B", str(build), "-DSPARSETRT_BUILD_KERNELS=OFF", "-DSPARSETRT_CPU_BACKEND=ON",
         "-DTENSORRT_ROOT=", "-DSPARSETRT_TENSORRT_INCLUDE_DIR=", *extra]
    )  # fmt: skip
    assert configure.returncode == 0, configure.stdout + configure.stderr


def _build(build: Path, target: str) -> subprocess.CompletedProcess:
    return run(["cmake", "--build", str(build), "--parallel", "2", "--target", target])


def test_address_sanitizer_build(tmp_path: Path) -> None:
    """The kernel tests built with -fsanitize=address (the backend tells ASan about every fiber switch and
    poisons the bytes around each allocation) pass."""
    build = tmp_path / "asan"
    # -O1 keeps the instrumented build quick; ASan's checks do not depend on the optimisation level.
    _configure_cpu_only(PLUGINS, build, "-DSPARSETRT_CPU_SANITIZE=address", "-DCMAKE_BUILD_TYPE=Debug",
                        "-DCMAKE_CXX_FLAGS_DEBUG=-O1")  # fmt: skip
    built = _build(build, "test_kernels_cpu")
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-5000:]
    result = _run_tests(build / "test" / "gpu" / "test_kernels_cpu", env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert "AddressSanitizer" not in result.stderr, result.stderr[-6000:]
    assert result.returncode == 0 and _passed(result)[1] == 0, result.stdout[-6000:] + result.stderr[-3000:]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # under plugins/
    old: str  # must occur exactly once
    new: str
    groups: tuple[str, ...]  # test_kernels groups expected to catch it


MUTATIONS = [
    Mutation(
        "removed barrier in the tensor-core conv (the one closing each shared-memory stage)",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "        if (s + 1 < stages) store(static_cast<int>((s + 1) & 1));\n        __syncthreads();\n",
        "        if (s + 1 < stages) store(static_cast<int>((s + 1) & 1));\n",
        ("conv_quick",),
    ),
    Mutation(
        "removed barrier in the fp32 conv (before the next stage overwrites the tiles)",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "      __syncthreads();  // before the next stage overwrites xs/ws\n",
        "",
        ("conv_quick",),
    ),
    Mutation(
        "off-by-one grid bound in the submanifold lookup",
        "ops/subm_rulebook/subm_rulebook_kernels.cu",
        "target[d] < g.in_shape[d];",
        "target[d] <= g.in_shape[d];",
        ("subm",),
    ),
    Mutation(
        "off-by-one output row in the strided rulebook's neighbour scatter",
        "ops/sparse_rulebook/sparse_rulebook_kernels.cu",
        "neighbors[k * m + table.values[slot]] = static_cast<int32_t>(site);",
        "neighbors[k * m + table.values[slot] + 1] = static_cast<int32_t>(site);",
        ("sparse",),
    ),
    Mutation(
        "wrong A-fragment index in the tensor-core path (ldmatrix rows for k 8..15)",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "(lane & 15)) * kPitch + ks + (lane >> 4) * 8;",
        "(lane & 15)) * kPitch + ks + ((lane >> 3) & 1) * 8;",
        ("conv_quick",),
    ),
    Mutation(
        "wrong accumulator element in the tensor-core epilogue",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "const float v0 = finish(acc[i][j][2 * h], bias,",
        "const float v0 = finish(acc[i][j][h], bias,",
        ("conv_quick",),
    ),
    Mutation(
        "wrong 16-row group when the tensor-core conv skips a fragment",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "run[i] = ((used >> ((wm0 + 16 * i) / kGroupRows)) & 1u) != 0;",
        "run[i] = ((used >> ((wm0 + 16 * i) / kGroupRows + 1)) & 1u) != 0;",
        ("conv_quick",),
    ),
    Mutation(
        "the plan's permutation ignored in the epilogue (outputs land in plan order)",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "  if (map.perm == nullptr) return i;",
        "  if (true) return i;",
        ("conv_quick",),
    ),
    Mutation(
        "wrong mirror offset in the symmetric submanifold lookup",
        "ops/subm_rulebook/subm_rulebook_kernels.cu",
        "neighbors[(g.kernel_volume - 1 - k) * n + found]",
        "neighbors[(g.kernel_volume - 2 - k) * n + found]",
        ("subm",),
    ),
    Mutation(
        "descending bitonic merge step in ConvPlan's window sort",
        "ops/conv_plan/conv_plan_kernels.cu",
        "const bool ascending = (lo & size) == 0;",
        "const bool ascending = (lo & size) != 0;",
        ("plan",),
    ),
    Mutation(
        "missing bounds check on the fp32 conv's output rows",
        "ops/sparse_conv/sparse_conv_kernels.cu",
        "    const int64_t m = m0 + ty + 16 * i;\n    if (m >= m_total) continue;\n",
        "    const int64_t m = m0 + ty + 16 * i;\n",
        ("conv_quick",),
    ),
    Mutation(
        "missing bounds check on densify's grid",
        "ops/densify/densify_kernels.cu",
        "    if (inside) out[",
        "    if (true) out[",
        ("densify",),
    ),
]


def test_mutations_are_caught(tmp_path: Path) -> None:
    """Each mutation of a copy of the kernels makes the kernel tests fail (a wrong result, a fault the
    backend reports, or a crash), while the unmutated copy passes."""
    source = tmp_path / "plugins"
    shutil.copytree(PLUGINS, source, ignore=shutil.ignore_patterns("build*"))
    build = tmp_path / "build"
    _configure_cpu_only(source, build)
    exe = build / "test" / "gpu" / "test_kernels_cpu"
    groups = sorted({g for m in MUTATIONS for g in m.groups})

    built = _build(build, "test_kernels_cpu")
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-5000:]
    baseline = _run_tests(exe, *groups)
    assert baseline.returncode == 0, f"the unmutated copy fails:\n{baseline.stdout[-5000:]}"

    missed = []
    for m in MUTATIONS:
        path = source / m.file
        original = path.read_text()
        assert original.count(m.old) == 1, f"{m.name}: the snippet to mutate is not in {m.file} exactly once"
        path.write_text(original.replace(m.old, m.new))
        try:
            built = _build(build, "test_kernels_cpu")
            assert built.returncode == 0, f"{m.name}: the mutant does not compile:\n{built.stdout[-3000:]}"
            result = _run_tests(exe, *m.groups)
            evidence = [ln for ln in (result.stdout + result.stderr).splitlines() if "FAIL" in ln or "backend:" in ln]
            print(f"{m.name}: exit {result.returncode}; {evidence[0] if evidence else 'no message'}")
            if result.returncode == 0:
                missed.append(m.name)
        finally:
            path.write_text(original)
    assert not missed, f"mutations not caught: {missed}"
