"""Running zoo models under spconv on the CPU, working around the quirks of spconv 2.3.8's CPU build.

* Its CPU scatter-add races when torch runs several intra-op threads, so every call runs with
  `torch.set_num_threads(1)` and restores the caller's setting afterwards.
* In eval mode the CPU path refuses a conv bias ("cpu don't support act and bias": eval mode would fuse
  the bias into the kernel, which only the GPU kernels can do).  In training mode spconv instead adds the
  bias to the conv output itself, and nothing else about a conv layer depends on the flag (on the CPU's
  native algorithm the pairs and the gather-GEMM-scatter are identical).  So `spconv_forward` puts the model
  in eval mode -- BatchNorm must use its running statistics -- and flips `.training` on only the sparse conv
  modules for the duration of the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from spconv.pytorch.conv import SparseConvolution
from torch import nn

__all__ = ["single_thread", "spconv_forward"]


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the body with one torch intra-op thread, restoring the previous thread count on exit."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def spconv_forward(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """Inference forward of a spconv model on the CPU: eval-mode BN, conv biases applied, no autograd.

    Every module's `.training` flag is restored afterwards, so the call has no lasting side effects.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    for module in model.modules():
        if isinstance(module, SparseConvolution):
            # Training mode only changes where the bias is added (see module docstring); BN stays in eval.
            module.training = True
    try:
        with torch.no_grad(), single_thread():
            return model(*args, **kwargs)
    finally:
        for module, flag in flags:
            module.training = flag
