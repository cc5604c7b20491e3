"""sparsetrt: deploy trained sparse-convolution networks to NVIDIA TensorRT.

Subpackages:
    sparsetrt.exporter  -- spconv-compatible sparse layers, the CPU reference backend, the ONNX exporter
    sparsetrt.runtime   -- reference runtime and TensorRT engine runtime
"""

__version__ = "0.1.0"
