"""sparsetrt.exporter: spconv-compatible sparse layers, their CPU reference backend, and the ONNX exporter.

``SparseTensor`` and ``nn`` mirror spconv 2.x (``spconv.pytorch``) so trained weights load unchanged;
``backend`` holds the rulebook construction and sparse compute every other part is checked against.
"""

from . import backend, nn
from .convert import convert
from .export import export
from .recipe import ExportRecipe
from .sparse_tensor import SparseTensor
from .summary import summary

__all__ = ["ExportRecipe", "SparseTensor", "backend", "convert", "export", "nn", "summary"]
