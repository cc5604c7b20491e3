"""The functional layer: one function per sparse op, and the only place that chooses how an op runs.

The layers (``nn``), ``SparseTensor`` and ``functional`` call these functions and never ask whether a model is
being exported. Each function takes one of two paths, decided by ``context.is_exporting()``:

- eager: the CPU/CUDA reference ``backend``, with rulebooks built once and their row pairs cached on the
  ``Rulebook``, and autograd (training and inference in PyTorch);
- export: the op's ``torch.ops.sparsetrt.*`` custom op (``custom_ops``), which either exporter turns into one
  ``sparsetrt`` node (``onnx_translation``). Its real implementation runs the backend on bare tensors (the
  reference path: the export's real run and the TorchScript trace); its fake one gives torch.export the shapes.

``export()`` enters ``context.exporting(ExportOptions(...))``; the ops read the options (``max_sites``) through
``context.export_options()``.

One file per op family, holding its op functions and the custom ops they record: ``rulebook`` (SubmRulebook,
SparseRulebook, InverseRulebook), ``conv`` (SparseConv, ConvPlan), ``max_pool`` (SparseMaxPool), ``densify``
(Densify), ``sites`` (UniqueSites, SegmentReduce, MaskRows), and ``eager_only`` (input checks and statistics an
export does not record).
"""

from ..custom_ops import ACTIVATION_CODES, apply_activation
from .context import ExportOptions, export_options, exporting, is_exporting
from .conv import sparse_conv
from .densify import densify
from .eager_only import checked_sites, record_max_sites
from .max_pool import sparse_max_pool
from .rulebook import inverse_rulebook, rulebook
from .sites import mask_rows, segment_reduce, unique_sites

__all__ = [
    "ACTIVATION_CODES",
    "ExportOptions",
    "apply_activation",
    "checked_sites",
    "densify",
    "export_options",
    "exporting",
    "inverse_rulebook",
    "is_exporting",
    "mask_rows",
    "record_max_sites",
    "rulebook",
    "segment_reduce",
    "sparse_conv",
    "sparse_max_pool",
    "unique_sites",
]
