"""The work counter's model of the tensor-core conv (``sparsetrt.runtime.kernel_work``) against what the kernels
execute: the CPU execution backend counts every mma.sync it interprets, and the model must predict that count
exactly, for random maps and lidar maps, with and without a ConvPlan, across channel counts that pack offsets
into the reduction (C_in = 5, 13, 16, 24), wide layers (two channel tiles), kernel volumes past one offset
window, and grids small enough that the kernel splits offsets over blocks. The ConvPlan kernel itself must give
the reference plan (``exporter/backend/plan.py``) bit for bit."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
from plugins_build import PluginsBuild

from sparsetrt.exporter.backend import ConvGeometry, ConvKind, build_rulebook
from sparsetrt.exporter.backend.plan import conv_plan, plan_rows
from sparsetrt.runtime import KernelLibrary
from sparsetrt.runtime.kernel_work import conv_splits, conv_work

pytestmark = pytest.mark.kernels


@pytest.fixture(scope="module")
def lib(plugins_build: PluginsBuild) -> KernelLibrary:
    path = plugins_build.kernels_cpu_library
    assert path is not None, f"the CPU backend's kernel library was not built:\n{plugins_build.configure_log}"
    return KernelLibrary(path)


def _plan_on_device(lib: KernelLibrary, neighbors: np.ndarray):
    k, m = neighbors.shape
    d_map = lib.upload(neighbors)
    plan = lib.empty((plan_rows(k), m), np.int32)
    lib.call("spt_conv_plan", d_map.ptr, ctypes.c_int64(k), ctypes.c_int64(m), plan.ptr)
    return d_map, plan


def _counted_mma(lib, neighbors, n_in, c_in, c_out, device_map, layout, rng) -> int:
    k, m = neighbors.shape
    x = lib.upload(rng.standard_normal((n_in, c_in)).astype(np.float16))
    w = lib.upload((rng.standard_normal((c_out, k, c_in)) * 0.1).astype(np.float16))
    out = lib.empty((m, c_out), np.float16)
    lib.reset_instruction_counts()
    lib.call(
        "spt_sparse_conv", 1, x.ptr, ctypes.c_int64(n_in), ctypes.c_int64(c_in), device_map.ptr, layout,
        ctypes.c_int64(k), ctypes.c_int64(m), w.ptr, ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_int64(c_out), 0,
        ctypes.c_float(0.0), out.ptr,
    )  # fmt: skip
    return lib.instruction_counts()["mma"]


def _check(lib: KernelLibrary, neighbors: np.ndarray, n_in: int, c_in: int, c_out: int, rng) -> None:
    sms = lib.device_info()["multiprocessors"]
    d_map, d_plan = _plan_on_device(lib, neighbors)
    plan = d_plan.numpy()
    assert np.array_equal(plan, conv_plan(torch.from_numpy(neighbors)).numpy()), "ConvPlan kernel != reference"
    for layout, arg in ((0, None), (1, plan)):
        model = conv_work(neighbors, n_in, c_in, c_out, plan=arg, multiprocessors=sms)
        counted = _counted_mma(lib, neighbors, n_in, c_in, c_out, d_plan if layout else d_map, layout, rng)
        assert counted == model.mma, (neighbors.shape, c_in, c_out, layout, model.splits)
        assert model.executed_macs >= model.useful_macs


@pytest.mark.parametrize(
    ("n", "m", "c_in", "c_out", "k", "density"),
    [
        (300, 257, 13, 67, 27, 0.05),  # odd channels: offsets packed across k16 steps
        (100, 130, 16, 16, 27, 0.05),  # two offsets a stage; a grid small enough to split
        (500, 300, 64, 200, 8, 0.1),  # two channel tiles
        (50, 700, 5, 16, 27, 0.1),  # conv_input's 5 channels
        (200, 900, 24, 32, 27, 0.2),  # 8-channel groups straddling offsets
        (80, 400, 8, 16, 300, 0.01),  # past one 256-offset window
        (40, 9000, 32, 32, 27, 0.02),  # several ConvPlan windows
    ],
)
def test_model_matches_counted_mma_on_random_maps(lib, n, m, c_in, c_out, k, density) -> None:
    rng = np.random.default_rng(n * 7 + m)
    neighbors = np.where(rng.random((k, m)) < density, rng.integers(0, n, (k, m)), -1).astype(np.int32)
    neighbors[0, : m // 3] = n + 5  # entries past N: no input, never counted
    _check(lib, neighbors, n, c_in, c_out, rng)


def test_model_matches_counted_mma_on_lidar_maps(lib) -> None:
    """Submanifold and strided maps of a real (synthetic) lidar crop, as the backbone's layers see them."""
    from sparsetrt.data import preset_frame

    _, vox = preset_frame("nuscenes", [5, 0])
    coords = torch.from_numpy(vox.coords.astype(np.int64))
    _, h, w = vox.spatial_shape
    near = torch.argsort((coords[:, 1] - h // 2) ** 2 + (coords[:, 2] - w // 2) ** 2)[:2500]
    idx = torch.cat([torch.zeros((len(near), 1), dtype=torch.int64), coords[torch.sort(near).values]], 1).int()
    shape = tuple(vox.spatial_shape)
    subm = build_rulebook(idx, shape, 1, ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 3))
    down = build_rulebook(idx, shape, 1, ConvGeometry.make(ConvKind.REGULAR, 3, 3, 2, 1))
    rng = np.random.default_rng(3)
    for rb, c_in, c_out in ((subm, 5, 16), (subm, 16, 16), (down, 16, 32), (subm, 64, 128)):
        _check(lib, rb.neighbors.numpy(), rb.num_in, c_in, c_out, rng)


def test_split_rule_follows_the_grid() -> None:
    # Two blocks per SM are enough; fewer get up to 4 splits, bounded by K and the workspace.
    assert conv_splits(100_000, 128, 27, 132) == 1
    assert conv_splits(11_218, 128, 27, 132) == 2  # CenterPoint's level 4 on an H100: 176 tiles
    assert conv_splits(64, 16, 27, 132) == 4
    assert conv_splits(64, 16, 3, 132) == 3
    assert conv_splits(64, 16, 1, 132) == 1
    assert conv_splits(64, 16, 300, 132) == 1  # more than one offset window: never split
