// The SparseRulebook plugin's last line of defence inside a CUDA graph: where it cannot synchronize to
// read the overflow flag, it enqueues a kernel that stops the stream with a printed message instead of
// letting a truncated rulebook flow on. Plain CUDA, no TensorRT.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sparsetrt {
namespace kernels {

// If *d_overflow != 0, prints "sparsetrt: SparseRulebook created <count> output sites, more than the bound
// <bound>..." from the device and traps (the stream and context report an error).
cudaError_t trapOnOverflow(const int32_t* d_overflow, int64_t bound, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
