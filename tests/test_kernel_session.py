"""Whole exported networks through our kernels: KernelSession against ReferenceSession.

Every zoo model, exported in fp32 and fp16 for batch sizes 1 and 2, runs on ``KernelSession`` (each
``sparsetrt`` op executed by the plugins' kernel library; here on the CPU execution backend, where a GPU is
present on the GPU build too) and on ``ReferenceSession`` (the torch reference), at N = 0, N = 1 and a few
hundred voxels per sample. Sparse outputs are compared site by site.

- fp32: within 1e-4 of each output's scale: the kernels' exact fp32 FMAs and torch's matmuls differ only in
  summation order.
- fp16: within 1e-2 of the scale, the zoo parity bound (test_zoo_parity.py): both store every feature tensor
  in fp16 and accumulate in fp32 (the kernels on tensor cores), so a value that rounds to the other side of
  an fp16 step in one layer carries that step's difference on.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from oracles import assert_outputs_close
from plugins_build import PluginsBuild
from zoo import ZOO
from zoo.layouts import LAYOUTS

from sparsetrt.exporter import export
from sparsetrt.runtime import KernelError, KernelLibrary, KernelSession, ReferenceSession

pytestmark = pytest.mark.kernels

INPUTS = ["voxel_features", "voxel_coords"]
VOXELS = 400  # per sample


@pytest.fixture(scope="module")
def library(plugins_build: PluginsBuild) -> KernelLibrary:
    path = plugins_build.kernels_cpu_library
    assert path is not None, f"libsparsetrt_kernels_cpu.so was not built:\n{plugins_build.configure_log}"
    lib = KernelLibrary(path)
    assert lib.backend == "cpu"
    return lib


def _as_torch(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_through_the_kernels(library: KernelLibrary, gen, name: str, batch_size: int, fp16: bool) -> None:
    entry = ZOO[name]
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(seed, batch_size, VOXELS), buf, input_names=INPUTS, fp16=fp16)
    proto = onnx.load_from_string(buf.getvalue())
    reference, kernels = ReferenceSession(proto), KernelSession(proto, library)
    features, coords, _ = entry.make_inputs(seed + 1, batch_size, VOXELS)
    if fp16:
        features = features.half()
    for n in (0, 1, features.shape[0]):
        feed = {INPUTS[0]: features[:n].numpy(), INPUTS[1]: coords[:n].numpy()}
        ref, got = reference.run(None, feed), kernels.run(None, feed)
        assert [g.dtype for g in got] == [r.dtype for r in ref]
        if fp16:
            assert_outputs_close(_as_torch(ref), got, 0.0, 1e-2, min_scale=0.0)
        else:
            assert_outputs_close(_as_torch(ref), got, 1e-4, 1e-4)
        assert set(kernels.last_times_ms) == {nd.name for nd in proto.graph.node if nd.domain == "sparsetrt"}


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_codebase_layouts_through_the_kernels(library: KernelLibrary, gen, name: str, fp16: bool) -> None:
    """OpenPCDet / mmdetection3d backbones (zoo.layouts), batch 2: UniqueSites and SegmentReduce run on the kernels
    too (VoxelNeXt's merged BEV sites)."""
    layout = LAYOUTS[name]
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    buf = io.BytesIO()
    export(layout.build(), layout.make_inputs(seed, 2, VOXELS), buf, input_names=list(layout.input_names), fp16=fp16)
    proto = onnx.load_from_string(buf.getvalue())
    reference, kernels = ReferenceSession(proto), KernelSession(proto, library)
    features, coords, _ = layout.make_inputs(seed + 1, 2, VOXELS)
    if fp16:
        features = features.half()
    # No N = 0 here: the UNets' `features.view(n, C, -1)` has no answer for n = 0, in PyTorch either.
    for n in (1, features.shape[0]):
        feed = {layout.input_names[0]: features[:n].numpy(), layout.input_names[1]: coords[:n].numpy()}
        ref, got = reference.run(None, feed), kernels.run(None, feed)
        if fp16:
            assert_outputs_close(_as_torch(ref), got, 0.0, 1e-2, min_scale=0.0)
        else:
            assert_outputs_close(_as_torch(ref), got, 1e-4, 1e-4)


@pytest.mark.parametrize("name", ["BevMerge", "SparseAdd", "MaskSelect"])
def test_site_idioms_through_the_kernels(library: KernelLibrary, gen, name: str) -> None:
    """UniqueSites, SegmentReduce (sum and max) and MaskRows in small models, N = 0, 1 and a few hundred."""
    from test_site_merging import INPUTS as MERGE_INPUTS
    from test_site_merging import MODELS, SHAPE
    from zoo.inputs import lidar_voxels

    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    buf = io.BytesIO()
    export(MODELS[name]().eval(), (*lidar_voxels(0, 2, 300, SHAPE, 3), 2), buf, input_names=MERGE_INPUTS)
    proto = onnx.load_from_string(buf.getvalue())
    reference, kernels = ReferenceSession(proto), KernelSession(proto, library)
    features, coords = lidar_voxels(int(torch.randint(1 << 30, (1,), generator=gen)), 2, 300, SHAPE, 3)
    for n in (0, 1, features.shape[0]):
        feed = {MERGE_INPUTS[0]: features[:n].numpy(), MERGE_INPUTS[1]: coords[:n].numpy()}
        ref, got = reference.run(None, feed), kernels.run(None, feed)
        for r, g in zip(ref, got, strict=True):  # same backend row order: compare as they are
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
        # Each node's kernel time is its own: inside its wall time (it once ran from the previous op's start).
        for node, device_ms in kernels.last_device_ms.items():
            assert 0 <= device_ms <= kernels.last_times_ms[node], (node, device_ms, kernels.last_times_ms[node])


def test_kernel_errors_name_the_node(library: KernelLibrary) -> None:
    """An overflow of a user bound (max_sites) is refused by the kernels, with the node and the counts."""
    entry = ZOO["second"]
    buf = io.BytesIO()  # traced on 20 voxels, bounded at 400 sites, run on thousands
    export(entry.build(), entry.make_inputs(0, 1, 20), buf, input_names=INPUTS, max_sites=400)
    features, coords, _ = entry.make_inputs(1, 1, 3000)
    session = KernelSession(onnx.load_from_string(buf.getvalue()), library)
    with pytest.raises(KernelError, match=r"SparseRulebook node '.*': .*more than the bound 400 \(max_out\)"):
        session.run(None, {INPUTS[0]: features.numpy(), INPUTS[1]: coords.numpy()})


def test_library_reports_its_backend_and_device(library: KernelLibrary) -> None:
    assert library.backend == "cpu" and "CPU backend" in library.device
