"""Graph passes over an exported model (onnx-graphsurgeon): placeholder, filled in below."""

from __future__ import annotations

import onnx
from onnx import shape_inference


def optimize(
    proto: onnx.ModelProto, fold_batchnorm: bool = True, fuse_activations: bool = True, fp16: bool = False
) -> onnx.ModelProto:
    del proto.graph.value_info[:]
    return shape_inference.infer_shapes(proto, strict_mode=True)
