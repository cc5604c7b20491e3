"""Model-zoo parity: spconv's output == ReferenceSession's output on the exported file.

For every zoo model and batch sizes 1 and 2: one export, then two different voxel counts through that
one file. Dense outputs must match within 1e-4 relative to the output's scale; sparse outputs
(features with their int32 coordinates) must have the same sites and, aligned by site, the same
features (a strided conv's row order is unspecified).
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from oracles import assert_same_sparse
from zoo import ZOO
from zoo.run import spconv_forward

from sparsetrt.exporter import export
from sparsetrt.exporter.schema import DOMAIN
from sparsetrt.exporter.schema.onnx_registration import register_onnx_schemas
from sparsetrt.runtime import ReferenceSession

INPUTS = ["voxel_features", "voxel_coords"]
FP32_RTOL = 1e-4


def _outputs(value) -> list[torch.Tensor]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _assert_parity(ref: list[torch.Tensor], got: list[np.ndarray], rtol: float) -> None:
    assert len(ref) == len(got)
    i = 0
    while i < len(ref):
        r = ref[i]
        sparse_pair = i + 1 < len(ref) and not ref[i + 1].is_floating_point()
        scale = max(float(r.float().abs().max()), 1.0) if r.numel() else 1.0
        if sparse_pair:
            idx = torch.from_numpy(got[i + 1])
            assert_same_sparse(
                idx, torch.from_numpy(got[i]).float(), ref[i + 1], r.float(), rtol=rtol, atol=rtol * scale
            )
            i += 2
        else:
            assert tuple(got[i].shape) == tuple(r.shape)
            torch.testing.assert_close(torch.from_numpy(got[i]).float(), r.float(), rtol=rtol, atol=rtol * scale)
            i += 1


def _export(entry, batch_size: int, num_voxels: int, seed: int, **kwargs) -> tuple[torch.nn.Module, bytes]:
    model = entry.build()
    buf = io.BytesIO()
    export(model, entry.make_inputs(seed, batch_size, num_voxels), buf, input_names=INPUTS, **kwargs)
    return model, buf.getvalue()


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_fp32_parity(gen, name, batch_size):
    entry = ZOO[name]
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    model, blob = _export(entry, batch_size, 1500, seed)
    session = ReferenceSession(onnx.load_from_string(blob))
    for k, num_voxels in enumerate((1200, 3000)):  # two voxel counts through one file
        features, coords, bs = entry.make_inputs(seed + 1 + k, batch_size, num_voxels)
        ref = _outputs(spconv_forward(model, features, coords, bs))
        got = session.run(None, {INPUTS[0]: features.numpy(), INPUTS[1]: coords.numpy()})
        _assert_parity(ref, got, FP32_RTOL)


def test_exported_files_are_valid_and_typed(gen):
    """check_model(full_check) passes and shape inference types every tensor, with our schemas."""
    register_onnx_schemas()
    for name in ("centerpoint", "parta2"):
        _, blob = _export(ZOO[name], 2, 1500, 0)
        proto = onnx.load_from_string(blob)
        onnx.checker.check_model(proto, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
        typed = {v.name for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
        typed |= {t.name for t in inferred.graph.initializer}
        produced = {o for n in inferred.graph.node for o in n.output if o}
        assert produced <= typed, f"untyped tensors: {sorted(produced - typed)[:5]}"
        custom = [n for n in proto.graph.node if n.domain == DOMAIN]
        assert {n.op_type for n in custom} >= {"SubmRulebook", "SparseRulebook", "SparseConv"}
        assert any(o.domain == DOMAIN and o.version == 1 for o in proto.opset_import)
