"""Runtime: the reference (CPU) runtime and the TensorRT engine runtime."""
