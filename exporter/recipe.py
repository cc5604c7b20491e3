"""``ExportRecipe``: what a model factory hands the ``sparsetrt export`` command.

A factory is a ``module:function`` the CLI imports and calls with no arguments; it builds the model (the
checkpoint, if any, is loaded afterwards by the CLI) and one example input to trace it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class ExportRecipe:
    """A model, an example of its inputs, and the names the exported file gives them.

    ``args`` are passed to ``model(*args)`` while tracing, exactly as ``export(model, args, ...)`` takes
    them; ``input_names`` name its tensor arguments in order, ``output_names`` its outputs.
    """

    model: nn.Module
    args: tuple[Any, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]] | None = None
    export_kwargs: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for export()
