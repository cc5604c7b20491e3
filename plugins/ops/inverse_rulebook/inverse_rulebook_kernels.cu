// InverseRulebook on the GPU: the transpose of a regular neighbour map, inverse[k, neighbors[k, m]] = m.
// One writer per entry (a regular map sends each input to at most one output per offset): no atomics.
#include "device_common.cuh"
#include "ops/inverse_rulebook/inverse_rulebook_kernels.h"

namespace sparsetrt {
namespace kernels {
namespace {

using detail::kThreads;

// ---------------------------------------------------------------------------------------------- inverse
__global__ void invertKernel(const int32_t* __restrict__ neighbors, int64_t total, int64_t m, int64_t n,
                             int32_t* __restrict__ inverse) {
  SPT_GRID_STRIDE(idx, total) {
    const int32_t i = neighbors[idx];
    if (i >= 0 && i < n) inverse[(idx / m) * n + i] = static_cast<int32_t>(idx % m);
  }
}

}  // namespace

std::size_t inverseRulebookWorkspaceSize() { return 0; }

cudaError_t inverseRulebook(const int32_t* d_neighbors, int64_t kernel_volume, int64_t num_out, int64_t num_in,
                            int32_t* d_inverse, void*, std::size_t, cudaStream_t stream) {
  if (kernel_volume < 0 || num_out < 0 || num_in < 0) return cudaErrorInvalidValue;
  if (kernel_volume * num_in == 0) return cudaSuccess;
  const cudaError_t err = cudaMemsetAsync(d_inverse, 0xFF, kernel_volume * num_in * sizeof(int32_t), stream);  // -1
  if (err != cudaSuccess || num_out == 0) return err;
  const int64_t total = kernel_volume * num_out;
  return detail::launch<invertKernel>(detail::blocksFor(total), kThreads, 0, stream, d_neighbors, total, num_out,
                                      num_in, d_inverse);
}

}  // namespace kernels
}  // namespace sparsetrt
