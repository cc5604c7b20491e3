"""Convolution geometry: per-dimension kernel parameters and output-shape arithmetic.

Conventions are spconv 2.x's (see shared DESIGN.md): an output site ``o`` of a regular sparse conv reads
the input site ``o * stride - padding + k * dilation`` for each kernel offset ``k``; a transposed conv is
its adjoint (output ``o = i * stride - padding + k * dilation``); a submanifold conv keeps the input sites
and centres the kernel (its ``padding`` argument is ignored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

IntOrSeq = int | Sequence[int]


def expand_nd(ndim: int, value: IntOrSeq, name: str = "value") -> tuple[int, ...]:
    """Broadcast an int to ``ndim`` ints, or check that a sequence has ``ndim`` entries."""
    if isinstance(value, int):
        return (int(value),) * ndim
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(f"{name} must be an int or have {ndim} entries for a {ndim}D layer, got {values}")
    return values


class ConvKind(str, Enum):
    """How the output sites of a layer relate to its input sites."""

    SUBMANIFOLD = "subm"  # outputs are exactly the input sites, in input row order
    REGULAR = "conv"  # outputs are the sites whose receptive field touches an active input
    TRANSPOSED = "transposed"  # the adjoint of REGULAR: every input scatters to its kernel footprint


@dataclass(frozen=True)
class ConvGeometry:
    """Everything that decides a rulebook, apart from the active sites themselves."""

    kind: ConvKind
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]

    @classmethod
    def make(
        cls,
        kind: ConvKind,
        ndim: int,
        kernel_size: IntOrSeq,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        dilation: IntOrSeq = 1,
        output_padding: IntOrSeq = 0,
    ) -> ConvGeometry:
        geo = cls(
            kind=ConvKind(kind),
            kernel_size=expand_nd(ndim, kernel_size, "kernel_size"),
            stride=expand_nd(ndim, stride, "stride"),
            padding=expand_nd(ndim, padding, "padding"),
            dilation=expand_nd(ndim, dilation, "dilation"),
            output_padding=expand_nd(ndim, output_padding, "output_padding"),
        )
        geo.validate()
        return geo

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def kernel_volume(self) -> int:
        return math.prod(self.kernel_size)

    @property
    def is_pointwise(self) -> bool:
        """A 1x1 kernel that maps every site to itself (any kind but transposed with stride > 1)."""
        if self.kernel_volume != 1 or any(s != 1 for s in self.stride):
            return False
        return self.kind is ConvKind.SUBMANIFOLD or (
            all(p == 0 for p in self.padding) and all(p == 0 for p in self.output_padding)
        )

    def validate(self) -> None:
        for name in ("kernel_size", "stride", "dilation"):
            if any(v < 1 for v in getattr(self, name)):
                raise ValueError(f"{name} must be >= 1 in every dimension, got {getattr(self, name)}")
        if any(v < 0 for v in self.padding):
            raise ValueError(f"padding must be >= 0 in every dimension, got {self.padding}")
        if any(v < 0 for v in self.output_padding):
            raise ValueError(f"output_padding must be >= 0 in every dimension, got {self.output_padding}")
        if self.kind is ConvKind.SUBMANIFOLD and any(s != 1 for s in self.stride):
            raise ValueError(f"a submanifold conv keeps its input sites, so its stride must be 1, got {self.stride}")
        if self.kind is not ConvKind.TRANSPOSED and any(v != 0 for v in self.output_padding):
            raise ValueError("output_padding is only meaningful for a transposed conv")

    def subm_padding(self) -> tuple[int, ...]:
        """The implicit padding that centres a submanifold kernel: ``(k // 2) * dilation``."""
        return tuple((k // 2) * d for k, d in zip(self.kernel_size, self.dilation, strict=True))

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """The output grid for an input grid, or a ValueError naming the dimension that vanishes."""
        shape = tuple(int(s) for s in spatial_shape)
        if len(shape) != self.ndim:
            raise ValueError(f"spatial_shape {shape} has {len(shape)} dims but the layer is {self.ndim}D")
        if self.kind is ConvKind.SUBMANIFOLD:
            return shape
        out = []
        for dim, (s, k, st, p, d, op) in enumerate(
            zip(
                shape,
                self.kernel_size,
                self.stride,
                self.padding,
                self.dilation,
                self.output_padding,
                strict=True,
            )
        ):
            if self.kind is ConvKind.REGULAR:
                o = (s + 2 * p - d * (k - 1) - 1) // st + 1
            else:
                o = (s - 1) * st - 2 * p + d * (k - 1) + op + 1
            if o <= 0:
                raise ValueError(
                    f"{self.kind.value} conv with kernel {self.kernel_size}, stride {self.stride}, padding "
                    f"{self.padding}, dilation {self.dilation} turns spatial dim {dim} of size {s} into {o}; "
                    "the input grid is too small for this layer"
                )
            out.append(o)
        return tuple(out)
