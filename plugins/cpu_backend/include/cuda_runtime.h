// <cuda_runtime.h> of the CPU execution backend: the runtime API plus the device-side language the kernels
// are written in (sparsetrt_cpu/device.h), so the same .cu sources compile with the host compiler.
#pragma once

#include "cuda_runtime_api.h"
#include "sparsetrt_cpu/device.h"

template <typename T>
cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
