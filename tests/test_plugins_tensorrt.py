"""The TensorRT plugin library with TensorRT-RTX, on a CPU: it loads, registers every creator of the schema,
and parses and builds engines from every exported zoo model (size tensors, format negotiation,
serialization), and a bad attribute is reported naming its node and field.

Needs the plugin library, which needs TensorRT's headers (``TENSORRT_ROOT``; see plugins/README.md): where they
are absent these tests skip, saying so. TensorRT-RTX (a test dependency) builds engines without a GPU but cannot
run them; running engines is checked on a GPU machine.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from zoo import ZOO
from zoo.layouts import LAYOUTS

from sparsetrt.exporter import export
from sparsetrt.exporter.schema import DOMAIN, load

INPUTS = ["voxel_features", "voxel_coords"]


@pytest.fixture(scope="module")
def rtx() -> None:
    try:
        from sparsetrt.runtime.tensorrt_module import load_tensorrt

        load_tensorrt("tensorrt_rtx")
    except ImportError as e:
        pytest.skip(f"TensorRT-RTX is not installed ({e}): pip install -e '.[test]'")


def _cli(*args: str) -> subprocess.CompletedProcess:
    # In a subprocess: a failed multi-plugin build can abort the whole process instead of raising.
    return subprocess.run(
        [sys.executable, "-m", "sparsetrt", *args], capture_output=True, text=True, timeout=900, check=False
    )


def _build(onnx_path: Path, library: Path) -> subprocess.CompletedProcess:
    engine = onnx_path.with_suffix(".engine")
    return _cli(
        "build",
        str(onnx_path),
        "-o",
        str(engine),
        "--plugins",
        str(library),
        "--voxels",
        "1:5000:20000",
        "--trt",
        "tensorrt_rtx",
        "--no-progress",
    )


def test_library_exports_the_entry_points_and_needs_no_tensorrt(plugin_library: Path) -> None:
    dynamic = subprocess.run(["readelf", "-dW", str(plugin_library)], capture_output=True, text=True, check=True)
    needed = [line for line in dynamic.stdout.splitlines() if "(NEEDED)" in line]
    assert needed and not [n for n in needed if "nvinfer" in n or "tensorrt" in n or "cudart" in n], needed
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(plugin_library)], capture_output=True, text=True, check=True
    )
    exported = {line.split()[-1] for line in symbols.stdout.splitlines() if " T " in line}
    assert {"getCreators", "setLoggerFinder"} <= exported, exported
    assert not [s for s in exported if "sparsetrt" in s], f"internal symbols leak: {exported}"


@pytest.mark.parametrize("name,fp16", [(name, False) for name in ZOO] + [("centerpoint", True), ("minkunet", True)])
def test_zoo_model_builds_an_engine(rtx: None, plugin_library: Path, tmp_path: Path, name: str, fp16: bool) -> None:
    entry = ZOO[name]
    path = tmp_path / f"{name}.onnx"
    export(entry.build(), entry.make_inputs(0, 2, 600), path, input_names=INPUTS, fp16=fp16)
    result = _build(path, plugin_library)
    assert result.returncode == 0, f"engine build failed:\n{result.stdout}\n{result.stderr[-5000:]}"
    assert path.with_suffix(".engine").stat().st_size > 0


@pytest.mark.parametrize(
    "name,fp16", [(name, False) for name in LAYOUTS] + [("voxelnext_pcdet", True), ("sparse_unet_mmdet3d", True)]
)
def test_codebase_layout_builds_an_engine(
    rtx: None, plugin_library: Path, tmp_path: Path, name: str, fp16: bool
) -> None:
    """OpenPCDet / mmdetection3d backbones through their adapters (zoo.layouts): merged sites (UniqueSites,
    SegmentReduce, whose M is bounded by a sum of earlier size tensors), dict outputs, dense stages after Densify."""
    layout = LAYOUTS[name]
    path = tmp_path / f"{name}.onnx"
    export(layout.build(), layout.make_inputs(0, 2, 600), path, input_names=list(layout.input_names), fp16=fp16)
    result = _build(path, plugin_library)
    assert result.returncode == 0, f"engine build failed:\n{result.stdout}\n{result.stderr[-5000:]}"
    assert path.with_suffix(".engine").stat().st_size > 0


@pytest.mark.parametrize("name", ["BevMerge", "SparseAdd", "MaskSelect"])
def test_site_idioms_build_an_engine(rtx: None, plugin_library: Path, tmp_path: Path, name: str) -> None:
    """UniqueSites + SegmentReduce (VoxelNeXt's merge, sparse_add) and MaskRows (a mask's subset of sites; ONNX's
    NonZero does not parse in TensorRT-RTX) in engines."""
    from test_site_merging import INPUTS as MERGE_INPUTS
    from test_site_merging import MODELS, SHAPE
    from zoo.inputs import lidar_voxels

    torch.manual_seed(0)
    path = tmp_path / f"{name}.onnx"
    export(MODELS[name]().eval(), (*lidar_voxels(0, 2, 300, SHAPE, 3), 2), path, input_names=MERGE_INPUTS)
    result = _build(path, plugin_library)
    assert result.returncode == 0, f"engine build failed:\n{result.stdout}\n{result.stderr[-5000:]}"


def test_registry_lists_every_schema_op(rtx: None, plugin_library: Path) -> None:
    result = _cli("info", str(plugin_library), "--trt", "tensorrt_rtx")
    assert result.returncode == 0, result.stdout + result.stderr
    for op, definition in load().ops.items():
        fields = ", ".join(a.name for a in definition.attributes) or "no fields"
        assert f"{DOMAIN}::{op} v{definition.since_version} ({fields})" in result.stdout, result.stdout


def test_bad_attribute_is_reported_with_node_and_field(rtx: None, plugin_library: Path, tmp_path: Path) -> None:
    entry = ZOO["second"]
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(0, 1, 300), buf, input_names=INPUTS)
    model = onnx.load_from_string(buf.getvalue())
    node = next(n for n in model.graph.node if n.op_type == "SparseRulebook")
    next(a for a in node.attribute if a.name == "stride").ints[0] = 0
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    result = _build(path, plugin_library)
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert f"node '{node.name}', attribute 'stride': every entry must be >= 1" in log, log[-5000:]
