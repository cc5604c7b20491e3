"""sparsetrt.runtime: the reference (CPU) runtime, and (to come) the TensorRT engine runtime."""

from .reference import ReferenceSession

__all__ = ["ReferenceSession"]
