"""2D submanifold sparse CNN for online handwriting classification.

Follows Graham & van der Maaten, "Submanifold Sparse Convolutional Networks" (arXiv:1706.01307, 2017) and
Graham, "Spatially-sparse convolutional neural networks" (arXiv:1409.6070, 2014), whose handwriting
experiments (CASIA / Pendigits) rasterise pen strokes into a sparse 2D grid and classify them with a
VGG-like stack: blocks of SubM 3x3 conv+BN+ReLU, widths growing per level, separated by 3x3 / stride-2 max
pooling, then conversion to a dense tensor and a small fully connected classifier.

Here: 96 x 96 input, one input channel (ink), three SubM levels separated by SparseMaxPool2d(3, 2, pad 1),
one strided SparseConv2d(2, 2) downsampling (both downsampling flavours get exercised), `spconv.ToDense()`,
then flatten + Linear.

Max-pool semantics differ between frameworks: a "max over the active inputs" can be negative, but spconv
2.3.8's native (CPU) max pool starts from a zero-filled output, so it returns `max(0, max over active
inputs)` -- a dense max pool over the zero-filled grid.  The pools here only see post-ReLU (>= 0) features,
where all of these definitions agree, so the model is a fair oracle for any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from .inputs import pen_strokes
from .layers import post_act, seeded_build

SPATIAL_SHAPE = (96, 96)
IN_CHANNELS = 1


class SparseCNN2d(nn.Module):
    """Sparse VGG-style classifier.

    forward(pixel_features [N, 1] f32, pixel_coords [N, 3] i32 (b, y, x), batch_size)
        -> logits [B, num_classes].
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        spatial_shape: Sequence[int] = SPATIAL_SHAPE,
        channels: Sequence[int] = (16, 32, 48),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.spatial_shape = list(spatial_shape)
        c0, c1, c2 = channels

        def subm(cin: int, cout: int, key: str) -> spconv.SparseSequential:
            return post_act(spconv.SubMConv2d(cin, cout, 3, padding=1, bias=False, indice_key=key))

        self.features = spconv.SparseSequential(
            subm(in_channels, c0, "subm0"),
            subm(c0, c0, "subm0"),
            spconv.SparseMaxPool2d(3, 2, padding=1),  # 96 -> 48
            subm(c0, c1, "subm1"),
            subm(c1, c1, "subm1"),
            post_act(spconv.SparseConv2d(c1, c1, 2, stride=2, bias=False)),  # 48 -> 24
            subm(c1, c2, "subm2"),
            subm(c2, c2, "subm2"),
            spconv.SparseMaxPool2d(3, 2, padding=1),  # 24 -> 12
            spconv.ToDense(),
        )
        # Pool (k3, s2, p1) halves rounding up, the k2/s2 conv halves rounding down: 96 -> 48 -> 24 -> 12.
        height, width = ((((size + 1) // 2) // 2 + 1) // 2 for size in spatial_shape)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * height * width, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, pixel_features: torch.Tensor, pixel_coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = spconv.SparseConvTensor(pixel_features, pixel_coords, self.spatial_shape, batch_size)
        return self.classifier(self.features(x))


def build() -> SparseCNN2d:
    """Sparse CNN with seeded random weights and randomised, input-calibrated BN statistics."""
    return seeded_build(SparseCNN2d, seed=6, calibration_inputs=make_inputs(seed=1000, batch_size=2, num_voxels=2000))


def make_inputs(seed: int, batch_size: int, num_voxels: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(pixel_features [N, 1], pixel_coords [N, 3], batch_size)`: synthetic handwriting, at most 40% ink."""
    feats, coords = pen_strokes(seed, batch_size, num_voxels, SPATIAL_SHAPE)
    return feats, coords, batch_size
