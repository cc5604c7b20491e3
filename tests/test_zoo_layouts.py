"""Backbones in OpenPCDet's and mmdetection3d's own layouts (``zoo.layouts``: VoxelNeXt 3D and 2D, Part-A²'s UNet
both ways, PillarNet's PillarRes18, mmdetection3d's SparseEncoder plain and basicblock), unedited but for the
adapter, export and match spconv through the exported file on frames the trace never saw; Focals Conv stops at
export, naming its module and line.

One export per model (batch 2, verified by export itself on the tracing example and a subset of it), then two
other voxel counts through that file against spconv, fp32 within 1e-4 of each output's scale (the zoo parity
bound, test_zoo_parity.py); fp16 for the two models with merged sites, within the zoo's fp16 bound (1e-2 of the
scale). The sparsetrt ops each model's idioms must become are asserted in the file.
"""

from __future__ import annotations

import io
from collections import Counter

import onnx
import pytest
import torch
from oracles import assert_outputs_close
from zoo.focal import FocalBackbone
from zoo.inputs import lidar_voxels
from zoo.layouts import LAYOUTS
from zoo.run import spconv_forward

from sparsetrt.exporter import export
from sparsetrt.exporter.idioms import ExportError
from sparsetrt.exporter.schema import DOMAIN
from sparsetrt.runtime import ReferenceSession

FP32_RTOL = 1e-4
FP16_ATOL_OF_SCALE = 1e-2


def _outputs(value) -> list[torch.Tensor]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _seed(gen: torch.Generator) -> int:
    return int(torch.randint(1 << 30, (1,), generator=gen))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_exports_and_matches_spconv(gen, name):
    layout = LAYOUTS[name]
    model = layout.build()
    seed = _seed(gen)
    blob = io.BytesIO()
    export(model, layout.make_inputs(seed, 2, 1000), blob, input_names=list(layout.input_names))
    proto = onnx.load_from_string(blob.getvalue())
    ops = Counter(n.op_type for n in proto.graph.node if n.domain == DOMAIN)
    assert all(ops[op] for op in layout.ops), ops
    assert not [n.op_type for n in proto.graph.node if n.op_type in ("Unique", "NonZero", "Loop", "If")]
    session = ReferenceSession(proto)
    for k, num_voxels in enumerate((700, 1600)):
        features, coords, batch_size = layout.make_inputs(seed + 1 + k, 2, num_voxels)
        want = _outputs(spconv_forward(model, features, coords, batch_size))
        got = session.run(None, {layout.input_names[0]: features.numpy(), layout.input_names[1]: coords.numpy()})
        assert_outputs_close(want, got, FP32_RTOL, FP32_RTOL)


@pytest.mark.parametrize("name", ["voxelnext_pcdet", "voxelnext2d_pcdet"])
def test_merged_sites_in_fp16(gen, name):
    layout = LAYOUTS[name]
    model = layout.build()
    seed = _seed(gen)
    blob = io.BytesIO()
    export(model, layout.make_inputs(seed, 1, 1000), blob, input_names=list(layout.input_names), fp16=True)
    features, coords, batch_size = layout.make_inputs(seed + 1, 1, 1500)
    want = _outputs(spconv_forward(model, features, coords, batch_size))
    feed = {layout.input_names[0]: features.half().numpy(), layout.input_names[1]: coords.numpy()}
    got = ReferenceSession(onnx.load_from_string(blob.getvalue())).run(None, feed)
    assert_outputs_close(want, got, 0.0, FP16_ATOL_OF_SCALE, min_scale=0.0)


def test_focals_conv_stops_at_export_naming_module_and_line():
    features, coords = lidar_voxels(0, 1, 800, (21, 80, 80), 4)
    model = FocalBackbone().eval()
    spconv_forward(model, features, coords, 1)  # it runs under spconv
    with pytest.raises(ExportError) as info:
        export(model, (features, coords, 1), io.BytesIO(), input_names=["voxel_features", "voxel_coords"])
    message = str(info.value)
    assert message.startswith("focal (FocalSparseConv), "), message
    assert "zoo/focal.py:" in message and "torch.unique_consecutive(key, return_inverse=True" in message, message
    assert "merge duplicate sites with torch.unique(indices, dim=0" in message, message
