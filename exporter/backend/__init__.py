"""The CPU reference backend: rulebooks and sparse compute in plain torch.

Everything else in sparsetrt is checked against this package, and it is the semantic reference for the
GPU plugins: they compute the same rulebooks (output-stationary neighbour maps) and the same sums.
"""

from .coords import check_indices, decode, encode
from .geometry import ConvGeometry, ConvKind, expand_nd
from .ops import densify, sparse_conv, sparse_max_pool
from .rulebook import Rulebook, build_rulebook

__all__ = [
    "ConvGeometry",
    "ConvKind",
    "Rulebook",
    "build_rulebook",
    "check_indices",
    "decode",
    "densify",
    "encode",
    "expand_nd",
    "sparse_conv",
    "sparse_max_pool",
]
