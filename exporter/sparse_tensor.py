"""SparseTensor: features at active sites of a batched grid, with spconv 2.x's attributes and methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import ops
from .symbolic_sizes import sizes_differ


class SparseTensor:
    """A batch of sparse feature maps: ``features [N, C]`` at the sites ``indices [N, 1 + D]``.

    ``indices`` holds ``(batch, *coords)`` in ``spatial_shape`` order (z, y, x for 3D), int32, as in
    spconv 2.x's ``SparseConvTensor``. ``indice_dict`` caches rulebooks by ``indice_key`` (and, for
    submanifold layers, by index set) and travels with the tensor through the layers.

    ``validate=True`` (the default) checks the indices once at construction: integer dtype and shape,
    every site inside ``batch_size x spatial_shape``, and no site twice; it raises a ValueError naming the
    offending row. The check sorts the N sites; pass ``validate=False`` to skip it when the indices are
    known to be valid (the layers do so for the tensors they create).
    """

    def __init__(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        spatial_shape: Sequence[int],
        batch_size: int,
        indice_dict: dict[Any, Any] | None = None,
        *,
        validate: bool = True,
    ) -> None:
        self.spatial_shape = [int(s) for s in spatial_shape]
        self.batch_size = int(batch_size)
        if validate:  # checked eagerly only: a trace must record the model's ops, not our checks
            indices = ops.checked_sites(features, indices, self.spatial_shape, self.batch_size)
        self._features = features
        self.indices = indices
        self.indice_dict: dict[Any, Any] = {} if indice_dict is None else indice_dict

    # spconv makes features read-only so that rulebook caches never see features of another tensor.
    @property
    def features(self) -> torch.Tensor:
        return self._features

    @features.setter
    def features(self, value: torch.Tensor) -> None:
        raise AttributeError("features are read-only: use `x = x.replace_feature(new_features)`")

    @property
    def ndim(self) -> int:
        return len(self.spatial_shape)

    @property
    def spatial_size(self) -> int:
        size = 1
        for s in self.spatial_shape:
            size *= s
        return size

    def __repr__(self) -> str:
        return (
            f"SparseTensor(features={list(self._features.shape)}, dtype={self._features.dtype}, "
            f"spatial_shape={self.spatial_shape}, batch_size={self.batch_size})"
        )

    def replace_feature(self, features: torch.Tensor) -> SparseTensor:
        """The same sites (and rulebook cache) with new features.

        As in spconv, the row count may differ for a while (VoxelNeXt concatenates features, then assigns the
        concatenated ``.indices``): the rows are checked where the tensor is used (``check_rows``)."""
        return SparseTensor(
            features, self.indices, self.spatial_shape, self.batch_size, self.indice_dict, validate=False
        )

    def check_rows(self, user: str = "this layer") -> None:
        """Raise unless features and indices have one row per site (``replace_feature`` accepts any row count,
        as spconv's does, so that ``.indices`` can be assigned afterwards)."""
        if sizes_differ(self._features.shape[0], self.indices.shape[0]):
            raise ValueError(
                f"{user}: the sparse tensor has {self._features.shape[0]} feature rows but {self.indices.shape[0]} "
                "sites: after replace_feature with a different row count, assign `.indices` with one row per "
                "feature row before using the tensor"
            )

    def find_indice_pair(self, key: Any) -> Any:
        return None if key is None else self.indice_dict.get(key)

    def dense(self, channels_first: bool = True) -> torch.Tensor:
        """``[B, C, *spatial_shape]`` (or channels last), zeros at inactive sites."""
        self.check_rows("dense()")
        return ops.densify(self._features, self.indices, self.spatial_shape, self.batch_size, channels_first)

    def __add__(self, other: SparseTensor | torch.Tensor) -> SparseTensor:
        other_features = other.features if isinstance(other, SparseTensor) else other
        return self.replace_feature(self._features + other_features)

    __radd__ = __add__

    @classmethod
    def from_dense(cls, x: torch.Tensor) -> SparseTensor:
        """From a channels-last dense ``[B, *spatial, C]``; sites with a nonzero channel are active."""
        active = (x != 0).any(dim=-1)
        idx = active.nonzero()
        features = x[active]
        return cls(features, idx.to(torch.int32), list(x.shape[1:-1]), int(x.shape[0]), validate=False)

    @classmethod
    def from_spconv(cls, tensor: Any, validate: bool = True) -> SparseTensor:
        """From spconv's ``SparseConvTensor`` (spconv itself is not needed to call this)."""
        return cls(tensor.features, tensor.indices, tensor.spatial_shape, tensor.batch_size, validate=validate)

    def to_spconv(self) -> Any:
        """To spconv's ``SparseConvTensor``; requires spconv to be installed."""
        try:
            import spconv.pytorch as spconv
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_spconv() needs spconv 2.x: pip install spconv (or spconv-cuXXX)") from exc
        return spconv.SparseConvTensor(self._features, self.indices, self.spatial_shape, self.batch_size)


def is_sparse_tensor(x: Any) -> bool:
    """Ours, or anything shaped like spconv's ``SparseConvTensor`` (duck-typed: spconv is optional)."""
    return isinstance(x, SparseTensor) or all(
        hasattr(x, name) for name in ("features", "indices", "spatial_shape", "batch_size", "replace_feature")
    )


def as_sparse_tensor(x: Any, layer: str = "this layer") -> SparseTensor:
    """Our SparseTensor for ``x``: itself, or a spconv ``SparseConvTensor`` a user's forward built.

    A model converted by ``sparsetrt.exporter.convert`` keeps its forward code, which may construct
    ``spconv.SparseConvTensor(features, coords, shape, batch)``; the first layer it meets takes it over
    (its indices are validated then, as at any construction).
    """
    if isinstance(x, SparseTensor):
        x.check_rows(layer)
        return x
    if is_sparse_tensor(x):
        ours = SparseTensor(x.features, x.indices, x.spatial_shape, x.batch_size)
        ours.check_rows(layer)  # validation is skipped while exporting; this check never is
        return ours
    raise TypeError(f"{layer} takes a SparseTensor (sparsetrt's or spconv's), got {type(x).__name__}")
