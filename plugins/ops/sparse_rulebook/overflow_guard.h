// The SparseRulebook plugin's overflow report inside a CUDA-graph capture, where it cannot synchronize to read
// the overflow flag back. Plain CUDA, no TensorRT.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sparsetrt {
namespace kernels {

// Enqueues a one-thread kernel: if *d_overflow != 0 it prints, from the device, "<context>: created <count>
// output sites, more than the bound <bound> ..." (device printf: the text appears at the stream's next
// synchronization point). It does not trap: the layer has already written M = 0 (the overflow contract of
// sparseRulebook), so consumers see an empty set instead of a truncated one, and the CUDA context stays usable.
// `context` (the op and node) is copied into the launch, truncated to 127 characters.
cudaError_t reportOverflow(const int32_t* d_overflow, int64_t bound, const char* context, cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsetrt
