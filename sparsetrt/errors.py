"""The exceptions sparsetrt raises on purpose: every one means "this input cannot be used, and here is why and
what to do", and the ``sparsetrt`` command reports it in one line with exit status 2.

Each also derives from the built-in type callers would expect (``ValueError`` for bad values, ``RuntimeError``
for failures at run time), so ``except ValueError`` keeps working. Anything else that escapes is a bug in
sparsetrt: the command reports it with exit status 3 and asks for a report.
"""

from __future__ import annotations


class SparsetrtError(Exception):
    """Base of every error sparsetrt raises about its input; the message says what is wrong and what to do."""


class ModelError(SparsetrtError, ValueError):
    """A model file (or graph) sparsetrt cannot use: unreadable, an unknown op, attributes outside the op
    schema's rules, input shapes that do not fit together, an opset the runtime does not have."""


class InputError(SparsetrtError, ValueError):
    """Inputs a model cannot take (names, types, shapes, coordinates); the message names the input."""


class SiteLimitError(SparsetrtError, RuntimeError):
    """A layer created more sites at run time than the bound the model was exported with (``max_out``)."""


class UsageError(SparsetrtError, ValueError):
    """An option or argument with a value that cannot work (a voxel profile beyond int32, a NaN tolerance)."""


class OutOfMemoryError(SparsetrtError, MemoryError):
    """A computation needed more memory than the machine could give (a dense output too large, say)."""


class CheckError(SparsetrtError, RuntimeError):
    """A runtime failed while ``sparsetrt check`` ran the frames through it (the message says which and why)."""
