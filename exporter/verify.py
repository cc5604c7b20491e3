"""``export``'s check of its own file before it writes it: no broken file ever leaves export.

1. ``onnx.checker.check_model(full_check=True)`` and strict shape inference with type checks (our op schemas
   registered): every node valid, every tensor typed.
2. The file runs on ``ReferenceSession`` with the tracing example (and a subset of its rows, where inputs have
   a dynamic voxel count) and gives PyTorch's outputs: the converted
   model (the one that was traced) run eagerly on the same inputs, output by output, within
   ``1e-4 x max(1, max |PyTorch|)`` (fp32 files) or ``2e-2 x`` that (fp16 files, fed float16 inputs). A file
   that passes the checker yet computes something else (a corrupt constant, a data-dependent value the trace
   baked in) fails here, with the file's and PyTorch's figures and the tracer's warnings about the user's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import torch

TOLERANCE = {False: 1e-4, True: 2e-2}  # by fp16


class ExportVerificationError(RuntimeError):
    """The exported file does not compute what the model computes (on the tracing example, or a subset of it)."""


def flatten_outputs(value: Any) -> list[Any]:
    """Outputs in the order ``torch.onnx.export`` flattens them (tuples, lists and dict values, depth first)."""
    if isinstance(value, tuple | list):
        return [leaf for v in value for leaf in flatten_outputs(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in flatten_outputs(v)]
    return [value]


def check_graph(proto: onnx.ModelProto) -> None:
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def compare_with_reference(
    session: Any,
    feed: dict[str, np.ndarray],
    expected: Sequence[Any],
    fp16: bool,
    hints: Sequence[str] = (),
    what: str = "the tracing example",
) -> None:
    """Run ``session`` (a ReferenceSession of the file) on ``feed`` and compare with ``expected`` (PyTorch's
    outputs)."""
    if fp16:
        feed = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in feed.items()}
    got = session.run(None, feed)
    names = [o.name for o in session.get_outputs()]
    want = [_numpy(v) for v in expected]
    hint = ""
    if hints:
        hint = "\nThe tracer warned about these lines of the model (values it baked into the file):\n  " + "\n  ".join(
            hints
        )
    if len(got) != len(want):
        raise ExportVerificationError(
            f"the exported file has {len(got)} outputs, the model returned {len(want)} tensors{hint}"
        )
    tolerance = TOLERANCE[fp16]
    for name, g, w in zip(names, got, want, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            raise ExportVerificationError(
                f"output {name!r}: the exported file gives shape {list(g.shape)} on {what}, PyTorch "
                f"{list(w.shape)}{hint}"
            )
        if w.dtype.kind in "iub":
            if not np.array_equal(g.astype(np.int64), w.astype(np.int64)):
                bad = int(np.count_nonzero(g.astype(np.int64) != w.astype(np.int64)))
                raise ExportVerificationError(
                    f"output {name!r}: {bad} of {w.size} integer values differ from PyTorch's on {what}{hint}"
                )
            continue
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        if not np.array_equal(np.isnan(g64), np.isnan(w64)):
            raise ExportVerificationError(f"output {name!r}: NaNs differ from PyTorch's on {what}{hint}")
        finite = ~np.isnan(w64)
        err = float(np.max(np.abs(g64 - w64)[finite], initial=0.0))
        scale = float(np.max(np.abs(w64)[finite], initial=0.0))
        if err > tolerance * max(1.0, scale):
            raise ExportVerificationError(
                f"output {name!r}: the exported file differs from PyTorch by up to {err:.3g} on {what} "
                f"(output scale {scale:.3g}, tolerance {tolerance:g} x max(1, scale)){hint}"
            )
