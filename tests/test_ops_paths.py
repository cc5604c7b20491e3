"""The functional layer (``sparsetrt.exporter.ops``): each op function runs the reference backend eagerly and
records its custom op while exporting, with the same result; ``max_sites`` reaches the rulebook op through the
export's options and ends with the export; nothing outside the layer asks whether a model is exported."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
from oracles import clustered_sites
from torch.utils._python_dispatch import TorchDispatchMode

from sparsetrt.exporter import ops
from sparsetrt.exporter.backend import ConvGeometry, ConvKind

SHAPE = [7, 9, 8]
EXPORTER = pathlib.Path(ops.__file__).parent.parent


class _SparsetrtCalls(TorchDispatchMode):
    """The names of the ``torch.ops.sparsetrt`` ops called inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func.namespace == "sparsetrt":
            self.names.append(func._opname)
        return func(*args, **(kwargs or {}))


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    return [value.neighbors, value.in_indices, value.out_indices]  # a Rulebook


def _calls(gen: torch.Generator) -> dict[str, tuple[str, Callable[[], Any]]]:
    """op function -> (the custom op it records, a call of it on fresh random sites)."""
    indices = clustered_sites(gen, 80, SHAPE, 2)
    n = indices.shape[0]
    features = torch.randn(n, 3, generator=gen)
    subm = ConvGeometry.make(ConvKind.SUBMANIFOLD, 3, 3, 1, 0, 1)
    strided = ConvGeometry.make(ConvKind.REGULAR, 3, 3, 2, 1, 1)
    subm_rb = ops.rulebook(indices, SHAPE, 2, subm)  # eager rulebooks: inputs of the ops that take one
    strided_rb = ops.rulebook(indices, SHAPE, 2, strided)
    weight = torch.randn(5, 3, 3, 3, 3, generator=gen)
    bias = torch.randn(5, generator=gen)
    segments = torch.randint(-1, 6, (n,), generator=gen, dtype=torch.int32)
    init = torch.randn(5, 3, generator=gen)
    duplicated = torch.cat([indices, indices[: n // 2]])
    return {
        "rulebook (subm)": ("subm_rulebook", lambda: ops.rulebook(indices, SHAPE, 2, subm)),
        "rulebook (strided)": ("sparse_rulebook", lambda: ops.rulebook(indices, SHAPE, 2, strided)),
        "inverse_rulebook": ("inverse_rulebook", lambda: ops.inverse_rulebook(strided_rb)),
        "sparse_conv": ("sparse_conv", lambda: ops.sparse_conv(features, subm_rb, weight, bias, "leaky_relu", 0.1)),
        "sparse_max_pool": ("sparse_max_pool", lambda: ops.sparse_max_pool(features, strided_rb)),
        "densify": ("densify", lambda: ops.densify(features, indices, SHAPE, 2, channels_first=False)),
        "unique_sites": ("unique_sites", lambda: ops.unique_sites(duplicated)),
        "segment_reduce": ("segment_reduce", lambda: ops.segment_reduce(features, segments, init, "max")),
        "mask_rows": ("mask_rows", lambda: ops.mask_rows(features[:, 0] > 0)),
    }


def test_each_op_runs_the_backend_eagerly_and_records_its_custom_op_while_exporting(gen):
    for name, (custom_op, call) in _calls(gen).items():
        with _SparsetrtCalls() as eager_calls:
            eager = call()
        with ops.exporting(ops.ExportOptions()), _SparsetrtCalls() as export_calls:
            exported = call()
        assert eager_calls.names == [], name
        assert export_calls.names == [custom_op], name
        for a, b in zip(_tensors(eager), _tensors(exported), strict=True):
            assert a.shape == b.shape and torch.allclose(a.to(b.dtype), b, atol=1e-5), name


def test_max_sites_reaches_the_rulebook_op_and_ends_with_the_export(gen):
    indices = clustered_sites(gen, 80, SHAPE, 2)
    strided = ConvGeometry.make(ConvKind.REGULAR, 3, 3, 2, 1, 1)
    sites = ops.rulebook(indices, SHAPE, 2, strided).num_out
    with ops.exporting(ops.ExportOptions(max_sites=sites)):
        assert ops.export_options().max_sites == sites
        assert ops.rulebook(indices, SHAPE, 2, strided).num_out == sites  # a bound met exactly holds
    with pytest.raises(ValueError, match=f"creates {sites} sites, more than its bound max_out={sites - 1}"):
        with ops.exporting(ops.ExportOptions(max_sites=sites - 1)):
            ops.rulebook(indices, SHAPE, 2, strided)
    assert not ops.is_exporting()
    assert ops.export_options() == ops.ExportOptions()  # a user's own torch.export gets the defaults
    with pytest.raises(ValueError, match="max_sites must be >= 0"):
        ops.ExportOptions(max_sites=-1)


def test_only_the_functional_layer_asks_whether_a_model_is_exported():
    """The layers, SparseTensor and the rest call ``ops``; a branch on the export elsewhere would split the
    choice of path again."""
    askers = [
        str(path.relative_to(EXPORTER))
        for path in sorted(EXPORTER.rglob("*.py"))
        if "ops" not in path.relative_to(EXPORTER).parts[:1]
        and re.search(r"is_exporting\(|is_in_onnx_export\(", path.read_text())
    ]
    assert askers == []
