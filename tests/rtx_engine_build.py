"""Builds a TensorRT engine from an exported ONNX file with the sparsetrt plugin library, no GPU needed.

Run as a script (in a subprocess: a failed multi-plugin build can abort the whole process instead of raising):

    python tests/rtx_engine_build.py MODEL.onnx PLUGIN_LIBRARY [--fp16-inputs]

Prints one ``creators:`` line (the sparsetrt creators in the registry), one ``layers:`` line and, on success,
``engine bytes: <n>``; exits non-zero on any parse or build error. The optimization profile spans 1 to 20000
voxels (opt 5000) for every dynamic dim.
"""

from __future__ import annotations

import sys

from sparsetrt.runtime.tensorrt_module import load_tensorrt


def main(onnx_path: str, library: str) -> int:
    trt = load_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    registry = trt.get_plugin_registry()
    if registry.load_library(library) is None:
        print(f"could not load {library}")
        return 2
    ours = [c for c in registry.all_creators if c.plugin_namespace == "sparsetrt"]
    creators = sorted(f"{c.name}:{c.plugin_version}" for c in ours)
    print("creators:", " ".join(creators))
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        parsed = parser.parse(f.read())
    for i in range(parser.num_errors):
        print("parse error:", parser.get_error(i))
    if not parsed:
        return 3
    plugins = sum(network.get_layer(i).type == trt.LayerType.PLUGIN_V3 for i in range(network.num_layers))
    print(f"layers: {network.num_layers} plugin layers: {plugins}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        if -1 in shape:
            low, opt, high = ([n if s == -1 else s for s in shape] for n in (1, 5000, 20000))
            profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        print("build failed")
        return 4
    print(f"engine bytes: {engine.nbytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
